"""Model-based RL: learn the dynamics from real data, improve the policy inside the model.

Lecture 6, section 6.1, the vanilla loop: (1) collect data under the current policy, (2) fit a
dynamics model to all data so far, (3) improve the policy on roll-outs imagined in the model,
repeat. The model pieces live in :mod:`fdrl_lib.dynamics` (shared with ``me_trpo`` and
``mb_mpo``) and are importable from here as well:

- :func:`pendulum_reward`: Pendulum-v1's reward as a batched closed form (imagined roll-outs
  need the reward of imagined states; the envs of :data:`TASKS` have a known reward);
- :class:`DynamicsEnsemble` and :func:`fit_dynamics`: K networks that predict the *change* of
  the state, ``s' = s + f(s, a)``, normalised, bootstrapped, with held-out early stopping
  (K = 1 is the vanilla loop's single model);
- :func:`disagreement`: how far the members' predictions spread;
- :func:`imagine`: a roll-out in the model that comes back as the very
  :class:`~fdrl_lib.buffers.RolloutBuffer` a real roll-out fills, so lecture 4's TRPO update
  takes it unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from fdrl_lib.algos import trpo
from fdrl_lib.algos.trpo import eval_settings  # the same stop rule: threshold + margin
from fdrl_lib.dynamics import (
    PENDULUM_DT,
    PENDULUM_MAX_SPEED,
    PENDULUM_MAX_TORQUE,
    TASKS,
    Dynamics,
    DynamicsEnsemble,
    FitSettings,
    ModelEnv,
    Task,
    disagreement,
    fit_dynamics,
    imagine,
    member_dynamics,
    pendulum_apply,
    pendulum_delta,
    pendulum_dynamics,
    pendulum_reward,
    random_member_dynamics,
    residual_apply,
    residual_delta,
    task_of,
)
from fdrl_lib.envs import EnvLike, env_id, make_env
from fdrl_lib.nn import GaussianPolicy, ValueNetwork
from fdrl_lib.training import (
    Monitor,
    TrainResult,
    check_config,
    config_from_dict,
    load_checkpoint,
    seeded,
)

__all__ = [  # the loop's names, and the model pieces re-exported from fdrl_lib.dynamics
    "PENDULUM_DT", "PENDULUM_MAX_SPEED", "PENDULUM_MAX_TORQUE", "TASKS", "Config", "Dataset",
    "Dynamics", "DynamicsEnsemble", "FitSettings", "GaussianPolicy", "ModelEnv", "Task",
    "checkpoint_of", "collect_episodes", "disagreement", "eval_settings", "fit_dynamics",
    "imagine", "load", "make_model", "member_dynamics", "pendulum_apply", "pendulum_delta",
    "pendulum_dynamics", "pendulum_reward", "policy_parts", "policy_step_in_model",
    "random_member_dynamics", "residual_apply", "residual_delta", "sampling_act", "spaces_of",
    "start_states", "task_of", "train",
]  # fmt: skip


# ------------------------------------------------------------------------------------ the loop
@dataclass(frozen=True)
class Config:
    total_steps: int = 10_000  # real env steps at most
    episodes_per_iteration: int = 1  # real episodes collected under the policy per iteration
    K: int = 1  # dynamics models (the vanilla loop fits one)
    model_hidden: tuple[int, ...] = (200, 200)  # hidden widths of each dynamics model
    model_lr: float = 1e-3  # Adam step size of the model fit
    model_batch: int = 256  # transitions per model gradient step
    model_max_epochs: int = 100  # model epochs per fit at most (early stopping ends most sooner)
    model_patience: int = 5  # epochs without a held-out improvement before the fit stops
    holdout: float = 0.2  # fraction of the data held out to stop the model fit
    policy_iterations: int = 20  # policy updates in the model per real iteration (N_sim)
    imagined_episodes: int = 25  # imagined episodes per policy update, started from real states
    horizon: int = 200  # steps of an imagined episode
    reset_share: float = 0.5  # share of imagined episodes that start where real episodes start
    hidden: tuple[int, ...] = (64, 64)  # hidden widths of the policy and the value network
    log_std: float = 0.0  # initial log std of the Gaussian policy
    gamma: float = 0.99  # discount
    lam: float = 0.95  # GAE lambda
    max_kl: float = 0.02  # TRPO's trust region radius (lecture 4, eq. 4.5)
    value_lr: float = 1e-3  # Adam step size of the value fit
    value_epochs: int = 5  # passes over the imagined batch per value fit
    value_batch: int = 256  # minibatch size of the value fit
    torch_threads: int = 1  # small networks run fastest on one thread
    eval_every: int = 1_000  # real env steps between evaluations; the best policy is kept
    eval_episodes: int = 20  # episodes per evaluation (with 10, policies that fail from some
    # start states were kept on a lucky score and lost on a fresh 10-episode check)
    target_return: float | None = None  # stop at this evaluation return (None: see below)
    target_margin: float = 30.0  # None target: stop at the env's threshold + this margin
    stop_at_target: bool = True  # False: use the whole budget (still keeping the best policy)

    def __post_init__(self) -> None:
        check_config(
            self,
            non_negative=("target_margin",),
            positive=(
                "total_steps", "episodes_per_iteration", "K", "model_lr", "model_batch",
                "model_max_epochs", "model_patience", "policy_iterations", "imagined_episodes",
                "horizon", "max_kl", "value_lr", "value_epochs", "value_batch", "torch_threads",
                "eval_every", "eval_episodes",
            ),
            unit=("holdout", "gamma", "lam", "reset_share"),
        )  # fmt: skip

    def fit_settings(self) -> FitSettings:
        return FitSettings(
            lr=self.model_lr, batch_size=self.model_batch, max_epochs=self.model_max_epochs,
            holdout=self.holdout, patience=self.model_patience, bootstrap=self.K > 1,
        )  # fmt: skip


class Dataset:
    """The real transitions ``D`` gathered so far: ``obs``, ``action`` (as the env applied it,
    clipped), ``next_obs``, and the first observation of every episode."""

    def __init__(self) -> None:
        self.rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.starts: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.rows)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        obs, action, next_obs = (
            np.array(x, dtype=np.float32) for x in zip(*self.rows, strict=True)
        )
        return obs, action, next_obs


def collect_episodes(env, act, episodes: int, data: Dataset, monitor, step: int, rng) -> int:
    """Run ``episodes`` real episodes with ``act(obs) -> action`` (sampling the policy), add
    every transition to ``data``, feed the monitor; returns the new env step count."""
    low, high = env.action_space.low, env.action_space.high
    for _ in range(episodes):
        obs, _ = env.reset(seed=int(rng.integers(2**31)))
        data.starts.append(obs)
        done = False
        while not done:
            action = np.clip(act(obs), low, high)  # what the env applies, so what the model sees
            next_obs, reward, terminated, truncated, _ = env.step(action)
            data.rows.append((obs, action, next_obs))
            step += 1
            monitor.track(reward, terminated or truncated, step)
            obs = next_obs  # easy to forget: else the agent acts on a stale state
            done = terminated or truncated
    return step


def sampling_act(net):
    """``obs -> action``: one draw from ``pi_theta(.|obs)`` for acting in the real env."""

    def act(obs):
        with torch.no_grad():
            return net(torch.as_tensor(obs, dtype=torch.float32)[None]).sample()[0].numpy()

    return act


def policy_step_in_model(parts, dynamics: Dynamics, task: Task, start_obs, spaces, c, rng):
    """Imagine a batch under the current policy, one TRPO step on it, refit the value net.

    ``parts`` = ``(net, value_net, value_optimizer, trpo_config)``; ``spaces`` the real env's
    ``(action_space, observation_space)``. The batch comes back from
    :func:`imagine` in the same :class:`RolloutBuffer` a real rollout fills, so lecture 4's
    :func:`~fdrl_lib.algos.trpo.trpo_update` runs on it unchanged. Returns diagnostics with the
    mean imagined return.
    """
    net, value_net, value_optimizer, trpo_config = parts
    buffer = imagine(
        dynamics, task.reward, trpo.make_actor(net, None), start_obs, c.horizon, spaces[0],
        value_fn=value_net, observation_space=spaces[1],
    )  # fmt: skip
    advantage, returns = trpo.rollout_advantages(buffer, c.gamma, c.lam, normalize=True)
    batch = trpo.policy_batch(buffer, None, advantage)
    stats = trpo.trpo_update(net, batch, trpo_config)
    stats["value_loss"] = trpo.fit_value(
        value_net, value_optimizer, batch["obs"], returns.reshape(-1),
        c.value_epochs, c.value_batch, rng,
    )  # fmt: skip
    stats["imagined_return"] = float(buffer.reward.sum(0).mean())
    return stats


def spaces_of(env) -> tuple:
    """``(action_space, observation_space)`` of a real env, for imagining in its place."""
    return env.action_space, env.observation_space


def start_states(
    data: Dataset, n: int, rng: np.random.Generator, reset_share: float = 0.0
) -> np.ndarray:
    """``n`` start states for imagined episodes: ``round(reset_share * n)`` of them drawn from
    the first observations of the real episodes (the env's start distribution, from which the
    real return is measured), the rest from every real observation in ``D`` (where the policy
    goes; once it balances, most of them are upright)."""
    obs = np.array([row[0] for row in data.rows], dtype=np.float32)
    n_reset = int(round(reset_share * n))
    picks = obs[rng.integers(len(obs), size=n - n_reset)]
    if n_reset:
        first = np.array(data.starts, dtype=np.float32)
        picks = np.concatenate([first[rng.integers(len(first), size=n_reset)], picks])
    return picks


def policy_parts(env, c):
    """The Gaussian policy net, its value net and optimizer, the TRPO settings, the
    deterministic policy (mean action, clipped) that evaluation and ``result.policy`` use."""
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    net = GaussianPolicy(obs_dim, action_dim, tuple(c.hidden), log_std=c.log_std)
    value_net = ValueNetwork(obs_dim, tuple(c.hidden))
    value_optimizer = torch.optim.Adam(value_net.parameters(), lr=c.value_lr)
    trpo_config = trpo.Config(max_kl=c.max_kl, hidden=tuple(c.hidden))
    policy = trpo.DeterministicPolicy(net, None, env.action_space.low, env.action_space.high)
    return (net, value_net, value_optimizer, trpo_config), policy


def make_model(env, task: Task, c: Config) -> DynamicsEnsemble:
    """K freshly initialised dynamics models for ``env``, predicting ``task``'s target."""
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    return DynamicsEnsemble(
        c.K, obs_dim, action_dim, task.delta_dim, c.model_hidden, task.to_delta, task.from_delta
    )


def train(
    env: EnvLike = "Pendulum-v1",
    config: Config | None = None,
    *,
    seed: int = 0,
    total_steps: int | None = None,
    callback=None,
    progress: bool = True,
) -> TrainResult:
    """The vanilla model-based loop (section 6.1); returns the best-evaluated policy."""
    c = config or Config()
    if total_steps is not None:
        c = dataclasses.replace(c, total_steps=int(total_steps))
    task = task_of(env_id(env))
    with seeded(seed, c.torch_threads) as streams:
        real_env = make_env(env)
        rng, model_rng, env_rng = streams.generator(), streams.generator(), streams.generator()
        parts, policy = policy_parts(real_env, c)
        net = parts[0]
        model = make_model(real_env, task, c)
        monitor = Monitor(
            "mbrl", env, c.total_steps, eval_settings(c, env),
            seed=seed, callback=callback, progress=progress,
        )  # fmt: skip
        data, step = Dataset(), 0
        try:
            while step < c.total_steps:
                # 1. collect data under the current policy
                step = collect_episodes(
                    real_env, sampling_act(net), c.episodes_per_iteration, data, monitor, step,
                    env_rng,
                )  # fmt: skip
                # 2. learn the dynamics model from all data so far
                fit = fit_dynamics(model, *data.arrays(), model_rng, c.fit_settings())
                monitor.log(step, model_loss=float(np.mean(fit["holdout_loss"])))
                # 3. improve the policy in the model (TRPO on imagined roll-outs)
                dynamics = member_dynamics(model, np.zeros(c.imagined_episodes, dtype=np.int64))
                for _ in range(c.policy_iterations):
                    starts = start_states(data, c.imagined_episodes, rng, c.reset_share)
                    stats = policy_step_in_model(
                        parts, dynamics, task, starts, spaces_of(real_env), c, rng
                    )
                monitor.log(step, **stats)
                if monitor.after_update(step, policy, [net]):
                    break
        finally:
            real_env.close()
        kept = monitor.finish(step, policy, [net])
    checkpoint = checkpoint_of("mbrl", c, net, env)
    return TrainResult(policy, config=c, algo="mbrl", checkpoint=checkpoint, **kept)


def checkpoint_of(algo: str, c: Config, net, env: EnvLike) -> dict:
    """What ``TrainResult.save`` writes: the config, the policy weights and the env's id."""
    return {
        "algo": algo, "config": dataclasses.asdict(c), "state_dict": net.state_dict(),
        "env": env_id(env),
    }  # fmt: skip


def load(path, algo: str = "mbrl", config_class=Config) -> TrainResult:
    """Rebuild the policy saved by ``TrainResult.save`` (``me_trpo`` and ``mb_mpo`` too)."""
    payload = load_checkpoint(path, algo)
    c = config_from_dict(config_class, payload["config"])
    probe = make_env(payload["env"])
    parts, policy = policy_parts(probe, c)
    probe.close()
    parts[0].load_state_dict(payload["state_dict"])
    return TrainResult(
        policy, payload.get("history", []), c, algo=algo, checkpoint=payload,
        kept_step=payload.get("kept_step"),
    )  # fmt: skip
