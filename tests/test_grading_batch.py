"""A class's folder, whatever is in it (issue 14, defects 4-7): exercise detection, broken
cells, identity from the folder, every file a row, no stale gradebook, a cache keyed by limits."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fdrl_lib.grading import runner
from fdrl_lib.grading.exercises import lectures
from fdrl_lib.grading.runner import _read_notebook, cache_key, detect_exercise, grade_batch
from fdrl_lib.grading.sandbox import Limits

sys.path.insert(0, str(Path(__file__).parent))
from grading_fixtures import submissions as fx  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits(timeout=90, cell_timeout=20, case_timeout=5)


def _without_fdrl_metadata(path: Path) -> bytes:
    raw = json.loads(path.read_text())
    raw["metadata"].pop("fdrl")
    return json.dumps(raw).encode()


@pytest.mark.parametrize("name", ["01_mdps", "02_dqn"])
def test_a_notebook_without_fdrl_metadata_is_told_by_its_cells(name):
    nb, error = _read_notebook(_without_fdrl_metadata(ROOT / "solutions" / f"{name}.ipynb"))
    assert error is None
    assert detect_exercise(nb, Path("pasted_into_a_new_file.ipynb"), lectures()) == name


@pytest.mark.parametrize(
    ("source", "why"), [([1, 2], "cell 3's source is list"), (None, "source is NoneType")]
)
def test_a_cell_whose_source_is_not_text_is_a_reason_not_a_crash(source, why):
    raw = json.loads((ROOT / "solutions" / "01_mdps.ipynb").read_text())
    raw["cells"][3]["source"] = source
    nb, error = _read_notebook(json.dumps(raw).encode())
    assert nb is None and "broken cell" in error and why in error


@pytest.mark.parametrize("metadata", [None, [], "x", {"nbgrader": []}])
def test_malformed_cell_metadata_reads_as_empty(metadata):
    raw = json.loads((ROOT / "solutions" / "01_mdps.ipynb").read_text())
    for cell in raw["cells"]:
        cell["metadata"] = metadata
    nb, error = _read_notebook(json.dumps(raw).encode())
    assert error is None and len(nb.cells) == len(raw["cells"])
    assert all(isinstance(cell.metadata, dict) for cell in nb.cells)


def test_cache_key_changes_with_every_limit_and_the_exercise():
    data = b"{}"
    keys = {cache_key(data, "01_mdps", LIMITS), cache_key(data, "02_dqn", LIMITS)}
    for field in ("timeout", "cell_timeout", "case_timeout", "memory_mb", "file_mb", "output_kb"):
        value = getattr(LIMITS, field)
        keys.add(cache_key(data, "01_mdps", Limits(**{**vars(LIMITS), field: value * 2})))
    assert len(keys) == 8


def _write_class(folder: Path) -> None:
    """A folder per learner (the usual layout), plus stray files."""
    solution = json.loads(fx.SOLUTION.read_text())
    for i, cell in enumerate(solution["cells"]):  # schema-invalid metadata, correct code
        if not cell["metadata"].get("nbgrader", {}).get("grade"):
            cell["metadata"] = None if i % 2 else []
    broken = json.loads(fx.SOLUTION.read_text())
    broken["cells"][3]["source"] = [1, 2]
    for learner, content in {
        "alice": json.dumps(solution),
        "bob": fx.EXERCISE.read_text(),
        "carol": json.dumps(broken),
    }.items():
        (folder / learner).mkdir(parents=True)
        (folder / learner / "01_mdps.ipynb").write_text(content)
    (folder / "dave").mkdir()
    (folder / "dave" / "notes.txt").write_text("I forgot to upload")
    (folder / "erin.pdf").write_bytes(b"%PDF-1.4")
    (folder / ".DS_Store").write_bytes(b"")


def test_a_folder_per_learner_gives_one_named_row_each_and_stray_files_get_rows(
    tmp_path, monkeypatch
):
    folder = tmp_path / "subs"
    _write_class(folder)
    out = folder / "graded"
    out.mkdir()
    (out / "gradebook.json").write_text("stale")
    reports = grade_batch(str(folder), jobs=2, limits=LIMITS, progress=False)
    rows = {row["learner"]: row for row in json.loads((out / "gradebook.json").read_text())}
    assert sorted(rows) == ["alice", "bob", "carol", "dave", "erin.pdf"]
    assert rows["alice"]["total"] == 19 and rows["alice"]["error"] == ""
    assert rows["bob"]["total"] == 0
    assert rows["carol"]["total"] == 0 and "broken cell" in rows["carol"]["error"]
    assert "no notebook" in rows["dave"]["error"]
    assert "not a notebook" in rows["erin.pdf"]["error"]
    feedback = sorted(p.name for p in (out / "feedback").iterdir())
    assert feedback == ["alice.md", "bob.md", "carol.md", "dave.md", "erin.pdf.md"]
    assert "Total: 19/19" in (out / "feedback" / "alice.md").read_text()
    assert len(reports) == 5

    # Larger limits: graded again (the cache is keyed by every limit), not the old result.
    graded = []
    real = runner.grade_bytes
    monkeypatch.setattr(
        runner,
        "grade_bytes",
        lambda data, path, **kw: graded.append(path) or real(data, path, **kw),
    )
    grade_batch(str(folder), jobs=2, limits=LIMITS, progress=False)
    assert graded == []  # same limits: all from the cache
    monkeypatch.setattr(runner, "_grade", lambda *args: None)  # no kernels needed to count
    grade_batch(
        str(folder), jobs=2, limits=Limits(**{**vars(LIMITS), "case_timeout": 9}), progress=False
    )
    assert len(graded) == 3  # the three notebooks


def test_a_batch_that_fails_leaves_no_stale_gradebook(tmp_path, monkeypatch):
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "a.ipynb").write_text("not json")
    out = folder / "graded"
    out.mkdir()
    (out / "gradebook.csv").write_text("learner,total\nold,19\n")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_grade_submission", interrupted)
    with pytest.raises(KeyboardInterrupt):
        grade_batch(str(folder), limits=LIMITS, progress=False)
    assert not (out / "gradebook.csv").exists()


def test_an_empty_folder_is_an_error_not_an_empty_gradebook(tmp_path, capsys):
    import argparse

    (tmp_path / "subs").mkdir()
    args = argparse.Namespace(batch=str(tmp_path / "subs"), out=None, jobs=1, exercise=None)
    assert runner.main_grade(args) == 1
    assert "no submissions found" in capsys.readouterr().err


def test_output_files_that_are_fifos_or_symlinks_are_ignored_not_waited_on(tmp_path):
    import os

    from fdrl_lib.grading.runner import _read_outputs

    os.mkfifo(tmp_path / "fifo.json")  # reading it would block the grader forever
    assert _read_outputs(tmp_path / "fifo", "n", "1.1") is None
    secret = tmp_path / "elsewhere.json"
    secret.write_text('{"nonce": "n", "number": "1.1"}')
    (tmp_path / "link.json").symlink_to(secret)
    assert _read_outputs(tmp_path / "link", "n", "1.1") is None
    (tmp_path / "real.json").write_text('{"nonce": "n", "number": "1.1", "cases": {}}')
    assert _read_outputs(tmp_path / "real", "n", "1.1")[0]["cases"] == {}


def test_without_bwrap_or_unshare_grading_warns_once_instead_of_crashing(monkeypatch, capsys):
    from fdrl_lib.grading import sandbox

    monkeypatch.setattr(sandbox, "_ISOLATION", [])
    monkeypatch.setattr(sandbox, "_WARNED", [])
    monkeypatch.setenv("FDRL_GRADER_SANDBOX", "unshare")
    monkeypatch.setenv("PATH", "/nonexistent")  # the tool cannot be found
    found = sandbox.isolation()
    assert found.kind == "none" and "NOT sealed" in found.why and "unshare" in found.why
    assert found.wrap(["python", "-c", "1"], [], []) == ["python", "-c", "1"]
    sandbox.sandbox_note()
    sandbox.sandbox_note()
    err = capsys.readouterr().err
    assert err.count("fdrl grade: warning: submissions are NOT sealed") == 1
