"""Replay memory (lecture 2, Algorithm 3), prioritized replay with a sum tree, on-policy rollouts.

- Off-policy (lectures 2 and 5): :class:`ReplayBuffer` and :class:`PrioritizedReplayBuffer` keep
  preallocated numpy arrays, so adding a transition and sampling a minibatch cost no Python
  objects per step; a training loop turns a sampled batch into tensors once. The prioritized
  replay formulas are the pure functions :func:`priority`, :func:`priority_probabilities` and
  :func:`importance_weights`.
- On-policy (lectures 3, 4, 6): :class:`RolloutBuffer` holds T steps of N envs as torch tensors
  ``(T, N, ...)``, filled by :func:`collect_rollout` from a vector env (``envs.make_vec_env``).

Importing this module costs no torch; the rollout parts import it when used.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from fdrl_lib.returns import n_step_window

FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "discount")


class ReplayBuffer:
    """Replay memory ``D`` with capacity ``N``: a ring of transitions, sampled uniformly.

    Each stored transition is ``(obs, action, reward, next_obs, terminated, discount)`` where
    ``discount = gamma^k`` for a k-step transition. With ``n_step > 1`` the buffer keeps the last
    n steps of the running episode and stores the n-step transition
    ``(obs_t, action_t, sum_{i<k} gamma^i r_{t+i}, next_obs_{t+k-1}, terminated_{t+k-1}, gamma^k)``
    (``k = n``, shorter at an episode's end); the same windows, summed by the same
    :func:`returns.n_step_window`, as :func:`returns.n_step_targets`. The target is then
    ``reward + discount * (1 - terminated) * max_a Q(next_obs, a)``.

    Actions are scalars of ``action_dtype`` by default (discrete: int64); continuous actions
    give their shape, e.g. ``action_shape=(A,), action_dtype=np.float32``.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype=np.float32,
        n_step: int = 1,
        gamma: float = 0.99,
        seed: int = 0,
        action_shape: tuple[int, ...] = (),
        action_dtype=np.int64,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity}")
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        self.capacity, self.n_step, self.gamma = int(capacity), int(n_step), float(gamma)
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)  # (N, *obs_shape)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)  # (N, *obs_shape)
        self.action = np.zeros((capacity, *action_shape), dtype=action_dtype)  # (N, *action_shape)
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
        total, discount = n_step_window([reward for *_, reward in self._window], self.gamma)
        obs, action, _ = self._window.popleft()
        self._store(obs, action, total, next_obs, terminated, discount)

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


def priority(td_errors, alpha: float, eps: float = 1e-6) -> np.ndarray:
    """``p_i^alpha = (|TD error_i| + eps)^alpha``: what the sum tree stores for transition i."""
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    return (np.abs(np.asarray(td_errors, dtype=np.float64)) + eps) ** alpha


def priority_probabilities(td_errors, alpha: float, eps: float = 1e-6) -> np.ndarray:
    """Replay probabilities ``P(i) = p_i^alpha / sum_k p_k^alpha`` with ``p_i = |delta_i| + eps``.

    ``alpha = 0`` is uniform replay, ``alpha = 1`` fully proportional to the TD errors.
    """
    p = priority(td_errors, alpha, eps)
    return p / p.sum()


def importance_weights(probs, size: int, beta: float) -> np.ndarray:
    """``w_i = (size P(i))^-beta / max_j w_j`` (max over the given ``probs``): the IS correction.

    ``size`` is the number of transitions stored (N); ``beta = 1`` undoes the non-uniform
    sampling exactly, ``beta = 0`` leaves it (all weights 1).
    """
    weights = (size * np.asarray(probs, dtype=np.float64)) ** (-beta)
    return weights / weights.max()


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
        batch = self._gather(indices)
        batch["weights"] = importance_weights(probs, self.size, beta).astype(np.float32)
        return batch

    def update_priorities(self, indices, td_errors) -> None:
        """After a gradient step: ``p_i <- (|TD error_i| + eps)^alpha``."""
        priorities = priority(td_errors, self.alpha, self.eps)
        self.tree.update(indices, priorities)
        self.max_priority = max(self.max_priority, float(priorities.max()))


ROLLOUT_FIELDS = (
    "obs",
    "action",
    "reward",
    "terminated",
    "truncated",
    "value",
    "log_prob",
    "next_value",
)


class RolloutBuffer:
    """One on-policy rollout: T steps of N envs, stored time first as torch tensors ``(T, N, ...)``.

    Fields (all ``(T, N)`` float32 unless said): ``obs`` ``(T, N, *obs_shape)``, ``action``
    ``(T, N, *action_shape)``, ``reward``, ``terminated``, ``truncated`` (kept apart: a time-limit
    cut still bootstraps), ``value`` ``V(s_t)``, ``log_prob`` ``log pi(a_t | s_t)`` and
    ``next_value`` ``V(s_{t+1})``: for a truncated step the value of the episode's real final
    observation (not of the reset one), for a terminated step 0. These are exactly the arguments
    of :func:`fdrl_lib.returns.gae`::

        advantage = gae(buffer.reward, buffer.value, buffer.next_value,
                        buffer.terminated, buffer.truncated, gamma, lam)        # (T, N)
        for batch in buffer.minibatches(64, rng, advantage=advantage):
            batch["obs"], batch["action"], batch["log_prob"], batch["advantage"]  # (64, ...)

    :func:`collect_rollout` fills it from a vector env; :meth:`add` writes one step (for
    rollouts from elsewhere, e.g. a learned model). ``action_dtype=None`` stores int64 for scalar
    (discrete) actions and float32 otherwise.
    """

    def __init__(
        self,
        T: int,
        N: int,
        obs_shape: tuple[int, ...],
        action_shape: tuple[int, ...] = (),
        action_dtype=None,
    ) -> None:
        import torch

        if T < 1 or N < 1:
            raise ValueError(f"T and N must be positive integers, got T={T}, N={N}")
        if action_dtype is None:
            action_dtype = torch.int64 if tuple(action_shape) == () else torch.float32
        self.T, self.N = int(T), int(N)
        self.obs = torch.zeros(T, N, *obs_shape)  # (T, N, *obs_shape)
        self.action = torch.zeros(T, N, *action_shape, dtype=action_dtype)  # (T, N, *action_shape)
        self.reward = torch.zeros(T, N)  # (T, N) r_t
        self.terminated = torch.zeros(T, N)  # (T, N) 1.0 where s_{t+1} is terminal
        self.truncated = torch.zeros(T, N)  # (T, N) 1.0 where a time limit cut the episode
        self.value = torch.zeros(T, N)  # (T, N) V(s_t)
        self.log_prob = torch.zeros(T, N)  # (T, N) log pi(a_t | s_t) when acting
        self.next_value = torch.zeros(T, N)  # (T, N) V(s_{t+1}); V(final obs) if truncated
        self.t = 0  # steps written so far

    @classmethod
    def for_env(cls, venv, T: int) -> RolloutBuffer:
        """A buffer shaped for vector env ``venv``'s observations and actions."""
        import torch

        space = venv.single_action_space
        discrete = np.issubdtype(space.dtype, np.integer)
        dtype = torch.int64 if discrete else torch.float32
        return cls(T, venv.num_envs, venv.single_observation_space.shape, space.shape, dtype)

    def __len__(self) -> int:
        return self.t * self.N

    def reset(self) -> None:
        """Start writing at step 0 again (old contents are overwritten step by step)."""
        self.t = 0

    def add(
        self,
        obs,
        action,
        reward,
        terminated,
        truncated,
        value=0.0,
        log_prob=0.0,
        next_value=0.0,
    ) -> None:
        """Write step ``self.t`` for all N envs (each argument ``(N, ...)`` or broadcastable)."""
        if self.t >= self.T:
            raise ValueError(f"the rollout buffer is full (T={self.T}); call reset() first")
        row = (obs, action, reward, terminated, truncated, value, log_prob, next_value)
        for name, x in zip(ROLLOUT_FIELDS, row, strict=True):
            getattr(self, name)[self.t] = _as_tensor(x)
        self.t += 1

    def flatten(self, **extra) -> dict:
        """Every field (and each ``extra`` ``(T, N, ...)`` array) as ``(T * N, ...)`` tensors."""
        import torch

        if self.t != self.T:
            raise ValueError(f"the rollout holds {self.t} of {self.T} steps; fill it first")
        out = {name: getattr(self, name).flatten(0, 1) for name in ROLLOUT_FIELDS}
        for name, x in extra.items():
            x = torch.as_tensor(x, dtype=torch.float32) if not isinstance(x, torch.Tensor) else x
            if tuple(x.shape[:2]) != (self.T, self.N):
                raise ValueError(f"{name} must be shaped ({self.T}, {self.N}, ...), got {x.shape}")
            out[name] = x.flatten(0, 1)
        return out

    def minibatches(self, batch_size: int, rng: np.random.Generator | int, **extra):
        """Yield dicts of ``batch_size`` samples, every one of the T * N samples once, shuffled.

        ``rng`` is a numpy Generator (or a seed): the same generator state, the same batches. The
        last batch is smaller when ``batch_size`` does not divide ``T * N``. ``extra`` arrays
        ``(T, N, ...)`` (advantages, value targets) are batched alongside the stored fields.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        flat = self.flatten(**extra)
        order = np.random.default_rng(rng).permutation(self.T * self.N)
        for start in range(0, len(order), batch_size):
            indices = _index_tensor(order[start : start + batch_size])
            yield {name: x[indices] for name, x in flat.items()}


def _as_tensor(x):
    import torch

    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _index_tensor(indices: np.ndarray):
    import torch

    return torch.from_numpy(indices)


def collect_rollout(venv, act, buffer: RolloutBuffer, obs, value_fn=None):
    """Run ``buffer.T`` steps of vector env ``venv`` with ``act`` and fill ``buffer``.

    - ``act(obs) -> (action, log_prob)``: ``obs`` is a float32 tensor ``(N, *obs_shape)``,
      ``action`` ``(N, *action_shape)``, ``log_prob`` ``(N,)`` (or just ``action``: log_prob 0).
    - ``value_fn(obs) -> (N,)``, the critic ``V(s)``; without one, values are 0.
    - ``obs``: the observations to act on first (from ``venv.reset`` or the previous rollout).

    Runs under ``torch.no_grad()`` (not ``inference_mode``: the stored tensors may be used in a
    backward pass later). Each step's ``next_value`` is ``V`` of the next observation; where an env
    was truncated it is ``V`` of ``infos["final_obs"]``, the episode's real last observation (the
    same-step autoreset has already put the reset observation in its place), and where it
    terminated 0. Actions sent to a ``Box`` action space are clipped to its bounds; the buffer
    keeps the unclipped action, whose ``log_prob`` it stores. ``venv`` may be anything with
    ``num_envs`` and ``step(actions) -> (obs, reward, terminated, truncated, infos)``; without
    ``"final_obs"`` in ``infos`` the returned observation is taken as the final one.

    Returns ``(obs, episode_returns)``: the observations to continue from (pass them to the next
    call) and the returns of the episodes that finished during the rollout, in order. To keep
    ``training.Monitor``'s episode records, feed it the buffer's steps afterwards::

        obs, _ = collect_rollout(venv, act, buffer, obs, value_fn=critic)
        for t in range(buffer.T):
            step += buffer.N
            monitor.track(buffer.reward[t], buffer.terminated[t] + buffer.truncated[t], step)
    """
    import torch

    buffer.reset()
    space = getattr(venv, "single_action_space", None)
    bounds = (space.low, space.high) if hasattr(space, "low") else None  # a Box: clip to it
    N, episode_returns = venv.num_envs, []

    def values_of(observations):
        if value_fn is None:
            return torch.zeros(len(observations))
        return value_fn(observations).reshape(len(observations)).float()

    with torch.no_grad():
        obs_t = torch.as_tensor(np.asarray(obs), dtype=torch.float32)  # (N, *obs_shape)
        value = values_of(obs_t)  # (N,)
        for _ in range(buffer.T):
            out = act(obs_t)
            action, log_prob = out if isinstance(out, tuple) else (out, torch.zeros(N))
            env_action = action.cpu().numpy()
            if bounds is not None:
                env_action = np.clip(env_action, *bounds)
            obs, reward, terminated, truncated, infos = venv.step(env_action)
            next_obs_t = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
            next_value = values_of(next_obs_t)  # V(s_{t+1}); also the next step's V(s_t)
            bootstrap_value = next_value.clone()
            terminated, truncated = np.asarray(terminated), np.asarray(truncated)
            cut = np.flatnonzero(truncated & ~terminated)
            if len(cut) and "final_obs" in infos:  # bootstrap from the real last observation
                final = np.stack([infos["final_obs"][i] for i in cut])
                bootstrap_value[cut] = values_of(torch.as_tensor(final, dtype=torch.float32))
            bootstrap_value[np.flatnonzero(terminated)] = 0.0  # a terminal state has value 0
            if "_episode" in infos:
                episode_returns += infos["episode"]["r"][infos["_episode"]].tolist()
            row = (obs_t, action, reward, terminated, truncated, value, log_prob, bootstrap_value)
            buffer.add(*row)
            obs_t, value = next_obs_t, next_value  # easy to forget: else act on a stale state
    return obs, episode_returns
