"""Grading real submissions in real kernels: solution, blank, bugs, hostile code, batch.

Every fixture notebook is graded once, in one batch of 2 parallel kernels (module fixture), and
the tests read the reports. Fixtures are built from the solution notebook in
tests/grading_fixtures/submissions.py, which also says what each must score and why.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import grade_fixtures, part_scores

from fdrl_lib.grading import runner
from fdrl_lib.grading.runner import Report, grade_batch, grade_notebook, render_text
from fdrl_lib.grading.sandbox import Limits, isolation

sys.path.insert(0, str(Path(__file__).parent))
from grading_fixtures import submissions as fx  # noqa: E402

pytestmark = pytest.mark.xdist_group("grading")

ROOT = Path(__file__).resolve().parents[1]
# Small limits so the infinite loop / runaway fixtures cost seconds, not minutes.
LIMITS = Limits(timeout=90, cell_timeout=6, case_timeout=2, memory_mb=2048)


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, Report]:
    return grade_fixtures(tmp_path_factory.mktemp("submissions"), fx.write_all, "01_mdps", LIMITS)


def test_solution_scores_full_marks(graded):
    report = graded["solution"]
    assert report.score == report.max_score == 19
    assert report.error is None and report.notes == []
    assert all(not part.notes for part in report.parts)


def test_untouched_exercise_scores_zero_with_a_message_per_case(graded):
    report = graded["blank"]
    assert report.score == 0 and report.max_score == 19
    for part in report.parts:
        for case in part.cases:
            assert case.message == f"not written yet (NotImplementedError: Exercise {part.number})"


@pytest.mark.parametrize("name", list(fx.BUGS))
def test_each_bug_loses_exactly_the_points_of_its_exercise(graded, name):
    assert part_scores(graded[name]) == fx.expected(name)


@pytest.mark.parametrize("name", [name for name, phrase in fx.NAMED.items() if phrase])
def test_each_bugs_failed_cases_name_the_mistake(graded, name):
    failed = [c for p in graded[name].parts for c in p.cases if c.earned < c.points]
    assert failed
    for case in failed:
        assert case.message.startswith(fx.NAMED[name]), case.message
        assert "expected" in case.message and "got" in case.message  # the numbers stay
        assert "(reread " in case.message


def test_wrong_answers_show_expected_vs_got_the_grid_and_the_equation(graded):
    part = graded["bug_off_by_one_horizon"].parts[1]
    failed = [case for case in part.cases if case.earned == 0]
    assert [case.name for case in failed] == [
        "book grid, horizon H=1",
        "book grid, horizon H=5",
        "random MDP (S=7, A=3), gamma=0.95, horizon H=3",
    ]
    assert "expected 0, got 0.72" in failed[0].message
    assert "reread Algorithm 1" in failed[0].message
    assert failed[0].grid is not None and failed[2].grid is None  # random MDPs have no grid
    text = render_text(graded["bug_off_by_one_horizon"], color=False)
    assert "+0.720≠+0.000" in text and "\x1b[" not in text
    crash = graded["bug_wrong_axis"].parts[1].cases[0]
    assert crash.message.startswith("your function raised ValueError: operands could not be")
    assert "in value_iteration" in crash.detail  # the learner's traceback, trimmed


@pytest.mark.parametrize("name", list(fx.HOSTILE))
def test_hostile_submission_gets_the_score_it_earned(graded, name):
    assert part_scores(graded[name]) == fx.expected(name), render_text(graded[name])


def test_hostile_messages_say_what_happened(graded):
    def notes(name: str) -> str:
        report = graded[name]
        parts = [n for p in report.parts for n in p.notes]
        cases = [c.message + " " + c.detail for p in report.parts for c in p.cases]
        return "\n".join(report.notes + parts + cases)

    assert "killed the kernel" in notes("hostile_os_exit_top")
    assert "the kernel died while exercise 1.5 was being checked" in notes(
        "hostile_os_exit_in_function"
    )
    assert "raised SystemExit" in notes("hostile_sys_exit_in_function")
    assert "too slow or an infinite loop" in notes("hostile_infinite_loop")
    assert "ignored the interrupt and was killed" in notes("hostile_runaway")
    assert "MemoryError" in notes("hostile_memory_over_cap")
    assert "MB, most of it was dropped" in notes("hostile_output_flood")
    assert "RuntimeWarning: divide by zero encountered in log" in notes("hostile_warnings")
    assert "was changed; the grader ran its own copy" in notes("check_cell_edited")
    assert "was emptied" in notes("check_cell_emptied")
    assert "(check_policy_iteration) was deleted" in notes("check_cell_deleted")
    assert "no function named `bellman_backup`" in notes("solution_cell_deleted")
    library = notes("cheat_calls_library")
    for number, name in [("1.1", "mdp.TabularMDP.backup"), ("1.2", "planning.value_iteration")]:
        assert f"fdrl_lib.tabular.{name} is not available while exercise {number} is graded" in (
            library
        )
    assert "soft_value_iteration is not available while exercise 1.5 is graded" in library
    grader = notes("cheat_calls_grader")
    assert "fdrl_lib.grading.exercises is not available while a submission is graded" in grader


def test_learner_text_cannot_draw_a_fake_score_on_the_terminal(graded):
    report = graded["hostile_fake_print"]
    text = render_text(report, color=True)
    assert "\x1b[2J" not in text and "\x1b[H" not in text
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)  # our own colours
    lines = [line for line in plain.splitlines() if line.startswith("Total")]
    assert lines == ["Total: 0/19 (0%)"]
    message = report.parts[0].cases[0].message
    assert message.startswith("your function raised ValueError:") and "[2J" not in message


def test_files_that_are_not_this_exercise_score_zero_with_a_reason(graded):
    assert graded["not_json"].score == 0 and "not valid JSON" in graded["not_json"].error
    other = graded["other_exercise"]
    assert other.score == 0 and "is exercise '02_qlearning', not '01_mdps'" in other.error
    assert len(other.parts) == 5  # still one (zero) row per exercise in the gradebook


def test_same_submission_same_report_every_time(graded):
    again = grade_notebook(
        ROOT / "solutions" / "01_mdps.ipynb", exercise="01_mdps", limits=LIMITS
    ).to_dict()
    first = graded["solution"].to_dict()
    for report in (again, first):
        report.pop("seconds"), report.pop("notebook"), report.pop("learner")
    assert again == first


def test_cli_json_report_and_unknown_exercise_do_not_crash(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    fdrl = [sys.executable, "-m", "fdrl_lib.cli", "grade"]
    done = subprocess.run(
        [*fdrl, str(ROOT / "solutions" / "01_mdps.ipynb"), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["score"] == report["max_score"] == 19
    assert [p["number"] for p in report["parts"]] == ["1.1", "1.2", "1.3", "1.4", "1.5"]
    other = tmp_path / "other.ipynb"
    nbformat.write(fx.other_exercise(), other)
    done = subprocess.run([*fdrl, str(other)], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert "which this grader does not know" in done.stdout


def test_writing_into_the_package_cannot_change_any_score(tmp_path):
    # The grader runs from a throw-away copy of fdrl_lib; the hostile notebook overwrites that
    # copy's reference planners, checks and manifest, then a correct and a blank submission
    # are graded after it by the same batch process.
    package = tmp_path / "site"
    shutil.copytree(ROOT / "fdrl_lib", package / "fdrl_lib")
    folder = tmp_path / "class"
    folder.mkdir()
    hostile = nbformat.read(fx.EXERCISE, as_version=4)
    fx.append(hostile, fx.WRITE_PACKAGE)
    nbformat.write(hostile, folder / "a_hostile_write_package.ipynb")
    shutil.copy(fx.SOLUTION, folder / "b_solution.ipynb")
    shutil.copy(fx.EXERCISE, folder / "c_blank.ipynb")
    done = subprocess.run(
        [sys.executable, "-m", "fdrl_lib.cli", "grade", "--batch", str(folder), "--jobs", "1"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(package)},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    overwritten = "class _R" in (package / "fdrl_lib" / "tabular" / "planning.py").read_text()
    assert overwritten == (isolation().kind == "none")  # a sealed kernel cannot write there
    rows = {
        row["learner"]: row
        for row in json.loads((folder / "graded" / "gradebook.json").read_text())
    }
    assert rows["a_hostile_write_package"]["total"] == 0
    assert rows["b_solution"]["total"] == 19
    assert rows["c_blank"]["total"] == 0


def test_batch_of_30_writes_the_gradebook_and_resumes_without_regrading(tmp_path, monkeypatch):
    kinds = ["solution"] * 10 + ["blank"] * 10 + ["bug_no_discount"] * 5 + ["bug_wrong_axis"] * 5
    expected_total = {"solution": 19, "blank": 0, "bug_no_discount": 17, "bug_wrong_axis": 14}
    folder = tmp_path / "class"
    folder.mkdir()
    for i, kind in enumerate(kinds):
        if kind == "solution":
            nb = nbformat.read(fx.SOLUTION, as_version=4)
        elif kind == "blank":
            nb = nbformat.read(fx.EXERCISE, as_version=4)
        else:
            nb = fx.build(kind)
        nb.metadata["learner"] = f"learner{i:02d}"  # distinct files, like a real class
        nbformat.write(nb, folder / f"learner{i:02d}.ipynb")
    out = tmp_path / "graded"
    start = time.monotonic()
    grade_batch(str(folder), out, jobs=2, limits=LIMITS, progress=False)
    seconds = time.monotonic() - start
    print(f"\nbatch: 30 submissions in {seconds:.1f} s, {seconds / 30:.2f} s per submission")

    with open(out / "gradebook.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["learner"] for row in rows] == [f"learner{i:02d}" for i in range(30)]
    assert list(rows[0])[:7] == ["learner", "1.1", "1.2", "1.3", "1.4", "1.5", "total"]
    for row, kind in zip(rows, kinds, strict=True):
        assert float(row["total"]) == expected_total[kind]
    assert float(rows[20]["1.1"]) == 1.0 and float(rows[25]["1.2"]) == 0.0
    assert len(json.loads((out / "gradebook.json").read_text())) == 30
    feedback = (out / "feedback" / "learner25.md").read_text()
    assert "your function raised ValueError" in feedback
    gradebook = (out / "gradebook.csv").read_text()

    # Interrupted run: 3 submissions never finished. Only those are graded again.
    for path in sorted((out / ".cache").glob("*.json"))[:3]:
        path.unlink()
    graded_again = []
    real = runner.grade_bytes
    monkeypatch.setattr(
        runner,
        "grade_bytes",
        lambda data, path, **kw: graded_again.append(path) or real(data, path, **kw),
    )
    grade_batch(str(folder), out, jobs=2, limits=LIMITS, progress=False)
    assert len(graded_again) == 3
    assert (out / "gradebook.csv").read_text() == gradebook
