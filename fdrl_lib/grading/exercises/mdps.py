"""Lecture 1 exercises (``solutions/01_mdps.ipynb``): the single source of their checks.

Five learner functions on plain numpy arrays, ``P: (S, A, S')``, ``R: (S, A, S')``:

- 1.1 ``bellman_backup(P, R, gamma, V) -> Q (S, A)``               eq. 1.7 inside the max, eq. 1.12
- 1.2 ``value_iteration(P, R, gamma, horizon=None, tol=1e-10) -> (V, policy)``    Algorithm 1
- 1.3 ``policy_evaluation(P, R, gamma, policy, tol=1e-10) -> V``           eqs. 1.14 and 1.16
- 1.4 ``policy_iteration(P, R, gamma) -> (V, policy)``                    eqs. 1.17-1.18
- 1.5 ``soft_value_iteration(P, R, gamma, beta, horizon=None, tol=1e-10) -> (V, pi)``
                                                                            eqs. 1.36-1.37

Expected answers come from ``fdrl_lib.tabular`` (tested on its own). Each case is worth one point;
a case scores only when every output is right. Where an exercise may call an earlier one
(value iteration calls ``bellman_backup``, policy iteration calls ``policy_evaluation``), the
grader swaps in the reference versions below while it checks the later exercise, so one bug
costs the points of the exercise that holds it, never twice.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from fdrl_lib.grading.spec import Case, Exercise, Inputs, Lecture, Output

# ----------------------------------------------------------------------------------------------
# Reference functions that run inside the learner's kernel while a LATER exercise is checked
# (isolation). Self-contained: numpy only, imported inside, so their source can be sent as text.


def bellman_backup(P, R, gamma, V):  # noqa: ANN001, ANN201 (sent as source into the kernel)
    import numpy as np

    return np.einsum("ijk,ijk->ij", P, R) + gamma * (P @ V)  # (S, A)


def policy_evaluation(P, R, gamma, policy, tol=1e-10):  # noqa: ANN001, ANN201
    import numpy as np

    S, A = P.shape[:2]
    policy = np.asarray(policy)
    probs = np.eye(A)[policy.astype(int)] if policy.ndim == 1 else policy  # (S, A)
    P_pi = np.einsum("ij,ijk->ik", probs, P)  # (S, S')
    R_pi = np.einsum("ij,ijk,ijk->i", probs, P, R)  # (S,)
    return np.linalg.solve(np.eye(S) - gamma * P_pi, R_pi)


KERNEL_REFERENCES = {
    "bellman_backup": inspect.getsource(bellman_backup),
    "policy_evaluation": inspect.getsource(policy_evaluation),
}

# ----------------------------------------------------------------------------------------------
# Inputs: the book grid (states are cells) and small random MDPs (no terminal states, so the
# soft-value convention at terminals never matters).


def grid_inputs(gamma: float = 0.9, noise: float = 0.2, living_reward: float = 0.0) -> Inputs:
    """``P, R, gamma`` of ``GridWorld.book()``; R (S, A, S') repeats the expected reward."""
    from fdrl_lib.tabular import GridWorld

    mdp = GridWorld.book(noise=noise, living_reward=living_reward, gamma=gamma).mdp
    P = np.asarray(mdp.P.toarray() if hasattr(mdp.P, "toarray") else mdp.P, dtype=float)
    R = np.repeat(np.asarray(mdp.R, dtype=float)[:, :, None], mdp.S, axis=2)
    return {"P": P, "R": R, "gamma": float(gamma)}


def random_inputs(seed: int, S: int = 7, A: int = 3, gamma: float = 0.9) -> Inputs:
    """A dense random MDP: Dirichlet transition rows, standard-normal rewards."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S), size=(S, A))  # (S, A, S')
    R = rng.normal(size=(S, A, S))
    return {"P": P, "R": R, "gamma": float(gamma)}


def _with(inputs: Inputs, **more: Any) -> Inputs:
    return {**inputs, **more}


def _random_V(S: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=S)


def _det_policy(S: int, A: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(A, size=S)


def _stoch_policy(S: int, A: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(A), size=S)


def _mdp(inputs: Inputs) -> Any:
    from fdrl_lib.tabular import TabularMDP

    return TabularMDP(inputs["P"], inputs["R"], gamma=inputs["gamma"])


# ----------------------------------------------------------------------------------------------
# Expected answers, computed with fdrl_lib.tabular.


def _ref_backup(inputs: Inputs) -> dict[str, Any]:
    return {"Q": _mdp(inputs).backup(np.asarray(inputs["V"], dtype=float))}


def _ref_value_iteration(inputs: Inputs) -> dict[str, Any]:
    from fdrl_lib.tabular import value_iteration

    res = value_iteration(_mdp(inputs), horizon=inputs.get("horizon"), tol=1e-13)
    return {"V": res.V, "Q": res.Q}  # Q of the last backup: the greedy policy's yardstick


def _ref_policy_evaluation(inputs: Inputs) -> dict[str, Any]:
    from fdrl_lib.tabular import policy_evaluation

    return {"V": policy_evaluation(_mdp(inputs), inputs["policy"], method="exact")}


def _ref_policy_iteration(inputs: Inputs) -> dict[str, Any]:
    from fdrl_lib.tabular import policy_iteration

    mdp = _mdp(inputs)
    res = policy_iteration(mdp)
    return {"V": res.V, "Q": mdp.backup(res.V)}


def _ref_soft_value_iteration(inputs: Inputs) -> dict[str, Any]:
    from fdrl_lib.tabular import soft_value_iteration

    res = soft_value_iteration(
        _mdp(inputs), inputs["beta"], horizon=inputs.get("horizon"), tol=1e-13
    )
    return {"V": res.V, "pi": res.policy}


# ----------------------------------------------------------------------------------------------
# The exercises. Case names say what differs, so a failed case points at the bug.

BOOK_S = 12  # 11 cells of the 3x4 book grid + the terminal state

EXERCISES = (
    Exercise(
        number="1.1",
        title="The Bellman backup",
        function="bellman_backup",
        args=("P", "R", "gamma", "V"),
        kwargs=(),
        outputs=(Output("Q", "values"),),
        reference=_ref_backup,
        equations="eq. 1.7 (the sum inside the max) and eq. 1.12",
        cases=(
            Case("book grid, gamma=0.9, V = 0", lambda: _with(grid_inputs(), V=np.zeros(BOOK_S))),
            Case(
                "book grid, gamma=0.9, random V",
                lambda: _with(grid_inputs(), V=_random_V(BOOK_S, 1)),
            ),
            Case(
                "random MDP (S=7, A=3), gamma=0.5, random V",
                lambda: _with(random_inputs(11, gamma=0.5), V=_random_V(7, 2)),
                hidden=True,
            ),
        ),
        notes="forgetting gamma costs the two cases with V != 0 (2 of 3 points)",
    ),
    Exercise(
        number="1.2",
        title="Value iteration",
        function="value_iteration",
        args=("P", "R", "gamma"),
        kwargs=("horizon", "tol"),
        outputs=(Output("V", "values"), Output("policy", "greedy")),
        reference=_ref_value_iteration,
        equations="Algorithm 1 and eq. 1.7 (V_0 = 0, then H backups)",
        isolate=("bellman_backup",),
        cases=(
            Case("book grid, horizon H=1", lambda: _with(grid_inputs(), horizon=1), grid="book"),
            Case("book grid, horizon H=5", lambda: _with(grid_inputs(), horizon=5), grid="book"),
            Case("book grid, to tolerance", lambda: grid_inputs(), grid="book"),
            Case(
                "random MDP (S=7, A=3), gamma=0.95, horizon H=3",
                lambda: _with(random_inputs(21, gamma=0.95), horizon=3),
                hidden=True,
            ),
            Case(
                "random MDP (S=7, A=3), gamma=0.8, to tolerance",
                lambda: random_inputs(22, gamma=0.8),
                hidden=True,
            ),
        ),
        notes="an off-by-one horizon costs the three horizon cases (3 of 5 points); "
        "a max over the wrong axis costs all 5",
    ),
    Exercise(
        number="1.3",
        title="Policy evaluation",
        function="policy_evaluation",
        args=("P", "R", "gamma", "policy"),
        kwargs=("tol",),
        outputs=(Output("V", "values"),),
        reference=_ref_policy_evaluation,
        equations="eq. 1.14 (deterministic policy) and eq. 1.16 (stochastic policy)",
        cases=(
            Case(
                "book grid, deterministic policy: always 'right'",
                lambda: _with(grid_inputs(), policy=np.ones(BOOK_S, dtype=np.int64)),
                grid="book",
            ),
            Case(
                "book grid, stochastic policy: uniformly random",
                lambda: _with(grid_inputs(), policy=np.full((BOOK_S, 4), 0.25)),
                grid="book",
            ),
            Case(
                "random MDP (S=7, A=3), deterministic policy",
                lambda: _with(random_inputs(31), policy=_det_policy(7, 3, 3)),
                hidden=True,
            ),
            Case(
                "random MDP (S=7, A=3), stochastic policy",
                lambda: _with(random_inputs(32), policy=_stoch_policy(7, 3, 4)),
                hidden=True,
            ),
        ),
        notes="ignoring the stochastic case (eq. 1.16) costs 2 of 4 points",
    ),
    Exercise(
        number="1.4",
        title="Policy iteration",
        function="policy_iteration",
        args=("P", "R", "gamma"),
        kwargs=(),
        outputs=(Output("V", "values"), Output("policy", "greedy")),
        reference=_ref_policy_iteration,
        equations="eq. 1.17 (evaluate) and eq. 1.18 (improve)",
        isolate=("bellman_backup", "policy_evaluation"),
        cases=(
            Case("book grid, gamma=0.9", lambda: grid_inputs(), grid="book"),
            Case(
                "book grid, living reward -0.4",
                lambda: grid_inputs(living_reward=-0.4),
                hidden=True,
                grid="book",
            ),
            Case("random MDP (S=7, A=3), gamma=0.9", lambda: random_inputs(41), hidden=True),
        ),
    ),
    Exercise(
        number="1.5",
        title="Soft (maximum-entropy) value iteration",
        function="soft_value_iteration",
        args=("P", "R", "gamma", "beta"),
        kwargs=("horizon", "tol"),
        outputs=(Output("V", "values"), Output("pi", "probs")),
        reference=_ref_soft_value_iteration,
        equations="eq. 1.36 (soft max over actions) and eq. 1.37 (softmax policy)",
        isolate=("bellman_backup",),
        cases=(
            Case(
                "random MDP (S=7, A=3), beta=1, horizon H=3",
                lambda: _with(random_inputs(51), beta=1.0, horizon=3),
            ),
            Case(
                "random MDP (S=7, A=3), beta=0.5, to tolerance",
                lambda: _with(random_inputs(52), beta=0.5),
            ),
            Case(
                "random MDP (S=7, A=3), beta=2, to tolerance",
                lambda: _with(random_inputs(53), beta=2.0),
                hidden=True,
            ),
            Case(
                "random MDP (S=5, A=4), beta=0.1, horizon H=10",
                lambda: _with(random_inputs(54, S=5, A=4), beta=0.1, horizon=10),
                hidden=True,
            ),
        ),
        notes="a wrong temperature (e.g. log-sum-exp without the factor beta) passes only "
        "the beta=1 case: it costs 3 of 4 points",
    ),
)

LECTURE = Lecture(
    name="01_mdps",
    title="Lecture 1: MDPs and exact solution methods",
    exercises=EXERCISES,
    kernel_references=KERNEL_REFERENCES,
)
