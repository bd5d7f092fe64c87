"""Lecture 3's graded exercise (03_policy_gradients): checks, references, named bugs, kernels.

Fast part: the solution passes every case in this process, the references agree with hand sums
and finite differences, and each planted bug loses exactly its exercise's points with feedback
that names it. Kernel part: the solution, the untouched exercise and the four bugs graded once
by ``fdrl grade``'s batch runner (2 kernels).
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
from fdrl_lib.grading.exercises import policy_gradients as ex3
from fdrl_lib.grading.notebook import nbgrader_meta
from fdrl_lib.grading.sandbox import Limits

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "03_policy_gradients.ipynb"
EXERCISE = ROOT / "exercises" / "03_policy_gradients.ipynb"
LECTURE = ex3.LECTURE
FULL = {"3.1": 3, "3.2": 3, "3.3": 3, "3.4": 3}
LIMITS = Limits(timeout=120, cell_timeout=30, case_timeout=10, memory_mb=2048)

# name: (grade_id, old, new, the exercise it breaks, words its feedback must contain)
BUGS = {
    "bug_past_rewards_included": (
        "reward_to_go",
        "        if episode_ends[t]:\n            running = 0.0",
        "        pass",  # ... and G is then overwritten with the episode's total below
        "3.1",
        "includes rewards from before step t",
    ),
    "bug_baseline_depends_on_action": (
        "baseline_advantages",
        "        visited = states == s\n        if visited.any():\n"
        "            baseline[s] = returns[visited].mean()\n    return returns - baseline[states]",
        "        pass\n    same = (states[:, None] == states) & (actions[:, None] == actions)\n"
        "    return returns - (same * returns).sum(1) / same.sum(1)",
        "3.2",
        "your baseline depends on the action",
    ),
    "bug_gae_crosses_episode_end": (
        "gae",
        "(0.0 if end else running)",
        "running",
        "3.3",
        "your sum runs across an episode end",
    ),
    "bug_loss_wrong_sign": (
        "pg_loss",
        "return -(log_prob * advantages.detach()).mean()",
        "return (log_prob * advantages.detach()).mean()",
        "3.4",
        "wrong sign",
    ),
}


def _build(name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(SOLUTION, as_version=4)
    grade_id, old, new, _, _ = BUGS[name]
    cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)
    assert old in cell.source, f"{name}: the solution changed, update the bug"
    cell.source = cell.source.replace(old, new)
    if name == "bug_past_rewards_included":  # G_t = the whole (discounted) episode return
        cell.source = cell.source.replace(
            "    return G\n",
            "    full = np.zeros(len(rewards))\n    start = 0\n"
            "    for end in np.flatnonzero(episode_ends):\n"
            "        seg = rewards[start : end + 1]\n"
            "        full[start : end + 1] = sum(gamma**k * r for k, r in enumerate(seg))\n"
            "        start = end + 1\n    return full\n",
        )
    return nb


# --- the lecture and its references ------------------------------------------------------------


def test_lecture_3_is_registered_and_numbered_3_1_to_3_4():
    assert lectures()["03_policy_gradients"] is LECTURE
    assert {e.number: e.points for e in LECTURE.exercises} == FULL


def test_reward_to_go_reference_by_hand():
    inputs = {"rewards": np.array([1.0, 2.0, 3.0, 4.0]),
              "episode_ends": np.array([False, True, False, True]), "gamma": 0.5}  # fmt: skip
    ref = ex3._ref_reward_to_go(inputs)
    np.testing.assert_allclose(ref["G"], [1 + 0.5 * 2, 2, 3 + 0.5 * 4, 4])
    np.testing.assert_allclose(ex3._ref_reward_to_go(inputs, "past_rewards")["G"], [2, 2, 5, 5])


def test_baseline_reference_by_hand_and_the_action_dependent_variant_differs():
    inputs = {"returns": np.array([1.0, 3.0, 10.0, 2.0]), "states": np.array([0, 0, 1, 0]),
              "actions": np.array([0, 1, 0, 0]), "n_states": 2}  # fmt: skip
    np.testing.assert_allclose(ex3._ref_baseline(inputs)["advantages"], [-1, 1, 0, 0])
    wrong = ex3._ref_baseline(inputs, "action_dependent")["advantages"]
    np.testing.assert_allclose(wrong, [-0.5, 0, 0, 0.5])


def test_gae_cases_hold_both_kinds_of_episode_end_and_lambda_zero_is_the_td_error():
    for case in LECTURE.exercise("3.3").cases:
        inputs = case.make_inputs()
        assert inputs["terminated"].any() and inputs["truncated"].any()
        td = ex3._ref_gae({**inputs, "lam": 0.0})["advantages"]
        r, v, nv, term = (inputs[k] for k in ("rewards", "values", "next_values", "terminated"))
        np.testing.assert_allclose(td, r + inputs["gamma"] * (1 - term) * nv - v)


def test_pg_loss_reference_gradient_matches_finite_differences():
    inputs = ex3.batch(seed=5, B=6, A=3)
    ref = ex3._ref_pg(inputs)
    h, numeric = 1e-6, np.zeros_like(inputs["logits"])
    for index in np.ndindex(*inputs["logits"].shape):
        up, down = inputs["logits"].copy(), inputs["logits"].copy()
        up[index] += h
        down[index] -= h
        numeric[index] = (
            ex3._ref_pg({**inputs, "logits": up})["loss"]
            - ex3._ref_pg({**inputs, "logits": down})["loss"]
        ) / (2 * h)
    np.testing.assert_allclose(ref["grad_logits"], numeric, atol=1e-8)


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


# --- real kernels ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    built = {name: _build(name) for name in BUGS}
    return grade_built(tmp_path_factory, "03_policy_gradients", LIMITS, SOLUTION, EXERCISE, built)


@pytest.mark.xdist_group("grading_lecture3")
def test_the_grader_scores_solution_blank_and_bugs(graded):
    assert part_scores(graded["solution"]) == FULL, graded["solution"].to_dict()
    assert graded["blank"].score == 0
    for name, (*_, number, words) in BUGS.items():
        assert_loses_only(graded[name], FULL, number, words)


def test_a_reward_to_go_that_never_restarts_at_an_episode_end_is_named():
    """3.1's input is ``episode_ends``: the cross-episode variant must blank it too."""
    nb = nbformat.read(SOLUTION, as_version=4)
    cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "reward_to_go")
    old = "        if episode_ends[t]:\n            running = 0.0"
    assert old in cell.source, "the solution changed, update the bug"
    cell.source = cell.source.replace(old, "        pass")
    scores, messages = score_in_process(LECTURE, notebook_functions(nb))
    assert scores == {**FULL, "3.1": 0.0}
    assert messages and all("your sum runs across an episode end" in m for m in messages), messages
