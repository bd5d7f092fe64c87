"""What every graded exercise promises, for every lecture registered with the grader.

One source (``solutions/NN_topic.ipynb`` + ``fdrl_lib/grading/exercises/topic.py``), nbgrader
metadata, one stub cell then its check cell per exercise, no solution text leaked into
``exercises/``, and a solution that passes every case (here, and under nbval in a real kernel).
Lecture-specific bugs and hostile submissions are tested in ``test_grading*.py``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import solution_functions

from fdrl_lib.grading.checking import call, judge, split
from fdrl_lib.grading.exercises import lectures
from fdrl_lib.grading.notebook import is_check_cell, nbgrader_meta
from fdrl_lib.grading.release import build, release

ROOT = Path(__file__).resolve().parents[1]
LECTURES = lectures()


@pytest.fixture(params=sorted(LECTURES), scope="module")
def lecture(request):
    return LECTURES[request.param]


def _solution(lecture) -> Path:
    return ROOT / "solutions" / f"{lecture.name}.ipynb"


def test_every_solution_notebook_is_registered_with_the_grader():
    names = {p.stem for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")}
    assert names == set(LECTURES)


def test_committed_exercises_and_manifests_match_what_release_writes():
    assert release(ROOT, check=True) == [], "run `fdrl release` (make exercises) and commit"


def test_solution_metadata_is_nbgrader_schema_3_and_points_match_the_checks(lecture):
    nb = nbformat.read(_solution(lecture), as_version=4)
    assert nb.metadata["fdrl"]["exercise"] == lecture.name
    ids = [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        assert meta, "every cell carries nbgrader metadata"
        assert meta["schema_version"] == 3
        assert set(meta) >= {"grade_id", "solution", "grade", "locked"}
        assert meta["locked"] == (not meta["solution"])
    points = {
        nbgrader_meta(c)["grade_id"]: nbgrader_meta(c)["points"]
        for c in nb.cells
        if is_check_cell(c)
    }
    assert points == {ex.check_id: ex.points for ex in lecture.exercises}


def test_release_gives_one_stub_then_its_check_cell_per_exercise(lecture):
    _, text, _ = build(_solution(lecture))
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "hidden=True" not in text
    released = nbformat.reads(text, as_version=4)
    ids = [nbgrader_meta(c).get("grade_id") for c in released.cells]
    for exercise in lecture.exercises:
        assert ids.count(exercise.grade_id) == 1, f"exactly one stub cell for {exercise.number}"
        i = ids.index(exercise.grade_id)
        assert ids[i + 1] == exercise.check_id
        source = released.cells[i].source
        assert f"def {exercise.function}(" in source and '"""' in source  # signature, docstring
        assert f'raise NotImplementedError("Exercise {exercise.number}")' in source
    for cell in released.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_exercise_notebook_contains_no_line_of_any_solution(lecture):
    solution = nbformat.read(_solution(lecture), as_version=4)
    exercise_text = (ROOT / "exercises" / f"{lecture.name}.ipynb").read_text()
    regions = [
        match.group(0)
        for cell in solution.cells
        if nbgrader_meta(cell).get("solution")
        for match in re.finditer(r"BEGIN SOLUTION.*?END SOLUTION", cell.source, re.S)
    ]
    assert len(regions) == len(lecture.exercises)
    for region in regions:
        for line in region.splitlines()[1:-1]:
            if len(line.strip()) > 12:  # skip trivial lines such as "return V"
                assert json.dumps(line.strip())[1:-1] not in exercise_text, line


def test_solution_functions_pass_every_case(lecture):
    functions = solution_functions(_solution(lecture))
    for exercise in lecture.exercises:
        for case in exercise.cases:
            inputs = case.make_inputs()
            outputs, message = split(exercise, call(exercise, functions[exercise.function], inputs))
            assert outputs is not None, f"{exercise.number} {case.name}: {message}"
            ok, message = judge(exercise, outputs, exercise.reference(inputs))
            assert ok, f"{exercise.number} {case.name}: {message}"


def test_every_case_has_a_distinct_name_and_deterministic_inputs(lecture):
    for exercise in lecture.exercises:
        names = [case.name for case in exercise.cases]
        assert len(set(names)) == len(names)
        for case in exercise.cases:
            a, b = case.make_inputs(), case.make_inputs()
            assert a.keys() == b.keys()
            for key in a:
                np.testing.assert_array_equal(a[key], b[key])


def test_nbval_runs_the_solution_notebook_and_matches_its_outputs(lecture):
    command = [sys.executable, "-m", "pytest", "--nbval", "-p", "no:xdist", "-q"]
    command += ["-p", "no:cacheprovider", str(_solution(lecture))]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:]
