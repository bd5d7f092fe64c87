"""Exact planning in tabular MDPs (Lecture 1, section 1.3 and 1.4).

* :func:`value_iteration` - Algorithm 1, eq. 1.7: ``V_k = max_a (R_sa + gamma P V_{k-1})``.
* :func:`q_value_iteration` - eq. 1.12: ``Q_{k+1} = R_sa + gamma P max_a' Q_k``.
* :func:`policy_evaluation` - eqs. 1.14-1.16, iterated or solved exactly as a linear system.
* :func:`policy_iteration` - evaluate (eq. 1.17), improve greedily (eq. 1.18), repeat.
* :func:`soft_value_iteration` - maximum-entropy VI, eqs. 1.36-1.37 (log-sum-exp instead of max).

Every update is one vectorized backup over all states at once (``mdp.backup``); there is no
Python loop over states. Ties in an argmax go to the lowest action index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from fdrl_lib.tabular.mdp import TabularMDP


@dataclass
class PlanningResult:
    """What a planner returns.

    Attributes:
        V: (S,) values.  Q: (S, A) action values (``Q = R_sa + gamma P V_prev``).
        policy: (S,) greedy actions; (S, A) probabilities for soft value iteration.
        iterations: backups done (policy iteration: policy-improvement steps).
        history: V_0 .. V_k, each (S,) (empty when ``keep_history=False``).
        Q_history: Q_1 .. Q_k, each (S, A). policy_history: policy iteration's policies.
        converged: whether the stopping test passed (always True for a finite horizon).
        deltas: max|V_k - V_{k-1}| per backup.
    """

    V: np.ndarray
    Q: np.ndarray
    policy: np.ndarray
    iterations: int
    history: list[np.ndarray] = field(default_factory=list)
    Q_history: list[np.ndarray] = field(default_factory=list)
    policy_history: list[np.ndarray] = field(default_factory=list)
    converged: bool = True
    deltas: list[float] = field(default_factory=list)


def greedy(Q: np.ndarray, atol: float = 1e-12) -> np.ndarray:
    """argmax_a Q(s, a), (S, A) -> (S,) ints; ties (within ``atol`` relative) -> lowest action."""
    Q_max = Q.max(axis=1, keepdims=True)
    near = Q >= Q_max - atol * np.maximum(1.0, np.abs(Q_max))
    return np.argmax(near, axis=1)  # first True = lowest tied action


def _check_mdp(mdp: TabularMDP) -> None:
    if not isinstance(mdp, TabularMDP):
        raise ValueError(f"expected a TabularMDP, got {type(mdp).__name__}")


def _check_horizon(mdp: TabularMDP, horizon: int | None, what: str) -> None:
    if horizon is not None:
        if int(horizon) != horizon or horizon < 0:
            raise ValueError(f"horizon must be a non-negative integer or None, got {horizon!r}")
        return
    if mdp.gamma == 1.0 and not mdp.can_terminate():
        raise ValueError(
            f"{what} with gamma = 1 and horizon=None needs an MDP that terminates (a zero-reward "
            f"absorbing state reachable from every state); this MDP has "
            f"{int(mdp.terminal.sum())} terminal states and does not terminate from every "
            f"state: pass a finite horizon=H or gamma < 1"
        )


def value_iteration(
    mdp: TabularMDP,
    horizon: int | None = None,
    tol: float = 1e-10,
    max_iterations: int = 100_000,
    keep_history: bool = True,
) -> PlanningResult:
    """Value iteration (Algorithm 1, eq. 1.7) from ``V_0 = 0``.

    ``horizon=H`` does exactly H backups and returns ``V_H^*`` (the H-step optimal value).
    ``horizon=None`` iterates until ``max|V_k - V_{k-1}| < tol`` (or ``max_iterations``).
    ``res.Q`` and ``res.policy`` are those of the last backup: ``Q_k = R + gamma P V_{k-1}``,
    ``pi_k = argmax_a Q_k`` (Algorithm 1's pair). Use ``keep_history=False`` on large MDPs:
    the loop then calls ``mdp.max_backup`` (which structured MDPs such as GridWorld's make fast).
    """
    _check_mdp(mdp)
    _check_horizon(mdp, horizon, "value_iteration")
    n_max = int(horizon) if horizon is not None else int(max_iterations)
    V = np.zeros(mdp.S)  # V_0 = 0
    V_prev = V
    history, Q_history, deltas = ([V.copy()] if keep_history else []), [], []
    converged = horizon is not None
    k = 0
    while k < n_max:
        V_prev = V
        if keep_history:
            Q = mdp.backup(V_prev)  # (S, A) eq. 1.7 inside the max
            V = Q.max(axis=1)
            Q_history.append(Q)
            history.append(V)
        else:
            V = mdp.max_backup(V_prev)
        k += 1
        diff = V - V_prev
        delta = float(max(diff.max(), -diff.min()))  # max|V_k - V_{k-1}| without an abs copy
        deltas.append(delta)
        if horizon is None and delta < tol:
            converged = True
            break
    Q = mdp.backup(V_prev) if k > 0 else np.zeros((mdp.S, mdp.A))
    return PlanningResult(
        V=V,
        Q=Q,
        policy=greedy(Q),
        iterations=k,
        history=history,
        Q_history=Q_history,
        converged=converged,
        deltas=deltas,
    )


def q_value_iteration(
    mdp: TabularMDP,
    horizon: int | None = None,
    tol: float = 1e-10,
    max_iterations: int = 100_000,
    keep_history: bool = True,
) -> PlanningResult:
    """Q-value iteration (eq. 1.12): ``Q_{k+1}(s, a) = R_sa + gamma sum_s' P max_a' Q_k(s', a')``.

    Starts at ``Q_0 = 0``; after H backups ``max_a Q_H`` equals value iteration's ``V_H``.
    """
    _check_mdp(mdp)
    _check_horizon(mdp, horizon, "q_value_iteration")
    n_max = int(horizon) if horizon is not None else int(max_iterations)
    Q = np.zeros((mdp.S, mdp.A))  # Q_0 = 0
    V = np.zeros(mdp.S)
    history, Q_history, deltas = ([V.copy()] if keep_history else []), [], []
    converged = horizon is not None
    k = 0
    while k < n_max:
        Q = mdp.backup(Q.max(axis=1))  # eq. 1.12: max over a' inside, expectation over s'
        V_new = Q.max(axis=1)
        delta = float(np.max(np.abs(V_new - V)))
        V = V_new
        k += 1
        deltas.append(delta)
        if keep_history:
            history.append(V)
            Q_history.append(Q)
        if horizon is None and delta < tol:
            converged = True
            break
    return PlanningResult(
        V=V,
        Q=Q,
        policy=greedy(Q),
        iterations=k,
        history=history,
        Q_history=Q_history,
        converged=converged,
        deltas=deltas,
    )


def policy_evaluation(
    mdp: TabularMDP,
    policy: np.ndarray,
    method: str = "iterative",
    tol: float = 1e-10,
    max_iterations: int = 100_000,
) -> np.ndarray:
    """V^pi (S,) of a deterministic (S,) or stochastic (S, A) policy (eqs. 1.14-1.16).

    ``method="iterative"`` repeats ``V <- R_pi + gamma P_pi V`` from 0 until the change is below
    ``tol``; ``method="exact"`` solves ``(I - gamma P_pi) V = R_pi``, with ``V = 0`` fixed on
    terminal states (so gamma = 1 works for episodic MDPs).
    """
    _check_mdp(mdp)
    if method not in ("iterative", "exact"):
        raise ValueError(f"method must be 'iterative' or 'exact', got {method!r}")
    _check_horizon(mdp, None, "policy_evaluation")
    P_pi, R_pi = mdp.policy_matrices(policy)  # (S, S'), (S,)
    if method == "iterative":
        V = np.zeros(mdp.S)
        for _ in range(int(max_iterations)):
            V_new = R_pi + mdp.gamma * (P_pi @ V)  # eq. 1.16
            if np.max(np.abs(V_new - V)) < tol:
                return V_new
            V = V_new
        return V
    keep = ~mdp.terminal  # terminal rows become V(s) = 0
    if mdp.sparse:
        A_mat = sp.identity(mdp.S, format="csr") - mdp.gamma * sp.diags(keep * 1.0) @ P_pi
        b = np.where(keep, R_pi, 0.0)
        V = spla.spsolve(A_mat.tocsc(), b)
    else:
        A_mat = np.eye(mdp.S) - mdp.gamma * keep[:, None] * P_pi
        b = np.where(keep, R_pi, 0.0)
        try:
            V = np.linalg.solve(A_mat, b)
        except np.linalg.LinAlgError:
            V = np.full(mdp.S, np.nan)
    V = np.asarray(V, dtype=np.float64)
    if not np.isfinite(V).all():
        raise ValueError(
            "policy_evaluation(method='exact'): I - gamma P_pi is singular; with gamma = 1 the "
            "policy must reach a terminal state from every state"
        )
    return V


def policy_iteration(
    mdp: TabularMDP,
    method: str = "exact",
    tol: float = 1e-10,
    max_iterations: int = 10_000,
    initial_policy: np.ndarray | None = None,
) -> PlanningResult:
    """Policy iteration: evaluate pi_k (eq. 1.17), improve greedily (eq. 1.18), until stable.

    Starts from ``initial_policy`` (default: action 0 everywhere). ``res.iterations`` counts
    policy-improvement steps; ``res.history`` holds V^{pi_0}, V^{pi_1}, ...
    """
    _check_mdp(mdp)
    _check_horizon(mdp, None, "policy_iteration")
    policy = (
        np.zeros(mdp.S, dtype=np.int64) if initial_policy is None else np.asarray(initial_policy)
    )
    history, Q_history, policy_history = [], [], [policy.copy()]
    converged = False
    k = 0
    V = policy_evaluation(mdp, policy, method=method, tol=tol)
    history.append(V)
    Q = mdp.backup(V)
    while k < max_iterations:
        new_policy = greedy(Q, atol=1e-9)  # eq. 1.18
        # keep the old action where it is still (numerically) greedy: guarantees termination
        Q_old = Q[np.arange(mdp.S), policy]
        still_best = Q_old >= Q.max(axis=1) - 1e-9 * np.maximum(1.0, np.abs(Q_old))
        new_policy = np.where(still_best, policy, new_policy)
        k += 1
        Q_history.append(Q)
        if np.array_equal(new_policy, policy):
            converged = True
            break
        policy = new_policy
        policy_history.append(policy.copy())
        V = policy_evaluation(mdp, policy, method=method, tol=tol)
        history.append(V)
        Q = mdp.backup(V)
    return PlanningResult(
        V=V,
        Q=Q,
        policy=greedy(Q, atol=1e-9),
        iterations=k,
        history=history,
        Q_history=Q_history,
        policy_history=policy_history,
        converged=converged,
        deltas=[float(np.max(np.abs(b - a))) for a, b in zip(history, history[1:], strict=False)],
    )


def soft_value_iteration(
    mdp: TabularMDP,
    beta: float,
    horizon: int | None = None,
    tol: float = 1e-10,
    max_iterations: int = 100_000,
    keep_history: bool = True,
) -> PlanningResult:
    """Maximum-entropy value iteration (eqs. 1.34-1.37) with entropy weight ``beta > 0``.

    ``Q_k = R_sa + gamma P V_{k-1}``;  ``V_k = beta log sum_a exp(Q_k / beta)`` (eq. 1.36);
    ``pi_k(a|s) = exp(Q_k(s, a) / beta) / Z`` (eq. 1.37). Computed as a stable log-sum-exp
    (subtract the max first). Terminal states end the episode: V = 0 there, no entropy bonus.
    As beta -> 0 this is value iteration. As beta -> inf the policy becomes uniform in a
    continuing MDP; in an episodic one the entropy bonus itself pays for staying alive, so the
    policy then steers away from terminal states instead.
    """
    _check_mdp(mdp)
    beta = float(beta)
    if not beta > 0 or not np.isfinite(beta):
        raise ValueError(f"beta must be > 0 and finite (entropy weight, eq. 1.22), got {beta}")
    _check_horizon(mdp, horizon, "soft_value_iteration")
    n_max = int(horizon) if horizon is not None else int(max_iterations)
    live = ~mdp.terminal
    V = np.zeros(mdp.S)
    Q = np.zeros((mdp.S, mdp.A))
    history, Q_history, deltas = ([V.copy()] if keep_history else []), [], []
    converged = horizon is not None
    k = 0
    while k < n_max:
        Q = mdp.backup(V)  # eq. 1.34
        Q_max = Q.max(axis=1)
        V_new = Q_max + beta * np.log(np.exp((Q - Q_max[:, None]) / beta).sum(axis=1))  # 1.36
        V_new = np.where(live, V_new, 0.0)
        delta = float(np.max(np.abs(V_new - V)))
        V = V_new
        k += 1
        deltas.append(delta)
        if keep_history:
            history.append(V)
            Q_history.append(Q)
        if horizon is None and delta < tol:
            converged = True
            break
    logits = (Q - Q.max(axis=1, keepdims=True)) / beta
    policy = np.exp(logits)
    policy /= policy.sum(axis=1, keepdims=True)  # eq. 1.37, (S, A)
    return PlanningResult(
        V=V,
        Q=Q,
        policy=policy,
        iterations=k,
        history=history,
        Q_history=Q_history,
        converged=converged,
        deltas=deltas,
    )
