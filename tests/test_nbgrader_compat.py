"""Our exercise markup works in nbgrader as it is (docs/grading.md, "nbgrader compatibility").

For every ``solutions/NN_topic.ipynb``, in a throwaway nbgrader course under ``tmp_path``:
``nbgrader generate_assignment`` releases it, and ``nbgrader autograde`` grades two students,
one who hands in the solution and one who hands in our committed ``exercises/NN_topic.ipynb``
untouched (what ``fdrl release`` gives learners). Scores are read back from nbgrader's own
gradebook. Skipped when nbgrader is not installed (it is in the ``test`` extra).
"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from fdrl_lib.grading.notebook import is_check_cell, nbgrader_meta

pytest.importorskip("nbgrader")

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted(p.stem for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
STUDENTS = {"solution": "solutions", "blank": "exercises"}  # student id -> folder handed in

pytestmark = [pytest.mark.xdist_group("nbgrader"), pytest.mark.notebook]


def _nbgrader(course: Path, env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stderr[-4000:]}"


@pytest.fixture(params=SOLUTIONS, scope="module")
def graded(request, tmp_path_factory) -> dict:
    """Release one lecture with nbgrader and autograde both students; return what came out."""
    from nbgrader.api import Gradebook

    name = request.param
    tmp = tmp_path_factory.mktemp(f"nbgrader_{name}")
    course, home = tmp / "course", tmp / "home"
    home.mkdir()
    (course / "source" / name).mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / f"{name}.ipynb", course / "source" / name / f"{name}.ipynb")
    db = tmp / "gradebook.db"
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.CourseDirectory.db_url = {f'sqlite:///{db}'!r}\n"
        f"c.Execute.timeout = 120\n"  # lecture 2 imports torch in the kernel
    )
    # nbgrader runs the `alembic` script by name when it creates a gradebook, so our venv's
    # bin/ goes first on PATH (`make test` does not activate the venv). Keep nbgrader, Jupyter,
    # IPython and tempfile away from the real home and /tmp: everything lands in tmp.
    (home / "tmp").mkdir()
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "TMPDIR": str(home / "tmp"),
        "HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(home / "jupyter_config"),
        "JUPYTER_DATA_DIR": str(home / "jupyter_data"),
        "JUPYTER_RUNTIME_DIR": str(home / "jupyter_runtime"),
        "IPYTHONDIR": str(home / "ipython"),
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(home / "matplotlib"),
    }

    _nbgrader(course, env, "generate_assignment", name)
    for student, folder in STUDENTS.items():
        submitted = course / "submitted" / student / name
        submitted.mkdir(parents=True)
        shutil.copy(ROOT / folder / f"{name}.ipynb", submitted / f"{name}.ipynb")
    _nbgrader(course, env, "autograde", name)

    with Gradebook(f"sqlite:///{db}") as gradebook:
        assignment = gradebook.find_assignment(name)
        max_score = assignment.max_score
        scores = {
            student: {
                grade.name: grade.score
                for grade in gradebook.find_submission(name, student).notebooks[0].grades
            }
            for student in STUDENTS
        }
        cell_points = {
            cell.name: cell.max_score for cell in gradebook.find_notebook(name, name).grade_cells
        }
    return {
        "name": name,
        "solution": nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4),
        "exercise": nbformat.read(ROOT / "exercises" / f"{name}.ipynb", as_version=4),
        "released": nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4),
        "released_text": (course / "release" / name / f"{name}.ipynb").read_text(),
        "max_score": max_score,
        "cell_points": cell_points,
        "scores": scores,
    }


def _check_points(nb) -> dict[str, float]:
    return {
        nbgrader_meta(c)["grade_id"]: nbgrader_meta(c)["points"]
        for c in nb.cells
        if is_check_cell(c)
    }


def test_nbgrader_release_has_no_solution_and_no_hidden_tests(graded):
    text = graded["released_text"]
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "hidden=True"):
        assert marker not in text, marker
    solution_lines = [
        line.strip()
        for cell in graded["solution"].cells
        if nbgrader_meta(cell).get("solution")
        for region in re.findall(r"BEGIN SOLUTION(.*?)### END SOLUTION", cell.source, re.S)
        for line in region.splitlines()
        if len(line.strip()) > 12  # skip trivial lines such as "return V"
    ]
    assert solution_lines, "the solution notebook has solution regions"
    released_sources = "\n".join(c.source for c in graded["released"].cells)
    for line in solution_lines:
        assert line not in released_sources, line


def test_nbgrader_release_stubs_raise_not_implemented_error(graded):
    stubs = [c for c in graded["released"].cells if nbgrader_meta(c).get("solution")]
    assert len(stubs) == len(_check_points(graded["solution"]))
    for cell in stubs:
        scope: dict = {}
        exec(cell.source, scope)  # defines the exercise's function (signature and docstring)
        functions = [f for f in scope.values() if inspect.isfunction(f)]
        assert len(functions) == 1, cell.source
        function = functions[0]
        assert function.__doc__, f"{function.__name__} keeps its docstring"
        required = [
            p for p in inspect.signature(function).parameters.values() if p.default is p.empty
        ]
        with pytest.raises(NotImplementedError):
            function(*[None] * len(required))


def test_nbgrader_release_and_fdrl_release_have_the_same_cells_and_checks(graded):
    released, exercise = graded["released"], graded["exercise"]
    ids = [nbgrader_meta(c)["grade_id"] for c in released.cells]
    assert ids == [nbgrader_meta(c)["grade_id"] for c in exercise.cells]
    for ours, theirs in zip(exercise.cells, released.cells, strict=True):
        theirs_meta = nbgrader_meta(theirs)  # nbgrader adds its own "checksum" and "cell_type"
        assert nbgrader_meta(ours) == {k: theirs_meta[k] for k in nbgrader_meta(ours)}
        if nbgrader_meta(ours)["locked"]:  # check cells, setup, demos, text
            assert ours.source.rstrip() == theirs.source.rstrip(), nbgrader_meta(ours)["grade_id"]


def test_nbgrader_autograde_gives_the_solution_full_points_and_the_blank_exercise_zero(graded):
    points = _check_points(graded["solution"])
    assert graded["cell_points"] == points
    assert graded["max_score"] == sum(points.values()) > 0
    assert graded["scores"]["solution"] == points, "every check cell passes on the solution"
    assert graded["scores"]["blank"] == dict.fromkeys(points, 0.0), "no check passes on stubs"
