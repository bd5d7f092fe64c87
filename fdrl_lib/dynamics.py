"""Learned dynamics for model-based RL (lecture 6): the pieces ``mbrl``, ``me_trpo`` and
``mb_mpo`` share.

- :func:`pendulum_reward`: Pendulum-v1's reward as a batched closed form. Imagined roll-outs
  need the reward of imagined states; Gymnasium exposes no batched reward, so the model-based
  algorithms support the envs listed in :data:`TASKS` (the reward is known, not learned).
  :func:`pendulum_dynamics` is the true next observation, for tests and the lecture.
- :class:`DynamicsEnsemble` and :func:`fit_dynamics`: K networks that predict the *change* of
  the state, ``s' = s + f(s, a)`` (section 6.1), with inputs and targets normalised, each
  member on its own bootstrap sample and initialisation, trained with held-out early stopping.
  K = 1 is the single model of the vanilla loop.
- :func:`disagreement`: how far the members' predictions spread (where the data ran out).
- :class:`ModelEnv` and :func:`imagine`: roll-outs in the model that come back as the very
  :class:`~fdrl_lib.buffers.RolloutBuffer` a real roll-out fills, so the policy update cannot
  tell them apart. :func:`member_dynamics` keeps one model per imagined episode (ME-TRPO's
  validation, MB-MPO); :func:`random_member_dynamics` draws one per step (ME-TRPO's
  fictitious samples).

Pendulum's observation is ``(cos theta, sin theta, theta_dot)``. The model predicts
``(delta theta, delta theta_dot)`` and the next observation is rebuilt from the new angle: the
cosine and sine then stay on the unit circle over a long imagined roll-out, where predicting
three free numbers lets them drift off it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fdrl_lib.buffers import RolloutBuffer, collect_rollout
from fdrl_lib.nn import EnsembleMLP

Tensor = torch.Tensor


# --------------------------------------------------------------------- known rewards and dynamics
PENDULUM_MAX_TORQUE = 2.0
PENDULUM_MAX_SPEED = 8.0
PENDULUM_DT = 0.05


def pendulum_reward(obs: Tensor, action: Tensor) -> Tensor:
    """Pendulum-v1's reward ``-(theta^2 + 0.1 theta_dot^2 + 0.001 u^2)``, batched: ``(B,)``.

    ``obs`` ``(B, 3)`` = ``(cos theta, sin theta, theta_dot)`` before the step; ``action``
    ``(B, 1)`` or ``(B,)``, clipped to the torque limit as the env clips it. ``theta`` in
    ``[-pi, pi]`` is recovered with ``atan2``, the env's ``angle_normalize``.
    """
    theta = torch.atan2(obs[..., 1], obs[..., 0])
    u = action.reshape(obs.shape[:-1]).clamp(-PENDULUM_MAX_TORQUE, PENDULUM_MAX_TORQUE)
    return -(theta**2 + 0.1 * obs[..., 2] ** 2 + 0.001 * u**2)


def pendulum_dynamics(obs: Tensor, action: Tensor) -> Tensor:
    """Pendulum-v1's true next observation, batched ``(B, 3)`` (g = 10, m = l = 1, dt = 0.05).

    For tests and the lecture: the learned model stands in for this function.
    """
    theta, theta_dot = torch.atan2(obs[..., 1], obs[..., 0]), obs[..., 2]
    u = action.reshape(obs.shape[:-1]).clamp(-PENDULUM_MAX_TORQUE, PENDULUM_MAX_TORQUE)
    theta_dot = theta_dot + (15.0 * torch.sin(theta) + 3.0 * u) * PENDULUM_DT  # 3g/2l, 3/(ml^2)
    theta_dot = theta_dot.clamp(-PENDULUM_MAX_SPEED, PENDULUM_MAX_SPEED)
    theta = theta + theta_dot * PENDULUM_DT
    return torch.stack([torch.cos(theta), torch.sin(theta), theta_dot], dim=-1)


def pendulum_delta(obs: Tensor, next_obs: Tensor) -> Tensor:
    """What the model learns for Pendulum: ``(delta theta, delta theta_dot)``, ``(B, 2)``.

    ``delta theta`` is wrapped to ``[-pi, pi)``: a step across ``theta = pi`` is a small turn.
    """
    theta = torch.atan2(obs[..., 1], obs[..., 0])
    next_theta = torch.atan2(next_obs[..., 1], next_obs[..., 0])
    turn = torch.remainder(next_theta - theta + math.pi, 2 * math.pi) - math.pi
    return torch.stack([turn, next_obs[..., 2] - obs[..., 2]], dim=-1)


def pendulum_apply(obs: Tensor, delta: Tensor) -> Tensor:
    """Inverse of :func:`pendulum_delta`: the next observation, back on the unit circle."""
    theta = torch.atan2(obs[..., 1], obs[..., 0]) + delta[..., 0]
    return torch.stack([torch.cos(theta), torch.sin(theta), obs[..., 2] + delta[..., 1]], dim=-1)


def residual_delta(obs: Tensor, next_obs: Tensor) -> Tensor:
    """The generic target: the state change ``s' - s`` (a model of the residual)."""
    return next_obs - obs


def residual_apply(obs: Tensor, delta: Tensor) -> Tensor:
    """``s' = s + delta``: the residual added back to the state it started from."""
    return obs + delta


@dataclass(frozen=True)
class Task:
    """What imagination needs to know about an env beyond the learned dynamics."""

    reward: Callable[[Tensor, Tensor], Tensor]  # (obs, action) -> (B,) the known reward
    to_delta: Callable[[Tensor, Tensor], Tensor]  # (obs, next_obs) -> the model's target
    from_delta: Callable[[Tensor, Tensor], Tensor]  # (obs, delta) -> next_obs
    delta_dim: int  # width of the model's target
    horizon: int  # the env's episode length (its time limit)


TASKS = {
    "Pendulum-v1": Task(pendulum_reward, pendulum_delta, pendulum_apply, delta_dim=2, horizon=200)
}


def task_of(env_id: str) -> Task:
    """The :class:`Task` of a Gymnasium id; a clear error for envs without a known reward."""
    if env_id not in TASKS:
        raise ValueError(
            f"model-based training needs the env's reward as a batched function; known for "
            f"{sorted(TASKS)}, not for {env_id!r}"
        )
    return TASKS[env_id]


# ------------------------------------------------------------------------ the dynamics ensemble
class DynamicsEnsemble(nn.Module):
    """K dynamics models ``delta = f_phi_k(s, a)`` evaluated together, with normalisation.

    Inputs ``[s, a]`` are standardised with the data's mean and std and the network predicts the
    standardised target, which :meth:`forward` maps back: ``(K, B, delta_dim)``. The
    statistics are buffers (saved with the weights) set by :func:`fit_dynamics`.
    ``to_delta`` / ``from_delta`` say what the target is (default: the residual ``s' - s``).
    """

    def __init__(
        self,
        K: int,
        obs_dim: int,
        action_dim: int,
        delta_dim: int | None = None,
        hidden: Sequence[int] = (200, 200),
        to_delta: Callable[[Tensor, Tensor], Tensor] = residual_delta,
        from_delta: Callable[[Tensor, Tensor], Tensor] = residual_apply,
    ) -> None:
        super().__init__()
        delta_dim = obs_dim if delta_dim is None else int(delta_dim)
        self.K, self.obs_dim, self.action_dim, self.delta_dim = K, obs_dim, action_dim, delta_dim
        self.net = EnsembleMLP(K, obs_dim + action_dim, delta_dim, tuple(hidden), nn.SiLU)
        self.to_delta, self.from_delta = to_delta, from_delta
        self.register_buffer("in_mean", torch.zeros(obs_dim + action_dim))
        self.register_buffer("in_std", torch.ones(obs_dim + action_dim))
        self.register_buffer("out_mean", torch.zeros(delta_dim))
        self.register_buffer("out_std", torch.ones(delta_dim))

    def inputs(self, obs: Tensor, action: Tensor) -> Tensor:
        """Standardised network input ``(..., obs_dim + action_dim)``."""
        action = action.reshape(*obs.shape[:-1], self.action_dim)
        return (torch.cat([obs, action], dim=-1) - self.in_mean) / self.in_std

    def forward(self, obs: Tensor, action: Tensor) -> Tensor:
        """Every member's predicted change, in the target's own units: ``(K, B, delta_dim)``."""
        return self.net(self.inputs(obs, action)) * self.out_std + self.out_mean

    def next_obs(self, obs: Tensor, action: Tensor, members: Tensor | None = None) -> Tensor:
        """Predicted next observations: ``(K, B, obs_dim)``, or ``(B, obs_dim)`` where row i
        uses member ``members[i]`` (a ``(B,)`` int tensor)."""
        delta = self(obs, action)  # (K, B, d)
        if members is not None:
            delta = delta[members, torch.arange(len(obs))]  # (B, d): row i from its own member
            return self.from_delta(obs, delta)
        return self.from_delta(obs.expand(self.K, *obs.shape), delta)


def disagreement(model: DynamicsEnsemble, obs: Tensor, action: Tensor) -> Tensor:
    """Spread of the members' predictions, ``(B,)``: the std over members of the standardised
    predicted change, averaged over its dimensions. Small where the data pinned the models
    down, large where it ran out (needs K >= 2)."""
    if model.K < 2:
        raise ValueError("disagreement needs an ensemble of at least 2 models")
    with torch.no_grad():
        delta = model(obs, action) / model.out_std  # (K, B, d), standardised
    return delta.std(dim=0).mean(dim=-1)


@dataclass(frozen=True)
class FitSettings:
    """How :func:`fit_dynamics` trains (every field has a default that fits Pendulum)."""

    lr: float = 1e-3  # Adam step size
    batch_size: int = 256  # transitions per gradient step, per member
    max_epochs: int = 200  # passes over the training split at most
    holdout: float = 0.2  # fraction of the data kept out for early stopping
    patience: int = 8  # stop after this many epochs without a held-out improvement
    weight_decay: float = 1e-5  # L2 on the weights (AdamW)
    bootstrap: bool = True  # each member trains on its own resample (with replacement)


def fit_dynamics(
    model: DynamicsEnsemble,
    obs,
    action,
    next_obs,
    rng: np.random.Generator | int = 0,
    settings: FitSettings | None = None,
) -> dict:
    """Fit every member to ``(obs, action) -> to_delta(obs, next_obs)`` by mean squared error.

    Inputs ``(B, obs_dim)``, ``(B, action_dim)`` (or ``(B,)``), ``(B, obs_dim)``. The statistics
    of inputs and targets are set from the data first. A shared held-out split (``holdout``)
    scores each member after every epoch; each member keeps its weights from its best held-out
    epoch, and training stops once no member improved for ``patience`` epochs. With
    ``bootstrap`` (and K >= 2) member k trains on its own resample of the training split.

    Returns ``{"train_loss", "holdout_loss" (per member, standardised MSE at the kept epoch),
    "epochs"}``.
    """
    s = settings or FitSettings()
    rng = np.random.default_rng(rng)
    obs, next_obs = _float(obs), _float(next_obs)
    action = _float(action).reshape(len(obs), model.action_dim)
    if not (len(obs) == len(action) == len(next_obs)) or obs.shape[-1] != model.obs_dim:
        raise ValueError(
            f"obs, action, next_obs must be (B, {model.obs_dim}), (B, {model.action_dim}), "
            f"(B, {model.obs_dim}); got {tuple(obs.shape)}, {tuple(action.shape)}, "
            f"{tuple(next_obs.shape)}"
        )
    if len(obs) < 2:
        raise ValueError(f"fit_dynamics needs at least 2 transitions, got {len(obs)}")
    target = model.to_delta(obs, next_obs)  # (B, d)
    x = torch.cat([obs, action], dim=-1)
    with torch.no_grad():  # normalisation from the data (std floored: a constant input stays 0)
        model.in_mean.copy_(x.mean(0))
        model.in_std.copy_(x.std(0).clamp_min(1e-6))
        model.out_mean.copy_(target.mean(0))
        model.out_std.copy_(target.std(0).clamp_min(1e-6))
    x = (x - model.in_mean) / model.in_std
    y = (target - model.out_mean) / model.out_std

    order = rng.permutation(len(x))
    n_hold = int(round(s.holdout * len(x))) if len(x) >= 5 else 0
    hold, train = order[:n_hold], order[n_hold:]
    K = model.K
    if s.bootstrap and K > 1:  # (K, n): member k's resample of the training split
        members = train[rng.integers(len(train), size=(K, len(train)))]
    else:
        members = np.broadcast_to(train, (K, len(train)))
    optimizer = torch.optim.AdamW(model.net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    params = list(model.net.parameters())
    best_loss = torch.full((K,), math.inf)
    best = [p.detach().clone() for p in params]
    idle, epochs, train_loss = 0, 0, torch.zeros(K)
    for epoch in range(1, s.max_epochs + 1):
        epochs = epoch
        shuffled = np.take_along_axis(members, rng.random(members.shape).argsort(1), axis=1)
        for start in range(0, shuffled.shape[1], s.batch_size):
            index = torch.from_numpy(shuffled[:, start : start + s.batch_size])  # (K, b)
            per_member = ((model.net(x[index]) - y[index]) ** 2).mean(dim=(1, 2))  # (K,)
            optimizer.zero_grad(set_to_none=True)
            per_member.sum().backward()  # members share no weights: each gets its own gradient
            optimizer.step()
            train_loss = per_member.detach()
        scored = x[hold] if n_hold else x[train]
        with torch.no_grad():
            target_scored = y[hold] if n_hold else y[train]
            loss = ((model.net(scored) - target_scored) ** 2).mean(dim=(1, 2))  # (K,)
        improved = loss < best_loss - 1e-6 * best_loss.abs().clamp_max(1e6)
        if improved.any():
            idle = 0
            best_loss = torch.where(improved, loss, best_loss)
            for p, b in zip(params, best, strict=True):  # copy the improved members' slices
                b[improved] = p.detach()[improved]
        else:
            idle += 1
            if idle >= s.patience:
                break
    with torch.no_grad():
        for p, b in zip(params, best, strict=True):
            p.copy_(b)
    return {"train_loss": train_loss.tolist(), "holdout_loss": best_loss.tolist(), "epochs": epochs}


def _float(x) -> Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x, dtype=torch.float32)


# ------------------------------------------------------------------------------- imagination
Dynamics = Callable[[Tensor, Tensor], Tensor]  # (obs (N, d), action (N, a)) -> next_obs (N, d)


def member_dynamics(model: DynamicsEnsemble, members) -> Dynamics:
    """The dynamics of an ensemble where imagined episode i always uses member ``members[i]``.

    An episode keeps its model from start to end: that is what makes its return an estimate of
    the policy's return *under that model* (ME-TRPO's validation, MB-MPO's ``T'_k``).
    """
    members = torch.as_tensor(members, dtype=torch.int64)
    if members.min() < 0 or members.max() >= model.K:
        raise ValueError(f"members must be in [0, {model.K}), got {members.tolist()}")
    return lambda obs, action: model.next_obs(obs, action, members)


def random_member_dynamics(model: DynamicsEnsemble, rng: np.random.Generator) -> Dynamics:
    """The dynamics of an ensemble where every step of every episode draws a member at random
    (ME-TRPO's fictitious samples: the policy cannot tune itself to one model's errors)."""

    def dynamics(obs: Tensor, action: Tensor) -> Tensor:
        members = torch.from_numpy(rng.integers(model.K, size=len(obs)))
        return model.next_obs(obs, action, members)

    return dynamics


class ModelEnv:
    """N imagined episodes of ``horizon`` steps from ``start_obs``, as a vector env.

    It has what :func:`~fdrl_lib.buffers.collect_rollout` reads from a real vector env:
    ``num_envs``, ``single_action_space`` (its bounds clip the actions, as the real env clips
    them), ``single_observation_space`` and ``step(actions) -> (obs, reward, terminated,
    truncated, infos)``. Predictions are clipped to ``observation_space`` (a model can
    extrapolate to speeds the real system cannot reach), with the same-step autoreset of
    :func:`~fdrl_lib.envs.make_vec_env`
    (after the last step the returned observation is the start again and the real last one is in
    ``infos["final_obs"]``). ``reward(obs, action)`` is the known reward. Nothing terminates
    (Pendulum never does).
    """

    def __init__(
        self,
        dynamics: Dynamics,
        reward: Callable[[Tensor, Tensor], Tensor],
        start_obs,
        horizon: int,
        action_space,
        observation_space=None,
    ) -> None:
        import gymnasium as gym

        self.dynamics, self.reward, self.horizon = dynamics, reward, int(horizon)
        self.start = _float(start_obs)  # (N, obs_dim)
        if self.start.dim() != 2 or self.horizon < 1:
            raise ValueError(
                f"start_obs must be (N, obs_dim) and horizon >= 1, got "
                f"{tuple(self.start.shape)} and {horizon}"
            )
        self.num_envs = len(self.start)
        self.single_action_space = action_space
        self.single_observation_space = observation_space or gym.spaces.Box(
            -np.inf, np.inf, self.start.shape[1:], np.float32
        )
        box = self.single_observation_space  # predictions stay inside the real obs bounds
        self.low, self.high = _float(box.low), _float(box.high)
        self.obs, self.t = self.start.clone(), 0

    def reset(self, seed: int | None = None):
        self.obs, self.t = self.start.clone(), 0
        return self.obs.numpy().copy(), {}

    def step(self, actions):
        action = _float(actions).reshape(self.num_envs, -1)
        with torch.no_grad():
            reward = self.reward(self.obs, action)  # (N,) r(s_t, a_t), known
            next_obs = self.dynamics(self.obs, action)  # (N, obs_dim) s_{t+1} = f^(s_t, a_t)
            next_obs = torch.maximum(torch.minimum(next_obs, self.high), self.low)
        self.t += 1
        done = self.t >= self.horizon
        infos = {}
        if done:  # same-step autoreset, as make_vec_env: the real last obs goes in infos
            final = next_obs.numpy().copy()
            infos = {"final_obs": final, "_final_obs": np.ones(self.num_envs, dtype=bool)}
            next_obs, self.t = self.start.clone(), 0
        self.obs = next_obs
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.full(self.num_envs, done)
        return (
            next_obs.numpy().copy(),
            reward.numpy().astype(np.float64),
            terminated,
            truncated,
            infos,
        )


def imagine(
    dynamics: Dynamics,
    reward: Callable[[Tensor, Tensor], Tensor],
    act,
    start_obs,
    horizon: int,
    action_space,
    value_fn=None,
    observation_space=None,
) -> RolloutBuffer:
    """Roll ``act`` out for ``horizon`` steps in ``dynamics`` from every start in ``start_obs``.

    Returns the :class:`~fdrl_lib.buffers.RolloutBuffer` ``(T=horizon, N=len(start_obs))`` that
    :func:`~fdrl_lib.buffers.collect_rollout` fills from a real vector env (observations,
    unclipped actions, rewards, ``truncated`` at the horizon, values, log-probs, ``next_value``
    bootstrapping from the last imagined state): the policy update takes it as it takes real
    data. ``act(obs) -> (action, log_prob)`` as for ``collect_rollout``; ``action_space`` is the
    real env's (its bounds clip the actions the model sees), ``observation_space`` too (its bounds
    clip the predicted observations; None: no bounds).
    """
    model_env = ModelEnv(dynamics, reward, start_obs, horizon, action_space, observation_space)
    buffer = RolloutBuffer.for_env(model_env, horizon)
    collect_rollout(model_env, act, buffer, model_env.start.numpy(), value_fn)
    return buffer
