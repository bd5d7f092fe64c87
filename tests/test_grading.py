"""Grading without kernels: release, notebook metadata, checks, comparisons (fast)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import solution_functions

from fdrl_lib.grading.checking import call, check
from fdrl_lib.grading.exercises import lecture_of, lectures
from fdrl_lib.grading.exercises.mdps import LECTURE, bellman_backup, policy_evaluation
from fdrl_lib.grading.notebook import nbgrader_meta, strip_hidden, stub_source
from fdrl_lib.grading.release import build
from fdrl_lib.grading.runner import render_grid
from fdrl_lib.grading.spec import compare_greedy, compare_output, compare_probs, compare_values

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "01_mdps.ipynb"
EXERCISE = ROOT / "exercises" / "01_mdps.ipynb"


# --- release -------------------------------------------------------------------------------


def test_release_replaces_solutions_with_stubs_and_drops_hidden_tests():
    _, text, _ = build(SOLUTION)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert "hidden=True" not in text
    released = nbformat.reads(text, as_version=4)
    for exercise in LECTURE.exercises:
        cells = [c for c in released.cells if nbgrader_meta(c).get("grade_id") == exercise.grade_id]
        assert len(cells) == 1, f"exactly one stub cell for {exercise.number}"
        source = cells[0].source
        assert f"def {exercise.function}(" in source  # signature kept
        assert '"""' in source  # docstring kept
        assert f'raise NotImplementedError("Exercise {exercise.number}")' in source
    for cell in released.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_stub_keeps_the_indentation_of_the_solution_region():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    y = 2\n    return y\n    ### END SOLUTION\n"
    assert stub_source(source, "9.9") == (
        'def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError("Exercise 9.9")\n'
    )


def test_strip_hidden_removes_only_the_marked_block():
    source = 'check("1.1", f)\n### BEGIN HIDDEN TESTS\ncheck("1.1", f, hidden=True)\n'
    source += "### END HIDDEN TESTS\n"
    assert strip_hidden(source) == 'check("1.1", f)'


# --- the checks and references -------------------------------------------------------------


def test_kernel_reference_functions_agree_with_fdrl_lib_tabular():
    # The isolation references (sent into the kernel) are a second, independent implementation.
    for exercise in (LECTURE.exercise("1.1"), LECTURE.exercise("1.3")):
        reference = bellman_backup if exercise.number == "1.1" else policy_evaluation
        for case in exercise.cases:
            inputs = case.make_inputs()
            got = call(exercise, reference, inputs)
            expected = exercise.reference(inputs)["Q" if exercise.number == "1.1" else "V"]
            np.testing.assert_allclose(got, expected, atol=1e-9)


# Which cases of lecture 1 carry which known wrong answer (case indices in the exercise). A
# variant is kept only where it differs from the right answer, so this table is also the list of
# cases on which that mistake can be told apart (e.g. no discount is invisible when V = 0).
NAMED_VARIANTS = {
    ("1.1", "Q@no_discount"): [1, 2],  # with V = 0 gamma plays no part
    ("1.1", "Q@gamma_on_reward"): [0, 1, 2],
    ("1.1", "Q@gamma_on_everything"): [1, 2],  # with V = 0 it is gamma_on_reward (named first)
    ("1.1", "Q@reward_not_weighted"): [0, 1, 2],
    ("1.1", "Q@value_of_this_state"): [1, 2],
    ("1.2", "V@too_few_backups"): [0, 1, 3],
    ("1.2", "V@too_many_backups"): [0, 1, 3],
    ("1.2", "V@no_discount"): [1, 3],  # after one backup from V_0 = 0, gamma plays no part
    ("1.2", "V@max_over_states"): [0],  # for H > 1 the (A,)-shaped V crashes the next backup
    ("1.3", "V@stochastic_as_greedy"): [1, 3],
    ("1.3", "V@transposed"): [2, 3],
    ("1.3", "V@one_sweep_or_transposed"): [0, 1],  # on the book grid P_pi.T gives R_pi exactly
    ("1.3", "V@one_sweep"): [2, 3],
    ("1.4", "V@first_policy_only"): [0, 1, 2],
    ("1.5", "V@stable_lse_without_beta"): [1, 2],  # not beta = 1; beta = 0.003: equal to right
    ("1.5", "V@no_temperature"): [1, 2, 3],
    ("1.5", "V@beta_outside_only"): [1, 3],  # beta = 2: this wrong operator diverges
    ("1.5", "V@beta_inside_only"): [2],  # beta = 0.5 diverges; beta = 0.003 overflows
    ("1.5", "V@hard_max"): [0, 1, 2],  # beta = 0.003: within 1e-6 of the hard max
    ("1.5", "pi@no_temperature"): [1, 2, 3],
    ("1.5", "pi@beta_multiplies"): [1, 2, 3],
    ("1.5", "pi@greedy"): [0, 1, 2],
}


def _planned(number: str) -> list[dict]:
    exercise = LECTURE.exercise(number)
    return [exercise.reference(case.make_inputs()) for case in exercise.cases]


@pytest.mark.parametrize("number", ["1.1", "1.2", "1.3", "1.4", "1.5"])
def test_each_named_variant_differs_from_the_right_answer_on_its_cases(number):
    exercise = LECTURE.exercise(number)
    declared = {key for output in exercise.outputs for key, _ in output.mistakes}
    assert declared == {key for n, key in NAMED_VARIANTS if n == number}
    outputs = {output.name: output for output in exercise.outputs}
    for i, reference in enumerate(_planned(number)):
        present = {key for key in reference if "@" in key}
        assert present == {
            key for (n, key), cases in NAMED_VARIANTS.items() if n == number and i in cases
        }, exercise.cases[i].name
        for key in present:
            output = outputs[key.split("@")[0]]
            ok, _ = compare_output(output, reference[key], reference)
            assert not ok, f"{key} equals the right answer on {exercise.cases[i].name}"


@pytest.mark.parametrize("number", ["1.1", "1.2", "1.3", "1.4", "1.5"])
def test_an_output_matching_a_variant_is_named_and_a_right_one_never_is(number):
    exercise = LECTURE.exercise(number)
    functions = solution_functions(SOLUTION)
    for case, reference in zip(exercise.cases, _planned(number), strict=True):
        # the solution notebook's answers (computed independently of the reference) pass
        result = call(exercise, functions[exercise.function], case.make_inputs())
        results = [result] if len(exercise.outputs) == 1 else list(result)
        for output, got in zip(exercise.outputs, results, strict=True):
            ok, message = compare_output(output, got, reference)
            assert ok and "@" not in message, (case.name, message)
            for key, text in output.mistakes:
                if key in reference:  # a learner who made exactly this mistake
                    ok, message = compare_output(output, reference[key], reference)
                    assert not ok and message.startswith(text + " ["), (case.name, key, message)


def test_a_max_over_states_in_value_iteration_is_named():
    def max_over_states(P, R, gamma, horizon=None, tol=1e-10):
        Q = bellman_backup(P, R, gamma, np.zeros(P.shape[0]))
        return Q.max(axis=0), Q.argmax(axis=0)

    exercise = LECTURE.exercise("1.2")
    inputs = exercise.cases[0].make_inputs()
    outputs = list(call(exercise, max_over_states, inputs))
    ok, message = compare_output(exercise.outputs[0], outputs[0], exercise.reference(inputs))
    assert not ok and message.startswith("you took the max over states (axis 0)")
    assert "shape (4,), expected (12,)" in message


def test_a_wrong_answer_that_matches_no_variant_gets_the_hint_and_the_numbers():
    exercise = LECTURE.exercise("1.3")
    inputs = exercise.cases[0].make_inputs()
    reference = exercise.reference(inputs)
    ok, message = compare_output(exercise.outputs[0], reference["V"] + 0.5, reference)
    assert not ok and message.startswith(exercise.outputs[0].hint + " [V wrong in 12 of 12")


def test_notebook_check_passes_the_solution_and_raises_on_a_bug(capsys):
    functions = solution_functions(SOLUTION)
    check("1.1", functions["bellman_backup"])
    check("1.1", functions["bellman_backup"], hidden=True)
    assert "all visible cases pass" in capsys.readouterr().out

    def no_discount(P, R, gamma, V):
        return np.sum(P * (R + V[None, None, :]), axis=2)

    with pytest.raises(AssertionError, match=r"Exercise 1.1: 1 visible case\(s\) failed; reread"):
        check("1.1", no_discount)
    out = capsys.readouterr().out
    assert "✗\x1b[0m random MDP (S=7, A=3), gamma=0.9, random V, R depends on s': your backup " in (
        out
    )
    assert "ignores gamma" in out

    def stub(P, R, gamma, V):
        raise NotImplementedError("Exercise 1.1")

    with pytest.raises(AssertionError):
        check("1.1", stub)
    assert "not written yet" in capsys.readouterr().out


def test_lecture_registry_finds_exercises_by_number():
    assert lecture_of("1.4") is lectures()["01_mdps"]
    with pytest.raises(ValueError, match="no graded exercise numbered '7.7'"):
        lecture_of("7.7")


# --- comparisons: clear messages for wrong shapes, NaN, non-numbers, ties ---------------------


def test_compare_values_names_shape_nan_and_worst_entry():
    expected = np.array([1.0, 2.0, 3.0])
    assert compare_values(expected + 1e-9, expected, "V", 1e-6)[0]
    ok, message = compare_values(np.ones(4), expected, "V", 1e-6)
    assert not ok and "shape (4,), expected (3,)" in message
    ok, message = compare_values(np.array([1.0, np.nan, 3.0]), expected, "V", 1e-6)
    assert not ok and "NaN" in message
    ok, message = compare_values(np.array([1.0, 2.5, 3.0]), expected, "V", 1e-6)
    assert not ok and "largest error 0.5 at 1: expected 2, got 2.5" in message
    ok, message = compare_values("abc", expected, "V", 1e-6)
    assert not ok and "array of numbers" in message
    ok, message = compare_values([{"a": 1}], expected, "V", 1e-6)
    assert not ok


def test_compare_greedy_accepts_any_maximiser_and_rejects_others():
    Q = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    assert compare_greedy(np.array([1, 1]), Q, "policy", 1e-9)[0]  # tie in state 0
    assert compare_greedy(np.array([0, 1]), Q, "policy", 1e-9)[0]
    ok, message = compare_greedy(np.array([0, 2]), Q, "policy", 1e-9)
    assert not ok and "in state 1 it picks action 2" in message
    ok, message = compare_greedy(np.array([0, 5]), Q, "policy", 1e-9)
    assert not ok and "outside 0..2" in message
    ok, message = compare_greedy(np.array([0.5, 1]), Q, "policy", 1e-9)
    assert not ok and "integer actions" in message


def test_compare_probs_requires_rows_summing_to_one():
    expected = np.array([[0.5, 0.5], [0.2, 0.8]])
    assert compare_probs(expected.copy(), expected, "pi", 1e-6)[0]
    ok, message = compare_probs(np.array([[0.5, 0.6], [0.2, 0.8]]), expected, "pi", 1e-6)
    assert not ok and "row 0 sums to 1.1" in message


def test_grid_diff_marks_wrong_cells_and_colours_only_on_request():
    grid = [
        [{"got": 1.0, "expected": 1.0, "ok": True}, None],
        [{"got": 0.5, "expected": 0.25, "ok": False}, {"got": 0.0, "expected": 0.0, "ok": True}],
    ]
    plain = render_grid(grid, color=False)
    assert "+0.500≠+0.250" in plain and "#####" in plain and "\x1b[" not in plain
    coloured = render_grid(grid, color=True)
    assert "\x1b[31m" in coloured and "\x1b[32m" in coloured
