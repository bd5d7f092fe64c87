"""Lecture 5's graded exercise (05_ddpg_sac): checks, references, named bugs, kernels.

Fast part: the solution passes every case in this process, the references agree with hand
values and a numerical change of variables, correct work written differently passes, and each
planted bug loses exactly its exercise's points with feedback that names it. Kernel part: the
solution, the untouched exercise and the four bugs graded once by ``fdrl grade``'s batch runner
(2 kernels).
"""

from __future__ import annotations

import math
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

from fdrl_lib.grading.exercises import ddpg_sac as ex5
from fdrl_lib.grading.exercises import lectures
from fdrl_lib.grading.notebook import nbgrader_meta
from fdrl_lib.grading.sandbox import Limits

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "05_ddpg_sac.ipynb"
EXERCISE = ROOT / "exercises" / "05_ddpg_sac.ipynb"
LECTURE = ex5.LECTURE
FULL = {"5.1": 3, "5.2": 3, "5.3": 3, "5.4": 3}
LIMITS = Limits(timeout=120, cell_timeout=30, case_timeout=10, memory_mb=2048)

# name: (grade_id, old, new, the exercise it breaks, words its feedback must contain)
BUGS = {
    "bug_no_terminated_masking": (
        "ddpg_target",
        "return reward + gamma * (1.0 - terminated) * next_q",
        "return reward + gamma * next_q",
        "5.1",
        "you bootstrap past terminal transitions",
    ),
    "bug_polyak_keeps_the_graph": (
        "polyak_update",
        "    with torch.no_grad():  # a lagged copy, not a trained network: no graph\n"
        "        for lagged, online in zip(target_params, online_params, strict=True):\n"
        "            lagged.mul_(1.0 - tau).add_(tau * online)\n"
        "    return target_params",
        "    return [tau * online + (1.0 - tau) * lagged\n"
        "            for lagged, online in zip(target_params, online_params)]",
        "5.2",
        "gradient flows into the target networks",
    ),
    "bug_max_of_twin_critics": (
        "soft_q_target",
        "torch.minimum(next_q1, next_q2)",
        "torch.maximum(next_q1, next_q2)",
        "5.3",
        "you took a max where the method takes a min",
    ),
    "bug_no_tanh_correction": (
        "tanh_gaussian",
        "(log_normal - log_dtanh).sum(-1)",
        "log_normal.sum(-1)",
        "5.4",
        "no tanh correction",
    ),
}


def _build(name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(SOLUTION, as_version=4)
    grade_id, old, new, _, _ = BUGS[name]
    cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)
    assert old in cell.source, f"{name}: the solution changed, update the bug"
    cell.source = cell.source.replace(old, new)
    return nb


# --- the lecture and its references ------------------------------------------------------------


def test_lecture_5_is_registered_and_numbered_5_1_to_5_4():
    assert lectures()["05_ddpg_sac"] is LECTURE
    assert {e.number: e.points for e in LECTURE.exercises} == FULL


def test_ddpg_target_reference_by_hand():
    inputs = {"reward": np.array([1.0, 2.0]), "terminated": np.array([0.0, 1.0]), "gamma": 0.5,
              "next_q": np.array([4.0, 100.0])}  # fmt: skip
    np.testing.assert_allclose(ex5._ref_ddpg_target(inputs)["target"], [3.0, 2.0])
    named = LECTURE.exercise("5.1").reference(inputs)  # with the mistakes' variants
    np.testing.assert_allclose(named["target@ignores_terminated"], [3.0, 52.0])
    np.testing.assert_allclose(named["target@mask_flipped"], [1.0, 52.0])


def test_polyak_reference_copies_at_tau_1_keeps_at_tau_0_and_mixes_by_hand():
    inputs = ex5.networks(seed=4)
    copy = ex5._ref_polyak({**inputs, "tau": 1.0})
    keep = ex5._ref_polyak({**inputs, "tau": 0.0})
    np.testing.assert_array_equal(copy["new_weight"], inputs["online_weight"])
    np.testing.assert_array_equal(keep["new_bias"], inputs["target_bias"])
    hand = {"target_weight": np.zeros((1, 1)), "target_bias": np.array([8.0]), "tau": 0.25,
            "online_weight": np.full((1, 1), 4.0), "online_bias": np.zeros(1)}  # fmt: skip
    ref = ex5._ref_polyak(hand)
    assert ref["new_weight"][0, 0] == 1.0 and ref["new_bias"][0] == 6.0
    assert ref["graph_connected"] == 0.0
    assert hand["target_weight"][0, 0] == 0.0, "the reference must not change the case's inputs"


def test_the_polyak_wrapper_sees_a_graph_and_accepts_in_place_or_new_tensors():
    inputs = ex5.networks(seed=5)
    args = [inputs[n] for n in LECTURE.exercise("5.2").args]

    def in_place(target, online, tau):
        with torch.no_grad():
            for t, o in zip(target, online, strict=True):
                t.lerp_(o, tau)

    def fresh(target, online, tau):
        with torch.no_grad():
            return [t + tau * (o - t) for t, o in zip(target, online, strict=True)]

    def connected(target, online, tau):
        return [t + tau * (o - t) for t, o in zip(target, online, strict=True)]

    ref = ex5._ref_polyak(inputs)
    for learner, flag in ((in_place, 0.0), (fresh, 0.0), (connected, 1.0)):
        weight, bias, graph = ex5.torch_polyak(learner, *args)
        np.testing.assert_allclose(weight, ref["new_weight"])
        np.testing.assert_allclose(bias, ref["new_bias"])
        assert graph == flag, learner.__name__
    with pytest.raises(ValueError, match="expected the list"):
        ex5.torch_polyak(lambda t, o, tau: 3.0, *args)


def test_soft_q_target_reference_by_hand_min_per_sample_and_the_entropy_term():
    inputs = {"reward": np.array([1.0, 0.0, 0.5]), "terminated": np.array([0.0, 1.0, 0.0]),
              "gamma": 0.5, "next_q1": np.array([2.0, 5.0, 1.0]),
              "next_q2": np.array([3.0, -1.0, -3.0]), "next_log_prob": np.array([-1.0, 7.0, 2.0]),
              "alpha": 0.2}  # fmt: skip
    # sample 0: min(2, 3) = 2; 2 - 0.2 * (-1) = 2.2. Sample 2: min(1, -3) = -3; -3 - 0.4 = -3.4
    np.testing.assert_allclose(ex5._ref_soft_q_target(inputs)["target"], [2.1, 0.0, -1.2])
    named = LECTURE.exercise("5.3").reference(inputs)
    np.testing.assert_allclose(named["target@max_for_min"], [2.6, 0.0, 0.8])
    np.testing.assert_allclose(named["target@entropy_sign"], [1.9, 0.0, -0.8])
    np.testing.assert_allclose(named["target@no_entropy"], [2.0, 0.0, -1.0])


def _numerical_log_density(mu: float, sigma: float, a: float, h: float = 1e-7) -> float:
    """log of P(tanh(u) in [a, a + h]) / h for u ~ N(mu, sigma^2): tanh is increasing."""

    def cdf(x: float) -> float:
        return 0.5 * (1.0 + math.erf((x - mu) / (sigma * math.sqrt(2.0))))

    return math.log((cdf(math.atanh(a + h)) - cdf(math.atanh(a))) / h)


def test_tanh_gaussian_reference_matches_a_numerical_change_of_variables():
    inputs = ex5.gaussians(seed=6, B=5, A=2)
    ref = ex5._ref_tanh_gaussian(inputs)
    mean, sigma = inputs["mean"], np.exp(inputs["log_std"])
    np.testing.assert_allclose(ref["action"], np.tanh(mean + sigma * inputs["noise"]))
    numeric = [
        sum(_numerical_log_density(mean[b, k], sigma[b, k], ref["action"][b, k]) for k in range(2))
        for b in range(5)
    ]
    np.testing.assert_allclose(ref["log_prob"], numeric, atol=1e-4)
    gaussian = torch.distributions.Normal(torch.tensor(mean), torch.tensor(sigma))
    u = torch.tensor(mean + sigma * inputs["noise"])
    uncorrected = gaussian.log_prob(u).sum(-1).numpy()
    named = LECTURE.exercise("5.4").reference(inputs)
    np.testing.assert_allclose(named["log_prob@missing_correction"], uncorrected)
    np.testing.assert_allclose(named["log_prob@correction_sign"], 2 * uncorrected - ref["log_prob"])


def test_every_case_shows_each_probe():
    """Each planted bug must change every case: terminals with a nonzero bootstrap, twins that
    disagree where they are used."""
    for case in LECTURE.exercise("5.1").cases + LECTURE.exercise("5.3").cases:
        inputs = case.make_inputs()
        assert inputs["terminated"].sum() >= 2 and (inputs["terminated"] == 0).any()
    for case in LECTURE.exercise("5.3").cases:
        inputs = case.make_inputs()
        live = inputs["terminated"] == 0
        assert np.abs(inputs["next_q1"] - inputs["next_q2"])[live].max() > 0.1


# --- in this process ---------------------------------------------------------------------------


def test_solution_passes_every_case_and_the_blank_exercise_none():
    assert score_in_process(LECTURE, solution_functions(SOLUTION)) == (FULL, [])
    scores, messages = score_in_process(
        LECTURE, notebook_functions(nbformat.read(EXERCISE, as_version=4))
    )
    assert scores == dict.fromkeys(FULL, 0.0)
    assert all("Exercise" in m for m in messages)


def _polyak_fresh(target_params, online_params, tau):
    with torch.no_grad():
        return [torch.lerp(t, o, tau) for t, o in zip(target_params, online_params, strict=True)]


def _soft_stacked(reward, terminated, gamma, next_q1, next_q2, next_log_prob, alpha):
    q = torch.stack([next_q1, next_q2]).min(0).values
    return reward + gamma * torch.where(terminated > 0, 0.0, q - alpha * next_log_prob)


def _tanh_distributions(mean, log_std, noise):
    u = mean + log_std.exp() * noise
    action = torch.tanh(u)
    normal = torch.distributions.Normal(mean, log_std.exp())
    return action, (normal.log_prob(u) - torch.log1p(-action.square())).sum(-1)


FAIR = {"polyak_update": _polyak_fresh, "soft_q_target": _soft_stacked,
        "tanh_gaussian": _tanh_distributions}  # fmt: skip


def test_correct_work_written_differently_earns_every_point():
    """New tensors instead of in place, torch.where and a stacked min, torch.distributions with
    the plain log1p(-a^2) correction (exact enough in float64 at these inputs)."""
    assert score_in_process(LECTURE, {**solution_functions(SOLUTION), **FAIR}) == (FULL, [])


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
    return grade_built(tmp_path_factory, "05_ddpg_sac", LIMITS, SOLUTION, EXERCISE, built)


@pytest.mark.xdist_group("grading_lecture5")
def test_the_grader_scores_solution_blank_and_bugs(graded):
    assert part_scores(graded["solution"]) == FULL, graded["solution"].to_dict()
    assert graded["blank"].score == 0
    for name, (*_, number, words) in BUGS.items():
        assert_loses_only(graded[name], FULL, number, words)
