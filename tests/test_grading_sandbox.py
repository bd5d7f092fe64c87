"""Sealed submissions (issue 14, defect 1): no submission can change another learner's score.

The five attacks of tests/grading_fixtures/attacks.py run from blank submissions that sort
first in a class folder, graded by ``fdrl grade --batch`` from a throw-away copy of the package
(so a failed seal could not damage the real one). Every peer must keep its score in the same
batch and in a later, separate run; the package copy must be untouched and no process started
by a submission may outlive its kernel. Skipped where kernels cannot be sealed (no bubblewrap
or unshare): there the attacks would reach this machine's other grading runs. To see them
succeed on an unsealed grader: ``FDRL_GRADER_SANDBOX=off FDRL_TEST_ATTACKS_UNSEALED=1
TMPDIR=<a private folder>`` (the attacks only touch the temp folder, the class folder and
the package copy).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pytest

from fdrl_lib.grading.sandbox import Limits, isolation

sys.path.insert(0, str(Path(__file__).parent))
from grading_fixtures import attacks  # noqa: E402
from grading_fixtures import submissions as fx  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits(timeout=90, cell_timeout=20, case_timeout=5)

pytestmark = [
    pytest.mark.xdist_group("grading"),
    pytest.mark.skipif(
        isolation().kind == "none" and not os.environ.get("FDRL_TEST_ATTACKS_UNSEALED"),
        reason=f"kernels cannot be sealed here: {isolation().why}",
    ),
]


def _grade(folder: Path, package: Path) -> dict[str, dict]:
    args = ["--timeout", "90", "--cell-timeout", "20", "--case-timeout", "5"]
    done = subprocess.run(
        [sys.executable, "-m", "fdrl_lib.cli", "grade", "--batch", str(folder), "--jobs", "2"]
        + args,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(package)},
        cwd=package,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads((folder / "graded" / "gradebook.json").read_text())
    return {row["learner"]: row for row in rows}


def _alive(marker: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(cmdline.parent.name)
        except OSError:
            pass
    return found


def test_five_attacks_on_peers_change_no_score_now_or_in_a_later_run(tmp_path):
    package = tmp_path / "site"
    shutil.copytree(ROOT / "fdrl_lib", package / "fdrl_lib")
    before = {p: p.read_bytes() for p in (package / "fdrl_lib").rglob("*.py")}
    folder = tmp_path / "class"
    folder.mkdir()
    marker = f"fdrl-attack-{uuid.uuid4().hex}"
    values = {
        "CLASS": str(folder),
        "OUT": str(folder / "graded"),
        "LIMITS": dataclasses.asdict(LIMITS),
        "MARKER": marker,
    }
    for name in attacks.ATTACKS:
        nb = nbformat.read(fx.EXERCISE, as_version=4)
        fx.append(nb, attacks.attack_cell(name, **values))
        nbformat.write(nb, folder / f"a_{name}.ipynb")
    for i in range(2):
        solution, blank = nbformat.read(fx.SOLUTION, as_version=4), fx.build("bug_no_discount")
        solution.metadata["learner"] = blank.metadata["learner"] = f"peer{i}"
        nbformat.write(solution, folder / f"b_solution{i}.ipynb")
        nbformat.write(nbformat.read(fx.EXERCISE, as_version=4), folder / f"c_blank{i}.ipynb")
        nbformat.write(blank, folder / f"d_no_discount{i}.ipynb")
    expected = {"b_solution": 19, "c_blank": 0, "d_no_discount": 17}

    rows = _grade(folder, package)
    alive = _alive(marker)
    after = {p: p.read_bytes() for p in (package / "fdrl_lib").rglob("*.py")}
    assert _wrong(rows, expected) == {}
    assert not alive, "a process started by a submission outlived its kernel"
    assert after == before, "a submission changed the installed package"

    # A later, separate run (resumes from the cache): every score still the same.
    (folder / "b_solution_late.ipynb").write_bytes((folder / "b_solution0.ipynb").read_bytes())
    rows = _grade(folder, package)
    assert rows["b_solution_late"]["total"] == 19
    assert _wrong(rows, expected) == {}


def _wrong(rows: dict[str, dict], expected: dict[str, int]) -> dict[str, float]:
    """learner -> total, for every row that is not what it earned (attackers earn 0)."""
    wrong = {}
    for learner, row in rows.items():
        want = 0 if learner.startswith("a_") else expected[re.sub(r"(\d+|_late)$", "", learner)]
        if row["total"] != want:
            wrong[learner] = row["total"]
    return wrong
