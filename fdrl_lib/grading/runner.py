"""``fdrl grade``: score exercise notebooks so that a submission cannot forge its score.

Trust boundary: this process is trusted, the learner's kernel is not.

1. This process reads the submission as data, builds every case's inputs from fixed seeds and
   computes the expected answers with ``fdrl_lib.tabular`` (all before any learner code runs).
2. A fresh kernel (own process, memory cap, time limits) runs the learner's code cells, minus
   the check cells (the grader brings its own checks), then a small harness that calls each
   learner function on the inputs and writes the outputs as numbers (``.npz``,
   ``allow_pickle=False``, tagged with a per-run nonce) into a folder this process owns.
3. This process reads those numbers back and compares them with the answers from step 1.
   What the kernel printed, patched or wrote elsewhere never reaches a verdict; anything it did
   not deliver scores 0 with a message saying why.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fdrl_lib.grading import GRADER_VERSION
from fdrl_lib.grading.checking import judge
from fdrl_lib.grading.notebook import is_check_cell, nbgrader_meta, source_hash, strip_hidden
from fdrl_lib.grading.sandbox import (
    HARNESS,
    PRELUDE,
    Execution,
    Kernel,
    Limits,
    sandbox_note,
)
from fdrl_lib.grading.spec import Case, Exercise, Lecture

# ----------------------------------------------------------------------------------------------
# Results


@dataclass
class CaseResult:
    name: str
    hidden: bool
    points: float
    earned: float
    message: str
    detail: str = ""  # the learner's traceback, warnings
    grid: list[list[dict[str, Any] | None]] | None = None  # per cell: got, expected, ok


@dataclass
class PartResult:
    number: str
    title: str
    function: str
    equations: str
    points: float
    score: float = 0.0
    cases: list[CaseResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    notebook: str
    learner: str
    exercise: str | None
    sha256: str
    grader_version: str = GRADER_VERSION
    score: float = 0.0
    max_score: float = 0.0
    parts: list[PartResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the notebook could not be graded at all (still scored: 0)
    seconds: float = 0.0
    hidden_cases: str = ""  # "secret" (seeds from the instructor's secret) or "practice"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        parts = [
            PartResult(**{**p, "cases": [CaseResult(**c) for c in p["cases"]]})
            for p in data["parts"]
        ]
        return cls(**{**data, "parts": parts})


# ----------------------------------------------------------------------------------------------
# The grading plan: inputs and expected answers, computed here before any learner code runs.


@dataclass
class PlannedCase:
    case_id: str
    case: Case
    inputs: dict[str, Any]
    reference: dict[str, Any]


@dataclass
class Plan:
    lecture: Lecture
    cases: dict[str, list[PlannedCase]]  # exercise number -> its cases
    manifest: dict[str, Any]


def make_plan(lecture: Lecture, key: bytes | None = None) -> Plan:
    """Every case's inputs and expected answers. With the instructor's ``key``, hidden cases
    get seeds derived from it (``secret.hidden_seed``); without, their public default seeds."""
    from fdrl_lib.grading.release import load_manifest
    from fdrl_lib.grading.secret import hidden_seed

    cases: dict[str, list[PlannedCase]] = {}
    for exercise in lecture.exercises:
        planned = []
        for i, case in enumerate(exercise.cases):
            case_id = f"e{exercise.number}c{i}"
            if case.hidden and key is not None and case.seeded:
                inputs = case.make_inputs(hidden_seed(key, lecture.name, case_id))
            else:
                inputs = case.make_inputs()
            reference = {k: np.array(v, copy=True) for k, v in exercise.reference(inputs).items()}
            planned.append(PlannedCase(case_id, case, inputs, reference))
        cases[exercise.number] = planned
    return Plan(lecture, cases, load_manifest(lecture.name))


_PLANS: dict[tuple[str, str], Plan] = {}


def plan_for(name: str) -> Plan:
    from fdrl_lib.grading.exercises import lectures
    from fdrl_lib.grading.secret import secret, secret_tag

    tag = (name, secret_tag())
    if tag not in _PLANS:
        _PLANS[tag] = make_plan(lectures()[name], secret())
    return _PLANS[tag]


# ----------------------------------------------------------------------------------------------
# Reading a submission


def _read_notebook(data: bytes) -> tuple[Any, str | None]:
    """The notebook, or None and why it cannot be graded. Never raises.

    Broken cells (a source that is not text) make the notebook ungradable, with the reason;
    malformed metadata (``null``, a list) is read as empty, so a correct notebook keeps its score.
    """
    import nbformat

    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        return None, f"this file is not a notebook (not valid JSON: {error})"
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        return None, "this file is not a notebook (no list of cells)"
    if not isinstance(raw.get("metadata"), dict):
        raw["metadata"] = {}
    cells = []
    for i, cell in enumerate(raw["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            return None, f"this notebook has a malformed cell (cell {i} has no valid cell_type)"
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        if not isinstance(source, str):
            return None, (
                f"this notebook has a broken cell: cell {i}'s source is "
                f"{type(source).__name__} {str(source)[:40]}, not text (re-save it in Jupyter)"
            )
        metadata = cell.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        if not isinstance(metadata.get("nbgrader", {}), dict):
            metadata = {k: v for k, v in metadata.items() if k != "nbgrader"}
        fixed = {"cell_type": cell["cell_type"], "source": source, "metadata": metadata}
        if cell["cell_type"] == "code":
            fixed.update(outputs=[], execution_count=None)
        cells.append(fixed)
    try:
        nb = nbformat.from_dict({**raw, "cells": cells})
    except Exception as error:
        return None, f"this notebook could not be read ({type(error).__name__}: {error})"
    return nb, None


def detect_exercise(nb: Any, path: Path, known: dict[str, Lecture]) -> str | None:
    """The notebook's exercise: its metadata, else its grade_ids, else its file name."""
    declared = nb.metadata.get("fdrl", {}) if isinstance(nb.metadata, dict) else {}
    if isinstance(declared, dict) and declared.get("exercise"):
        return str(declared["exercise"])
    ids = {str(nbgrader_meta(cell).get("grade_id")) for cell in nb.cells}
    for name, lecture in known.items():
        if ids & (
            {e.grade_id for e in lecture.exercises} | {e.check_id for e in lecture.exercises}
        ):
            return name
    for name in known:
        if name in path.stem:
            return name
    return None


# ----------------------------------------------------------------------------------------------
# Grading one submission


def grade_notebook(
    path: str | Path, exercise: str | None = None, limits: Limits | None = None
) -> Report:
    """Grade one notebook file. Never raises on bad work: problems become messages and zeros."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        return Report(str(path), path.stem, exercise, "", error=f"cannot read {path}: {error}")
    return grade_bytes(data, path, exercise=exercise, limits=limits, hide=(path.parent,))


def hidden_paths(*folders: Path) -> tuple[Path, ...]:
    """What a sealed kernel must not see: the given folders (the class, the grader's output),
    the secret's file, and the source checkout's solutions/ and .git. A folder holding the
    installed package or Python itself is never hidden (the kernel needs them)."""
    import fdrl_lib
    from fdrl_lib.grading.secret import secret_file

    package = Path(fdrl_lib.__file__).resolve().parent
    needed = [package, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]
    checkout = package.parent
    private = [package / "grading" / "exercises", package / "grading" / "secret.py"]
    candidates = [*folders, *private, checkout / "solutions", checkout / ".git", secret_file()]
    hide = []
    for path in candidates:
        if path is None or not path.exists():
            continue
        path = path.resolve()
        if any(n == path or path in n.parents for n in needed) or path == Path("/"):
            continue
        hide.append(path)
    return tuple(hide)


def _empty_parts(lecture: Lecture, why: str) -> list[PartResult]:
    parts = []
    for ex in lecture.exercises:
        part = PartResult(ex.number, ex.title, ex.function, ex.equations, ex.points)
        part.cases = [CaseResult(c.name, c.hidden, c.points, 0.0, why) for c in ex.cases]
        parts.append(part)
    return parts


def grade_bytes(
    data: bytes,
    path: Path,
    exercise: str | None = None,
    limits: Limits | None = None,
    hide: tuple[Path, ...] = (),
) -> Report:
    """Grade a notebook's bytes (``path`` names it). ``hide``: folders the kernel must not see."""
    from fdrl_lib.grading.exercises import lectures
    from fdrl_lib.grading.secret import secret_tag

    start = time.monotonic()
    limits = limits or Limits()
    known = lectures()
    report = Report(str(path), path.stem, exercise, hashlib.sha256(data).hexdigest())
    nb, error = _read_notebook(data)
    detected = detect_exercise(nb, path, known) if nb is not None else None
    name = exercise or detected
    if name not in known:
        report.error = error or (
            f"this notebook declares exercise {detected!r}, which this grader does not know; "
            f"expected one of {sorted(known)}"
        )
        report.exercise = name
        return report
    report.exercise = name
    plan = plan_for(name)  # before any learner code runs
    report.hidden_cases = "practice" if secret_tag() == "practice" else "secret"
    lecture = plan.lecture
    report.max_score = float(sum(ex.points for ex in lecture.exercises))
    if nb is None or (detected is not None and detected != name):
        report.error = error or (
            f"this notebook is exercise {detected!r}, not {name!r}: submit the {name} notebook"
        )
        report.parts = _empty_parts(lecture, "not graded: " + report.error)
        report.seconds = time.monotonic() - start
        return report
    try:
        _grade(nb, plan, report, limits, hidden_paths(*hide))
    except Exception as error:  # last line of defence: the grader itself must not crash
        import traceback

        report.error = f"internal grader error ({type(error).__name__}: {error}); please report"
        report.notes.append(traceback.format_exc()[-2000:])
        report.parts = report.parts or _empty_parts(lecture, "not graded: internal error")
    _sanitize(report)
    report.score = float(sum(part.score for part in report.parts))
    report.seconds = time.monotonic() - start
    return report


_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


def _clean(text: str, one_line: bool, limit: int) -> str:
    """Learner-made text without terminal escapes (and, for one-line fields, without newlines),
    so that nothing a submission raises or prints can draw a fake score on the grader's screen.
    """
    text = _CONTROL.sub("", str(text))
    if one_line:
        text = " ⏎ ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= limit else text[:limit] + " ...(cut)"


def _sanitize(report: Report) -> None:
    report.notes = [_clean(note, False, 4000) for note in report.notes]
    for part in report.parts:
        part.notes = [_clean(note, True, 500) for note in part.notes]
        for case in part.cases:
            case.message = _clean(case.message, True, 600)
            case.detail = _clean(case.detail, False, 3000)


def _cell_notes(nb: Any, plan: Plan) -> dict[str, str]:
    """grade_id -> 'changed' | 'deleted' for check cells that differ from the released ones."""
    present = {}
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id is not None:
            present[str(grade_id)] = cell
    notes = {}
    for grade_id, info in plan.manifest.get("cells", {}).items():
        if not info.get("check"):
            continue
        cell = present.get(grade_id)
        if cell is None or not is_check_cell(cell):
            notes[grade_id] = "deleted"
        elif not cell.source.strip():
            notes[grade_id] = "emptied"
        elif source_hash(strip_hidden(cell.source)) != info["hash"]:
            notes[grade_id] = "changed"
    return notes


def _learner_cells(nb: Any) -> list[tuple[int, str]]:
    """(cell number, source) of every code cell the kernel should run: all but check cells."""
    return [
        (i, cell.source)
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and not is_check_cell(cell) and cell.source.strip()
    ]


def _first_line(source: str) -> str:
    line = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    return line if len(line) <= 60 else line[:57] + "..."


def _grade(nb: Any, plan: Plan, report: Report, limits: Limits, hide: tuple[Path, ...]) -> None:
    """Run the learner's cells, then produce outputs exercise by exercise, in fresh kernels.

    A cell that kills the kernel (os._exit, a segfault, memory) is skipped on the next attempt;
    an exercise whose check kills the kernel scores what it delivered before dying, and the
    remaining exercises are produced in a new kernel, so one crash costs one exercise.
    """
    lecture = plan.lecture
    cell_notes = _cell_notes(nb, plan)
    nonce = secrets.token_hex(16)
    run_dir = Path(tempfile.mkdtemp(prefix="fdrl-grade-"))
    cells = _learner_cells(nb)
    deadline = time.monotonic() + limits.timeout
    produced: dict[str, tuple[dict[str, Any], dict[str, np.ndarray]] | None] = {}
    why_not: dict[str, str] = {}  # exercise -> why (some of) its cases were not checked
    killers: set[int] = set()
    noted: set[int] = set()
    try:
        inputs_path = run_dir / f"inputs-{nonce}.npz"
        arrays = {}
        for planned in (pc for cases in plan.cases.values() for pc in cases):
            for key, value in planned.inputs.items():
                if value is not None:
                    arrays[f"{planned.case_id}/{key}"] = np.asarray(value)
        np.savez(inputs_path, **arrays)
        for _attempt in range(4):
            todo = [ex for ex in lecture.exercises if ex.number not in produced]
            left = deadline - time.monotonic()
            if not todo or left < 1:
                break
            with Kernel(replace(limits, timeout=left), shared=(run_dir,), hide=hide) as kernel:
                if kernel.dead:
                    report.notes.append("a kernel did not start (out of memory or time?)")
                    continue
                kernel.run(PRELUDE, limits.cell_timeout)
                for index, source in cells:
                    if index in killers:
                        continue
                    done = kernel.run(source, limits.cell_timeout)
                    note = _execution_note(done, index, source, limits)
                    if note and index not in noted:
                        noted.add(index)
                        report.notes.append(
                            note + ("; the rerun skipped it" if kernel.dead else "")
                        )
                    if kernel.dead:
                        killers.add(index)
                        break
                if kernel.dead or kernel.run(HARNESS, limits.cell_timeout).status != "ok":
                    continue
                for ex in todo:
                    out = run_dir / f"out-{ex.number}-{nonce}"
                    spec = {
                        "nonce": nonce,
                        "number": ex.number,
                        "function": ex.function,
                        "args": list(ex.args),
                        "kwargs": list(ex.kwargs),
                        "isolate": {n: lecture.kernel_references[n] for n in ex.isolate},
                        "wrapper": _wrapper_spec(ex),
                        "library": list(lecture.library),
                        "cases": [pc.case_id for pc in plan.cases[ex.number]],
                        "inputs": str(inputs_path),
                        "out": str(out),
                        "n_outputs": len(ex.outputs),
                        "case_timeout": limits.case_timeout,
                    }
                    budget = limits.case_timeout * len(ex.cases) + 10
                    done = kernel.run(f"__fdrl_produce__({json.dumps(json.dumps(spec))})", budget)
                    produced[ex.number] = _read_outputs(out, nonce, ex.number)
                    if kernel.dead:
                        why_not[ex.number] = (
                            f"not checked: the kernel died while exercise {ex.number} was being "
                            f"checked (`{ex.function}` exited the process, crashed, ran out of "
                            "memory or would not stop); the other exercises ran in a fresh kernel"
                        )
                        break
                    if done.status != "ok":
                        report.notes.append(
                            f"checking exercise {ex.number} stopped early: "
                            f"{done.ename or done.status} {done.evalue}".rstrip()
                        )
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)

    for ex in lecture.exercises:
        if ex.number not in produced and ex.number not in why_not:
            why_not[ex.number] = (
                f"not checked: the submission ran out of time ({limits.timeout:g} s) or its "
                f"kernel kept dying before exercise {ex.number} was checked"
            )
        part = PartResult(ex.number, ex.title, ex.function, ex.equations, ex.points)
        state = cell_notes.get(ex.check_id)
        if state:
            part.notes.append(
                f"your check cell for exercise {ex.number} ({ex.check_id}) was {state}; "
                "the grader ran its own copy of the checks"
            )
        _judge_part(ex, plan.cases[ex.number], produced.get(ex.number), why_not, part)
        part.score = float(sum(case.earned for case in part.cases))
        report.parts.append(part)


def _wrapper_spec(ex: Exercise) -> list[Any] | None:
    """[name, source, options or None, argument names] of the kernel-side adapter, or None."""
    import inspect
    import textwrap

    from fdrl_lib.grading.adapters import Adapter

    if ex.wrapper is None:
        return None
    if isinstance(ex.wrapper, Adapter):
        function = ex.wrapper.call
        source = textwrap.dedent(inspect.getsource(function))
        return [function.__name__, source, ex.wrapper.options, list(ex.args)]
    return [ex.wrapper.__name__, textwrap.dedent(inspect.getsource(ex.wrapper)), None, None]


def _execution_note(done: Execution, index: int, source: str, limits: Limits) -> str:
    where = f"cell {index} (`{_first_line(source)}`)"
    flood = ""
    if done.output_bytes > limits.output_kb * 1024:
        flood = f"; it printed {done.output_bytes / 2**20:.1f} MB, most of it was dropped"
    if done.status == "ok":
        return f"{where} ran{flood}" if flood else ""
    if done.status == "error":
        if done.ename == "NotImplementedError":
            return f"{where} raised NotImplementedError: {done.evalue} (not written yet){flood}"
        return f"{where} raised {done.ename}: {done.evalue}{flood}\n{done.traceback}"
    if done.status == "timeout" and done.evalue.startswith("killed"):
        return (
            f"{where} ran longer than {limits.cell_timeout:g} s, ignored the interrupt and was "
            f"killed with its kernel{flood}"
        )
    if done.status == "timeout":
        return f"{where} ran longer than {limits.cell_timeout:g} s and was interrupted{flood}"
    return f"{where} killed the kernel ({done.evalue or 'it exited or ran out of memory'}){flood}"


def _read_regular(path: Path, limit: int) -> bytes | None:
    """A file the kernel wrote, read only if it is a regular file (no symlink, FIFO or device:
    those could block or redirect the grader) of at most ``limit`` bytes."""
    import os
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(limit + 1)[:limit]
    finally:
        os.close(fd)


def _read_outputs(
    out: Path, nonce: str, number: str
) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """The kernel's status and outputs, or None when missing, forged or unreadable."""
    import io

    try:
        raw = _read_regular(Path(str(out) + ".json"), 2**20)
        if raw is None:
            return None
        status = json.loads(raw)
        if status.get("nonce") != nonce or status.get("number") != number:
            return None
        arrays: dict[str, np.ndarray] = {}
        data = _read_regular(Path(str(out) + ".npz"), 256 * 2**20)
        if data:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {key: np.array(npz[key]) for key in npz.files}
        return status, arrays
    except Exception:
        return None


def _judge_part(
    ex: Exercise,
    planned: list[PlannedCase],
    produced: tuple[dict[str, Any], dict[str, np.ndarray]] | None,
    not_checked: dict[str, str],
    part: PartResult,
) -> None:
    reread = f" (reread {ex.equations})"
    for pc in planned:
        case = pc.case
        result = CaseResult(case.name, case.hidden, case.points, 0.0, "")
        part.cases.append(result)
        if produced is None:
            result.message = not_checked.get(ex.number) or (
                f"not checked: no outputs came back for exercise {ex.number} "
                "(the kernel died or the harness was tampered with)"
            )
            continue
        status, arrays = produced
        if status.get("missing"):
            result.message = (
                f"no function named `{ex.function}` in your notebook (was its cell deleted or "
                "renamed?)"
            )
            continue
        entry = status.get("cases", {}).get(pc.case_id)
        if not isinstance(entry, dict):
            result.message = not_checked.get(
                ex.number, "not checked: the kernel stopped before this case ran"
            )
            continue
        warnings = [str(w) for w in entry.get("warnings", [])][:5]
        if warnings:
            result.detail = "warnings: " + "; ".join(warnings)
        kind = entry.get("status")
        if kind == "error":
            error = str(entry.get("error", ""))[:500]
            if error.startswith("NotImplementedError"):
                result.message = f"not written yet ({error})"
            else:
                result.message = f"your function raised {error}"
                result.detail = (str(entry.get("traceback", "")) + "\n" + result.detail).strip()
            continue
        if kind == "timeout":
            result.message = f"too slow or an infinite loop: {entry.get('error', '')}"
            continue
        if kind == "bad_output":
            result.message = str(entry.get("error", "returned something that is not numbers"))
            continue
        n = entry.get("n")
        names = ", ".join(o.name for o in ex.outputs)
        if n != len(ex.outputs):
            result.message = f"returned {n} values; expected {len(ex.outputs)}: ({names})"
            continue
        keys = [f"{pc.case_id}/{i}" for i in range(len(ex.outputs))]
        if any(key not in arrays for key in keys):
            result.message = "not checked: the outputs file is incomplete"
            continue
        ok, message = judge(ex, [arrays[key] for key in keys], pc.reference)
        result.earned = case.points if ok else 0.0
        result.message = "correct" if ok else message + reread
        if not ok and case.grid:
            result.grid = _grid_cells(case.grid, ex, [arrays[key] for key in keys], pc.reference)


def _grid_cells(
    grid_name: str, ex: Exercise, outputs: list[np.ndarray], reference: dict[str, Any]
) -> list[list[dict[str, Any] | None]] | None:
    """Per grid cell: the learner's value, the expected one, and whether they agree."""
    from fdrl_lib.tabular import GridWorld

    for output, got in zip(ex.outputs, outputs, strict=True):
        if output.kind != "values":
            continue
        expected = np.asarray(reference[output.name], dtype=float)
        got = np.asarray(got)
        if got.shape != expected.shape or got.ndim != 1 or got.dtype.kind not in "biuf":
            return None
        grid = getattr(GridWorld, grid_name)()
        got_grid, expected_grid = grid.to_grid(got.astype(float)), grid.to_grid(expected)
        rows = []
        for r in range(got_grid.shape[0]):
            row: list[dict[str, Any] | None] = []
            for c in range(got_grid.shape[1]):
                e = float(expected_grid[r, c])
                if np.isnan(e):
                    row.append(None)
                    continue
                g = float(got_grid[r, c])
                ok = bool(np.isfinite(g) and abs(g - e) <= output.atol * (1 + abs(e)))
                row.append({"got": g, "expected": e, "ok": ok})
            rows.append(row)
        return rows
    return None


# ----------------------------------------------------------------------------------------------
# Presenting a report: terminal (ANSI colours), plain text, markdown.

_RED, _GREEN, _BOLD, _RESET = "\x1b[31m", "\x1b[32m", "\x1b[1m", "\x1b[0m"


def render_grid(grid: list[list[dict[str, Any] | None]], color: bool) -> str:
    """A grid of values: right cells as they are, wrong ones as `got≠expected` (red)."""
    width = 17
    lines = []
    for row in grid:
        cells = []
        for cell in row:
            if cell is None:
                text, paint = "#####", ""
            elif cell["ok"]:
                text, paint = f"{cell['got']:+.3f}", _GREEN
            else:
                text, paint = f"{cell['got']:+.3f}≠{cell['expected']:+.3f}", _RED
            cells.append(
                (paint + text.center(width) + _RESET) if color and paint else text.center(width)
            )
        lines.append("|" + "|".join(cells) + "|")
    legend = "each cell: your value, or yours≠expected where they differ"
    return "\n".join(lines + [legend])


def render_text(report: Report, color: bool = False) -> str:
    bold = (lambda s: _BOLD + s + _RESET) if color else (lambda s: s)
    ok_mark = (_GREEN + "✓" + _RESET) if color else "✓"
    bad_mark = (_RED + "✗" + _RESET) if color else "✗"
    out = [bold(f"{report.learner}: exercise {report.exercise} (grader {report.grader_version})")]
    if report.error:
        out.append(f"NOT GRADED: {report.error}")
    if report.hidden_cases == "practice":
        from fdrl_lib.grading.secret import PRACTICE_NOTE

        out.append(f"Note: {PRACTICE_NOTE}.")
    for part in report.parts:
        out.append(
            bold(f"{part.number} {part.title} ({part.function}): {part.score:g}/{part.points:g}")
        )
        for note in part.notes:
            out.append(f"  ! {note}")
        for case in part.cases:
            tag = " [hidden]" if case.hidden else ""
            mark = ok_mark if case.earned > 0 else bad_mark
            line = f"  {mark} {case.name}{tag}"
            out.append(line if case.earned > 0 else f"{line}: {case.message}")
            if case.grid:
                out.extend("      " + ln for ln in render_grid(case.grid, color).splitlines())
            if case.detail:
                out.extend("      " + ln for ln in case.detail.splitlines()[-12:])
    if report.notes:
        out.append(bold("Notes on running your notebook:"))
        for note in report.notes:
            lines = note.splitlines()
            out.append(f"  - {lines[0]}")
            out.extend("      " + ln for ln in lines[1:13])
    pct = 100 * report.score / report.max_score if report.max_score else 0.0
    out.append(bold(f"Total: {report.score:g}/{report.max_score:g} ({pct:.0f}%)"))
    return "\n".join(out)


def render_markdown(report: Report) -> str:
    text = render_text(report, color=False)
    return f"# Feedback: {report.learner}\n\n```text\n{text}\n```\n"


# ----------------------------------------------------------------------------------------------
# Batch grading


@dataclass
class Submission:
    learner: str  # the gradebook row's name
    path: Path


def _visible(path: Path) -> bool:
    return not path.name.startswith((".", "_")) and path.name != "__pycache__"


def _submissions(target: str, out: Path | None = None) -> list[Submission]:
    """Every submission of a class, one per learner, both layouts:

    - flat, ``DIR/<learner>.ipynb``: the learner is the file name;
    - a folder per learner, ``DIR/<learner>/NN_topic.ipynb``: the learner is the folder (a
      folder with several notebooks gives ``<learner>/<file>`` rows, one with none a row too).

    Files that are not notebooks get a row as well (they score 0 with the reason); hidden
    files, checkpoints and the output folder are left out. A glob takes the matching files.
    """
    path = Path(target)
    if not path.is_dir():
        import glob

        return [Submission(Path(p).stem, Path(p)) for p in sorted(glob.glob(target))]
    skip = {out.resolve()} if out is not None else set()
    found: list[Submission] = []
    for entry in sorted(path.iterdir()):
        if not _visible(entry) or entry.resolve() in skip:
            continue
        if entry.is_file():
            found.append(Submission(entry.stem if entry.suffix == ".ipynb" else entry.name, entry))
        elif entry.is_dir() and entry.name != "graded":
            notebooks = sorted(
                p
                for p in entry.rglob("*.ipynb")
                if p.is_file() and ".ipynb_checkpoints" not in p.parts
            )
            if len(notebooks) == 1:
                found.append(Submission(entry.name, notebooks[0]))
            elif notebooks:
                found += [Submission(f"{entry.name}/{p.stem}", p) for p in notebooks]
            else:
                found.append(Submission(entry.name, entry))  # graded 0: no notebook inside
    names = Counter(sub.learner for sub in found)
    seen: Counter[str] = Counter()
    for sub in found:  # two rows must never share a name (nor a feedback file)
        if names[sub.learner] > 1:
            seen[sub.learner] += 1
            sub.learner = f"{sub.learner}~{seen[sub.learner]}"
    return found


def _feedback_name(learner: str) -> str:
    return re.sub(r"[^A-Za-z0-9._~-]+", "__", learner) + ".md"


def cache_key(data: bytes, exercise: str | None, limits: Limits) -> str:
    """Notebook content, grader version, exercise, every limit and the hidden-case secret."""
    from fdrl_lib.grading.secret import secret_tag

    parts = [hashlib.sha256(data).hexdigest(), GRADER_VERSION, str(exercise)]
    parts += [f"{k}={v!r}" for k, v in sorted(asdict(limits).items())]
    parts.append(secret_tag())
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _grade_submission(
    sub: Submission, exercise: str | None, limits: Limits, hide: tuple[Path, ...] = ()
) -> Report:
    """One row, whatever the file is: a notebook, something else, a folder without one."""
    if sub.path.is_dir():
        return Report(
            str(sub.path), sub.learner, exercise, "", error="no notebook (.ipynb) in this folder"
        )
    try:
        data = sub.path.read_bytes()
    except OSError as error:
        return Report(str(sub.path), sub.learner, exercise, "", error=f"cannot read: {error}")
    if sub.path.suffix != ".ipynb":
        report = Report(str(sub.path), sub.learner, exercise, hashlib.sha256(data).hexdigest())
        report.error = f"this file is not a notebook ({sub.path.name}); submit the .ipynb file"
        return report
    return grade_bytes(data, sub.path, exercise=exercise, limits=limits, hide=hide)


def grade_batch(
    target: str,
    out: str | Path | None = None,
    jobs: int = 2,
    exercise: str | None = None,
    limits: Limits | None = None,
    progress: bool = True,
) -> list[Report]:
    """Grade every submission in a folder (or glob), ``jobs`` kernels at a time.

    Writes ``gradebook.csv``, ``gradebook.json`` and ``feedback/<learner>.md`` to ``out``
    (default ``DIR/graded``); finished submissions are cached by content hash, grader version,
    exercise and limits, so an interrupted run resumes where it stopped. Every submission gets
    a row; a run that fails leaves no gradebook (never a stale one).
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from tqdm.auto import tqdm

    from fdrl_lib.grading.exercises import lectures
    from fdrl_lib.grading.sandbox import CANCEL

    limits = limits or Limits()
    base = Path(target) if Path(target).is_dir() else Path(target).parent
    out = Path(out) if out else base / "graded"
    subs = _submissions(target, out)
    cache = out / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    (out / "feedback").mkdir(exist_ok=True)
    for name in ("gradebook.csv", "gradebook.json"):
        (out / name).unlink(missing_ok=True)  # a run that fails leaves no stale gradebook
    known = lectures()
    if exercise is None:  # the class's exercise: the one most submissions declare
        votes: Counter[str | None] = Counter()
        for sub in subs:
            if sub.path.suffix == ".ipynb" and sub.path.is_file():
                nb, _ = _read_notebook(sub.path.read_bytes())
                if nb is not None:
                    votes[detect_exercise(nb, sub.path, known)] += 1
        votes.pop(None, None)
        exercise = votes.most_common(1)[0][0] if votes else None
    for name in known if exercise is None else [exercise]:
        if name in known:
            plan_for(name)  # expected answers exist before the first kernel starts
    sandbox_note()  # say once, before the first kernel, when submissions are not sealed

    def one(sub: Submission) -> Report:
        key = ""
        try:
            data = sub.path.read_bytes() if sub.path.is_file() else b""
            key = cache_key(data, exercise, limits)
            cached = cache / f"{key}.json"
            if cached.exists():
                report = Report.from_dict(json.loads(cached.read_text()))
                report.notebook, report.learner = str(sub.path), sub.learner
                return report
        except Exception:
            pass
        try:
            report = _grade_submission(sub, exercise, limits, (base, out))
        except Exception as error:  # last line of defence: one file never stops a batch
            report = Report(str(sub.path), sub.learner, exercise, "")
            report.error = f"internal grader error ({type(error).__name__}: {error}); please report"
        report.learner = sub.learner
        if key:
            tmp = cache / f"{key}.tmp"
            tmp.write_text(json.dumps(report.to_dict()))
            tmp.replace(cache / f"{key}.json")
        return report

    reports: list[Report] = []
    CANCEL.clear()
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = {pool.submit(one, sub): sub for sub in subs}
        bar = tqdm(total=len(subs), desc="grading", unit="nb", disable=not progress)
        for future in as_completed(futures):
            report = future.result()
            reports.append(report)
            feedback = out / "feedback" / _feedback_name(report.learner)
            feedback.write_text(render_markdown(report))
            bar.update(1)
        bar.close()
    except KeyboardInterrupt:
        CANCEL.set()  # running kernels stop; finished ones are cached for the next run
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    reports.sort(key=lambda r: r.learner)
    write_gradebook(reports, out)
    return reports


def write_gradebook(reports: list[Report], out: Path) -> None:
    import csv

    numbers = sorted({part.number for r in reports for part in r.parts}, key=_number_key)
    rows = []
    for r in reports:
        row: dict[str, Any] = {"learner": r.learner}
        scores = {part.number: part.score for part in r.parts}
        for number in numbers:
            row[number] = scores.get(number, 0.0)
        row.update(total=r.score, max=r.max_score, error=r.error or "", sha256=r.sha256[:16])
        rows.append(row)
    fields = ["learner", *numbers, "total", "max", "error", "sha256"]
    with open(out / "gradebook.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    (out / "gradebook.json").write_text(json.dumps(rows, indent=1) + "\n")


def _number_key(number: str) -> tuple[int, ...]:
    return tuple(int(x) if x.isdigit() else 0 for x in number.split("."))


# ----------------------------------------------------------------------------------------------
# Command line


def _limits(args: argparse.Namespace) -> Limits:
    limits = Limits()
    if getattr(args, "timeout", None):
        limits.timeout = float(args.timeout)
    for name in ("cell_timeout", "case_timeout", "memory_mb"):
        value = getattr(args, name, None)
        if value:
            setattr(limits, name, type(getattr(limits, name))(value))
    return limits


def main_grade(args: argparse.Namespace) -> int:
    limits = _limits(args)
    exercise = getattr(args, "exercise", None)
    if args.batch:
        start = time.monotonic()
        reports = grade_batch(args.batch, args.out, args.jobs or 2, exercise, limits)
        seconds = time.monotonic() - start
        if not reports:
            print(f"fdrl grade: no submissions found in {args.batch}", file=sys.stderr)
            return 1
        for r in reports:
            print(
                f"{r.learner:30s} {r.score:6g}/{r.max_score:g}"
                + (f"  ({r.error})" if r.error else "")
            )
        out = (
            Path(args.out)
            if args.out
            else (Path(args.batch) if Path(args.batch).is_dir() else Path(args.batch).parent)
            / "graded"
        )
        per = seconds / max(1, len(reports))
        print(f"graded {len(reports)} notebooks in {seconds:.1f} s ({per:.1f} s each); see {out}")
        return 0
    if getattr(args, "all", False):
        return grade_all(args.notebook or "exercises", limits, args.json)
    if not args.notebook:
        print("fdrl grade: give a NOTEBOOK, --all [DIR] or --batch DIR", file=sys.stderr)
        return 2
    report = grade_notebook(args.notebook, exercise=exercise, limits=limits)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        print(render_text(report, color=sys.stdout.isatty()))
    return 0


def grade_all(folder: str | Path, limits: Limits, as_json: bool = False) -> int:
    """``fdrl grade --all [DIR]``: every ``NN_topic.ipynb`` of one learner's folder (default
    ``exercises/``), in course order, then one summary table: score per lecture and per part."""
    paths = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        print(f"fdrl grade: no exercise notebooks (NN_topic.ipynb) in {folder}", file=sys.stderr)
        return 1
    reports = []
    for path in paths:
        print(f"grading {path.name} ...", file=sys.stderr, flush=True)
        reports.append(grade_notebook(path, limits=limits))
    if as_json:
        print(json.dumps([r.to_dict() for r in reports], indent=1))
        return 0
    lines = ["| exercise | score | parts (score/max) |", "|---|---|---|"]
    for r in reports:
        parts = ", ".join(f"{p.number} {p.score:g}/{p.points:g}" for p in r.parts)
        note = f" ({r.error})" if r.error else ""
        lines.append(f"| {Path(r.notebook).stem} | {r.score:g}/{r.max_score:g}{note} | {parts} |")
    total, most = sum(r.score for r in reports), sum(r.max_score for r in reports)
    lines.append(f"| **all** | **{total:g}/{most:g}** | |")
    print("\n".join(lines))
    print("\nfor what failed and why: fdrl grade exercises/NN_topic.ipynb")
    return 0
