"""Lecture 6's graded exercise (notebook ``06_model_based``): four pieces of model-based RL, each
checked on seeded inputs, with the typical bug named when an answer matches it.

| | Learner writes | Lecture | Named mistakes |
|---|---|---|---|
| 6.1 | ``fit_dynamics``: a linear model of the state change, ridge least squares | section 6.1 | next state fitted without the residual |
| 6.2 | ``disagreement``: spread of an ensemble's predictions | sections 6.2, 6.3 | variance for std, divides by K, no standardisation |
| 6.3 | ``imagine``: roll-outs in an ensemble of linear models, one model per trajectory | section 6.1, Algorithms 8-9 | switches models mid-trajectory, no residual |
| 6.4 | ``keep_improving``: ME-TRPO's validation rule | Algorithm 8 | one model only, averaged returns, strict inequality |

Randomness is an input (seeded data, fixed model assignments), so every answer has one right
value. 6.4's reference is the library's ``fdrl_lib.algos.me_trpo.keep_improving``; 6.2's equals
``fdrl_lib.dynamics.disagreement`` on a real ensemble (tests/test_grading_lecture6.py); 6.1 and
6.3 are closed forms checked there against a known linear system and a hand-written loop.
"""  # noqa: E501

from __future__ import annotations

import numpy as np

from fdrl_lib.grading.mistakes import Mistake
from fdrl_lib.grading.spec import Exercise, Lecture, Output, case

# --- inputs: seeded makers (a hidden case's seed comes from the instructor's secret) ----------


def transitions(seed: int, B: int = 40, d: int = 3, m: int = 1, reg: float = 1e-3) -> dict:
    """B noisy transitions of a linear system ``s' = s + s A + a Bm + c + noise``."""
    rng = np.random.default_rng(seed)
    A, Bm, c = 0.1 * rng.normal(size=(d, d)), rng.normal(size=(m, d)), 0.1 * rng.normal(size=d)
    obs, actions = rng.normal(size=(B, d)), rng.uniform(-2, 2, size=(B, m))
    next_obs = obs + obs @ A + actions @ Bm + c + 0.01 * rng.normal(size=(B, d))
    return {"obs": obs, "actions": actions, "next_obs": next_obs, "reg": reg}


def predictions(seed: int, K: int = 5, B: int = 8, d: int = 3) -> dict:
    """K members' predicted changes for B inputs; dimensions on very different scales."""
    rng = np.random.default_rng(seed)
    scale = np.round(10.0 ** rng.uniform(-1.5, 1.0, size=d), 3)
    spread = rng.uniform(0.05, 1.0, size=(1, B, 1))  # some inputs far from the data
    preds = scale * (rng.normal(size=(1, B, d)) + spread * rng.normal(size=(K, B, d)))
    return {"predictions": preds, "scale": scale}


def linear_ensemble(
    seed: int, K: int = 3, N: int = 4, d: int = 2, m: int = 1, horizon: int = 5
) -> dict:
    """K linear residual models, a linear policy, N starts and each trajectory's member."""
    rng = np.random.default_rng(seed)
    members = np.concatenate([np.arange(K), rng.integers(K, size=max(N - K, 0))])[:N]
    return {"start_obs": rng.normal(size=(N, d)), "members": rng.permutation(members),
            "A": 0.2 * rng.normal(size=(K, d, d)), "B": 0.3 * rng.normal(size=(K, m, d)),
            "gain": 0.3 * rng.normal(size=(d, m)), "horizon": horizon}  # fmt: skip


def validations(seed: int, R: int = 12, K: int = 5, fraction: float = 0.6) -> dict:
    """R validation rounds of K model returns before and after updates. Some rounds have
    exactly ``fraction`` of the models improving; model 0 says the opposite of the rule
    whenever the models disagree; with one model improving it promises a huge gain."""
    rng = np.random.default_rng(seed)
    previous = np.round(rng.uniform(-800, -200, size=(R, K)), 1)
    need = int(np.ceil(fraction * K - 1e-9))  # models that must improve
    counts = rng.permutation(np.resize([need, need - 1, K, 1, need, 0], R))
    gain = np.zeros((R, K))
    for r, n in enumerate(counts):
        better, others = np.zeros(K, bool), 1 + rng.permutation(K - 1)
        if 0 < n < K:  # model 0 says the opposite of the rule
            better[others[: n if n >= need else n - 1]] = True
            better[0] = n < need
        else:
            better[rng.permutation(K)[:n]] = True
        gain[r] = np.where(better, rng.uniform(1, 50, size=K), -rng.uniform(1, 50, size=K))
        if n == 1:  # one exploited model promises a huge gain
            gain[r, better] = 5_000.0
    return {"previous": previous, "current": np.round(previous + gain, 1), "fraction": fraction}


# --- references --------------------------------------------------------------------------------


def _features(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    return np.concatenate([obs, actions, np.ones((len(obs), 1))], axis=1)  # (B, d + m + 1)


def _ref_fit(inputs: dict, mistake: str | None = None) -> dict:
    obs, actions, next_obs, reg = (inputs[k] for k in ("obs", "actions", "next_obs", "reg"))
    X = _features(obs, actions)
    target = next_obs if mistake == "no_residual" else next_obs - obs  # (B, d): s' - s
    W = np.linalg.solve(X.T @ X + reg * np.eye(X.shape[1]), X.T @ target)
    return {"W": W}


NO_RESIDUAL_FIT = Mistake(
    "no_residual",
    "your model predicts the next state s' itself, not its change: fit the targets "
    "next_obs - obs, so that s' = s + f(s, a) (section 6.1: a small residual is easier to learn "
    "than the whole next state)",
)


def _ref_disagreement(inputs: dict, mistake: str | None = None) -> dict:
    preds, scale = inputs["predictions"], inputs["scale"]
    standardised = preds if mistake == "unscaled" else preds / scale  # (K, B, d)
    ddof = 0 if mistake == "divides_by_k" else 1
    spread = standardised.var(axis=0, ddof=ddof)
    spread = spread if mistake == "variance" else np.sqrt(spread)
    return {"disagreement": spread.mean(axis=-1)}  # (B,)


VARIANCE = Mistake(
    "variance",
    "you returned the variance over the members; the disagreement is their standard deviation "
    "(take the square root before averaging over dimensions)",
)
DIVIDES_BY_K = Mistake(
    "divides_by_k",
    "you divided by K (the population std); use the sample std over the K members, dividing by "
    "K - 1 (numpy: ddof=1, torch's default)",
)
UNSCALED = Mistake(
    "unscaled",
    "you did not standardise: divide each dimension by its scale before the std, otherwise the "
    "dimension with the largest units decides the disagreement alone",
)


def _ref_imagine(inputs: dict, mistake: str | None = None) -> dict:
    s = np.array(inputs["start_obs"], dtype=float)  # (N, d)
    members, A, B, gain = inputs["members"], inputs["A"], inputs["B"], inputs["gain"]
    K, N = len(A), len(s)
    states = [s]
    for t in range(int(inputs["horizon"])):
        k = (members + t) % K if mistake == "switches_models" else members  # (N,)
        action = s @ gain  # (N, m)
        change = np.einsum("nd,nde->ne", s, A[k]) + np.einsum("nm,nme->ne", action, B[k])
        s = change if mistake == "no_residual" else s + change
        states.append(s)
    del N
    return {"states": np.stack(states)}  # (H + 1, N, d)


SWITCHES_MODELS = Mistake(
    "switches_models",
    "your trajectories switch models mid-way: trajectory i must use model members[i] at every "
    "step, so that its return is the policy's return under that one model (ME-TRPO's "
    "validation, MB-MPO's per-model trajectories)",
)
NO_RESIDUAL_STEP = Mistake(
    "no_residual",
    "your next state is the model's output alone: the models predict the change, so "
    "s' = s + s A_k + a B_k (add the residual to the state it started from)",
)


def keep_improving_rounds(keep_improving, previous, current, fraction):  # noqa: ANN001, ANN201
    """Ask the learner's ``keep_improving`` about every validation round (row), in order."""
    import numpy as np

    answers = []
    for r in range(len(previous)):
        answer = keep_improving(np.array(previous[r]), np.array(current[r]), float(fraction))
        if answer is None:
            raise ValueError(f"keep_improving returned None for round {r}; return True or False")
        answers.append(float(bool(np.asarray(answer).item())))
    return np.array(answers)


def _ref_keep(inputs: dict, mistake: str | None = None) -> dict:
    import torch

    from fdrl_lib.algos.me_trpo import keep_improving

    answers = []
    for previous, current in zip(inputs["previous"], inputs["current"], strict=True):
        if mistake == "one_model":
            answers.append(current[0] > previous[0])
        elif mistake == "averaged":
            answers.append(current.mean() > previous.mean())
        elif mistake == "strict":
            answers.append((current > previous).mean() > inputs["fraction"])
        else:
            answers.append(
                keep_improving(torch.tensor(previous), torch.tensor(current), inputs["fraction"])
            )
    return {"keep": np.array(answers, dtype=float)}


ONE_MODEL = Mistake(
    "one_model",
    "your rule looks at one model only: ME-TRPO keeps updating while the policy improves on at "
    "least a fraction of ALL K models (count the models whose return went up), so that no single "
    "model's errors decide (Algorithm 8)",
)
AVERAGED = Mistake(
    "averaged",
    "you compared the models' average return: one exploited model promising a huge gain then "
    "outvotes all the others; count the models that improved instead (Algorithm 8)",
)
STRICT = Mistake(
    "strict",
    "a share of improving models exactly equal to the fraction must keep the updates going "
    "(>= fraction, not >)",
)

EXERCISES = (
    Exercise(
        number="6.1",
        title="Fit a dynamics model of the state change",
        function="fit_dynamics",
        args=("obs", "actions", "next_obs", "reg"),
        kwargs=(),
        outputs=(Output("W", "values", shape="(d + m + 1, d)"),),
        reference=_ref_fit,
        variants=(NO_RESIDUAL_FIT,),
        equations="section 6.1 (model learning, step 2 of the loop)",
        cases=(
            case("B=40, d=3, m=1, reg=0.001", transitions, seed=1),
            case("B=100, d=2, m=2, reg=0.1", transitions, seed=2, B=100, d=2, m=2, reg=0.1),
            case("B=60, d=4, m=1, reg=0.01", transitions, seed=3, B=60, d=4, reg=0.01, hidden=True),
        ),  # fmt: skip
    ),
    Exercise(
        number="6.2",
        title="Ensemble disagreement",
        function="disagreement",
        args=("predictions", "scale"),
        kwargs=(),
        outputs=(Output("disagreement", "values", shape="(B,)"),),
        reference=_ref_disagreement,
        variants=(VARIANCE, DIVIDES_BY_K, UNSCALED),
        equations="sections 6.2-6.3 (ensembles: where the models disagree, the data ran out)",
        cases=(
            case("K=5, B=8, d=3", predictions, seed=1),
            case("K=3, B=20, d=2", predictions, seed=2, K=3, B=20, d=2),
            case("K=7, B=16, d=4", predictions, seed=3, K=7, B=16, d=4, hidden=True),
        ),
    ),
    Exercise(
        number="6.3",
        title="An imagined roll-out, one model per trajectory",
        function="imagine",
        args=("start_obs", "members", "A", "B", "gain", "horizon"),
        kwargs=(),
        outputs=(
            Output(
                "states",
                "values",
                shape="(horizon + 1, N, d)",
                hint="check that trajectory i uses model members[i] at every step, that the "
                "action a_t = s_t gain comes from the imagined state, and that states[0] is "
                "start_obs",
            ),
        ),  # fmt: skip
        reference=_ref_imagine,
        variants=(SWITCHES_MODELS, NO_RESIDUAL_STEP),
        equations="section 6.1 (step 3: improve the policy on imagined roll-outs), Algorithms 8-9",
        cases=(
            case("K=3 models, N=4 trajectories, 5 steps", linear_ensemble, seed=1),
            case(
                "K=2, N=6, d=3, m=2, 8 steps",
                linear_ensemble,
                seed=2,
                K=2,
                N=6,
                d=3,
                m=2,
                horizon=8,
            ),
            case(
                "K=5, N=10, d=2, 6 steps",
                linear_ensemble,
                seed=3,
                K=5,
                N=10,
                horizon=6,
                hidden=True,
            ),
        ),  # fmt: skip
    ),
    Exercise(
        number="6.4",
        title="ME-TRPO's stopping rule",
        function="keep_improving",
        args=("previous", "current", "fraction"),
        kwargs=(),
        outputs=(
            Output(
                "keep",
                "values",
                shape="(one answer per validation round,)",
                hint="count the models whose return went up; keep updating while that share "
                "is at least fraction",
            ),
        ),  # fmt: skip
        reference=_ref_keep,
        wrapper=keep_improving_rounds,
        variants=(ONE_MODEL, AVERAGED, STRICT),
        equations="Algorithm 8 (validation on the K models)",
        cases=(
            case("12 rounds, K=5, fraction=0.6", validations, seed=1),
            case("12 rounds, K=4, fraction=0.75", validations, seed=2, K=4, fraction=0.75),
            case(
                "18 rounds, K=10, fraction=0.7",
                validations,
                seed=3,
                R=18,
                K=10,
                fraction=0.7,
                hidden=True,
            ),
        ),  # fmt: skip
    ),
)

LECTURE = Lecture(
    name="06_model_based",
    title="Lecture 6: model-based RL",
    exercises=EXERCISES,
    library=(
        "fdrl_lib.dynamics:fit_dynamics",
        "fdrl_lib.dynamics:disagreement",
        "fdrl_lib.dynamics:imagine",
        "fdrl_lib.algos.me_trpo:keep_improving",
    ),
)
