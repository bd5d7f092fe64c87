"""Lecture 4's graded exercise (notebook ``04_trpo_ppo``): five pieces of TRPO and PPO, each
checked on seeded inputs, with the typical bug named when an answer matches it.

| | Learner writes | Lecture | Named mistakes |
|---|---|---|---|
| 4.1 | ``surrogate``: the ratio ``r`` and ``L = mean(r A)`` | eqs. 4.3, 4.4, 4.12 | ratio inverted, log-ratio without exp, log-probabilities divided, sum for mean |
| 4.2 | ``clipped_objective``: ``min(r A, clip(r) A)`` per sample | eqs. 4.13, 4.14 | max for min, clipped term only, no clipping |
| 4.3 | ``conjugate_gradient``: ``F^-1 g`` from products ``v -> F v`` | Algorithm 6 | direction never updated from the residual, steepest descent |
| 4.4 | ``gaussian_kl``: ``KL(pi_old || pi)`` of diagonal Gaussians | eqs. 4.10, 4.11 | wrong direction, mean over action dimensions |
| 4.5 | ``adaptive_beta``: Algorithm 7's dual-descent step | eq. 4.11, Algorithm 7 | up and down swapped, no tolerance band |

The references are the library's pure functions (``fdrl_lib.algos.trpo``: ``surrogate``,
``conjugate_gradient``, ``mean_kl``; ``fdrl_lib.algos.ppo``: ``ratio``, ``clipped_surrogate``,
``adaptive_beta``), which have their own tests; ``tests/test_grading_lecture4.py`` checks them
here against hand-worked values, ``numpy.linalg.solve``, a closed form and Monte Carlo. The
wrong variants (the named mistakes) are computed in this module.
"""  # noqa: E501

from __future__ import annotations

import numpy as np

from fdrl_lib.grading.adapters import adapter
from fdrl_lib.grading.mistakes import MAX_FOR_MIN, Mistake
from fdrl_lib.grading.spec import Exercise, Lecture, Output, case

# --- inputs: seeded makers (a hidden case's seed comes from the instructor's secret) ----------


def log_probs(seed: int, B: int = 10, spread: float = 0.4) -> dict:
    """Log-probabilities of B sampled actions under pi_old and under a nearby pi."""
    rng = np.random.default_rng(seed)
    old_log_prob = np.log(rng.uniform(0.05, 0.95, size=B))
    return {"log_prob": old_log_prob + rng.normal(0.0, spread, size=B),
            "old_log_prob": old_log_prob, "advantages": rng.normal(size=B)}  # fmt: skip


def ratios(seed: int, B: int = 12, clip: float = 0.2) -> dict:
    """Ratios inside and outside [1 - clip, 1 + clip] with advantages of both signs."""
    rng = np.random.default_rng(seed)
    r = np.exp(rng.normal(0.0, 2.0 * clip, size=B))
    r[:4] = [1 + 2 * clip, 1 - 2 * clip, 1 + 2 * clip, 1 - 2 * clip]  # each side, each sign
    A = rng.normal(size=B)
    A[:4] = [1.0, -1.0, -1.0, 1.0]
    order = rng.permutation(B)
    return {"ratio": r[order], "advantages": A[order], "clip": clip}


def spd_system(seed: int, n: int = 6, iters: int = 6) -> dict:
    """A symmetric positive-definite F (condition number about 5), g, and the CG budget."""
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(n, n))
    return {"fvp": M @ M.T / n + np.eye(n), "g": rng.normal(size=n), "iters": iters}


def gaussians(seed: int, B: int = 6, D: int = 2) -> dict:
    """Means and log stds (B, D) of two diagonal Gaussian policies at B states."""
    rng = np.random.default_rng(seed)
    mu_old, log_std_old = rng.normal(size=(B, D)), rng.normal(0.0, 0.5, size=(B, D))
    return {"mu_old": mu_old, "log_std_old": log_std_old,
            "mu": mu_old + rng.normal(0.0, 0.5, size=(B, D)),
            "log_std": log_std_old + rng.normal(0.0, 0.3, size=(B, D))}  # fmt: skip


def kl_stream(
    seed: int, N: int = 12, beta: float = 1.0, kl_target: float = 0.01, factor: float = 2.0,
    tolerance: float = 1.5,
) -> dict:  # fmt: skip
    """N measured KLs, a third above target * tolerance, a third below target / tolerance and
    a third in between (never on a boundary), in a seeded order."""
    rng = np.random.default_rng(seed)
    band = np.log(tolerance)
    k = N // 3
    logs = np.concatenate([
        rng.uniform(band + 0.05, 2.0, size=k), rng.uniform(-2.0, -band - 0.05, size=k),
        rng.uniform(-band + 0.05, band - 0.05, size=N - 2 * k),
    ])  # fmt: skip
    return {"kls": kl_target * np.exp(rng.permutation(logs)), "beta": beta,
            "kl_target": kl_target, "factor": factor, "tolerance": tolerance}  # fmt: skip


# --- references --------------------------------------------------------------------------------


def _tensor(x):  # noqa: ANN001, ANN202
    import torch

    return torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64)


def _ref_surrogate(inputs: dict, mistake: str | None = None) -> dict:
    from fdrl_lib.algos.ppo import ratio
    from fdrl_lib.algos.trpo import surrogate

    log_prob, old = _tensor(inputs["log_prob"]), _tensor(inputs["old_log_prob"])
    advantages = _tensor(inputs["advantages"])
    if mistake is None:
        r, L = ratio(log_prob, old), surrogate(log_prob, old, advantages)
        return {"ratio": r.numpy(), "surrogate": float(L)}
    r = log_prob - old if mistake == "log_ratio" else log_prob / old  # "divided_logs"
    return {"ratio": r.numpy(), "surrogate": float((r * advantages).mean())}


def _swap(inputs: dict, a: str, b: str) -> dict:
    inputs[a], inputs[b] = inputs[b], inputs[a]
    return inputs


RATIO_INVERTED = Mistake(
    "ratio_inverted",
    "your ratio is upside down (pi_old / pi): the samples come from pi_old, so importance "
    "sampling weights them by pi(a|s) / pi_old(a|s) = exp(log_prob - old_log_prob) (eqs. 4.4, "
    "4.12)",
    inputs=lambda inputs: _swap(inputs, "log_prob", "old_log_prob"),
)
LOG_RATIO = Mistake(
    "log_ratio",
    "you returned the log of the ratio, log_prob - old_log_prob: the ratio itself is its "
    "exponential, exp(log_prob - old_log_prob) (eq. 4.12)",
)
DIVIDED_LOGS = Mistake(
    "divided_logs",
    "you divided the log-probabilities: the ratio of probabilities is the exponential of the "
    "DIFFERENCE of their logs, exp(log_prob - old_log_prob) (eq. 4.12)",
)
SUM_NOT_MEAN = Mistake(
    "sum_not_mean",
    "your L is the sum over the batch, B times too large: eq. 4.4 is an expectation, estimated "
    "by the mean of ratio * advantages",
    outputs=lambda answers: {
        "surrogate": np.size(answers["ratio"]) * np.asarray(answers["surrogate"], dtype=float)
    },
)


def _ref_clipped(inputs: dict, mistake: str | None = None) -> dict:
    from fdrl_lib.algos.ppo import clipped_surrogate

    r, A, clip = _tensor(inputs["ratio"]), _tensor(inputs["advantages"]), inputs["clip"]
    if mistake is None:
        return {"objective": clipped_surrogate(r, A, clip).numpy()}
    r, A = r.numpy(), A.numpy()
    clipped = np.clip(r, 1.0 - clip, 1.0 + clip) * A
    wrong = {"max_for_min": np.maximum(r * A, clipped), "clipped_only": clipped,
             "no_clipping": r * A}[mistake]  # fmt: skip
    return {"objective": np.asarray(wrong, dtype=float)}


CLIPPED_ONLY = Mistake(
    "clipped_only",
    "you returned the clipped term clip(r, 1 - eps, 1 + eps) A alone: eq. 4.14 takes the "
    "minimum of it and the unclipped r A, so a change that makes the objective worse is "
    "always counted",
)
NO_CLIPPING = Mistake(
    "no_clipping",
    "you returned r A without clipping: eq. 4.13 clips r to [1 - eps, 1 + eps] and eq. 4.14 "
    "takes the minimum of the clipped and unclipped terms",
)


def _ref_cg(inputs: dict, mistake: str | None = None) -> dict:
    import torch

    from fdrl_lib.algos.trpo import conjugate_gradient

    if mistake is not None:  # a typical wrong CG, same budget
        return {"x": cg_variant(inputs["fvp"], inputs["g"], int(inputs["iters"]), mistake)}
    F, calls = _tensor(inputs["fvp"]), [0]

    def fvp(v: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return F @ v

    x = conjugate_gradient(fvp, _tensor(inputs["g"]), int(inputs["iters"]))
    return {"x": x.numpy(), "calls": float(calls[0])}


def cg_variant(F: np.ndarray, g: np.ndarray, iters: int, mistake: str | None = None) -> np.ndarray:
    """Conjugate gradient as the library writes it, or with a typical mistake:
    ``"direction_never_updated"`` steps along g every time, ``"steepest_descent"`` along the
    residual with no conjugation (no ``+ beta * direction``)."""
    x, residual = np.zeros_like(g), g.copy()
    direction, rr = residual.copy(), residual @ residual
    for _ in range(iters):
        if rr < 1e-10:
            break
        F_direction = F @ direction
        alpha = rr / (direction @ F_direction)
        x = x + alpha * direction
        residual = residual - alpha * F_direction
        rr_new = residual @ residual
        if mistake is None:
            direction = residual + (rr_new / rr) * direction
        elif mistake == "steepest_descent":
            direction = residual
        rr = rr_new  # "direction_never_updated": the direction stays g
    return x


DIRECTION_NEVER_UPDATED = Mistake(
    "direction_never_updated",
    "your search direction never uses the residual: every step goes along g. After each step "
    "set direction = r + (r_new . r_new / r . r) direction, so the next step is conjugate to "
    "the earlier ones (CG in Algorithm 6)",
)
STEEPEST_DESCENT = Mistake(
    "steepest_descent",
    "you step along the residual alone (steepest descent): conjugate gradient adds "
    "(r_new . r_new / r . r) times the previous direction, which makes n steps solve an n x n "
    "system",
)


def _ref_gaussian_kl(inputs: dict, mistake: str | None = None) -> dict:
    import torch

    from fdrl_lib.algos.trpo import mean_kl

    def policy(mu: np.ndarray, log_std: np.ndarray):  # noqa: ANN202, one state: (1, D)
        normal = torch.distributions.Normal(_tensor(mu)[None], _tensor(log_std).exp()[None])
        return torch.distributions.Independent(normal, 1)

    names = ("mu_old", "log_std_old", "mu", "log_std")
    mu_old, ls_old, mu, ls = (np.asarray(inputs[n], dtype=float) for n in names)
    kl = np.array([
        float(mean_kl(policy(mu_old[i], ls_old[i]), policy(mu[i], ls[i])))
        for i in range(len(mu_old))
    ])  # fmt: skip
    if mistake == "mean_over_dims":
        kl = kl / mu_old.shape[1]
    return {"kl": kl}


KL_WRONG_DIRECTION = Mistake(
    "kl_wrong_direction",
    "you computed KL(pi || pi_old), the wrong direction: KL is not symmetric; TRPO and PPO "
    "measure KL(pi_old || pi), the expectation under pi_old of log pi_old - log pi (eqs. 4.10, "
    "4.11)",
    inputs=lambda inputs: _swap(_swap(inputs, "mu_old", "mu"), "log_std_old", "log_std"),
)
MEAN_OVER_DIMS = Mistake(
    "mean_over_dims",
    "you averaged over the action dimensions: the dimensions of a diagonal Gaussian are "
    "independent, so their KLs add up; sum over the last axis",
)


def replay_adaptive_beta(adaptive_beta, kls, beta, kl_target, factor, tolerance):  # noqa: ANN001, ANN201, PLR0913 (sent as source into the kernel)
    """Algorithm 7's outer loop: after each iteration's measured KL, the learner's
    ``adaptive_beta`` gives the next beta; returns the (N,) betas, each fed into the next step."""
    import numpy as np

    betas = []
    for kl in np.asarray(kls, dtype=float):
        beta = adaptive_beta(float(beta), float(kl), float(kl_target), float(factor),
                             float(tolerance))  # fmt: skip
        betas.append(float(beta))
    return np.array(betas)


def _ref_beta(inputs: dict, mistake: str | None = None) -> dict:
    from fdrl_lib.algos.ppo import adaptive_beta

    beta, target = inputs["beta"], inputs["kl_target"]
    factor, tolerance = inputs["factor"], inputs["tolerance"]
    betas = []
    for kl in inputs["kls"]:
        if mistake is None:
            beta = adaptive_beta(beta, float(kl), target, factor, tolerance)
        elif mistake == "up_down_swapped":
            beta = adaptive_beta(beta, float(kl), target, 1.0 / factor, tolerance)
        else:  # "no_band": up whenever above target, down otherwise
            beta = beta * factor if kl > target else beta / factor
        betas.append(beta)
    return {"betas": np.array(betas)}


UP_DOWN_SWAPPED = Mistake(
    "up_down_swapped",
    "you lower beta when the KL overshoots and raise it when the KL falls short: a KL above "
    "target * tolerance means the penalty was too weak, so beta grows (times factor); a KL "
    "below target / tolerance means it was too strong, so beta shrinks",
)
NO_BAND = Mistake(
    "no_band",
    "you change beta on every iteration: inside the band kl_target / tolerance <= KL <= "
    "kl_target * tolerance the KL is close enough and beta stays as it is",
)


EXERCISES = (
    Exercise(
        number="4.1",
        title="The probability ratio and the surrogate objective",
        function="surrogate",
        args=("log_prob", "old_log_prob", "advantages"),
        kwargs=(),
        outputs=(Output("ratio", "values", atol=1e-8), Output("surrogate", "values", atol=1e-8)),
        reference=_ref_surrogate,
        variants=(RATIO_INVERTED, LOG_RATIO, DIVIDED_LOGS, SUM_NOT_MEAN),
        equations="eqs. 4.3, 4.4 and 4.12",
        cases=(
            case("B=10, pi near pi_old", log_probs, seed=1),
            case("B=32, pi further from pi_old", log_probs, seed=2, B=32, spread=1.0),
            case("B=64", log_probs, seed=3, B=64, hidden=True),
        ),
    ),
    Exercise(
        number="4.2",
        title="PPO's clipped objective",
        function="clipped_objective",
        args=("ratio", "advantages", "clip"),
        kwargs=(),
        outputs=(Output("objective", "values", atol=1e-8),),
        reference=_ref_clipped,
        variants=(MAX_FOR_MIN, CLIPPED_ONLY, NO_CLIPPING),
        equations="eqs. 4.13, 4.14",
        cases=(
            case("B=12, clip=0.2", ratios, seed=1),
            case("B=30, clip=0.1", ratios, seed=2, B=30, clip=0.1),
            case("B=50, clip=0.3", ratios, seed=3, B=50, clip=0.3, hidden=True),
        ),
    ),
    Exercise(
        number="4.3",
        title="Conjugate gradient with a Fisher-vector product",
        function="conjugate_gradient",
        args=("fvp", "g", "iters"),
        kwargs=(),
        outputs=(
            Output(
                "x",
                "values",
                atol=1e-6,
                hint="from x = 0, r = d = g, each iteration: alpha = r.r / d.(F d), x += alpha d, "
                "r -= alpha F d, d = r_new + (r_new.r_new / r.r) d",
            ),
            Output(
                "calls",
                "values",
                hint="call fvp exactly once per iteration: start from x = 0, so the first "
                "residual is g itself (no product), and reuse F d for both alpha and the new "
                "residual",
            ),
        ),
        reference=_ref_cg,
        wrapper=adapter(torch=False, callables={"fvp": "matvec"}, count_calls=True),
        variants=(DIRECTION_NEVER_UPDATED, STEEPEST_DESCENT),
        equations="Algorithm 6 (CG with Fisher-vector products to compute F^-1 g)",
        cases=(
            case("n=5, 5 iterations: solves F x = g", spd_system, seed=1, n=5, iters=5),
            case("n=12, 4 iterations", spd_system, seed=2, n=12, iters=4),
            case("n=20, 6 iterations", spd_system, seed=3, n=20, iters=6, hidden=True),
        ),
    ),
    Exercise(
        number="4.4",
        title="KL divergence between two diagonal Gaussian policies",
        function="gaussian_kl",
        args=("mu_old", "log_std_old", "mu", "log_std"),
        kwargs=(),
        outputs=(Output("kl", "values", atol=1e-8),),
        reference=_ref_gaussian_kl,
        variants=(KL_WRONG_DIRECTION, MEAN_OVER_DIMS),
        equations="eqs. 4.5, 4.10 and 4.11",
        cases=(
            case("B=6 states, D=2", gaussians, seed=1),
            case("B=8 states, D=3", gaussians, seed=2, B=8, D=3),
            case("B=16 states, D=4", gaussians, seed=3, B=16, D=4, hidden=True),
        ),
    ),
    Exercise(
        number="4.5",
        title="PPO's adaptive KL penalty (dual descent on beta)",
        function="adaptive_beta",
        args=("kls", "beta", "kl_target", "factor", "tolerance"),
        kwargs=(),
        outputs=(Output("betas", "values", atol=1e-9),),
        reference=_ref_beta,
        wrapper=replay_adaptive_beta,
        variants=(UP_DOWN_SWAPPED, NO_BAND),
        equations="eq. 4.11 and Algorithm 7",
        cases=(
            case("12 iterations, target 0.01, factor 2, tolerance 1.5", kl_stream, seed=1),
            case(
                "18 iterations, factor 1.5, tolerance 2",
                kl_stream,
                seed=2,
                N=18,
                beta=0.5,
                kl_target=0.02,
                factor=1.5,
                tolerance=2.0,
            ),  # fmt: skip
            case(
                "30 iterations", kl_stream, seed=3, N=30, beta=3.0, kl_target=0.005, hidden=True
            ),  # fmt: skip
        ),
    ),
)

LECTURE = Lecture(
    name="04_trpo_ppo",
    title="Lecture 4: TRPO and PPO",
    exercises=EXERCISES,
    library=(
        "fdrl_lib.algos.ppo:ratio",
        "fdrl_lib.algos.trpo:surrogate",
        "fdrl_lib.algos.ppo:clipped_surrogate",
        "fdrl_lib.algos.trpo:conjugate_gradient",
        "fdrl_lib.algos.trpo:mean_kl",
        "fdrl_lib.algos.ppo:adaptive_beta",
    ),
)
