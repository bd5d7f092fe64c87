"""Vanilla policy gradient: the likelihood-ratio gradient with reward-to-go and a baseline.

Lecture 3, Algorithm 4. The gradient estimate is eq. 3.27,
``g = 1/m sum_i sum_t grad log pi(a_t | s_t) (G_t - b(s_t))`` with the reward-to-go
``G_t = sum_{k >= t} gamma^(k-t) r_k``; :func:`policy_gradient_surrogate` is the function whose
gradient it is. Each baseline of section 3.4 is an option: none, the constant average return
(eq. 3.29), the optimal constant (eq. 3.30), the time-dependent average (eq. 3.31) and the
state-dependent value ``V_phi(s)`` (eq. 3.32), fitted by Monte Carlo regression (eq. 3.34) or by
bootstrapping with a pull towards the previous parameters (eq. 3.36). Discrete actions use a
softmax policy (``nn.CategoricalPolicy``), continuous ones a Gaussian (``nn.GaussianPolicy``).

A baseline computed from a batch is used on the *next* batch (Algorithm 4 re-fits it after the
advantages are formed): a baseline that saw the very returns it is subtracted from would bias the
estimate by O(1/m).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from fdrl_lib.buffers import RolloutBuffer, collect_rollout
from fdrl_lib.envs import EnvLike, make_vec_env
from fdrl_lib.nn import CategoricalPolicy, GaussianPolicy, ValueNetwork
from fdrl_lib.returns import discounted_returns
from fdrl_lib.training import (
    EvalSettings,
    Monitor,
    TrainResult,
    check_config,
    config_from_dict,
    load_checkpoint,
    seeded,
)

BASELINES = ("none", "constant", "optimal", "time", "value")
VALUE_FITS = ("monte_carlo", "bootstrap")


@dataclass(frozen=True)
class Config:
    total_steps: int = 200_000  # env steps to train for
    num_envs: int = 8  # envs stepped side by side (one batch = num_envs * rollout_steps steps)
    rollout_steps: int = 256  # steps per env per batch of trajectories
    hidden: tuple[int, ...] = (64, 64)  # hidden widths of the policy (and value) network
    lr: float = 1e-2  # Adam step size of the policy (one step per batch: Algorithm 4)
    gamma: float = 0.99  # discount in the reward-to-go R_t (Algorithm 4)
    baseline: str = "value"  # "none", "constant" (3.29), "optimal" (3.30), "time" (3.31), "value"
    value_fit: str = "monte_carlo"  # fit V_phi by regression on R_t (3.34) or "bootstrap" (3.36)
    value_lr: float = 1e-2  # Adam step size of the value network
    value_steps: int = 20  # gradient steps of each value re-fit
    value_reg: float = 0.0  # lambda of eq. 3.36: pull phi towards the previous fit's phi_i
    scale_advantages: bool = True  # divide advantages by their batch std (a step size only)
    torch_threads: int = 1  # small networks run fastest on one thread
    eval_every: int = 10_000  # env steps between evaluations; the best-evaluated policy is kept
    eval_episodes: int = 10  # episodes per evaluation
    target_return: float | None = 500.0  # stop at a perfect evaluation (None: the env's 475)
    stop_at_target: bool = True  # False: use the whole budget (still keeping the best policy)

    def __post_init__(self) -> None:
        check_config(
            self,
            positive=(
                "total_steps", "num_envs", "rollout_steps", "lr", "value_lr", "value_steps",
                "torch_threads", "eval_every", "eval_episodes",
            ),
            non_negative=("value_reg",),
            unit=("gamma",),
        )  # fmt: skip
        if self.baseline not in BASELINES:
            raise ValueError(f"Config.baseline must be one of {BASELINES}, got {self.baseline!r}")
        if self.value_fit not in VALUE_FITS:
            raise ValueError(
                f"Config.value_fit must be one of {VALUE_FITS}, got {self.value_fit!r}"
            )


# ------------------------------------------------------------------------------ the math
def policy_gradient_surrogate(
    log_prob: torch.Tensor, advantage: torch.Tensor, episodes: int | None = None
) -> torch.Tensor:
    """The scalar whose gradient is the policy-gradient estimate (eq. 3.27 / 3.45).

    ``sum_j log pi(a_j | s_j) A_j / m`` over every sampled step j: ``log_prob`` (any shape) carries
    the gradient, ``advantage`` (same shape; ``G_t - b(s_t)`` or any advantage estimate) is a
    constant weight and never differentiated. ``episodes = m`` gives eq. 3.27 exactly (a sum over
    time, a mean over trajectories); ``None`` divides by the number of steps instead (the same
    direction, a step size that does not grow with episode length). Ascend it, or descend
    ``-policy_gradient_surrogate(...)``: the sign is the most common bug.
    """
    if log_prob.shape != advantage.shape:
        raise ValueError(
            f"log_prob and advantage must have the same shape, got {tuple(log_prob.shape)} "
            f"and {tuple(advantage.shape)}"
        )
    total = (log_prob * advantage.detach()).sum()
    if episodes is None:
        return total / max(1, log_prob.numel())
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    return total / episodes


def constant_baseline(episode_returns: torch.Tensor) -> torch.Tensor:
    """``b = 1/m sum_i R(tau_i)``: the average return of a batch of episodes (eq. 3.29)."""
    if episode_returns.numel() == 0:
        raise ValueError("constant_baseline needs at least one episode return")
    return episode_returns.float().mean()


def optimal_constant_baseline(scores: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """The variance-minimising constant ``b = sum_i |s_i|^2 R_i / sum_i |s_i|^2`` (eq. 3.30).

    ``scores`` (m, D) are the score vectors ``s_i = grad_theta log P(tau_i; theta)`` and
    ``returns`` (m,) the returns they multiply. The estimator ``s (R - b)`` has total variance
    ``E[|s|^2 (R - b)^2] - |g|^2``, a parabola in ``b`` whose minimum is this ratio: returns of
    trajectories with large scores (those the gradient is most sensitive to) count more.
    """
    if scores.ndim != 2 or returns.shape != scores.shape[:1]:
        raise ValueError(
            f"scores must be (m, D) and returns (m,), got {tuple(scores.shape)} and "
            f"{tuple(returns.shape)}"
        )
    weight = scores.pow(2).sum(1)  # (m,) |s_i|^2
    if float(weight.sum()) == 0.0:  # every score zero: any b gives the same (zero) estimate
        return returns.float().mean()
    return (weight * returns).sum() / weight.sum()


def time_baseline(returns: torch.Tensor, timestep: torch.Tensor, horizon: int) -> torch.Tensor:
    """``b_t = average reward-to-go at time t`` over the episodes that reach t (eq. 3.31).

    ``returns`` and ``timestep`` are flat (B,): each sample's reward-to-go ``G_t`` and its time
    index within its episode. Returns (horizon,); a time no sample reached gets the nearest
    earlier time's value (0 when there is none).
    """
    if returns.shape != timestep.shape or returns.ndim != 1:
        raise ValueError(
            f"returns and timestep must both be (B,), got {tuple(returns.shape)}, "
            f"{tuple(timestep.shape)}"
        )
    index = timestep.long().clamp(0, horizon - 1)
    total = torch.zeros(horizon).index_add_(0, index, returns.float())
    count = torch.zeros(horizon).index_add_(0, index, torch.ones_like(returns, dtype=torch.float))
    b = torch.zeros(horizon)
    last = 0.0
    for t in range(horizon):  # fill unseen times forward (long episodes are rare, not absent)
        last = float(total[t] / count[t]) if count[t] > 0 else last
        b[t] = last
    return b


def monte_carlo_value_loss(value: torch.Tensor, reward_to_go: torch.Tensor) -> torch.Tensor:
    """Regression of ``V_phi(s_t)`` on the sampled reward-to-go (eq. 3.34): ``mean (V - G)^2``.

    The notes sum over time and average over episodes; the mean over samples has the same
    minimiser and a step size that does not depend on episode length.
    """
    if value.shape != reward_to_go.shape:
        raise ValueError(
            f"value and reward_to_go must have the same shape, got {tuple(value.shape)} and "
            f"{tuple(reward_to_go.shape)}"
        )
    return (value - reward_to_go.detach()).pow(2).mean()


def bootstrap_target(
    reward: torch.Tensor, next_value: torch.Tensor, terminated: torch.Tensor, gamma: float
) -> torch.Tensor:
    """The one-step target ``r + gamma (1 - terminated) V_phi_i(s')`` of eqs. 3.36 / 3.44.

    ``next_value`` comes from the previous parameters ``phi_i`` (no gradient). A time-limit
    truncation still bootstraps: only ``terminated`` switches the next value off.
    """
    return (reward + gamma * (1.0 - terminated) * next_value).detach()


def bootstrap_value_loss(
    value: torch.Tensor,
    target: torch.Tensor,
    params: list[torch.Tensor] | None = None,
    old_params: list[torch.Tensor] | None = None,
    reg: float = 0.0,
) -> torch.Tensor:
    """Fitted value iteration with a trust term (eq. 3.36):
    ``mean (target - V_phi(s))^2 + reg * |phi - phi_i|^2``.

    ``params`` are ``phi`` (with gradient), ``old_params`` the ``phi_i`` the target was computed
    with; the penalty keeps one fit from moving far from the previous value function, since its
    targets are themselves only estimates.
    """
    if value.shape != target.shape:
        raise ValueError(
            f"value and target must have the same shape, got {tuple(value.shape)} and "
            f"{tuple(target.shape)}"
        )
    loss = (target.detach() - value).pow(2).mean()
    if reg > 0.0:
        if params is None or old_params is None:
            raise ValueError("reg > 0 needs params and old_params (phi and phi_i)")
        pairs = zip(params, old_params, strict=True)
        loss = loss + reg * sum((p - q.detach()).pow(2).sum() for p, q in pairs)
    return loss


# ---------------------------------------------------------------------- networks, scores
def policy_kwargs(observation_space, action_space) -> dict:
    """What :func:`make_policy` needs to rebuild a policy for these spaces (plain values)."""
    if not isinstance(observation_space, gym.spaces.Box):
        raise ValueError(f"needs a Box observation space, got {observation_space}")
    obs_dim = int(np.prod(observation_space.shape))
    if isinstance(action_space, gym.spaces.Discrete):
        return dict(obs_dim=obs_dim, actions=int(action_space.n), discrete=True)
    if isinstance(action_space, gym.spaces.Box):
        return dict(obs_dim=obs_dim, actions=int(np.prod(action_space.shape)), discrete=False)
    raise ValueError(f"needs a Discrete or Box action space, got {action_space}")


def make_policy(obs_dim: int, actions: int, discrete: bool, hidden) -> torch.nn.Module:
    """A softmax policy for ``Discrete`` actions, a Gaussian one for ``Box`` actions."""
    policy = CategoricalPolicy if discrete else GaussianPolicy
    return policy(obs_dim, actions, tuple(hidden))


def sampler(actor: torch.nn.Module):
    """``act(obs) -> (action, log_prob)`` for :func:`fdrl_lib.buffers.collect_rollout`."""

    def act(obs):
        distribution = actor(obs)
        action = distribution.sample()
        return action, distribution.log_prob(action)

    return act


def score_norms(actor: torch.nn.Module, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """``|grad_theta log pi(a_j | s_j)|^2`` for every sample j, (B,): eq. 3.30's weights."""
    params = {k: v.detach() for k, v in actor.named_parameters()}

    def log_prob(p, o, a):
        return torch.func.functional_call(actor, p, (o[None],)).log_prob(a[None])[0]

    grads = torch.func.vmap(torch.func.grad(log_prob), in_dims=(None, 0, 0))(params, obs, action)
    return sum(g.flatten(1).pow(2).sum(1) for g in grads.values())


# ---------------------------------------------------------------------------- training
def train(
    env: EnvLike,
    config: Config | None = None,
    *,
    seed: int = 0,
    total_steps: int | None = None,
    callback=None,
    progress: bool = True,
) -> TrainResult:
    """Train vanilla policy gradient (Algorithm 4) with ``config.baseline``; see the module doc.

    Returns the best-evaluated policy (``result.kept_step`` says which step it is from).
    """
    config = config or Config()
    if total_steps is not None:
        config = dataclasses.replace(config, total_steps=int(total_steps))
    venv = make_vec_env(env, num_envs=config.num_envs, seed=seed)
    with seeded(seed, config.torch_threads):
        monitor = Monitor(
            "vpg", env, config.total_steps, EvalSettings.of(config),
            seed=seed, callback=callback, progress=progress,
        )  # fmt: skip
        try:
            return _train(venv, config, seed, monitor)
        finally:
            venv.close()


def _train(venv, c: Config, seed: int, monitor: Monitor) -> TrainResult:
    space, action_space = venv.single_observation_space, venv.single_action_space
    # Initialize policy network with weights theta; initialize baseline b
    net_kwargs = policy_kwargs(space, action_space)
    actor = make_policy(**net_kwargs, hidden=c.hidden)
    optimizer = torch.optim.Adam(actor.parameters(), lr=c.lr)
    critic = ValueNetwork(int(np.prod(space.shape)), tuple(c.hidden))
    value_optimizer = torch.optim.Adam(critic.parameters(), lr=c.value_lr)
    use_critic = c.baseline == "value"
    horizon = getattr(venv.spec, "max_episode_steps", None) or 1_000  # time baseline's length
    b_constant, b_time = torch.tensor(0.0), torch.zeros(horizon)  # b before any data: 0
    buffer = RolloutBuffer.for_env(venv, c.rollout_steps)
    timestep = np.zeros(c.num_envs, dtype=np.int64)  # t within each env's running episode
    obs, _ = venv.reset(seed=seed)
    step = 0
    while step < c.total_steps:
        # Collect a set of trajectories by running the current policy
        obs, _ = collect_rollout(venv, sampler(actor), buffer, obs, critic if use_critic else None)
        times = np.zeros((buffer.T, buffer.N), dtype=np.int64)  # (T, N)
        for t in range(buffer.T):
            times[t] = timestep
            done = (buffer.terminated[t] + buffer.truncated[t]).numpy() > 0
            timestep = np.where(done, 0, timestep + 1)
            step += buffer.N
            monitor.track(buffer.reward[t], done, step)
        # Return R_t = sum_t' gamma^(t'-t) r_t'; a cut episode bootstraps from V when there is one
        returns = discounted_returns(
            buffer.reward, c.gamma, terminated=buffer.terminated, truncated=buffer.truncated,
            next_values=buffer.next_value if use_critic else None,
        )  # fmt: skip
        # Advantage estimate A_t = R_t - b(s_t), with b fitted on earlier batches
        time_index = torch.from_numpy(times).clamp(max=horizon - 1)
        baseline = {
            "none": torch.zeros(()),
            "constant": b_constant,
            "optimal": b_constant,
            "time": b_time[time_index],
            "value": buffer.value,
        }[c.baseline]
        advantage = returns - baseline  # (T, N)
        if c.scale_advantages:
            advantage = advantage / (advantage.std() + 1e-8)
        # Re-fit the baseline on this batch (it serves the next one)
        flat_returns = returns.flatten()
        if c.baseline == "constant":
            starts = torch.from_numpy(times == 0)  # R_0 of the episodes that started here
            b_constant = constant_baseline(returns[starts] if starts.any() else flat_returns)
        elif c.baseline == "optimal":  # per-step form of eq. 3.30: weights |grad log pi|^2
            weights = score_norms(actor, buffer.obs.flatten(0, 1), buffer.action.flatten(0, 1))
            b_constant = optimal_constant_baseline(weights.sqrt()[:, None], flat_returns)
        elif c.baseline == "time":
            b_time = time_baseline(flat_returns, time_index.flatten(), horizon)
        elif use_critic:
            value_loss = fit_value(critic, value_optimizer, buffer, returns, c)
            monitor.log(step, value_loss=value_loss)
        # Update the policy with g = sum_t grad log pi(a_t | s_t) A_t (ascent: minimise -surrogate)
        log_prob = actor(buffer.obs.flatten(0, 1)).log_prob(buffer.action.flatten(0, 1))
        loss = -policy_gradient_surrogate(log_prob, advantage.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        monitor.log(step, policy_loss=loss.item())
        if monitor.after_update(step, actor.act, [actor]):
            break
    kept = monitor.finish(step, actor.act, [actor])
    checkpoint = {
        "algo": "vpg",
        "config": dataclasses.asdict(c),
        "net_kwargs": net_kwargs,
        "state_dict": actor.state_dict(),
    }
    return TrainResult(actor.act, config=c, algo="vpg", checkpoint=checkpoint, **kept)


def fit_value(critic, optimizer, buffer: RolloutBuffer, returns: torch.Tensor, c: Config) -> float:
    """Re-fit ``V_phi``: regression on ``R_t`` (eq. 3.34) or bootstrapped targets (eq. 3.36)."""
    obs = buffer.obs.flatten(0, 1)
    if c.value_fit == "monte_carlo":
        target = returns.flatten()
    else:  # targets from phi_i, the parameters before this fit (the buffer's next values)
        target = bootstrap_target(
            buffer.reward, buffer.next_value, buffer.terminated, c.gamma
        ).flatten()
    old_params = [p.detach().clone() for p in critic.parameters()]
    for _ in range(c.value_steps):
        value = critic(obs)
        if c.value_fit == "monte_carlo":
            loss = monte_carlo_value_loss(value, target)
        else:
            loss = bootstrap_value_loss(
                value, target, list(critic.parameters()), old_params, c.value_reg
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return loss.item()


def load(path) -> TrainResult:
    """Rebuild the policy saved by ``TrainResult.save``."""
    payload = load_checkpoint(path, "vpg")
    config = config_from_dict(Config, payload["config"])
    actor = make_policy(**payload["net_kwargs"], hidden=config.hidden)
    actor.load_state_dict(payload["state_dict"])
    return TrainResult(actor.act, payload.get("history", []), config, algo="vpg",
                       checkpoint=payload, kept_step=payload.get("kept_step"))  # fmt: skip
