"""Tabular MDPs (Lecture 1, section 1.2): states, actions, P(s'|s, a), R(s, a, s'), gamma.

A :class:`TabularMDP` holds the model that value iteration and policy iteration plan with.
Everything the planners need is one *Bellman backup* (the inside of eq. 1.7)::

    Q = R_sa + gamma * P @ V     # (S, A) = (S, A) + (S, A, S') @ (S,)

where ``R_sa[s, a] = sum_s' P(s'|s, a) R(s, a, s')`` is the expected one-step reward.
Small MDPs keep ``P`` dense, shape (S, A, S'); large ones keep one scipy.sparse CSR matrix
(S, S') per action, so a 90,000-state grid costs megabytes instead of 250 GB.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

#: Above this many states ``from_env`` and ``GridWorld`` switch to sparse transitions.
SPARSE_THRESHOLD = 2000

#: Tolerance for "each row of P sums to 1".
ROW_SUM_ATOL = 1e-8


class TabularMDP:
    """A finite MDP ``(S, A, P, R, gamma)`` with a vectorized Bellman backup.

    Args:
        P: transition probabilities. Either a dense array (S, A, S') with ``P[s, a, s'] =
            P(s'|s, a)``, or a sequence of A sparse (or dense) matrices (S, S'), one per action.
        R: rewards, either expected rewards (S, A) or ``R(s, a, s')`` with the same layout
            as ``P`` (dense (S, A, S') or A matrices (S, S')).
        gamma: discount factor in [0, 1].
        terminal: optional bool mask (S,) of absorbing zero-reward states. ``None`` detects
            them: a state is terminal when every action stays put with reward 0.
        start: optional start state index.
        sparse: ``None`` keeps the format of ``P``; True/False converts.

    Attributes:
        P: dense (S, A, S') array, or list of A CSR matrices (S, S') when ``sparse``.
        R: the expected reward ``R_sa`` (S, A); ``R_original`` keeps what was passed in.
        gamma, S, A, terminal (S,) bool, start (int or None), sparse (bool).
    """

    def __init__(
        self,
        P: np.ndarray | Sequence[Any],
        R: np.ndarray | Sequence[Any],
        gamma: float = 0.9,
        *,
        terminal: np.ndarray | None = None,
        start: int | None = None,
        sparse: bool | None = None,
    ) -> None:
        gamma = float(gamma)
        if not 0.0 <= gamma <= 1.0 or np.isnan(gamma):
            raise ValueError(f"gamma must be in [0, 1], got gamma={gamma}")
        self.gamma = gamma

        is_sparse_input = not isinstance(P, np.ndarray)
        if is_sparse_input:
            P_list = [sp.csr_matrix(p, dtype=np.float64) for p in P]
            if len(P_list) == 0:
                raise ValueError("P is an empty list: expected A >= 1 matrices of shape (S, S')")
            S = P_list[0].shape[0]
            A = len(P_list)
            for a, p in enumerate(P_list):
                if p.shape != (S, S):
                    raise ValueError(
                        f"P[{a}] has shape {p.shape}, expected ({S}, {S}) "
                        f"(every action's matrix must be square (S, S') with the same S)"
                    )
        else:
            P = np.asarray(P, dtype=np.float64)
            if P.ndim != 3 or P.shape[0] != P.shape[2]:
                raise ValueError(
                    f"P has shape {P.shape}, expected (S, A, S') with S' == S "
                    f"(or a list of A sparse (S, S') matrices)"
                )
            S, A = P.shape[0], P.shape[1]
        if S == 0 or A == 0:
            raise ValueError(f"the MDP needs at least one state and one action, got S={S}, A={A}")
        self.S, self.A = S, A

        # --- validate probabilities: non-negative, rows sum to 1 (name the first bad (s, a))
        if is_sparse_input:
            for a, p in enumerate(P_list):
                if p.nnz and p.data.min() < 0:
                    row = int(np.searchsorted(p.indptr, np.argmax(p.data < 0), side="right") - 1)
                    raise ValueError(
                        f"P has a negative probability at (s, a) = ({row}, {a}): "
                        f"probabilities must be >= 0"
                    )
            row_sums = np.stack([np.asarray(p.sum(axis=1)).ravel() for p in P_list], axis=1)
        else:
            if (P < 0).any():
                s, a, s2 = np.argwhere(P < 0)[0]
                raise ValueError(
                    f"P has a negative probability P[{s}, {a}, {s2}] = {P[s, a, s2]}: "
                    f"probabilities must be >= 0"
                )
            row_sums = P.sum(axis=2)  # (S, A)
        bad = np.abs(row_sums - 1.0) > ROW_SUM_ATOL
        if bad.any():
            s, a = np.argwhere(bad)[0]
            raise ValueError(
                f"P[{s}, {a}, :] sums to {row_sums[s, a]:.6g}, expected 1 "
                f"(transition probabilities out of (s, a) = ({s}, {a}); "
                f"{int(bad.sum())} such (s, a) pairs)"
            )

        # --- rewards -> expected reward R_sa (S, A)
        self.R_original = R
        if isinstance(R, np.ndarray) or np.isscalar(R):
            R_arr = np.asarray(R, dtype=np.float64)
            if R_arr.shape == (S, A):
                R_sa = R_arr.copy()
            elif R_arr.shape == (S, A, S):
                if is_sparse_input:
                    R_sa = np.stack(
                        [
                            np.asarray(P_list[a].multiply(R_arr[:, a, :]).sum(axis=1)).ravel()
                            for a in range(A)
                        ],
                        axis=1,
                    )
                else:
                    R_sa = (P * R_arr).sum(axis=2)
            else:
                raise ValueError(
                    f"R has shape {R_arr.shape}, expected (S, A) = ({S}, {A}) "
                    f"or (S, A, S') = ({S}, {A}, {S})"
                )
        else:
            R_list = list(R)
            if len(R_list) != A:
                raise ValueError(f"R is a list of {len(R_list)} matrices, expected A = {A}")
            cols = []
            for a, r in enumerate(R_list):
                if r.shape != (S, S):
                    raise ValueError(f"R[{a}] has shape {r.shape}, expected ({S}, {S})")
                p_a = P_list[a] if is_sparse_input else sp.csr_matrix(P[:, a, :])
                cols.append(np.asarray(p_a.multiply(r).sum(axis=1)).ravel())
            R_sa = np.stack(cols, axis=1)
        if not np.isfinite(R_sa).all():
            s, a = np.argwhere(~np.isfinite(R_sa))[0]
            raise ValueError(f"R has a non-finite expected reward at (s, a) = ({s}, {a})")
        self.R = R_sa  # (S, A)

        # --- storage format
        self.sparse = is_sparse_input if sparse is None else bool(sparse)
        if self.sparse:
            self.P = P_list if is_sparse_input else [sp.csr_matrix(P[:, a, :]) for a in range(A)]
            # One stacked (A*S, S') matrix: a single sparse matvec gives every Q(s, a).
            self._P_stacked = sp.vstack(self.P, format="csr")
        else:
            self.P = (
                np.stack([p.toarray() for p in P_list], axis=1) if is_sparse_input else P
            )  # (S, A, S')
            self._P_stacked = None

        # --- terminal states: absorbing (every action stays put w.p. 1) and reward 0
        if terminal is None:
            if self.sparse:
                stay = np.stack([p.diagonal() for p in self.P], axis=1)  # (S, A)
            else:
                stay = self.P[np.arange(S), :, np.arange(S)]  # (S, A)
            terminal = np.all(np.abs(stay - 1.0) <= ROW_SUM_ATOL, axis=1) & np.all(
                self.R == 0.0, axis=1
            )
        terminal = np.asarray(terminal, dtype=bool)
        if terminal.shape != (S,):
            raise ValueError(f"terminal has shape {terminal.shape}, expected (S,) = ({S},)")
        self.terminal = terminal
        if start is not None and not 0 <= int(start) < S:
            raise ValueError(f"start = {start} is not a state index in [0, {S})")
        self.start = None if start is None else int(start)

    # ------------------------------------------------------------------ backups
    def expected_next(self, V: np.ndarray) -> np.ndarray:
        """``(P @ V)[s, a] = sum_s' P(s'|s, a) V(s')``: (S,) -> (S, A)."""
        if self.sparse:
            return (self._P_stacked @ V).reshape(self.A, self.S).T
        return self.P @ V  # (S, A, S') @ (S,) -> (S, A)

    def backup(self, V: np.ndarray) -> np.ndarray:
        """One Bellman backup (eq. 1.7 before the max): ``Q = R_sa + gamma * P @ V``, (S, A)."""
        return self.R + self.gamma * self.expected_next(V)

    def max_backup(self, V: np.ndarray) -> np.ndarray:
        """``max_a Q(s, a)`` of :meth:`backup` (eq. 1.7), (S,). Structured MDPs may override."""
        if self.sparse:  # stay in the (A, S) layout of the stacked matvec: contiguous max
            if getattr(self, "_R_T", None) is None:
                self._R_T = np.ascontiguousarray(self.R.T)  # (A, S)
            Q_T = (self._P_stacked @ V).reshape(self.A, self.S)  # (A, S)
            Q_T *= self.gamma
            Q_T += self._R_T
            return Q_T.max(axis=0)
        return self.backup(V).max(axis=1)

    def policy_matrices(self, policy: np.ndarray) -> tuple[Any, np.ndarray]:
        """``(P_pi, R_pi)`` of a policy: P_pi (S, S') (dense or CSR), R_pi (S,) (eq. 1.16).

        ``policy`` is (S,) ints (deterministic) or (S, A) probabilities (stochastic).
        """
        pi = self.policy_probs(policy)  # (S, A)
        R_pi = (pi * self.R).sum(axis=1)
        if self.sparse:
            P_pi = sp.csr_matrix((self.S, self.S))
            for a in range(self.A):
                P_pi = P_pi + sp.diags(pi[:, a]) @ self.P[a]
            return P_pi.tocsr(), R_pi
        return np.einsum("sa,sat->st", pi, self.P), R_pi

    def policy_probs(self, policy: np.ndarray) -> np.ndarray:
        """Validate a policy and return it as probabilities pi(a|s), (S, A)."""
        policy = np.asarray(policy)
        if policy.shape == (self.S,):
            if not np.issubdtype(policy.dtype, np.integer):
                if not np.all(np.mod(policy, 1) == 0):
                    raise ValueError("a deterministic policy must hold integer actions, shape (S,)")
                policy = policy.astype(np.int64)
            if policy.min() < 0 or policy.max() >= self.A:
                raise ValueError(
                    f"policy has actions in [{policy.min()}, {policy.max()}], "
                    f"expected actions in [0, {self.A})"
                )
            pi = np.zeros((self.S, self.A))
            pi[np.arange(self.S), policy] = 1.0
            return pi
        if policy.shape == (self.S, self.A):
            pi = policy.astype(np.float64)
            if (pi < 0).any():
                s, a = np.argwhere(pi < 0)[0]
                raise ValueError(f"policy has a negative probability pi({a}|{s}) = {pi[s, a]}")
            sums = pi.sum(axis=1)
            bad = np.abs(sums - 1.0) > ROW_SUM_ATOL
            if bad.any():
                s = int(np.argmax(bad))
                raise ValueError(f"policy row pi(.|{s}) sums to {sums[s]:.6g}, expected 1")
            return pi
        raise ValueError(
            f"policy has shape {policy.shape}, expected (S,) = ({self.S},) actions "
            f"or (S, A) = ({self.S}, {self.A}) probabilities"
        )

    # ------------------------------------------------------------------ structure
    def can_terminate(self) -> bool:
        """True when a terminal state exists and can be reached from every state.

        This is what makes ``gamma = 1`` with no horizon meaningful (an episodic MDP).
        """
        if not self.terminal.any():
            return False
        if self.sparse:
            reach = sum(self.P[1:], self.P[0]) if self.A > 1 else self.P[0]
            graph = sp.csr_matrix(reach)
        else:
            graph = sp.csr_matrix(self.P.sum(axis=1))
        graph = (graph > 0).astype(np.int8)
        # Reverse edges, add a super node S pointing at every terminal state; BFS from it.
        rev = sp.vstack([graph.T.tocsr(), sp.csr_matrix(self.terminal.astype(np.int8)[None])])
        rev = sp.hstack([rev, sp.csr_matrix((self.S + 1, 1), dtype=np.int8)]).tocsr()
        from scipy.sparse.csgraph import breadth_first_order

        order = breadth_first_order(rev, self.S, directed=True, return_predecessors=False)
        return len(order) == self.S + 1

    def __repr__(self) -> str:
        kind = "sparse" if self.sparse else "dense"
        return (
            f"TabularMDP(S={self.S}, A={self.A}, gamma={self.gamma}, {kind}, "
            f"terminal states={int(self.terminal.sum())})"
        )

    @classmethod
    def random(
        cls,
        S: int,
        A: int,
        gamma: float = 0.9,
        seed: int = 0,
        branching: int | None = None,
        sparse: bool = False,
    ) -> TabularMDP:
        """A random MDP for tests and exercises: rewards R(s, a, s') ~ N(0, 1).

        Each (s, a) reaches ``branching`` random next states (default: all S) with Dirichlet
        probabilities. The same seed gives the same MDP.
        """
        rng = np.random.default_rng(seed)
        k = S if branching is None else int(branching)
        if not 1 <= k <= S:
            raise ValueError(f"branching must be in [1, S={S}], got {branching}")
        P = np.zeros((S, A, S))
        for s in range(S):
            for a in range(A):
                nxt = rng.choice(S, size=k, replace=False)
                P[s, a, nxt] = rng.dirichlet(np.ones(k))
        R = rng.normal(size=(S, A, S))
        return cls(P, R, gamma=gamma, sparse=sparse)

    # ------------------------------------------------------------------ Gymnasium
    @classmethod
    def from_env(cls, env: Any, gamma: float = 0.9, *, sparse: bool | None = None) -> TabularMDP:
        """Build the MDP of a Gymnasium toy-text env (FrozenLake, CliffWalking, Taxi, GridWorld).

        Reads ``env.unwrapped.P = {s: {a: [(prob, next_s, reward, terminated), ...]}}``.
        A ``terminated`` transition ends the episode: it is sent to one added absorbing,
        zero-reward terminal state (index ``S_env``, the last one), so ``V`` of the env's own
        states is exactly the episodic value. Duplicate ``next_s`` entries are summed.
        """
        unwrapped = getattr(env, "unwrapped", env)
        table = getattr(unwrapped, "P", None)
        if not isinstance(table, dict):
            raise ValueError(
                f"{type(unwrapped).__name__} has no toy-text transition table env.unwrapped.P "
                f"(expected a dict {{s: {{a: [(prob, next_s, reward, terminated), ...]}}}})"
            )
        S_env = int(unwrapped.observation_space.n)
        A = int(unwrapped.action_space.n)
        S = S_env + 1
        terminal_state = S_env
        rows, cols, probs, rewards = [], [], [], []  # rows index s * A + a
        for s in range(S_env):
            for a in range(A):
                outcomes = table[s][a]
                for prob, next_s, reward, terminated in outcomes:
                    rows.append(s * A + a)
                    cols.append(terminal_state if terminated else int(next_s))
                    probs.append(float(prob))
                    rewards.append(float(reward))
        for a in range(A):  # the added terminal state is absorbing with reward 0
            rows.append(terminal_state * A + a)
            cols.append(terminal_state)
            probs.append(1.0)
            rewards.append(0.0)
        rows_a = np.asarray(rows)
        probs_a = np.asarray(probs)
        R_sa = np.bincount(rows_a, weights=probs_a * np.asarray(rewards), minlength=S * A)
        flat = sp.csr_matrix((probs_a, (rows_a, np.asarray(cols))), shape=(S * A, S))  # sums dups
        if sparse is None:
            sparse = S > SPARSE_THRESHOLD
        if sparse:
            P: Any = [flat[a::A] for a in range(A)]  # rows s * A + a for fixed a
        else:
            P = flat.toarray().reshape(S, A, S)
        terminal = np.zeros(S, dtype=bool)
        terminal[terminal_state] = True
        isd = np.asarray(getattr(unwrapped, "initial_state_distrib", []), dtype=np.float64)
        start = int(np.argmax(isd)) if isd.size == S_env and np.isclose(isd.max(), 1.0) else None
        mdp = cls(P, R_sa.reshape(S, A), gamma=gamma, terminal=terminal, start=start, sparse=sparse)
        mdp.initial_distribution = (
            np.append(isd, 0.0) if isd.size == S_env else None
        )  # (S,) or None
        return mdp
