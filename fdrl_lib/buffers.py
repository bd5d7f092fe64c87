"""Replay memory (lecture 2, Algorithm 3) and prioritized replay with a sum tree.

Storage is preallocated numpy arrays, so adding a transition and sampling a minibatch cost no
Python objects per step; a training loop turns a sampled batch into tensors once.
"""

from __future__ import annotations

from collections import deque

import numpy as np

FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "discount")


class ReplayBuffer:
    """Replay memory ``D`` with capacity ``N``: a ring of transitions, sampled uniformly.

    Each stored transition is ``(obs, action, reward, next_obs, terminated, discount)`` where
    ``discount = gamma^k`` for a k-step transition. With ``n_step > 1`` the buffer keeps the last
    n steps of the running episode and stores the n-step transition
    ``(obs_t, action_t, sum_{i<k} gamma^i r_{t+i}, next_obs_{t+k-1}, terminated_{t+k-1}, gamma^k)``
    (``k = n``, shorter at an episode's end); the same windows as :func:`returns.n_step_targets`.
    The target is then ``reward + discount * (1 - terminated) * max_a Q(next_obs, a)``.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype=np.float32,
        n_step: int = 1,
        gamma: float = 0.99,
        seed: int = 0,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity}")
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        self.capacity, self.n_step, self.gamma = int(capacity), int(n_step), float(gamma)
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)  # (N, *obs_shape)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)  # (N, *obs_shape)
        self.action = np.zeros(capacity, dtype=np.int64)  # (N,)
        self.reward = np.zeros(capacity, dtype=np.float32)  # (N,)
        self.terminated = np.zeros(capacity, dtype=np.float32)  # (N,)
        self.discount = np.zeros(capacity, dtype=np.float32)  # (N,) gamma^k
        self.size, self.position = 0, 0
        self.rng = np.random.default_rng(seed)
        self._window: deque = deque()  # pending (obs, action, reward) of the running episode

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward, next_obs, terminated: bool, truncated: bool) -> None:
        """Record one environment step (keep ``terminated`` and ``truncated`` apart)."""
        if self.n_step == 1:
            self._store(obs, action, reward, next_obs, terminated, self.gamma)
            return
        self._window.append((obs, action, float(reward)))
        if len(self._window) == self.n_step:
            self._emit(next_obs, terminated)
        if terminated or truncated:  # flush shorter windows: the episode is over
            while self._window:
                self._emit(next_obs, terminated)

    def _emit(self, next_obs, terminated: bool) -> None:
        """Store the oldest pending step as a ``len(window)``-step transition, and drop it."""
        total = 0.0
        for i, (_, _, reward) in enumerate(self._window):
            total += self.gamma**i * reward
        obs, action, _ = self._window.popleft()
        self._store(obs, action, total, next_obs, terminated, self.gamma ** (len(self._window) + 1))

    def _store(self, obs, action, reward, next_obs, terminated, discount) -> int:
        i = self.position
        self.obs[i], self.action[i], self.reward[i] = obs, action, reward
        self.next_obs[i], self.terminated[i], self.discount[i] = next_obs, terminated, discount
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self._on_store(i)
        return i

    def _on_store(self, index: int) -> None:
        """Hook for subclasses (prioritized replay gives a new transition top priority)."""

    def _gather(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        batch = {name: getattr(self, name)[indices] for name in FIELDS}
        batch["indices"] = indices
        return batch

    def sample(self, batch_size: int, beta: float = 0.0) -> dict[str, np.ndarray]:
        """A minibatch of ``batch_size`` transitions drawn uniformly (with replacement).

        Returns a dict of arrays ``(B, ...)`` keyed by the field names, plus ``indices`` and
        ``weights`` (all ones here; importance weights in :class:`PrioritizedReplayBuffer`).
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        batch = self._gather(self.rng.integers(0, self.size, size=batch_size))
        batch["weights"] = np.ones(batch_size, dtype=np.float32)
        return batch


class SumTree:
    """A binary tree whose every node holds the sum of its two children.

    Leaves hold priorities. Sampling a leaf in proportion to its priority descends from the root
    in ``log2(capacity)`` steps; changing a priority rewrites only the nodes on its path to the
    root. ``touches`` counts node writes (the tests use it to check the ``O(log n)`` update).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity}")
        self.leaves = 1 << max(0, int(capacity - 1).bit_length())  # round up to a power of two
        self.depth = self.leaves.bit_length() - 1
        self.nodes = np.zeros(2 * self.leaves)  # node 1 is the root; leaves at [leaves, 2 leaves)
        self.touches = 0

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    def __getitem__(self, indices) -> np.ndarray:
        return self.nodes[self.leaves + np.asarray(indices)]

    def update(self, indices, priorities) -> None:
        """Set the priorities of leaves ``indices`` and repair the sums above them."""
        nodes = self.leaves + np.atleast_1d(np.asarray(indices, dtype=np.int64))
        priorities = np.atleast_1d(np.asarray(priorities, dtype=np.float64))
        if np.any(priorities < 0) or not np.all(np.isfinite(priorities)):
            raise ValueError(f"priorities must be finite and >= 0, got {priorities}")
        self.nodes[nodes] = priorities
        self.touches += len(nodes)
        for _ in range(self.depth):  # walk every path up one level at a time
            nodes = np.unique(nodes // 2)
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]
            self.touches += len(nodes)

    def find(self, values: np.ndarray) -> np.ndarray:
        """Leaf index for each value in ``[0, total)``: the leaf whose prefix-sum range holds it."""
        values = np.array(values, dtype=np.float64)  # copy: we subtract from it
        nodes = np.ones(len(values), dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * nodes
            go_right = values >= self.nodes[left]
            values -= np.where(go_right, self.nodes[left], 0.0)
            nodes = left + go_right
        return nodes - self.leaves


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al. 2016), lecture 2 section 2.2.2.

    Transition i is replayed with probability ``P(i) = p_i^alpha / sum_k p_k^alpha`` where
    ``p_i = |TD error| + eps``; new transitions get the largest priority seen so far. The bias this
    brings is corrected by importance weights ``w_i = (N P(i))^-beta / max_j w_j`` (max over the
    batch), with ``beta`` annealed to 1 by the caller.
    """

    def __init__(self, capacity: int, obs_shape, alpha: float = 0.6, eps: float = 1e-6, **kwargs):
        super().__init__(capacity, obs_shape, **kwargs)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha, self.eps = float(alpha), float(eps)
        self.tree = SumTree(capacity)
        self.max_priority = 1.0  # stored as p^alpha

    def _on_store(self, index: int) -> None:
        self.tree.update(index, self.max_priority)

    def sample(self, batch_size: int, beta: float = 0.4) -> dict[str, np.ndarray]:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        total = self.tree.total
        # stratified: one uniform draw in each of batch_size equal slices of [0, total)
        edges = np.arange(batch_size) * (total / batch_size)
        values = edges + self.rng.random(batch_size) * (total / batch_size)
        indices = np.minimum(self.tree.find(values), self.size - 1)
        probs = self.tree[indices] / total  # P(i)
        weights = (self.size * probs) ** (-beta)
        batch = self._gather(indices)
        batch["weights"] = (weights / weights.max()).astype(np.float32)
        return batch

    def update_priorities(self, indices, td_errors) -> None:
        """After a gradient step: ``p_i <- (|TD error_i| + eps)^alpha``."""
        priorities = (np.abs(np.asarray(td_errors, dtype=np.float64)) + self.eps) ** self.alpha
        self.tree.update(indices, priorities)
        self.max_priority = max(self.max_priority, float(priorities.max()))
