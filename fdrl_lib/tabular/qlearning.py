"""Tabular and linear approximate Q-learning (lecture 2, Algorithm 2, eqs. 2.4-2.10).

Q-learning replaces the expectation over next states in Q-value iteration (eq. 2.3) by the one
next state the environment samples: ``target = r + gamma max_a' Q(s', a')`` (eq. 2.4), and
mixes it into a running average ``Q(s, a) <- (1 - alpha) Q(s, a) + alpha target`` (eq. 2.5).
Approximate Q-learning (eq. 2.8) keeps ``Q_theta(s, a) = theta . f(s, a)`` instead of a table
and takes a gradient step on ``(Q_theta(s, a) - target)^2 / 2`` (eq. 2.10).

numpy only; gymnasium is imported when an env is made. Works on any env with Discrete
observations and actions: ``GridWorld.book().env()`` ("fdrl/GridWorld-v0"), FrozenLake,
CliffWalking, Taxi.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class QLearningResult:
    """What :func:`q_learning` and :func:`approximate_q_learning` return."""

    Q: np.ndarray  # (S, A) learned action values
    history: list[float]  # undiscounted return of each finished episode
    visits: np.ndarray  # (S, A) how often each pair was updated
    steps: int  # env steps taken
    episode_ends: list[int] = field(default_factory=list)  # step at which each episode ended
    Q_history: list[np.ndarray] = field(default_factory=list)  # snapshots every record_every
    theta: np.ndarray | None = None  # (d,) weights of approximate Q-learning (eq. 2.8)

    @property
    def policy(self) -> np.ndarray:
        """(S,) greedy actions ``argmax_a Q(s, a)`` (ties toward the lowest index)."""
        return self.Q.argmax(axis=1)

    @property
    def V(self) -> np.ndarray:
        """(S,) ``max_a Q(s, a)``."""
        return self.Q.max(axis=1)


def learning_rate(alpha: float, omega: float | None, visits: int) -> float:
    """Step size for the ``visits + 1``-th update of a pair.

    ``omega=None``: constant ``alpha`` (tracks, never converges exactly). Otherwise
    ``alpha / (1 + visits)^omega``; with ``1/2 < omega <= 1`` it meets eqs. 2.6-2.7:
    ``sum_t alpha_t = inf`` (enough power to correct bad samples) and ``sum_t alpha_t^2 < inf``
    (bounded variance).
    """
    return alpha if omega is None else alpha / (1.0 + visits) ** omega


def _greedy(q_values: np.ndarray, tie_break: int) -> int:
    """argmax_a of (A,) ``q_values``, ties broken at random (a fresh table is all ties)."""
    best = np.flatnonzero(q_values == q_values.max())
    return int(best[tie_break % len(best)])


def _check(alpha: float, epsilon: float, gamma: float, omega: float | None, steps: int) -> None:
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    if omega is not None and not 0.5 < omega <= 1.0:
        raise ValueError(f"omega must be in (0.5, 1] to satisfy eqs. 2.6-2.7, got {omega}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")


def _discrete_env(env: Any, max_episode_steps: int | None):
    """Make the env (an id, factory, instance or a GridWorld) and check its spaces are Discrete."""
    import gymnasium as gym

    from fdrl_lib.envs import make_env

    if hasattr(env, "mdp") and hasattr(env, "env") and callable(env.env):  # a GridWorld
        env = env.env(max_episode_steps=max_episode_steps or 100)
    elif isinstance(env, str) and max_episode_steps is not None:
        env = make_env(env, max_episode_steps=max_episode_steps)
    env = make_env(env)
    for name in ("observation_space", "action_space"):
        if not isinstance(getattr(env, name), gym.spaces.Discrete):
            raise ValueError(
                f"tabular Q-learning needs a Discrete {name}, got {getattr(env, name)}"
            )
    return env


def q_learning(
    env: Any,
    steps: int = 50_000,
    alpha: float = 0.1,
    epsilon: float = 0.1,
    gamma: float = 0.99,
    seed: int = 0,
    *,
    omega: float | None = None,
    Q0: float | np.ndarray = 0.0,
    max_episode_steps: int | None = None,
    record_every: int | None = None,
) -> QLearningResult:
    """Tabular Q-learning (Algorithm 2) with an epsilon-greedy behaviour policy.

    Args:
        env: a Gymnasium id, env, zero-argument factory, or a ``GridWorld`` (uses ``grid.env()``).
        steps: env steps N. alpha: step size (the first one when ``omega`` is set).
        epsilon: chance of a uniformly random action (greedy ties are broken at random too).
        gamma: discount. seed: seeds the env and the exploration.
        omega: ``alpha_t(s, a) = alpha / (1 + visits(s, a))^omega`` (eqs. 2.6-2.7); None keeps
            alpha constant.
        Q0: initial table, a number or an (S, A) array.
        max_episode_steps: time limit for ids and GridWorlds; a time-limit cut still bootstraps.
        record_every: keep a copy of Q every this many steps in ``Q_history`` (for widgets).

    Returns:
        :class:`QLearningResult` with ``Q`` (S, A), ``history`` (per-episode returns), ...
    """
    _check(alpha, epsilon, gamma, omega, steps)
    env = _discrete_env(env, max_episode_steps)
    S, A = int(env.observation_space.n), int(env.action_space.n)
    Q = np.broadcast_to(np.asarray(Q0, dtype=np.float64), (S, A)).copy()  # (S, A)
    visits = np.zeros((S, A), dtype=np.int64)
    rng = np.random.default_rng(seed)
    explore = rng.random(steps) < epsilon  # drawn up front: same seed, same run
    random_action = rng.integers(A, size=steps)
    tie_break = rng.integers(1 << 30, size=steps)
    history, episode_ends, snapshots = [], [], []
    episode_return = 0.0

    obs, _ = env.reset(seed=seed)
    for k in range(steps):
        action = int(random_action[k]) if explore[k] else _greedy(Q[obs], tie_break[k])
        next_obs, reward, terminated, truncated, _ = env.step(action)
        if terminated:  # Algorithm 2: nothing to bootstrap from after a terminal state
            target = reward
        else:  # a time-limit cut (truncated) still bootstraps: the state has a future
            target = reward + gamma * Q[next_obs].max()  # eq. 2.4
        step_size = learning_rate(alpha, omega, visits[obs, action])
        Q[obs, action] = (1 - step_size) * Q[obs, action] + step_size * target  # eq. 2.5
        visits[obs, action] += 1
        episode_return += reward
        obs = next_obs  # easy to forget: else the agent acts on a stale state
        if terminated or truncated:
            history.append(episode_return)
            episode_ends.append(k + 1)
            episode_return = 0.0
            obs, _ = env.reset()
        if record_every and (k + 1) % record_every == 0:
            snapshots.append(Q.copy())
    env.close()
    return QLearningResult(Q, history, visits, steps, episode_ends, snapshots)


def one_hot_features(S: int, A: int) -> np.ndarray:
    """(S, A, S*A) indicator features: linear Q-learning on them is tabular Q-learning."""
    return np.eye(S * A).reshape(S, A, S * A)


def gridworld_features(grid: Any) -> np.ndarray:
    """(S, A, 4) hand-made features for a ``GridWorld`` (eq. 2.8's ``f_i(s, a)``).

    On an exit cell only ``f_1`` = the exit's reward (any action collects it). On other cells,
    ``f_0 = 1`` (bias) and, over the move's outcomes (noise included),
    ``f_2 = -E[BFS steps to the nearest positive exit] / cells`` and
    ``f_3 = P(landing on a negative exit)``. The terminal state has all-zero features.
    (A bias shared with the exit cells makes learning unstable: the exits' exact values then
    pull the walking cells' estimates around.)
    """
    n = grid.S - 1
    exits = grid.exits
    distance = np.full(n, float(n))  # BFS distance to the nearest positive exit
    frontier = [s for s, r in exits.items() if r > 0]
    for s in frontier:
        distance[s] = 0.0
    while frontier:  # breadth-first over reverse moves
        nxt = []
        for s in frontier:
            for d in range(4):
                for p in np.flatnonzero(grid.neighbour[d] == s):
                    if p not in exits and distance[p] > distance[s] + 1:
                        distance[p] = distance[s] + 1
                        nxt.append(int(p))
        frontier = nxt
    negative = np.array([exits.get(s, 0.0) < 0 for s in range(n)], dtype=float)
    mix = grid.action_probs()  # (A, 4): chance of each actual move given the action
    F = np.zeros((grid.S, 4, 4))
    for s in range(n):
        for a in range(4):
            if s in exits:
                F[s, a, 1] = exits[s]
                continue
            F[s, a, 0] = 1.0
            landing = grid.neighbour[:, s]  # (4,) cell after each actual move
            F[s, a, 2] = -(mix[a] @ distance[landing]) / n
            F[s, a, 3] = mix[a] @ negative[landing]
    return F


def approximate_q_learning(
    env: Any,
    features: np.ndarray | Callable[[int, int], np.ndarray] | str = "one_hot",
    steps: int = 50_000,
    alpha: float = 0.1,
    epsilon: float = 0.1,
    gamma: float = 0.99,
    seed: int = 0,
    *,
    omega: float | None = None,
    max_episode_steps: int | None = None,
) -> QLearningResult:
    """Q-learning with a linear ``Q_theta(s, a) = theta . f(s, a)`` (eqs. 2.8-2.10).

    ``features``: an (S, A, d) array, a function ``(s, a) -> (d,)``, ``"one_hot"`` (the table,
    for which this is exactly :func:`q_learning`) or ``"grid"`` (:func:`gridworld_features`,
    when ``env`` is a GridWorld). Update: ``theta += alpha_t (target - Q_theta(s, a)) f(s, a)``,
    the gradient step of eq. 2.10. The step size for a pair follows :func:`learning_rate`.
    Returns a :class:`QLearningResult` whose ``Q`` is ``F @ theta`` and ``theta`` is set.
    """
    _check(alpha, epsilon, gamma, omega, steps)
    grid = env if hasattr(env, "mdp") and hasattr(env, "neighbour") else None
    env = _discrete_env(env, max_episode_steps)
    S, A = int(env.observation_space.n), int(env.action_space.n)
    if isinstance(features, str):
        if features == "one_hot":
            F = one_hot_features(S, A)
        elif features == "grid" and grid is not None:
            F = gridworld_features(grid)
        else:
            raise ValueError(
                f"features={features!r}: expected 'one_hot', or 'grid' for a GridWorld"
            )
    elif callable(features):
        F = np.array([[features(s, a) for a in range(A)] for s in range(S)], dtype=np.float64)
    else:
        F = np.asarray(features, dtype=np.float64)
    if F.ndim != 3 or F.shape[:2] != (S, A):
        raise ValueError(f"features must have shape (S, A, d) = ({S}, {A}, d), got {F.shape}")
    theta = np.zeros(F.shape[2])  # (d,)
    visits = np.zeros((S, A), dtype=np.int64)
    rng = np.random.default_rng(seed)
    explore = rng.random(steps) < epsilon  # the same draws as q_learning: same seed, same run
    random_action = rng.integers(A, size=steps)
    tie_break = rng.integers(1 << 30, size=steps)
    history, episode_ends = [], []
    episode_return = 0.0

    obs, _ = env.reset(seed=seed)
    for k in range(steps):
        q_values = F[obs] @ theta  # (A,) = (A, d) @ (d,)
        action = int(random_action[k]) if explore[k] else _greedy(q_values, tie_break[k])
        next_obs, reward, terminated, truncated, _ = env.step(action)
        # eq. 2.9; no bootstrap after a terminal state, a time-limit cut still bootstraps
        target = reward if terminated else reward + gamma * (F[next_obs] @ theta).max()
        step_size = learning_rate(alpha, omega, visits[obs, action])
        theta += step_size * (target - q_values[action]) * F[obs, action]  # eq. 2.10
        visits[obs, action] += 1
        episode_return += reward
        obs = next_obs
        if terminated or truncated:
            history.append(episode_return)
            episode_ends.append(k + 1)
            episode_return = 0.0
            obs, _ = env.reset()
    env.close()
    return QLearningResult(F @ theta, history, visits, steps, episode_ends, theta=theta)
