"""A checks module written the way lectures 3-6 write theirs (docs/grading.md's worked example).

Three exercises on the generic pieces: a numpy function with catalogue mistakes (returns that
must restart at episode ends), a torch loss graded by value and gradient through the adapter
(sign flipped, gradient into a target), and conjugate gradient fed a callable Fisher-vector
product (the adapter turns a matrix input into ``v -> F v`` and counts the calls).
"""

from __future__ import annotations

import numpy as np

from fdrl_lib.grading.adapters import adapter, torch_reference
from fdrl_lib.grading.mistakes import (
    GRADIENT_INTO_TARGET,
    IGNORES_TERMINATED,
    SIGN_FLIPPED,
    SUM_CROSSES_EPISODE_END,
)
from fdrl_lib.grading.spec import Exercise, Lecture, Output, case

# --- inputs: seeded makers; a hidden case's seed comes from the instructor's secret ----------


def episodes(seed: int, T: int = 12, gamma: float = 0.9) -> dict:
    rng = np.random.default_rng(seed)
    terminated, truncated = np.zeros(T, bool), np.zeros(T, bool)
    terminated[rng.integers(2, T // 2)] = True  # at least one episode end of each kind
    truncated[rng.integers(T // 2, T - 1)] = True
    return {
        "rewards": np.round(rng.normal(size=T), 2),
        "terminated": terminated,
        "truncated": truncated,
        "last_value": float(np.round(rng.normal(), 2)),
        "gamma": gamma,
    }


def batch(seed: int, B: int = 8, A: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "logits": rng.normal(size=(B, A)),
        "actions": rng.integers(A, size=B),
        "advantages": rng.normal(size=B),
        "values": rng.normal(size=B),
        "targets": rng.normal(size=B),
    }


def spd_system(seed: int, n: int = 6) -> dict:
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(n, n))
    return {"fvp": M @ M.T + n * np.eye(n), "g": rng.normal(size=n), "iters": n}


# --- references: the correct implementation, written once ------------------------------------


def _returns(inputs: dict) -> dict:
    r, term, trunc = inputs["rewards"], inputs["terminated"], inputs["truncated"]
    G, running = np.zeros(len(r)), inputs["last_value"]  # bootstrap from V(s_T) at the end
    for t in reversed(range(len(r))):
        if term[t] or trunc[t]:
            running = 0.0  # a new episode starts after t (a truncation's V(s') is not given)
        running = r[t] + inputs["gamma"] * running
        G[t] = running
    return {"G": G}


def _pg_loss(logits, actions, advantages, values, targets, mistake=None):  # noqa: ANN001, ANN201
    import torch

    logp = torch.log_softmax(logits, dim=1).gather(1, actions[:, None]).squeeze(1)
    target = targets if mistake == "gradient_into_target" else targets.detach()
    return -(logp * advantages).mean() + 0.5 * ((values - target) ** 2).mean()


NAMES = ("logits", "actions", "advantages", "values", "targets")
GRAD = ("logits", "values", "targets")


def _ref_pg(inputs: dict, mistake: str | None = None) -> dict:
    def loss(*args):  # noqa: ANN002, ANN202
        return _pg_loss(*args, mistake=mistake)

    outputs = ("loss", "grad_logits", "grad_values", "grad_targets")
    return torch_reference(loss, inputs, NAMES, outputs, grad=GRAD)


def _ref_cg(inputs: dict) -> dict:
    return {"x": np.linalg.solve(inputs["fvp"], inputs["g"]), "calls": float(inputs["iters"])}


# --- the exercises ---------------------------------------------------------------------------

EXERCISES = (
    Exercise(
        number="9.1",
        title="Discounted returns within episodes",
        function="returns",
        args=("rewards", "terminated", "truncated", "last_value", "gamma"),
        kwargs=(),
        outputs=(Output("G", "values"),),
        reference=_returns,
        variants=(SUM_CROSSES_EPISODE_END, IGNORES_TERMINATED),
        equations="eq. 4.2",
        cases=(
            case("12 steps, one termination, one truncation", episodes, seed=1),
            case("30 steps, gamma=0.5", episodes, seed=2, T=30, gamma=0.5, hidden=True),
        ),
    ),
    Exercise(
        number="9.2",
        title="Policy-gradient loss with a value baseline",
        function="pg_loss",
        args=NAMES,
        kwargs=(),
        outputs=tuple(
            Output(n, "values", atol=1e-8)
            for n in ("loss", "grad_logits", "grad_values", "grad_targets")
        ),
        reference=_ref_pg,
        wrapper=adapter(grad=GRAD),
        variants=(SIGN_FLIPPED, GRADIENT_INTO_TARGET),
        equations="eq. 4.7",
        cases=(
            case("B=8, A=3", batch, seed=1),
            case("B=32, A=5", batch, seed=2, B=32, A=5, hidden=True),
        ),
    ),
    Exercise(
        number="9.3",
        title="Conjugate gradient with a Fisher-vector product",
        function="conjugate_gradient",
        args=("fvp", "g", "iters"),
        kwargs=(),
        outputs=(Output("x", "values", atol=1e-6), Output("calls", "values")),
        reference=_ref_cg,
        wrapper=adapter(torch=False, callables={"fvp": "matvec"}, count_calls=True),
        equations="Algorithm 5",
        cases=(
            case("n=6", spd_system, seed=1),
            case("n=10", spd_system, seed=2, n=10, hidden=True),
        ),
    ),
)

DEMO = Lecture(name="09_demo", title="Demo: the grading framework", exercises=EXERCISES)
