"""The framework lectures 3-6 write their checks on (issue 14): the generic torch adapter
(tensors with gradients in, value and gradients out), callable inputs, catalogue mistakes as
variants of the reference, one-line cases, and tensors through the sealed kernel.

The demo lecture (tests/grading_fixtures/demo_lecture.py, docs/grading.md's worked example)
is checked in this process with ``check`` and graded in a real kernel by the grader's own
``_grade``; both must agree."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from fdrl_lib.grading import mistakes
from fdrl_lib.grading.checking import check
from fdrl_lib.grading.runner import Report, _grade, make_plan
from fdrl_lib.grading.sandbox import Limits

sys.path.insert(0, str(Path(__file__).parent))
from grading_fixtures.demo_lecture import DEMO  # noqa: E402

RIGHT = {
    "returns": """
def returns(rewards, terminated, truncated, last_value, gamma):
    G, running = np.zeros(len(rewards)), last_value
    for t in reversed(range(len(rewards))):
        if terminated[t] or truncated[t]:
            running = 0.0
        running = rewards[t] + gamma * running
        G[t] = running
    return G
""",
    "pg_loss": """
def pg_loss(logits, actions, advantages, values, targets):
    logp = torch.log_softmax(logits, dim=1)[torch.arange(len(actions)), actions]
    return -(logp * advantages).mean() + 0.5 * ((values - targets.detach()) ** 2).mean()
""",
    "conjugate_gradient": """
def conjugate_gradient(fvp, g, iters):
    x = np.zeros_like(g); r = g.copy(); p = r.copy(); rr = r @ r
    for _ in range(iters):
        Ap = fvp(p)
        alpha = rr / (p @ Ap)
        x = x + alpha * p; r = r - alpha * Ap
        rr, rr_old = r @ r, rr
        p = r + (rr / rr_old) * p
    return x
""",
}

# (function, old, new, the exercise, the catalogue mistake its feedback must name or None)
BUGS = {
    "sum_crosses_episode_end": (
        "returns",
        "if terminated[t] or truncated[t]:",
        "if False:",
        "9.1",
        mistakes.SUM_CROSSES_EPISODE_END,
    ),
    "sign_flipped": (
        "pg_loss",
        "return -(logp * advantages).mean() + 0.5",
        "return (logp * advantages).mean() - 0.5",
        "9.2",
        mistakes.SIGN_FLIPPED,
    ),
    "gradient_into_target": (
        "pg_loss",
        "targets.detach()",
        "targets",
        "9.2",
        mistakes.GRADIENT_INTO_TARGET,
    ),
    "cg_extra_product": ("conjugate_gradient", "Ap = fvp(p)", "Ap = fvp(p); fvp(p)", "9.3", None),
}


def _functions(sources: dict[str, str]) -> dict:
    import numpy as np
    import torch

    scope = {"np": np, "torch": torch}
    for source in sources.values():
        exec(source, scope)
    return scope


def _buggy(name: str) -> dict[str, str]:
    function, old, new, *_ = BUGS[name]
    assert old in RIGHT[function]
    return {**RIGHT, function: RIGHT[function].replace(old, new)}


@pytest.mark.parametrize("number", ["9.1", "9.2", "9.3"])
def test_right_answers_pass_every_case_in_the_notebook(number, capsys):
    function = DEMO.exercise(number).function
    check(number, _functions(RIGHT)[function], lecture=DEMO)
    check(number, _functions(RIGHT)[function], lecture=DEMO, hidden=True)
    assert f"Exercise {number}: all hidden cases pass." in capsys.readouterr().out


@pytest.mark.parametrize("name", list(BUGS))
def test_each_mistake_fails_its_exercise_in_the_notebook_with_its_name(name, capsys):
    function, _, _, number, mistake = BUGS[name]
    with pytest.raises(AssertionError):
        check(number, _functions(_buggy(name))[function], lecture=DEMO)
    out = capsys.readouterr().out
    if mistake is not None:
        assert mistake.text in out


def test_variants_are_kept_only_where_they_differ_from_the_right_answer():
    exercise = DEMO.exercise("9.1")
    reference = exercise.reference(exercise.cases[0].make_inputs())
    assert "G@sum_crosses_episode_end" in reference
    assert "G@ignores_terminated" in reference  # the case has a termination
    no_ends = {**exercise.cases[0].make_inputs()}
    no_ends["terminated"] = no_ends["truncated"] = no_ends["terminated"] & False
    assert "G@sum_crosses_episode_end" not in exercise.reference(no_ends)


def test_one_line_hidden_cases_take_the_secret_seed():
    for exercise in DEMO.exercises:
        for case in exercise.cases:
            assert case.seeded == case.hidden


KERNEL_BUGS = ("sum_crosses_episode_end", "gradient_into_target", "cg_extra_product")


def test_tensors_gradients_and_callables_pass_through_the_sealed_kernel():
    # generous: a cold kernel first imports torch, slowly on a busy machine (CI runs 2 workers)
    limits = Limits(timeout=300, cell_timeout=120, case_timeout=60)
    plan = make_plan(DEMO)
    buggy = dict(RIGHT)
    for name in KERNEL_BUGS:  # one bug per exercise, all in one notebook
        function, old, new, *_ = BUGS[name]
        buggy[function] = buggy[function].replace(old, new)
    reports = {}
    for name, sources in [("right", RIGHT), ("buggy", buggy)]:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("import numpy as np\nimport torch")]
        nb.cells += [nbformat.v4.new_code_cell(source) for source in sources.values()]
        report = Report(name, name, DEMO.name, "")
        _grade(nb, plan, report, limits, ())
        reports[name] = report
    right = reports["right"]
    why = [right.notes] + [c.message for p in right.parts for c in p.cases]  # shown on failure
    assert {p.number: p.score for p in right.parts} == {"9.1": 2, "9.2": 2, "9.3": 2}, why
    assert reports["right"].notes == []
    parts = {p.number: p for p in reports["buggy"].parts}
    assert {number: part.score for number, part in parts.items()} == dict.fromkeys(parts, 0.0)
    for name in KERNEL_BUGS:
        _, _, _, number, mistake = BUGS[name]
        for case in parts[number].cases:
            assert mistake is None or case.message.startswith(mistake.text), case.message
    assert all("calls" in case.message for case in parts["9.3"].cases)
