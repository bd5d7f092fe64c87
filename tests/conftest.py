"""Fixtures shared by several test files."""

import pytest


@pytest.fixture
def displayed(monkeypatch) -> list[tuple[str, object]]:
    """Record what ``IPython.display.display`` shows, and the in-place updates of its handles.

    Each entry is ``("display", obj)`` or ``("update", obj)``; widgets are tested without a
    browser by checking what they would have put on the page.
    """
    import IPython.display

    shown: list[tuple[str, object]] = []

    class Handle:
        def update(self, obj):
            shown.append(("update", obj))

    def fake_display(obj, *args, **kwargs):
        shown.append(("display", obj))
        return Handle() if kwargs.get("display_id") else None

    monkeypatch.setattr(IPython.display, "display", fake_display)
    return shown


def code_outputs(notebook) -> list:
    """Every output of every code cell, in order."""
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


def run_fast(notebook_path, tmp_path, monkeypatch, **parameters):
    """Execute a notebook top to bottom on a fresh kernel in fast mode; return it executed.

    Papermill sets ``FAST=True`` (and ``parameters``) in the tagged cell, and the kernel
    inherits ``FDRL_FAST=1``, so ``fdrl_lib.fast_mode()`` agrees.
    """
    import nbformat
    import papermill

    out = tmp_path / f"{notebook_path.stem}.out.ipynb"
    monkeypatch.setenv("FDRL_FAST", "1")
    papermill.execute_notebook(
        str(notebook_path),
        str(out),
        kernel_name="python3",
        cwd=str(notebook_path.parent),
        progress_bar=False,
        parameters={"FAST": True, **parameters},
    )
    return nbformat.read(out, as_version=4)


def solution_functions(solution_path) -> dict:
    """The functions a solution notebook defines in its stub cells, executed in this process.

    Independent of any kernel: tests call them directly. ``np`` (and ``torch`` where a cell
    uses it) are in scope, as the notebook's imports would put them.
    """
    import nbformat
    import numpy as np

    from fdrl_lib.grading.notebook import nbgrader_meta

    scope: dict = {"np": np}
    for cell in nbformat.read(solution_path, as_version=4).cells:
        if nbgrader_meta(cell).get("solution"):
            if "torch" in cell.source and "torch" not in scope:
                import torch

                scope["torch"] = torch
            exec(cell.source, scope)
    return scope


def grade_fixtures(folder, write_all, exercise: str, limits) -> dict:
    """Write a fixture set into ``folder``, grade it as one batch (2 kernels), key by learner."""
    import time

    from fdrl_lib.grading import grade_batch

    write_all(folder)
    start = time.monotonic()
    reports = grade_batch(str(folder), jobs=2, exercise=exercise, limits=limits, progress=False)
    print(f"\n{len(reports)} {exercise} submissions graded in {time.monotonic() - start:.1f} s")
    return {report.learner: report for report in reports}


def grade_built(tmp_path_factory, exercise: str, limits, solution, blank, built: dict) -> dict:
    """The solution notebook, the untouched exercise (learner ``"blank"``) and each built
    notebook (learner name -> notebook) graded as one batch by :func:`grade_fixtures`."""
    import nbformat

    def write_all(folder) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        every = {
            **built,
            "solution": nbformat.read(solution, as_version=4),
            "blank": nbformat.read(blank, as_version=4),
        }
        for name, nb in every.items():
            nbformat.write(nb, folder / f"{name}.ipynb")

    return grade_fixtures(tmp_path_factory.mktemp(exercise), write_all, exercise, limits)


def assert_loses_only(report, full: dict, number: str, words: str) -> None:
    """``report`` scores full points on every exercise but ``number``, which scores 0, and the
    message of each failed case contains ``words``."""
    assert part_scores(report) == {**full, number: 0.0}, report.learner
    failed = [c for p in report.parts for c in p.cases if c.earned == 0]
    assert failed and all(words in c.message for c in failed), (report.learner, failed)


def part_scores(report) -> dict[str, float]:
    """Exercise number -> points earned, for one graded report."""
    return {part.number: part.score for part in report.parts}


def notebook_functions(nb) -> dict:
    """The functions a notebook's stub cells define (a built bug, an untouched exercise), run
    in this process with ``np``, ``torch`` and ``math`` in scope."""
    import math

    import numpy as np
    import torch

    from fdrl_lib.grading.notebook import nbgrader_meta

    scope: dict = {"np": np, "torch": torch, "math": math}
    for cell in nb.cells:
        if nbgrader_meta(cell).get("solution"):
            exec(cell.source, scope)
    return scope


def score_in_process(lecture, functions: dict) -> tuple[dict[str, float], list[str]]:
    """Points per exercise of ``lecture`` over every case (hidden ones too), graded in this
    process as the grader judges them (``call``, ``split``, ``judge``); the failure messages."""
    from fdrl_lib.grading.checking import call, judge, split

    scores, messages = {}, []
    for exercise in lecture.exercises:
        scores[exercise.number] = 0.0
        for case in exercise.cases:
            inputs = case.make_inputs()
            try:
                got = call(exercise, functions[exercise.function], inputs)
            except NotImplementedError as error:
                messages.append(f"{exercise.number}: {error}")
                continue
            outputs, message = split(exercise, got)
            if outputs is not None:
                ok, message = judge(exercise, outputs, exercise.reference(inputs))
            if outputs is not None and ok:
                scores[exercise.number] += case.points
            else:
                messages.append(f"{exercise.number}: {message}")
    return scores, messages
