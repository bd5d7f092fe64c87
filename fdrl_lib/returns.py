"""Returns and targets computed from sampled rewards: reward-to-go, n-step targets, GAE.

Pure numpy functions over one stream of steps, shape ``(T,)``. Episode ends are given by two
separate flags: ``terminated`` (a true terminal state: nothing to bootstrap from) and
``truncated`` (a time-limit cut: the episode stops but the state still has a value, so a target
bootstraps from it: ``bootstrap = 1 - terminated``).
"""

from __future__ import annotations

import numpy as np


def _as_1d(name: str, x, T: int | None = None) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1 or (T is not None and arr.shape[0] != T):
        want = "(T,)" if T is None else f"({T},)"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    return arr


def _check_gamma(gamma: float) -> None:
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")


def discounted_returns(rewards, gamma: float, episode_ends=None) -> np.ndarray:
    """Reward-to-go ``G_t = r_t + gamma r_{t+1} + ...`` up to each episode's end, shape ``(T,)``.

    ``episode_ends`` (T,) marks steps after which an episode ended (terminated or truncated);
    the sum restarts there. Without it the whole array is one episode.
    """
    _check_gamma(gamma)
    rewards = _as_1d("rewards", rewards)
    ends = (
        np.zeros_like(rewards)
        if episode_ends is None
        else _as_1d("ends", episode_ends, len(rewards))
    )
    out = np.zeros_like(rewards)
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running * (1.0 - ends[t])
        out[t] = running
    return out


def n_step_targets(rewards, terminated, truncated, gamma: float, n: int):
    """n-step return windows over a stream of steps (Rainbow's multi-step targets).

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
    rewards = _as_1d("rewards", rewards)
    T = len(rewards)
    terminated = _as_1d("terminated", terminated, T)
    truncated = _as_1d("truncated", truncated, T)
    ends = np.maximum(terminated, truncated)
    returns, discounts = np.zeros(T), np.ones(T)
    bootstrap, last_index = np.ones(T), np.zeros(T, dtype=np.int64)
    for t in range(T):
        total, discount, i = 0.0, 1.0, t
        while True:
            total += discount * rewards[i]
            discount *= gamma
            if i - t + 1 == n or ends[i] or i == T - 1:
                break
            i += 1
        returns[t], discounts[t] = total, discount
        bootstrap[t], last_index[t] = 1.0 - terminated[i], i
    return returns, discounts, bootstrap, last_index


def gae(
    rewards, values, next_values, terminated, truncated, gamma: float, lam: float
) -> np.ndarray:
    """Generalised advantage estimates ``A_t = sum_l (gamma lam)^l delta_{t+l}``, shape ``(T,)``.

    ``delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)``; the sum stops at every
    episode end (terminated or truncated). ``next_values[t] = V(s_{t+1})`` is given per step so a
    truncated step still bootstraps from its real next state.
    """
    _check_gamma(gamma)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    rewards = _as_1d("rewards", rewards)
    T = len(rewards)
    values, next_values = _as_1d("values", values, T), _as_1d("next_values", next_values, T)
    terminated, truncated = _as_1d("terminated", terminated, T), _as_1d("truncated", truncated, T)
    bootstrap = 1.0 - terminated  # a time-limit cut still bootstraps
    deltas = rewards + gamma * bootstrap * next_values - values
    ends = np.maximum(terminated, truncated)
    advantages = np.zeros(T)
    running = 0.0
    for t in reversed(range(T)):
        running = deltas[t] + gamma * lam * (1.0 - ends[t]) * running
        advantages[t] = running
    return advantages
