"""Lecture 6's graded exercise (06_model_based): checks, references, named bugs, kernels.

Fast part: the solution passes every case in this process, the references agree with closed
forms (a linear system recovered, a matrix power) and with the library (``disagreement`` on a
real ensemble, ME-TRPO's ``keep_improving``), and each planted bug loses exactly its exercise's
points with feedback that names it. Kernel part: the solution, the untouched exercise and the
four bugs graded once by ``fdrl grade``'s batch runner (2 kernels).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from conftest import (
    assert_loses_only,
    grade_built,
    notebook_functions,
    part_scores,
    score_in_process,
    solution_functions,
)

from fdrl_lib.grading.exercises import lectures
from fdrl_lib.grading.exercises import model_based as ex6
from fdrl_lib.grading.notebook import nbgrader_meta
from fdrl_lib.grading.sandbox import Limits

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "06_model_based.ipynb"
EXERCISE = ROOT / "exercises" / "06_model_based.ipynb"
LECTURE = ex6.LECTURE
FULL = {"6.1": 3, "6.2": 3, "6.3": 3, "6.4": 3}
LIMITS = Limits(timeout=120, cell_timeout=30, case_timeout=10, memory_mb=2048)

# name: (grade_id, [(old, new), ...], the exercise it breaks, words its feedback must contain)
BUGS = {
    "bug_next_state_without_residual": (
        "fit_dynamics",
        [("    target = next_obs - obs  #", "    target = next_obs  #")],
        "6.1",
        "predicts the next state s' itself",
    ),
    "bug_disagreement_divides_by_k": (
        "disagreement",
        [("std(axis=0, ddof=1)", "std(axis=0)")],
        "6.2",
        "you divided by K",
    ),
    "bug_rollout_switches_models": (
        "imagine",
        [
            ("    for _ in range(horizon):", "    for t in range(horizon):"),
            ("            k = members[i]  #", "            k = (members[i] + t) % len(A)  #"),
        ],
        "6.3",
        "your trajectories switch models mid-way",
    ),
    "bug_stopping_rule_on_one_model": (
        "keep_improving",
        [
            (
                "    improved = np.mean(current > previous)",
                "    return bool(current[0] > previous[0])\n    improved = 0.0",
            )
        ],
        "6.4",
        "your rule looks at one model only",
    ),
}


def _build(name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(SOLUTION, as_version=4)
    grade_id, edits, _, _ = BUGS[name]
    cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)
    for old, new in edits:
        assert old in cell.source, f"{name}: the solution changed, update the bug"
        cell.source = cell.source.replace(old, new)
    return nb


# --- the lecture and its references ------------------------------------------------------------


def test_lecture_6_is_registered_and_numbered_6_1_to_6_4():
    assert lectures()["06_model_based"] is LECTURE
    assert {e.number: e.points for e in LECTURE.exercises} == FULL


def test_fit_reference_recovers_a_linear_system_and_the_no_residual_variant_adds_the_identity():
    rng = np.random.default_rng(0)
    A, B, c = 0.1 * rng.normal(size=(3, 3)), rng.normal(size=(2, 3)), rng.normal(size=3)
    obs, actions = rng.normal(size=(30, 3)), rng.normal(size=(30, 2))
    inputs = {"obs": obs, "actions": actions, "next_obs": obs + obs @ A + actions @ B + c,
              "reg": 0.0}  # fmt: skip
    W = ex6._ref_fit(inputs)["W"]
    np.testing.assert_allclose(W, np.vstack([A, B, c]), atol=1e-10)
    wrong = ex6._ref_fit(inputs, "no_residual")["W"]  # fits s' itself: the state rows gain I
    np.testing.assert_allclose(wrong - W, np.vstack([np.eye(3), np.zeros((3, 3))]), atol=1e-10)


def test_disagreement_reference_equals_the_library_on_a_real_ensemble():
    from fdrl_lib.dynamics import DynamicsEnsemble, disagreement

    torch.manual_seed(0)
    model = DynamicsEnsemble(K=4, obs_dim=3, action_dim=1, hidden=(16,))
    model.out_std.copy_(torch.tensor([0.1, 2.0, 30.0]))  # targets on very different scales
    obs, action = torch.randn(10, 3), torch.randn(10, 1)
    with torch.no_grad():
        preds = model(obs, action).double().numpy()  # (K, B, d) in the targets' own units
    ours = ex6._ref_disagreement({"predictions": preds, "scale": model.out_std.double().numpy()})
    np.testing.assert_allclose(ours["disagreement"], disagreement(model, obs, action), rtol=1e-5)


def test_imagine_reference_with_identical_models_is_a_matrix_power():
    inputs = ex6.linear_ensemble(seed=4, K=3, N=5, d=2, m=1, horizon=6)
    inputs["A"][:] = inputs["A"][0]
    inputs["B"][:] = inputs["B"][0]
    M = np.eye(2) + inputs["A"][0] + inputs["gain"] @ inputs["B"][0]  # s' = s M
    states = ex6._ref_imagine(inputs)["states"]
    for t in range(7):
        np.testing.assert_allclose(states[t], inputs["start_obs"] @ np.linalg.matrix_power(M, t))


def test_imagine_reference_keeps_each_trajectory_in_its_model():
    inputs = ex6.linear_ensemble(seed=5, K=3, N=6, horizon=4)
    states = ex6._ref_imagine(inputs)["states"]
    for i, k in enumerate(inputs["members"]):  # trajectory i alone, in model k alone
        s = inputs["start_obs"][i]
        for t in range(1, 5):
            s = s + s @ inputs["A"][k] + (s @ inputs["gain"]) @ inputs["B"][k]
            np.testing.assert_allclose(states[t, i], s)


def test_keep_improving_reference_counts_models_by_hand():
    previous = np.array([[0.0, 0, 0, 0, 0], [0.0, 0, 0, 0, 0], [0.0, 0, 0, 0, 0]])
    current = np.array([[1.0, 1, 1, -1, -1], [1.0, 1, -1, -1, -1], [-1.0, -1, -1, -1, 99]])
    ref = ex6._ref_keep({"previous": previous, "current": current, "fraction": 0.6})["keep"]
    np.testing.assert_array_equal(ref, [1.0, 0.0, 0.0])  # 3/5 >= 0.6; 2/5 < 0.6; 1/5


def test_every_case_shows_every_named_mistake():
    # a variant equal to the right answer is dropped on that case, so a bug could then pass it;
    # every case must carry every variant for a bug to lose all of its exercise's points
    for exercise in LECTURE.exercises:
        for case in exercise.cases:
            answers = exercise.reference(case.make_inputs())
            keys = {key for output in exercise.outputs for key, _ in output.mistakes}
            assert keys <= set(answers), (exercise.number, case.name, keys - set(answers))


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
    _, _, number, words = BUGS[name]
    scores, messages = score_in_process(LECTURE, notebook_functions(_build(name)))
    assert scores == {**FULL, number: 0.0}
    assert messages and all(words in m for m in messages), messages


# --- real kernels ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    built = {name: _build(name) for name in BUGS}
    return grade_built(tmp_path_factory, "06_model_based", LIMITS, SOLUTION, EXERCISE, built)


@pytest.mark.xdist_group("grading_lecture6")
def test_the_grader_scores_solution_blank_and_bugs(graded):
    assert part_scores(graded["solution"]) == FULL, graded["solution"].to_dict()
    assert graded["blank"].score == 0
    for name, (*_, number, words) in BUGS.items():
        assert_loses_only(graded[name], FULL, number, words)
