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


def _living_reward(seed: int) -> float:
    """A living reward in [-0.6, -0.1]."""
    return -(0.1 + 0.5 * float(np.random.default_rng(seed).random()))


def _stoch_policy(S: int, A: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(A), size=S)


def _mdp(inputs: Inputs) -> Any:
    from fdrl_lib.tabular import TabularMDP

    return TabularMDP(inputs["P"], inputs["R"], gamma=inputs["gamma"])


# ----------------------------------------------------------------------------------------------
# Expected answers, computed with fdrl_lib.tabular, and the typical wrong answers. A wrong answer
# is stored under "output@mistake" (see spec.Output.mistakes) only where it differs from the right
# one, so feedback names a mistake only when the learner's output matches that variant.

VARIANT_ATOL = 1e-6  # the "values" tolerance: a variant closer than this cannot be told apart


def _add_variant(ref: dict[str, Any], key: str, value: np.ndarray | None) -> None:
    """Store the wrong answer ``ref[key]`` if it is finite and differs from ``ref[output]`` and
    from the variants stored before it (the first one declared names a shared answer)."""
    if value is None:
        return
    value = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(value)):
        return
    output = key.split("@", 1)[0]
    for other in [output] + [k for k in ref if k.startswith(output + "@")]:
        known = ref[other]  # the right answer, or a mistake named earlier (it names this one)
        if value.shape == known.shape and np.allclose(
            value, known, atol=VARIANT_ATOL, rtol=VARIANT_ATOL
        ):
            return
    ref[key] = value


def _lse(x: np.ndarray) -> np.ndarray:
    """log sum_a exp x(s, a), stable: (S, A) -> (S,)."""
    m = x.max(axis=1, keepdims=True)
    return m[:, 0] + np.log(np.sum(np.exp(x - m), axis=1))


def _iterate(
    inputs: Inputs,
    value_of: Any,
    *,
    backups: int | None = None,
    gamma: float | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """From V_0 = 0, ``V <- value_of(Q(V))`` ``backups`` times (None: until it stops changing).

    A learner's loop with a wrong operator, e.g. ``value_of = lambda Q: Q.max(axis=1)`` with
    ``gamma=1``. Returns ``(V, Q of the last backup)``, or None when it did not converge.
    """
    P, R = inputs["P"], inputs["R"]
    gamma = inputs["gamma"] if gamma is None else gamma
    live = ~_mdp(inputs).terminal  # terminal states keep V = 0, as in fdrl_lib.tabular
    V = np.zeros(P.shape[0])
    Q = bellman_backup(P, R, gamma, V)
    for _ in range(backups if backups is not None else 20_000):
        Q = bellman_backup(P, R, gamma, V)  # (S, A)
        with np.errstate(all="ignore"):  # a wrong operator may blow up: that variant is dropped
            V_new = np.where(live, value_of(Q), 0.0)
        if not np.all(np.abs(V_new) < 1e12):  # diverged (or NaN)
            return None
        change = np.max(np.abs(V_new - V))
        V = V_new
        if backups is None and change < 1e-13 * max(1.0, float(np.max(np.abs(V)))):
            return V, Q
    return (V, Q) if backups is not None else None


def _first(result: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray | None:
    return None if result is None else result[0]


def _ref_backup(inputs: Inputs) -> dict[str, Any]:
    V = np.asarray(inputs["V"], dtype=float)
    P, R, gamma = inputs["P"], inputs["R"], inputs["gamma"]
    ref = {"Q": _mdp(inputs).backup(V)}
    _add_variant(ref, "Q@no_discount", bellman_backup(P, R, 1.0, V))
    _add_variant(ref, "Q@gamma_on_reward", np.sum(P * (gamma * R + V[None, None, :]), axis=2))
    _add_variant(ref, "Q@gamma_on_everything", gamma * np.sum(P * (R + V[None, None, :]), axis=2))
    _add_variant(ref, "Q@reward_not_weighted", R.sum(axis=2) + gamma * (P @ V))
    _add_variant(ref, "Q@value_of_this_state", np.sum(P * R, axis=2) + gamma * V[:, None])
    return ref


def _max_over_actions(Q: np.ndarray) -> np.ndarray:
    return Q.max(axis=1)


def _ref_value_iteration(inputs: Inputs) -> dict[str, Any]:
    from fdrl_lib.tabular import value_iteration

    H = inputs.get("horizon")
    res = value_iteration(_mdp(inputs), horizon=H, tol=1e-13)
    ref = {"V": res.V, "Q": res.Q}  # Q of the last backup: the greedy policy's yardstick
    if H is not None:  # to tolerance, one backup more or less stays within tolerance
        _add_variant(
            ref, "V@too_few_backups", _first(_iterate(inputs, _max_over_actions, backups=H - 1))
        )
        _add_variant(
            ref, "V@too_many_backups", _first(_iterate(inputs, _max_over_actions, backups=H + 1))
        )
        _add_variant(
            ref, "V@no_discount", _first(_iterate(inputs, _max_over_actions, backups=H, gamma=1.0))
        )
    if H == 1:  # after one backup the max over states has shape (A,); later backups crash
        Q_1 = bellman_backup(inputs["P"], inputs["R"], inputs["gamma"], np.zeros(res.V.shape))
        _add_variant(ref, "V@max_over_states", Q_1.max(axis=0))
    return ref


def _ref_policy_evaluation(inputs: Inputs) -> dict[str, Any]:
    from fdrl_lib.tabular import policy_evaluation

    P, R, policy = inputs["P"], inputs["R"], np.asarray(inputs["policy"])
    A = P.shape[1]
    ref = {"V": policy_evaluation(_mdp(inputs), policy, method="exact")}
    if policy.ndim == 2:
        _add_variant(
            ref,
            "V@stochastic_as_greedy",
            policy_evaluation(_mdp(inputs), policy.argmax(axis=1), method="exact"),
        )
    probs = np.eye(A)[policy.astype(int)] if policy.ndim == 1 else policy  # (S, A)
    R_pi = np.einsum("sa,sat,sat->s", probs, P, R)  # (S,): one sweep from V = 0
    P_pi = np.einsum("sa,sat->st", probs, P)  # (S, S')
    transposed = np.linalg.solve(np.eye(len(R_pi)) - inputs["gamma"] * P_pi.T, R_pi)
    if np.allclose(transposed, R_pi, atol=VARIANT_ATOL, rtol=VARIANT_ATOL):  # can't tell apart
        _add_variant(ref, "V@one_sweep_or_transposed", R_pi)
    else:
        _add_variant(ref, "V@transposed", transposed)
        _add_variant(ref, "V@one_sweep", R_pi)
    return ref


def _ref_policy_iteration(inputs: Inputs) -> dict[str, Any]:
    from fdrl_lib.tabular import policy_evaluation, policy_iteration

    mdp = _mdp(inputs)
    res = policy_iteration(mdp)
    ref = {"V": res.V, "Q": mdp.backup(res.V)}
    first = np.zeros(mdp.S, dtype=int)  # pi_0 = action 0 everywhere, as the docstring says
    _add_variant(ref, "V@first_policy_only", policy_evaluation(mdp, first, method="exact"))
    return ref


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _ref_soft_value_iteration(inputs: Inputs) -> dict[str, Any]:
    from fdrl_lib.tabular import soft_value_iteration

    beta, H = float(inputs["beta"]), inputs.get("horizon")
    res = soft_value_iteration(_mdp(inputs), beta, horizon=H, tol=1e-13)
    ref = {"V": res.V, "pi": res.policy}
    wrong_soft_max = {  # eq. 1.36 is V = beta * lse(Q / beta); typical slips:
        "V@no_temperature": _lse,
        "V@beta_outside_only": lambda Q: beta * _lse(Q),
        "V@beta_inside_only": lambda Q: _lse(Q / beta),
        "V@stable_lse_without_beta": lambda Q: (
            Q.max(axis=1) + _lse((Q - Q.max(axis=1, keepdims=True)) / beta)
        ),
        "V@hard_max": _max_over_actions,
    }
    for key, value_of in wrong_soft_max.items():
        _add_variant(ref, key, _first(_iterate(inputs, value_of, backups=H)))
    # pi is judged only when V is right, so its variants use the right last backup's Q
    Q = res.Q  # (S, A)
    _add_variant(ref, "pi@no_temperature", _softmax(Q))
    _add_variant(ref, "pi@beta_multiplies", _softmax(beta * Q))
    _add_variant(ref, "pi@greedy", np.eye(Q.shape[1])[Q.argmax(axis=1)])
    return ref


# ----------------------------------------------------------------------------------------------
# The exercises. Case names say what differs, so a failed case points at the bug.

BOOK_S = 12  # 11 cells of the 3x4 book grid + the terminal state

# What each typical mistake is and what to change (shown when the learner's output matches the
# variant the reference computed under that key; see spec.Output.mistakes).
NO_DISCOUNT_BACKUP = (
    "your backup ignores gamma: Q(s, a) = sum_s' P(s'|s, a) (R(s, a, s') + gamma V(s')) (eq. 1.7)"
)
TEMPERATURE = "eq. 1.36: V(s) = beta log sum_a exp(Q(s, a) / beta)"
OVERFLOW = (
    "exp(Q / beta) overflows for a small beta: subtract the max first, "
    "V = m + beta log sum_a exp((Q - m) / beta) with m = max_a Q (a stable log-sum-exp), and "
    "the same shift in the softmax"
)
SOFTMAX_POLICY = "eq. 1.37: pi(a|s) = exp(Q(s, a) / beta) / sum_a' exp(Q(s, a') / beta)"

EXERCISES = (
    Exercise(
        number="1.1",
        title="The Bellman backup",
        function="bellman_backup",
        args=("P", "R", "gamma", "V"),
        kwargs=(),
        outputs=(
            Output(
                "Q",
                "values",
                shape="(S, A)",
                mistakes=(
                    ("Q@no_discount", NO_DISCOUNT_BACKUP),
                    (
                        "Q@gamma_on_reward",
                        "you discounted the reward: gamma multiplies only the next state's "
                        "value, R(s, a, s') + gamma V(s') (eq. 1.7)",
                    ),
                    (
                        "Q@gamma_on_everything",
                        "you discounted the reward too: gamma multiplies only V(s'), "
                        "Q(s, a) = sum_s' P(s'|s, a) (R(s, a, s') + gamma V(s')) (eq. 1.7)",
                    ),
                    (
                        "Q@reward_not_weighted",
                        "you summed R(s, a, s') over s' without weighting it by P(s'|s, a): "
                        "the expected reward is sum_s' P(s'|s, a) R(s, a, s') (eq. 1.7)",
                    ),
                    (
                        "Q@value_of_this_state",
                        "you used V of the current state s instead of the next state s': sum "
                        "over s' of P(s'|s, a) gamma V(s'), i.e. P @ V (eq. 1.7)",
                    ),
                ),
                hint="Q(s, a) = sum_s' P(s'|s, a) (R(s, a, s') + gamma V(s')) for every s and a: "
                "weight each next state's reward plus discounted value by its probability "
                "(eq. 1.7)",
            ),
        ),
        reference=_ref_backup,
        equations="eq. 1.7 (the sum inside the max) and eq. 1.12",
        cases=(
            Case("book grid, gamma=0.9, V = 0", lambda: _with(grid_inputs(), V=np.zeros(BOOK_S))),
            Case(
                "random MDP (S=7, A=3), gamma=0.9, random V, R depends on s'",
                lambda: _with(random_inputs(12), V=_random_V(7, 1)),
            ),
            Case(
                "random MDP (S=7, A=3), gamma=0.5, random V",
                lambda seed=11: _with(random_inputs(seed, gamma=0.5), V=_random_V(7, seed + 1)),
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
        outputs=(
            Output(
                "V",
                "values",
                mistakes=(
                    (
                        "V@too_few_backups",
                        "you did H-1 backups; start from V_0 = 0, then do exactly H backups "
                        "and return V_H (Algorithm 1)",
                    ),
                    (
                        "V@too_many_backups",
                        "you did H+1 backups; start from V_0 = 0, then do exactly H backups "
                        "and return V_H (Algorithm 1)",
                    ),
                    ("V@no_discount", NO_DISCOUNT_BACKUP),
                    (
                        "V@max_over_states",
                        "you took the max over states (axis 0): V(s) = max_a Q(s, a) is a max "
                        "over actions, Q.max(axis=1) (eq. 1.7)",
                    ),
                ),
                hint="V_0 = 0, then V_{k+1}(s) = max_a Q(s, a) with Q the backup of V_k "
                "(eq. 1.7); exactly H backups with a horizon, else until max |V_{k+1} - V_k| "
                "< tol",
            ),
            Output(
                "policy",
                "greedy",
                hint="V is right but policy is not greedy: policy(s) = argmax_a Q(s, a) of the "
                "last backup (the Q whose max is V)",
            ),
        ),
        reference=_ref_value_iteration,
        equations="Algorithm 1 and eq. 1.7 (V_0 = 0, then H backups)",
        isolate=("bellman_backup",),
        cases=(
            Case("book grid, horizon H=1", lambda: _with(grid_inputs(), horizon=1), grid="book"),
            Case("book grid, horizon H=5", lambda: _with(grid_inputs(), horizon=5), grid="book"),
            Case("book grid, to tolerance", lambda: grid_inputs(), grid="book"),
            Case(
                "random MDP (S=7, A=3), gamma=0.95, horizon H=3",
                lambda seed=21: _with(random_inputs(seed, gamma=0.95), horizon=3),
                hidden=True,
            ),
            Case(
                "random MDP (S=7, A=3), gamma=0.8, to tolerance",
                lambda seed=22: random_inputs(seed, gamma=0.8),
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
        outputs=(
            Output(
                "V",
                "values",
                mistakes=(
                    (
                        "V@stochastic_as_greedy",
                        "you evaluated only each state's most likely action; eq. 1.16 averages "
                        "over pi(a|s): V(s) = sum_a pi(a|s) sum_s' P(s'|s, a) (R + gamma V(s'))",
                    ),
                    (
                        "V@transposed",
                        "you multiplied V by the transposed transition matrix: the update is "
                        "V(s) = R_pi(s) + gamma sum_s' P_pi(s, s') V(s'), i.e. P_pi @ V, "
                        "not P_pi.T @ V (eq. 1.14 / 1.16)",
                    ),
                    (
                        "V@one_sweep_or_transposed",
                        "your V is the expected one-step reward R_pi: either you stopped after "
                        "one sweep (repeat eq. 1.14 / 1.16 until max |V_{k+1} - V_k| < tol) or "
                        "you multiplied by P_pi.T instead of P_pi (V = R_pi + gamma P_pi @ V)",
                    ),
                    (
                        "V@one_sweep",
                        "you stopped after one sweep (V = the expected one-step reward); repeat "
                        "the update of eq. 1.14 / 1.16 until max |V_{k+1} - V_k| < tol",
                    ),
                ),
                hint="V^pi is the fixed point of eq. 1.14 (deterministic policy) / eq. 1.16 "
                "(stochastic policy, averaged over pi(a|s)): iterate until it stops changing",
            ),
        ),
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
                lambda seed=31: _with(random_inputs(seed), policy=_det_policy(7, 3, seed + 1)),
                hidden=True,
            ),
            Case(
                "random MDP (S=7, A=3), stochastic policy",
                lambda seed=32: _with(random_inputs(seed), policy=_stoch_policy(7, 3, seed + 1)),
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
        outputs=(
            Output(
                "V",
                "values",
                mistakes=(
                    (
                        "V@first_policy_only",
                        "you returned the value of the first policy (action 0 everywhere); "
                        "repeat evaluation (eq. 1.17) and greedy improvement (eq. 1.18) until "
                        "the policy stops changing",
                    ),
                ),
                hint="alternate evaluation (eq. 1.17) and greedy improvement (eq. 1.18) until "
                "the policy stops changing; return that policy's V",
            ),
            Output(
                "policy",
                "greedy",
                hint="V is right but your policy is not greedy with respect to it: "
                "policy(s) = argmax_a sum_s' P(s'|s, a) (R + gamma V(s')) (eq. 1.18); return "
                "the policy whose V you return",
            ),
        ),
        reference=_ref_policy_iteration,
        equations="eq. 1.17 (evaluate) and eq. 1.18 (improve)",
        isolate=("bellman_backup", "policy_evaluation"),
        cases=(
            Case("book grid, gamma=0.9", lambda: grid_inputs(), grid="book"),
            Case(
                "book grid, a negative living reward",
                lambda seed=4: grid_inputs(living_reward=_living_reward(seed)),
                hidden=True,
                grid="book",
            ),
            Case(
                "random MDP (S=7, A=3), gamma=0.9", lambda seed=41: random_inputs(seed), hidden=True
            ),
        ),
    ),
    Exercise(
        number="1.5",
        title="Soft (maximum-entropy) value iteration",
        function="soft_value_iteration",
        args=("P", "R", "gamma", "beta"),
        kwargs=("horizon", "tol"),
        outputs=(
            Output(
                "V",
                "values",
                mistakes=(
                    (
                        "V@stable_lse_without_beta",
                        "your stable log-sum-exp drops the factor beta: with m = max_a Q, "
                        "V = m + beta log sum_a exp((Q - m) / beta); " + TEMPERATURE,
                    ),
                    ("V@no_temperature", "your soft max ignores beta; " + TEMPERATURE),
                    (
                        "V@beta_outside_only",
                        "beta on the wrong side: you wrote beta log sum_a exp(Q), Q must be "
                        "divided by beta inside the exp; " + TEMPERATURE,
                    ),
                    (
                        "V@beta_inside_only",
                        "beta on the wrong side: you wrote log sum_a exp(Q / beta), the log "
                        "must be multiplied by beta; " + TEMPERATURE,
                    ),
                    (
                        "V@hard_max",
                        "you took a hard max over actions; soft value iteration replaces it "
                        "with the soft max of " + TEMPERATURE,
                    ),
                ),
                hint="V_0 = 0, then a soft backup: " + TEMPERATURE + " with Q the backup of V_k; "
                "a terminal state (every action stays, reward 0) keeps V = 0",
                nonfinite=OVERFLOW,
                shape="(S,)",
            ),
            Output(
                "pi",
                "probs",
                mistakes=(
                    ("pi@no_temperature", "your softmax ignores beta; " + SOFTMAX_POLICY),
                    (
                        "pi@beta_multiplies",
                        "you multiplied Q by beta; divide it: " + SOFTMAX_POLICY,
                    ),
                    ("pi@greedy", "you returned the greedy policy; " + SOFTMAX_POLICY),
                ),
                hint=SOFTMAX_POLICY + ", with Q of the last backup",
                nonfinite=OVERFLOW,
                shape="(S, A)",
            ),
        ),
        reference=_ref_soft_value_iteration,
        equations="eq. 1.36 (soft max over actions) and eq. 1.37 (softmax policy)",
        isolate=("bellman_backup",),
        cases=(
            Case(
                "random MDP (S=7, A=3), beta=1, horizon H=3",
                lambda: _with(random_inputs(51), beta=1.0, horizon=3),
            ),
            Case(
                "book grid (its terminal state keeps V = 0), beta=0.5, to tolerance",
                lambda: _with(grid_inputs(), beta=0.5),
                grid="book",
            ),
            Case(
                "random MDP (S=7, A=3), beta=2, to tolerance",
                lambda seed=53: _with(random_inputs(seed), beta=2.0),
                hidden=True,
            ),
            Case(
                "random MDP (S=5, A=4), beta=0.003 (small: exp(Q / beta) overflows), H=10",
                lambda seed=54: _with(random_inputs(seed, S=5, A=4), beta=0.003, horizon=10),
                hidden=True,
            ),
        ),
        notes="a wrong temperature (e.g. log-sum-exp without the factor beta) passes only "
        "the beta=1 case and the tiny-beta one (where the log term vanishes): it costs 2 of 4 "
        "points; a naive exp(Q / beta) overflows at beta = 0.003: 1 of 4",
    ),
)

LECTURE = Lecture(
    name="01_mdps",
    title="Lecture 1: MDPs and exact solution methods",
    exercises=EXERCISES,
    kernel_references=KERNEL_REFERENCES,
    library=(
        *(
            f"fdrl_lib.tabular.planning:{name}"
            for name in (
                "value_iteration",
                "q_value_iteration",
                "policy_evaluation",
                "policy_iteration",
                "soft_value_iteration",
            )
        ),
        "fdrl_lib.tabular.mdp:TabularMDP.backup",
        "fdrl_lib.tabular.mdp:TabularMDP.max_backup",
        "fdrl_lib.tabular.gridworld:_GridMDP.max_backup",
    ),
)
