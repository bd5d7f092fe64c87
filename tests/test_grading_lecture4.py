"""Lecture 4's graded exercise (04_trpo_ppo): checks, references, named bugs, kernels.

Fast part: the solution passes every case in this process, the references (the library's
``trpo``/``ppo`` functions) agree with hand-worked values, ``numpy.linalg.solve``, a brute-force
Krylov minimiser, the Gaussian KL's closed form and Monte Carlo, and each planted bug loses
exactly its exercise's points with feedback that names it. Kernel part: the solution, the
untouched exercise, the bugs and a submission that calls the library graded once by
``fdrl grade``'s batch runner (2 kernels).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import (
    assert_loses_only,
    grade_built,
    notebook_functions,
    part_scores,
    score_in_process,
    solution_functions,
)

from fdrl_lib.grading.exercises import lectures
from fdrl_lib.grading.exercises import trpo_ppo as ex4
from fdrl_lib.grading.notebook import nbgrader_meta
from fdrl_lib.grading.sandbox import Limits

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "04_trpo_ppo.ipynb"
EXERCISE = ROOT / "exercises" / "04_trpo_ppo.ipynb"
LECTURE = ex4.LECTURE
FULL = {"4.1": 3, "4.2": 3, "4.3": 3, "4.4": 3, "4.5": 3}
LIMITS = Limits(timeout=120, cell_timeout=30, case_timeout=10, memory_mb=2048)

KL_LINE = "    per_dim = log_std - log_std_old + (var_old + (mu_old - mu) ** 2) / (2.0 * var) - 0.5"
CG_UPDATE = "        d = r + (rr_new / rr) * d  # conjugate to every earlier direction\n"

# name: (grade_id, old, new, the exercise it breaks, words its feedback must contain)
BUGS = {
    "bug_ratio_inverted": (
        "surrogate",
        "np.exp(log_prob - old_log_prob)",
        "np.exp(old_log_prob - log_prob)",
        "4.1",
        "your ratio is upside down",
    ),
    "bug_ratio_without_exp": (
        "surrogate",
        "np.exp(log_prob - old_log_prob)",
        "log_prob - old_log_prob",
        "4.1",
        "the log of the ratio",
    ),
    "bug_surrogate_sum_not_mean": (
        "surrogate",
        "float(np.mean(ratio * advantages))",
        "float(np.sum(ratio * advantages))",
        "4.1",
        "B times too large",
    ),
    "bug_clip_max_for_min": (
        "clipped_objective",
        "np.minimum(ratio * advantages",
        "np.maximum(ratio * advantages",
        "4.2",
        "you took a max where the method takes a min",
    ),
    "bug_clip_without_min": (
        "clipped_objective",
        "return np.minimum(ratio * advantages, clipped * advantages)",
        "return clipped * advantages",
        "4.2",
        "clipped term clip(r, 1 - eps, 1 + eps) A alone",
    ),
    "bug_cg_never_uses_residual": (
        "conjugate_gradient",
        CG_UPDATE,
        "",  # the direction stays g: every step along the initial gradient
        "4.3",
        "never uses the residual",
    ),
    "bug_cg_steepest_descent": (
        "conjugate_gradient",
        CG_UPDATE,
        "        d = r\n",
        "4.3",
        "steepest descent",
    ),
    "bug_kl_wrong_direction": (
        "gaussian_kl",
        KL_LINE,
        "    per_dim = log_std_old - log_std + (var + (mu - mu_old) ** 2) / (2.0 * var_old) - 0.5",
        "4.4",
        "the wrong direction",
    ),
    "bug_kl_mean_over_dims": (
        "gaussian_kl",
        "per_dim.sum(axis=-1)",
        "per_dim.mean(axis=-1)",
        "4.4",
        "averaged over the action dimensions",
    ),
    "bug_beta_up_down_swapped": (
        "adaptive_beta",
        "return beta * factor",
        "return beta / factor  # swapped",
        "4.5",
        "you lower beta when the KL overshoots",
    ),
}

# Right answers written differently: each must keep full marks.
# name: (grade_id, old, new)
FAIR = {
    "ratio_of_exponentials": (
        "surrogate",
        "np.exp(log_prob - old_log_prob)",
        "np.exp(log_prob) / np.exp(old_log_prob)",
    ),
    "clip_by_cases": (
        "clipped_objective",
        "return np.minimum(ratio * advantages, clipped * advantages)",
        "return np.where(advantages >= 0, np.minimum(ratio, 1 + clip), "
        "np.maximum(ratio, 1 - clip)) * advantages",
    ),
    "cg_without_early_stop": (
        "conjugate_gradient",
        "        if rr < 1e-10:\n            break\n",
        "",
    ),
    "kl_in_variances": (
        "gaussian_kl",
        KL_LINE,
        "    per_dim = 0.5 * (var_old / var + (mu - mu_old) ** 2 / var - 1)"
        " + log_std - log_std_old",
    ),
    "beta_with_elif": (
        "adaptive_beta",
        "    if kl < kl_target / tolerance:",
        "    elif kl < kl_target / tolerance:",
    ),
}


def _replaced(grade_id: str, old: str, new: str, name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(SOLUTION, as_version=4)
    cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)
    assert old in cell.source, f"{name}: the solution changed, update it"
    cell.source = cell.source.replace(old, new)
    return nb


def _build(name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(SOLUTION, as_version=4)
    grade_id, old, new, _, _ = BUGS[name]
    cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)
    assert old in cell.source, f"{name}: the solution changed, update the bug"
    if name == "bug_beta_up_down_swapped":  # the other branch multiplies
        cell.source = cell.source.replace("return beta / factor", "return BETA_UP")
    cell.source = cell.source.replace(old, new).replace("BETA_UP", "beta * factor")
    return nb


# --- the lecture and its references ------------------------------------------------------------


def test_lecture_4_is_registered_and_numbered_4_1_to_4_5():
    assert lectures()["04_trpo_ppo"] is LECTURE
    assert {e.number: e.points for e in LECTURE.exercises} == FULL


def test_surrogate_reference_by_hand_and_the_inverted_ratio():
    inputs = {"log_prob": np.log([0.5, 0.2]), "old_log_prob": np.log([0.25, 0.4]),
              "advantages": np.array([1.0, -2.0])}  # fmt: skip
    ref = ex4._ref_surrogate(inputs)
    np.testing.assert_allclose(ref["ratio"], [2.0, 0.5])
    np.testing.assert_allclose(ref["surrogate"], (2.0 * 1.0 + 0.5 * -2.0) / 2)
    full = LECTURE.exercise("4.1").reference(inputs)
    np.testing.assert_allclose(full["ratio@ratio_inverted"], [0.5, 2.0])
    np.testing.assert_allclose(full["ratio@log_ratio"], [np.log(2.0), np.log(0.5)])


def test_clipped_reference_by_hand_and_the_max_variant():
    inputs = {"ratio": np.array([1.5, 0.5, 1.5, 0.5, 1.1]),
              "advantages": np.array([1.0, 1.0, -1.0, -1.0, 2.0]), "clip": 0.2}  # fmt: skip
    ref = ex4._ref_clipped(inputs)
    np.testing.assert_allclose(ref["objective"], [1.2, 0.5, -1.5, -0.8, 2.2])
    full = LECTURE.exercise("4.2").reference(inputs)
    np.testing.assert_allclose(full["objective@max_for_min"], [1.5, 0.8, -1.2, -0.5, 2.2])
    np.testing.assert_allclose(full["objective@clipped_only"], [1.2, 0.8, -1.2, -0.8, 2.2])


def test_clip_cases_hold_ratios_beyond_both_ends_with_both_signs():
    for case in LECTURE.exercise("4.2").cases:
        inputs = case.make_inputs()
        r, A, clip = inputs["ratio"], inputs["advantages"], inputs["clip"]
        for side in (r > 1 + clip, r < 1 - clip):
            assert (side & (A > 0)).any() and (side & (A < 0)).any(), case.name


def _krylov_minimiser(F: np.ndarray, g: np.ndarray, k: int) -> np.ndarray:
    """argmin of x F x / 2 - g x over span{g, F g, ..., F^(k-1) g}: where k CG steps land."""
    K = np.stack([np.linalg.matrix_power(F, i) @ g for i in range(k)], axis=1)
    K, _ = np.linalg.qr(K)
    return K @ np.linalg.solve(K.T @ F @ K, K.T @ g)


def test_cg_reference_solves_the_system_in_n_steps_and_is_the_krylov_minimiser_before():
    for seed, n in ((5, 4), (6, 7), (7, 10)):
        inputs = ex4.spd_system(seed=seed, n=n, iters=n)
        ref = ex4._ref_cg(inputs)
        exact = np.linalg.solve(inputs["fvp"], inputs["g"])  # (CG stops once r . r < 1e-10)
        np.testing.assert_allclose(ref["x"], exact, atol=1e-5)
        assert np.sum((inputs["fvp"] @ ref["x"] - inputs["g"]) ** 2) < 1e-9
        for k in (1, 2, n // 2):
            partial = ex4._ref_cg({**inputs, "iters": k})
            expected = _krylov_minimiser(inputs["fvp"], inputs["g"], k)
            np.testing.assert_allclose(partial["x"], expected, atol=1e-9)
            assert partial["calls"] == k  # one Fisher-vector product per iteration


def test_cg_variants_are_the_library_cg_with_one_line_changed():
    inputs = ex4.spd_system(seed=3, n=9, iters=5)
    F, g = inputs["fvp"], inputs["g"]
    np.testing.assert_allclose(ex4.cg_variant(F, g, 5), ex4._ref_cg(inputs)["x"], atol=1e-12)
    along_g = ex4.cg_variant(F, g, 5, "direction_never_updated")
    np.testing.assert_allclose(np.cross(along_g[:3], g[:3]), 0.0, atol=1e-12)  # a multiple of g
    steepest, x = ex4.cg_variant(F, g, 2, "steepest_descent"), np.zeros_like(g)
    for _ in range(2):  # exact line search along the residual, by hand
        r = g - F @ x
        x = x + (r @ r) / (r @ F @ r) * r
    np.testing.assert_allclose(steepest, x, atol=1e-12)


def test_gaussian_kl_reference_by_hand():
    one = lambda *values: np.array([[v] for v in values])  # noqa: E731 (B states, D=1)
    inputs = {"mu_old": one(0.0, 0.0), "log_std_old": one(0.0, 0.0), "mu": one(1.0, 0.0),
              "log_std": one(0.0, np.log(2.0))}  # fmt: skip
    np.testing.assert_allclose(ex4._ref_gaussian_kl(inputs)["kl"], [0.5, np.log(2) + 1 / 8 - 0.5])
    full = LECTURE.exercise("4.4").reference(inputs)  # KL(N(0, 4) || N(0, 1)) the other way
    np.testing.assert_allclose(full["kl@kl_wrong_direction"], [0.5, -np.log(2) + 2 - 0.5])


def test_gaussian_kl_reference_matches_a_monte_carlo_estimate_of_eq_4_10():
    inputs = ex4.gaussians(seed=4, B=3, D=3)
    kl = ex4._ref_gaussian_kl(inputs)["kl"]
    rng = np.random.default_rng(0)

    def log_density(a, mu, log_std):  # noqa: ANN001, ANN202
        z = (a - mu) / np.exp(log_std)
        return (-0.5 * z**2 - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)

    for i in range(3):
        mu_old, ls_old = inputs["mu_old"][i], inputs["log_std_old"][i]
        a = mu_old + np.exp(ls_old) * rng.normal(size=(400_000, 3))
        terms = log_density(a, mu_old, ls_old) - log_density(
            a, inputs["mu"][i], inputs["log_std"][i]
        )
        assert abs(terms.mean() - kl[i]) < 5 * terms.std() / np.sqrt(len(terms)), i


def test_adaptive_beta_reference_by_hand_and_its_variants():
    inputs = {"kls": np.array([0.05, 0.01, 0.001]), "beta": 1.0, "kl_target": 0.01,
              "factor": 2.0, "tolerance": 1.5}  # fmt: skip
    full = LECTURE.exercise("4.5").reference(inputs)
    np.testing.assert_allclose(full["betas"], [2.0, 2.0, 1.0])
    np.testing.assert_allclose(full["betas@up_down_swapped"], [0.5, 0.5, 1.0])
    np.testing.assert_allclose(full["betas@no_band"], [2.0, 1.0, 0.5])


def test_beta_cases_hold_every_regime():
    for case in LECTURE.exercise("4.5").cases:
        inputs = case.make_inputs()
        kls, target, tol = inputs["kls"], inputs["kl_target"], inputs["tolerance"]
        assert (kls > target * tol).any() and (kls < target / tol).any(), case.name
        assert ((kls >= target / tol) & (kls <= target * tol)).any(), case.name


def test_every_hidden_case_takes_a_seed_and_its_inputs_change_with_it():
    for exercise in LECTURE.exercises:
        for case in exercise.cases:
            if case.hidden:
                assert case.seeded, f"{exercise.number} {case.name}: make_inputs(seed=...)"
                a, b = case.make_inputs(1234567), case.make_inputs(7654321)
                assert any(not np.array_equal(a[k], b[k]) for k in a), case.name


# --- in this process ---------------------------------------------------------------------------


def test_solution_passes_every_case_and_the_blank_exercise_none():
    assert score_in_process(LECTURE, solution_functions(SOLUTION)) == (FULL, [])
    scores, messages = score_in_process(
        LECTURE, notebook_functions(nbformat.read(EXERCISE, as_version=4))
    )
    assert scores == dict.fromkeys(FULL, 0.0)
    assert all("Exercise" in m for m in messages)


@pytest.mark.parametrize("name", list(BUGS))
def test_each_bug_loses_exactly_its_points_and_the_feedback_names_it(name):
    _, _, _, number, words = BUGS[name]
    scores, messages = score_in_process(LECTURE, notebook_functions(_build(name)))
    assert scores == {**FULL, number: 0.0}
    assert messages and all(words in m for m in messages), messages


@pytest.mark.parametrize("name", list(FAIR))
def test_right_answers_written_differently_keep_full_marks(name):
    assert score_in_process(LECTURE, notebook_functions(_replaced(*FAIR[name], name))) == (FULL, [])


# --- real kernels ------------------------------------------------------------------------------

USES_LIBRARY = (  # hands in the library's clipped objective instead of writing one
    "    import torch\n\n    from fdrl_lib.algos.ppo import clipped_surrogate\n\n"
    "    return clipped_surrogate(torch.tensor(ratio), torch.tensor(advantages), clip).numpy()\n"
)


def _uses_library() -> nbformat.NotebookNode:
    nb = nbformat.read(SOLUTION, as_version=4)
    cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "clipped_objective")
    start, end = cell.source.index("    ### BEGIN SOLUTION"), cell.source.index("    ### END")
    cell.source = cell.source[:start] + USES_LIBRARY + cell.source[end:]
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    built = {name: _build(name) for name in BUGS}
    built["uses_library"] = _uses_library()
    return grade_built(tmp_path_factory, "04_trpo_ppo", LIMITS, SOLUTION, EXERCISE, built)


@pytest.mark.xdist_group("grading_lecture4")
def test_the_grader_scores_solution_blank_bugs_and_the_library_call(graded):
    assert part_scores(graded["solution"]) == FULL, graded["solution"].to_dict()
    assert graded["blank"].score == 0
    for name, (*_, number, words) in BUGS.items():
        assert_loses_only(graded[name], FULL, number, words)
    assert_loses_only(graded["uses_library"], FULL, "4.2", "not available")
