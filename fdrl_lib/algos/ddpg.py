"""DDPG: a deterministic actor trained through a learned Q-function, from replayed data.

Lecture 5, section 5.1: roll-outs with exploration noise, the Q update (eqs. 5.1-5.2) toward a
target built from lagged target networks (eq. 5.4) that follow the online ones by Polyak
averaging, and the policy update through Q (eq. 5.3), all on minibatches from a replay memory.

Speed on a CPU: with [64, 64] networks a gradient step costs mostly fixed per-operation overhead,
not arithmetic. So the critic and actor losses go through one backward pass and one fused Adam
step (the critic is :func:`frozen` while the actor's loss is built, so that loss moves only the
actor), the target networks follow by one ``torch._foreach_lerp_``, and TD3's and SAC's twin
critics are ``nn.TwinQCritic``, both in one batched pass. Networks and replay are the shared ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from fdrl_lib.buffers import ReplayBuffer
from fdrl_lib.envs import EnvLike, make_env
from fdrl_lib.nn import DeterministicActor, QCritic
from fdrl_lib.training import (
    EvalSettings,
    Monitor,
    TrainResult,
    check_config,
    config_from_dict,
    load_checkpoint,
    seeded,
)


@dataclass(frozen=True)
class Config:
    total_steps: int = 20_000  # env steps to train for
    hidden: tuple[int, ...] = (64, 64)  # hidden widths of the actor and the critic
    actor_lr: float = 1e-3  # Adam step size of the actor
    critic_lr: float = 2e-3  # Adam step size of the critic
    gamma: float = 0.98  # discount
    tau: float = 0.02  # Polyak rate of the target networks (eq. 5.4's lag)
    buffer_size: int = 200_000  # replay memory capacity
    batch_size: int = 256  # transitions per gradient step
    learning_starts: int = 1_000  # uniformly random actions before the first update
    train_every: int = 2  # env steps between gradient steps
    noise_std: float = 0.1  # Gaussian exploration noise, in units of half the action range
    torch_threads: int = 1  # small networks run fastest on one thread
    eval_every: int = 1_000  # env steps between evaluations; the best-evaluated policy is kept
    eval_episodes: int = 10  # episodes per evaluation
    target_return: float | None = -160.0  # stop here: a margin over the -200 bar (fresh episodes)
    stop_at_target: bool = True  # False: use the whole budget (still keeping the best policy)

    def __post_init__(self) -> None:
        check_config(
            self,
            positive=(
                "total_steps", "actor_lr", "critic_lr", "buffer_size", "batch_size",
                "train_every", "torch_threads", "eval_every", "eval_episodes",
            ),
            non_negative=("learning_starts", "noise_std"),
            unit=("gamma", "tau"),
        )  # fmt: skip


# ------------------------------------------------------------------------------ the math
def polyak_update(target, source, tau: float) -> None:
    """In place, for every parameter pair: ``t <- tau s + (1 - tau) t`` (eq. 5.4's lagged nets).

    ``target`` and ``source`` are modules (their parameters) or equal-length sequences of
    tensors. ``tau = 1`` copies the source; ``tau = 0`` leaves the target as it was.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    target = list(target.parameters() if isinstance(target, nn.Module) else target)
    source = list(source.parameters() if isinstance(source, nn.Module) else source)
    if len(target) != len(source):
        raise ValueError(f"target has {len(target)} tensors, source {len(source)}")
    with torch.no_grad():  # t + tau (s - t) = tau s + (1 - tau) t, one fused call for all
        torch._foreach_lerp_(target, source, float(tau))


def ddpg_target(
    reward: torch.Tensor, terminated: torch.Tensor, gamma: float, next_q: torch.Tensor
) -> torch.Tensor:
    """Eq. 5.4: ``Q_hat = r + gamma (1 - terminated) Q_phi'(s', pi_theta'(s'))``, shape ``(B,)``.

    ``next_q`` (B,) is the target critic's value of the target actor's next action. A time-limit
    truncation still bootstraps: only ``terminated`` switches the bootstrap off.
    """
    return reward + gamma * (1.0 - terminated) * next_q


def critic_loss(q_value: torch.Tensor, q_target: torch.Tensor) -> torch.Tensor:
    """Eq. 5.2: the mean squared Bellman error ``mean_t (Q_phi(s_t, a_t) - Q_hat_t)^2``.

    ``q_value`` (B,); ``q_target`` (B,) is a label (no gradient flows into it).
    """
    return (q_value - q_target.detach()).square().mean()


def actor_loss(q_value: torch.Tensor) -> torch.Tensor:
    """Eq. 5.3 as a loss: ``-mean_t Q_phi(s_t, pi_theta(s_t))``; descending it climbs Q."""
    return -q_value.mean()


@contextlib.contextmanager
def frozen(module: nn.Module):
    """Build the actor's loss through ``module`` with its weights out of the graph: the gradient
    still flows through the action into the actor, never into the critic (eq. 5.3)."""
    module.requires_grad_(False)
    try:
        yield module
    finally:
        module.requires_grad_(True)


class ScaledPolicy:
    """The deterministic policy for the env: one observation -> the actor's action, rescaled
    from ``[-1, 1]`` to the env's ``[low, high]``."""

    def __init__(self, act, low: np.ndarray, high: np.ndarray) -> None:
        self.act, self.low, self.high = act, low, high

    def normalized(self, obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.act(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()

    def to_env(self, action: np.ndarray) -> np.ndarray:
        return self.low + (action + 1.0) * 0.5 * (self.high - self.low)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.to_env(self.normalized(obs))


def replay_memory(c, obs_dim: int, action_dim: int, seed: int) -> ReplayBuffer:
    """The shared replay memory, storing actions in ``[-1, 1]`` (the actor's range)."""
    return ReplayBuffer(c.buffer_size, (obs_dim,), gamma=c.gamma, seed=seed,
                        action_shape=(action_dim,), action_dtype=np.float32)  # fmt: skip


def sample(memory: ReplayBuffer, batch_size: int) -> tuple[torch.Tensor, ...]:
    """``(obs, action, reward, next_obs, terminated)`` tensors, each ``(B, ...)``."""
    batch = memory.sample(batch_size)
    return tuple(torch.from_numpy(batch[k]) for k in BATCH_FIELDS)


BATCH_FIELDS = ("obs", "action", "reward", "next_obs", "terminated")


def check_box_env(env: gym.Env, algo: str) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(obs_dim, action_dim, low, high) of a Box-observation, bounded Box-action env."""
    if not isinstance(env.action_space, gym.spaces.Box):
        raise ValueError(f"{algo} needs a continuous (Box) action space, got {env.action_space}")
    if not isinstance(env.observation_space, gym.spaces.Box):
        raise ValueError(f"{algo} needs a Box observation space, got {env.observation_space}")
    low, high = env.action_space.low, env.action_space.high
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(f"{algo} needs a bounded action space, got {env.action_space}")
    obs_dim = int(np.prod(env.observation_space.shape))
    return obs_dim, int(np.prod(env.action_space.shape)), low, high


# ------------------------------------------------------------------------------ training
def train(
    env: EnvLike,
    config: Config | None = None,
    *,
    seed: int = 0,
    total_steps: int | None = None,
    callback=None,
    progress: bool = True,
) -> TrainResult:
    """Train DDPG (section 5.1); returns the best-evaluated deterministic policy."""
    c = config or Config()
    if total_steps is not None:
        c = dataclasses.replace(c, total_steps=int(total_steps))
    env_arg, env = env, make_env(env)
    obs_dim, action_dim, low, high = check_box_env(env, "DDPG")
    with seeded(seed, c.torch_threads) as streams:
        monitor = Monitor(
            "ddpg", env_arg, c.total_steps, EvalSettings.of(c),
            seed=seed, callback=callback, progress=progress,
        )  # fmt: skip
        actor = DeterministicActor(obs_dim, action_dim, c.hidden)  # actions in [-1, 1]
        critic = QCritic(obs_dim, action_dim, c.hidden)
        actor_target, critic_target = make_target(actor), make_target(critic)
        optimizer = torch.optim.Adam(
            [{"params": actor.parameters(), "lr": c.actor_lr},
             {"params": critic.parameters(), "lr": c.critic_lr}],
            fused=True,
        )  # fmt: skip
        online = [*actor.parameters(), *critic.parameters()]
        lagged = [*actor_target.parameters(), *critic_target.parameters()]
        memory = replay_memory(c, obs_dim, action_dim, streams.integer())
        rng = streams.generator()  # exploration noise and warm-up actions
        updates = 0
        kept_modules = [actor, critic]  # the critic is kept with its actor (lecture 5's Q plots)
        policy = ScaledPolicy(actor, low, high)
        try:
            obs, _ = env.reset(seed=seed)
            for step in range(1, c.total_steps + 1):
                # 1. roll-outs: the current policy plus Gaussian exploration noise
                if step <= c.learning_starts:
                    action = rng.uniform(-1.0, 1.0, action_dim).astype(np.float32)
                else:
                    noise = c.noise_std * rng.standard_normal(action_dim)
                    action = np.clip(policy.normalized(obs) + noise, -1.0, 1.0)
                next_obs, reward, terminated, truncated, _ = env.step(policy.to_env(action))
                memory.add(obs, action, reward, next_obs, terminated, truncated)
                monitor.track(reward, terminated or truncated, step)
                obs = next_obs  # easy to forget: else the agent acts on a stale state
                if terminated or truncated:
                    obs, _ = env.reset()
                trained = step > c.learning_starts and step % c.train_every == 0
                if trained:
                    updates += 1
                    losses = update(actor, critic, actor_target, critic_target, optimizer,
                                    sample(memory, c.batch_size), c.gamma)  # fmt: skip
                    polyak_update(lagged, online, c.tau)  # eq. 5.4's lagged networks follow
                    if updates % 200 == 1:  # a diagnostics sample every 200 updates
                        monitor.log(step, critic_loss=float(losses[0]), actor_loss=float(losses[1]))
                if (trained or step % 1000 == 0) and monitor.after_update(
                    step, policy, kept_modules
                ):
                    break
            kept = monitor.finish(step, policy, kept_modules)
        finally:
            env.close()
    saved = checkpoint("ddpg", c, actor, obs_dim, action_dim, low, high, critic)
    return TrainResult(policy, config=c, algo="ddpg", checkpoint=saved, **kept)


def make_target(module: nn.Module) -> nn.Module:
    """A lagged copy of ``module`` that no gradient reaches (eq. 5.4)."""
    import copy

    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


def update(actor, critic, actor_target, critic_target, optimizer, batch, gamma: float):
    """One gradient step on eqs. 5.2 and 5.3 together (one backward pass, one Adam step)."""
    obs, action, reward, next_obs, terminated = batch
    with torch.no_grad():  # the target is a label: no gradient into the lagged networks
        next_q = critic_target(next_obs, actor_target(next_obs))  # Q_phi'(s', pi_theta'(s'))
        q_target = ddpg_target(reward, terminated, gamma, next_q)
    loss_q = critic_loss(critic(obs, action), q_target)  # eq. 5.2
    with frozen(critic):  # eq. 5.3: the gradient reaches the actor through a, not the critic
        loss_pi = actor_loss(critic(obs, actor(obs)))
    optimizer.zero_grad(set_to_none=True)
    (loss_q + loss_pi).backward()
    optimizer.step()
    return loss_q.detach(), loss_pi.detach()


def checkpoint(algo, c, actor, obs_dim, action_dim, low, high, critic) -> dict:
    """What ``TrainResult.save`` writes: the actor (the policy) and, for analysis, its critic."""
    return {
        "critic_state_dict": critic.state_dict(),
        "algo": algo,
        "config": dataclasses.asdict(c),
        "dims": [obs_dim, action_dim],
        "low": torch.as_tensor(low),
        "high": torch.as_tensor(high),
        "state_dict": actor.state_dict(),
    }


def load(path) -> TrainResult:
    """Rebuild the policy saved by ``TrainResult.save``."""
    return load_deterministic(path, "ddpg", Config)


def load_deterministic(path, algo: str, config_class) -> TrainResult:
    """A saved deterministic actor (DDPG's or TD3's) back as a :class:`TrainResult`."""
    payload = load_checkpoint(path, algo)
    config = config_from_dict(config_class, payload["config"])
    actor = DeterministicActor(*payload["dims"], config.hidden)
    actor.load_state_dict(payload["state_dict"])
    policy = ScaledPolicy(actor, payload["low"].numpy(), payload["high"].numpy())
    return TrainResult(policy, payload.get("history", []), config, algo=algo,
                       checkpoint=payload, kept_step=payload.get("kept_step"))  # fmt: skip
