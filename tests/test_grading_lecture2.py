"""Lecture 2's graded exercise (02_dqn): release, checks, references, and real kernels.

Fast part: the notebook's shape, the solution passing every case in this process, the
references against brute force (cumulative sums, finite differences, a hand-computed stream)
and the named-mistake feedback. Kernel part: the solution, the untouched exercise and ten bugs
(tests/grading_fixtures/lecture2/submissions.py) graded once, in one batch of 2 kernels.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import grade_fixtures, part_scores, solution_functions

from fdrl_lib.grading.checking import call, check
from fdrl_lib.grading.exercises import dqn as ex2
from fdrl_lib.grading.exercises import lecture_of, lectures
from fdrl_lib.grading.notebook import nbgrader_meta
from fdrl_lib.grading.runner import Report
from fdrl_lib.grading.sandbox import Limits
from fdrl_lib.grading.spec import Output, compare_frequencies, compare_output

sys.path.insert(0, str(Path(__file__).parent))
from grading_fixtures.lecture2 import submissions as fx  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "02_dqn.ipynb"
EXERCISE = ROOT / "exercises" / "02_dqn.ipynb"
LECTURE = ex2.LECTURE
LIMITS = Limits(timeout=120, cell_timeout=30, case_timeout=10, memory_mb=2048)


# --- the notebook ---------------------------------------------------------------------------


def test_lecture_2_is_registered_and_numbered_2_1_to_2_6():
    assert lectures()["02_dqn"] is LECTURE
    assert [e.number for e in LECTURE.exercises] == ["2.1", "2.2", "2.3", "2.4", "2.5", "2.6"]
    assert lecture_of("2.6") is LECTURE and LECTURE.exercise("2.3").function == "dqn_target"
    assert {e.number: e.points for e in LECTURE.exercises} == fx.FULL


# --- checks and references ------------------------------------------------------------------


def test_q_update_reference_matches_a_hand_computed_stream():
    # Q0 = 0, alpha = 0.5, gamma = 0.9; three transitions of a 2-state, 1-action chain.
    inputs = {
        "Q": np.zeros((2, 1)),
        "obs": np.array([0, 1, 0]),
        "action": np.array([0, 0, 0]),
        "reward": np.array([1.0, 2.0, 0.0]),
        "next_obs": np.array([1, 0, 1]),
        "terminated": np.array([False, True, False]),
        "truncated": np.array([False, False, True]),
        "alpha": 0.5,
        "gamma": 0.9,
    }
    # t=0: Q[0] = 0.5 * (1 + 0.9 * 0) = 0.5; t=1 (terminal): Q[1] = 0.5 * 2 = 1;
    # t=2 (truncated, still bootstraps): Q[0] = 0.5 * 0.5 + 0.5 * (0 + 0.9 * 1) = 0.7.
    ref = ex2._ref_q_update(inputs)
    np.testing.assert_allclose(ref["Q"], [[0.7], [1.0]])
    np.testing.assert_allclose(ref["Q@truncated_as_terminal"], [[0.25], [1.0]])
    np.testing.assert_allclose(
        ref["Q@ignores_terminated"], [[0.5 * 0.5 + 0.5 * 0.9 * 1.225], [1.225]]
    )


def test_streams_contain_the_episode_ends_their_names_promise():
    cases = LECTURE.exercise("2.1").cases
    first, terminal, truncated, both = (case.make_inputs() for case in cases)
    assert not first["terminated"].any() and not first["truncated"].any()
    assert terminal["terminated"].sum() >= 3 and not terminal["truncated"].any()
    assert truncated["truncated"].sum() >= 3 and not truncated["terminated"].any()
    assert both["terminated"].any() and both["truncated"].any()
    assert not (both["terminated"] & both["truncated"]).any()
    for inputs in (terminal, truncated, both):  # each bug changes the answer
        ref = ex2._ref_q_update(inputs)
        assert ref["Q"].shape == inputs["Q"].shape
    assert not np.allclose(
        ex2._ref_q_update(terminal)["Q@ignores_terminated"], ex2._ref_q_update(terminal)["Q"]
    )
    assert not np.allclose(
        ex2._ref_q_update(truncated)["Q@truncated_as_terminal"], ex2._ref_q_update(truncated)["Q"]
    )


def test_dqn_target_reference_equals_the_isolation_reference_and_handles_terminals():
    for case in LECTURE.exercise("2.3").cases:
        inputs = case.make_inputs()
        expected = ex2._ref_dqn_target(inputs)["y"]
        got = call(LECTURE.exercise("2.3"), ex2.dqn_target, inputs)
        np.testing.assert_allclose(got, expected, atol=1e-12)
        terminal = inputs["terminated"]
        np.testing.assert_allclose(expected[terminal], inputs["reward"][terminal])
        if "next_q_online" in inputs:  # online and target disagree somewhere, or 2.12 is moot
            picks = inputs["next_q_online"].argmax(1) != inputs["next_q_target"].argmax(1)
            assert picks[~terminal].any()


def test_huber_reference_matches_its_definition_and_finite_differences():
    for case in LECTURE.exercise("2.4").cases:
        inputs = case.make_inputs()
        e, delta = inputs["error"], inputs.get("delta", 1.0)
        ref = ex2._ref_huber(inputs)
        definition = np.where(np.abs(e) <= delta, e**2 / 2, delta * (np.abs(e) - delta / 2))
        np.testing.assert_allclose(ref["loss"], definition, atol=1e-12)
        np.testing.assert_allclose(ref["grad"], np.clip(e, -delta, delta), atol=1e-12)
        h = 1e-6
        smooth = np.abs(np.abs(e) - delta) > 1e-3  # away from the kink of the second derivative
        upper = ex2._ref_huber({**inputs, "error": e + h})["loss"]
        lower = ex2._ref_huber({**inputs, "error": e - h})["loss"]
        np.testing.assert_allclose(
            ((upper - lower) / (2 * h))[smooth], ref["grad"][smooth], atol=1e-6
        )
        assert (np.abs(e) > delta).any() or case.name.startswith("delta=1, |error|")


def test_sum_tree_reference_agrees_with_cumulative_sums_and_never_samples_zero_priority():
    for case in LECTURE.exercise("2.5").cases:
        inputs = case.make_inputs()
        ref = ex2._ref_sum_tree(inputs)
        priorities = inputs["priorities"]
        cumulative = np.cumsum(priorities)
        values = ex2.stratified_values(cumulative[-1], inputs["uniforms"])
        brute = np.searchsorted(cumulative, values, side="right")  # c_(i-1) <= v < c_i
        np.testing.assert_array_equal(ref["indices"], brute)
        assert np.all(priorities[ref["indices"]] > 0)
        tree = ref["tree"]
        L = len(tree) // 2
        np.testing.assert_allclose(tree[L : L + len(priorities)], priorities)
        np.testing.assert_allclose(tree[1:L], tree[2 : 2 * L : 2] + tree[3 : 2 * L : 2])
        if not np.all(priorities == np.round(priorities)):  # float sums: no value near a boundary
            assert np.min(np.abs(values[:, None] - cumulative[None, :])) > 1e-9
    boundary = ex2._ref_sum_tree(LECTURE.exercise("2.5").cases[0].make_inputs())
    assert boundary["indices"].tolist() == [0, 2, 2, 3]
    assert boundary["indices@boundary_goes_left"].tolist() != [0, 2, 2, 3]


def test_dqn_loss_reference_matches_a_plain_torch_computation_and_variants_differ():
    import torch

    inputs = LECTURE.exercise("2.6").cases[1].make_inputs()  # double DQN
    sizes = [int(x) for x in inputs["sizes"]]
    nets = []
    for key in ("online_params", "target_params"):
        net = torch.nn.Sequential(
            torch.nn.Linear(sizes[0], sizes[1]),
            torch.nn.ReLU(),
            torch.nn.Linear(sizes[1], sizes[2]),
        )
        torch.nn.utils.vector_to_parameters(torch.as_tensor(inputs[key]), net.parameters())
        nets.append(net)
    online, target = nets
    next_obs = torch.as_tensor(inputs["next_obs"])
    with torch.no_grad():
        a_star = online(next_obs).argmax(1)
        value = target(next_obs)[torch.arange(len(a_star)), a_star]
        y = (
            torch.as_tensor(inputs["reward"])
            + inputs["gamma"] * (1 - torch.as_tensor(inputs["terminated"])) * value
        )
    q = online(torch.as_tensor(inputs["obs"]))[
        torch.arange(len(y)), torch.as_tensor(inputs["action"])
    ]
    error = q - y
    loss = torch.where(error.abs() <= 1, 0.5 * error**2, error.abs() - 0.5).mean()
    loss.backward()
    ref = ex2._ref_dqn_loss(inputs)
    assert abs(float(loss.detach()) - float(ref["loss"])) < 1e-6
    grad = torch.cat([p.grad.flatten() for p in online.parameters()]).numpy()
    np.testing.assert_allclose(ref["online_grad"], grad, atol=1e-6)
    for key in ("loss@ignores_terminated", "loss@evaluates_with_online", "loss@mse"):
        assert abs(float(ref[key]) - float(ref["loss"])) > 1e-3, key


def test_frequencies_accept_a_right_sampler_and_reject_a_biased_one():
    probs = np.array([0.025, 0.925, 0.025, 0.025])
    rng = np.random.default_rng(0)
    right = np.bincount(rng.choice(4, size=20_000, p=probs), minlength=4)
    assert compare_frequencies(right, probs, "counts")[0]
    biased = np.bincount(rng.choice(4, size=20_000, p=[1 / 30, 0.9, 1 / 30, 1 / 30]), minlength=4)
    ok, message = compare_frequencies(biased, probs, "counts")
    assert not ok and "action 1 was drawn" in message
    assert not compare_frequencies(np.array([0, 20_000 - 1, 1, 0]), np.array([0, 1, 0, 0.0]), "c")[
        0
    ]


def test_a_wrong_output_matching_a_known_mistake_is_named_else_the_hint_is_given():
    output = Output("y", "values", mistakes=(("y@bug", "you did the bug"),), hint="reread it")
    reference = {"y": np.array([1.0, 2.0]), "y@bug": np.array([1.0, 3.0])}
    ok, message = compare_output(output, np.array([1.0, 3.0]), reference)
    assert not ok and message.startswith("you did the bug [y wrong in 1 of 2 entries")
    ok, message = compare_output(output, np.array([0.0, 0.0]), reference)
    assert not ok and message.startswith("reread it [y wrong") and "you did the bug" not in message
    assert compare_output(output, np.array([1.0, 2.0]), reference)[0]
    with pytest.raises(ValueError, match="unknown output kind 'nope'"):
        compare_output(Output("y", "nope"), np.zeros(2), reference)


def test_notebook_check_names_the_backprop_mistake(capsys):
    functions = solution_functions(SOLUTION)
    check("2.6", functions["dqn_loss"])
    nb = fx.build("bug_backprop_into_target")
    scope: dict = {"np": np, "torch": __import__("torch")}
    exec(next(c.source for c in nb.cells if nbgrader_meta(c).get("grade_id") == "dqn_loss"), scope)
    with pytest.raises(AssertionError, match=r"Exercise 2.6: 2 visible case\(s\) failed"):
        check("2.6", scope["dqn_loss"])
    assert "backpropagates into the target network" in capsys.readouterr().out


# --- real kernels ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, Report]:
    return grade_fixtures(tmp_path_factory.mktemp("lecture2"), fx.write_all, "02_dqn", LIMITS)


@pytest.mark.xdist_group("grading_lecture2")
def test_solution_scores_full_marks(graded):
    report = graded["solution"]
    assert report.score == report.max_score == fx.TOTAL, report.to_dict()
    assert report.error is None and report.notes == []


@pytest.mark.xdist_group("grading_lecture2")
def test_untouched_exercise_scores_zero_with_a_message_per_case(graded):
    report = graded["blank"]
    assert report.score == 0 and report.max_score == fx.TOTAL
    for part in report.parts:
        for case in part.cases:
            assert case.message == f"not written yet (NotImplementedError: Exercise {part.number})"


@pytest.mark.xdist_group("grading_lecture2")
@pytest.mark.parametrize("name", list(fx.BUGS))
def test_each_bug_loses_exactly_its_points_with_feedback_naming_the_mistake(graded, name):
    report = graded[name]
    assert part_scores(report) == fx.expected(name)
    failed = [case for part in report.parts for case in part.cases if case.earned == 0]
    assert failed
    for case in failed:
        assert fx.BUGS[name][2] in case.message, case.message


@pytest.mark.parametrize("name", list(fx.FAIR))
def test_correct_work_written_differently_scores_full_marks_in_the_grader(graded, name):
    assert part_scores(graded[name]) == fx.FULL, graded[name].to_dict()


@pytest.mark.parametrize("name", list(fx.FAIR))
def test_correct_work_written_differently_passes_the_notebooks_check_too(name, capsys):
    import torch

    scope = {"np": np, "torch": torch}
    for cell in fx.build(name).cells:
        if nbgrader_meta(cell).get("solution"):
            exec(cell.source, scope)
    check("2.6", scope["dqn_loss"])
    assert "Exercise 2.6: all visible cases pass." in capsys.readouterr().out


def test_the_librarys_answers_and_the_graders_helpers_earn_nothing(graded):
    report = graded["cheat_library_and_helpers"]
    assert part_scores(report) == fx.CHEATS["cheat_library_and_helpers"]
    messages = {p.number: " ".join(c.message for c in p.cases) for p in report.parts}
    assert (
        "fdrl_lib.algos.dqn.huber is not available while exercise 2.4 is graded"
        in (messages["2.4"])
    )
    assert (
        "fdrl_lib.buffers.SumTree.update is not available while exercise 2.5" in (messages["2.5"])
    )
    assert (
        "fdrl_lib.grading.exercises is not available while a submission is graded"
        in (messages["2.1"])
    )
