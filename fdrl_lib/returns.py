"""Returns and targets computed from sampled rewards: reward-to-go, n-step targets, GAE.

Every function takes one stream of steps ``(T,)`` or ``N`` streams side by side ``(T, N)``, time
first (the layout of :class:`fdrl_lib.buffers.RolloutBuffer`); a sum runs down one column and
never crosses into another env's column. Episode ends are given by two separate flags:
``terminated`` (a true terminal state: nothing to bootstrap from) and ``truncated`` (a time-limit
cut: the episode stops but the state still has a value, so a target bootstraps from it:
``bootstrap = 1 - terminated``). ``next_values[t] = V(s_{t+1})``; for a truncated step that is the
value of the episode's real final observation, not of the observation the env was reset to.

numpy arrays in give float64 numpy arrays out; torch tensors in give tensors out (the dtype and
device of ``rewards``), so a training loop can pass its buffer's tensors straight in. The
arithmetic is numpy either way (this module never imports torch itself), so no gradient flows
through a return or an advantage: they are targets, constants to the loss.
"""

from __future__ import annotations

import sys

import numpy as np


def _is_tensor(x) -> bool:
    return type(x).__module__.startswith("torch")


def _as_array(name: str, x, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``x`` as float64 numpy, shaped (T,) or (T, N) (or exactly ``shape`` when given)."""
    if _is_tensor(x):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if shape is None and (arr.ndim not in (1, 2) or len(arr) == 0):
        raise ValueError(f"{name} must have shape (T,) or (T, N) with T >= 1, got {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} must have the shape of rewards {shape}, got {arr.shape}")
    return arr


def _like(out: np.ndarray, reference):
    """``out`` as the same kind of array as ``reference`` (a tensor on its device, or numpy)."""
    if not _is_tensor(reference):
        return out
    torch = sys.modules["torch"]  # already imported: reference is a tensor
    dtype = reference.dtype if reference.is_floating_point() else torch.get_default_dtype()
    return torch.as_tensor(out, dtype=dtype, device=reference.device)


def _check_gamma(gamma: float) -> None:
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")


def _flags(name: str, x, shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape) if x is None else _as_array(name, x, shape)


def _backward_sum(x: np.ndarray, carry: np.ndarray) -> np.ndarray:
    """``out[t] = x[t] + carry[t] * out[t + 1]`` with ``out[T] = 0``; columns stay apart."""
    out = np.zeros_like(x)
    running = np.zeros_like(x[0])
    for t in reversed(range(len(x))):
        running = x[t] + carry[t] * running
        out[t] = running
    return out


def discounted_returns(
    rewards,
    gamma: float,
    episode_ends=None,
    *,
    terminated=None,
    truncated=None,
    next_values=None,
):
    """Reward-to-go ``G_t = r_t + gamma r_{t+1} + ...`` to each episode's end, shaped like rewards.

    The sum restarts after every episode end and never crosses one. Where the stream stops without
    the episode having terminated (a ``truncated`` step, or the last step of a rollout cut at T)
    and ``next_values`` is given, ``G`` bootstraps: ``G_t = r_t + gamma V(s_{t+1})``. Without
    ``next_values`` nothing is bootstrapped (Monte-Carlo reward-to-go of complete episodes).

    ``episode_ends`` (the older form) marks steps after which an episode ended, treated like
    ``terminated``; pass ``terminated`` and ``truncated`` instead to keep them apart.
    """
    _check_gamma(gamma)
    r = _as_array("rewards", rewards)
    if episode_ends is not None:
        if terminated is not None or truncated is not None:
            raise ValueError("give either episode_ends or terminated/truncated, not both")
        terminated = episode_ends
    term, trunc = _flags("terminated", terminated, r.shape), _flags("truncated", truncated, r.shape)
    nv = _flags("next_values", next_values, r.shape)
    # continue[t] = 1 where the sum runs on into step t + 1 of the same episode
    cont = 1.0 - np.maximum(term, trunc)
    cont[-1] = 0.0  # the rollout is cut after its last step
    x = r + gamma * (1.0 - term) * (1.0 - cont) * nv  # bootstrap where the sum stops early
    return _like(_backward_sum(x, gamma * cont), rewards)


def gae(rewards, values, next_values, terminated, truncated, gamma: float, lam: float):
    """Generalised advantage estimates ``A_t = sum_l (gamma lam)^l delta_{t+l}``, like rewards.

    ``delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)``; the sum stops at every
    episode end (terminated or truncated) and at the end of the rollout. ``next_values[t] =
    V(s_{t+1})`` is given per step, so a truncated step and the rollout's last step still
    bootstrap from their real next state. ``lam = 0`` gives the one-step TD error ``delta_t``,
    ``lam = 1`` the Monte-Carlo advantage ``G_t - V(s_t)`` (bootstrapped at cuts).
    """
    return _like(_gae(rewards, values, next_values, terminated, truncated, gamma, lam), rewards)


def lambda_returns(rewards, values, next_values, terminated, truncated, gamma: float, lam: float):
    """TD(lambda) targets ``G^lambda_t = A^GAE_t + V(s_t)``, shaped like rewards.

    The value-function target that goes with :func:`gae` (same arguments, same episode handling).
    """
    advantages = _gae(rewards, values, next_values, terminated, truncated, gamma, lam)
    return _like(advantages + _as_array("values", values), rewards)


def _gae(rewards, values, next_values, terminated, truncated, gamma, lam) -> np.ndarray:
    _check_gamma(gamma)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    r = _as_array("rewards", rewards)
    v, next_v = _as_array("values", values, r.shape), _as_array("next_values", next_values, r.shape)
    term = _as_array("terminated", terminated, r.shape)
    ends = np.maximum(term, _as_array("truncated", truncated, r.shape))
    deltas = r + gamma * (1.0 - term) * next_v - v  # a time-limit cut still bootstraps
    return _backward_sum(deltas, gamma * lam * (1.0 - ends))  # the sum stops at episode ends


def n_step_window(rewards, gamma: float) -> tuple[float, float]:
    """One window of k rewards: ``(sum_{i<k} gamma^i r_i, gamma^k)``.

    The n-step return of the window's first step before bootstrapping, and the discount its
    bootstrap gets. :func:`n_step_targets` and the replay buffer's n-step transitions both use it.
    """
    total = 0.0
    for reward in reversed(rewards):
        total = float(reward) + gamma * total
    return total, gamma ** len(rewards)


def n_step_targets(rewards, terminated, truncated, gamma: float, n: int):
    """n-step return windows over one stream of steps ``(T,)`` (Rainbow's multi-step targets).

    For each step t the window runs over steps ``t .. t+k-1`` with ``k = min(n, steps left in the
    episode)``; the full target is ``returns[t] + discounts[t] * bootstrap[t] * max_a Q(obs at
    last_index[t] + 1)``.

    Returns ``(returns, discounts, bootstrap, last_index)``, each ``(T,)``: the discounted reward
    sum ``sum_{i<k} gamma^i r_{t+i}``, ``gamma^k``, ``1 - terminated`` of the window's last step,
    and that last step's index (its ``next_obs`` is where the target bootstraps).
    """
    _check_gamma(gamma)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rewards = _as_array("rewards", rewards)
    if rewards.ndim != 1:
        raise ValueError(f"rewards must have shape (T,), got {rewards.shape}")
    T = len(rewards)
    terminated = _as_array("terminated", terminated, (T,))
    truncated = _as_array("truncated", truncated, (T,))
    ends = np.maximum(terminated, truncated)
    returns, discounts = np.zeros(T), np.ones(T)
    bootstrap, last_index = np.ones(T), np.zeros(T, dtype=np.int64)
    for t in range(T):
        i = t  # the window's last step: n steps on, or the episode's end, or the stream's end
        while i - t + 1 < n and not ends[i] and i < T - 1:
            i += 1
        returns[t], discounts[t] = n_step_window(rewards[t : i + 1], gamma)
        bootstrap[t], last_index[t] = 1.0 - terminated[i], i
    return returns, discounts, bootstrap, last_index
