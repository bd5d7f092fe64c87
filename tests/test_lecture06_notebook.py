"""Lecture 6's notebook: runs top to bottom in fast mode, and is shaped for slides and papermill."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from conftest import code_outputs, run_fast

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "lectures" / "06_model_based.ipynb"


@pytest.fixture(scope="module")
def nb() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.mark.notebook
def test_lecture06_runs_without_errors_in_fast_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = code_outputs(run_fast(NOTEBOOK, tmp_path, monkeypatch))
    assert [o for o in outputs if o.output_type == "error"] == []
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 10
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    error = re.search(r"max \|env reward - pendulum_reward\| over 1000 random steps: (\S+)", text)
    assert error and float(error.group(1)) < 1e-4  # the batched reward is the env's
    gap = re.search(r"max \|autograd - finite differences\| = (\S+)", text)
    assert gap and float(gap.group(1)) < 1e-6  # the meta-gradient check passes
    for algo in ("mbrl", "me_trpo", "mb_mpo"):
        assert f"{algo} seed 0: kept" in text


def test_lecture06_shows_both_algorithm_boxes_and_numbered_equations(
    nb: nbformat.NotebookNode,
) -> None:
    markdown = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    assert "Algorithm 8" in markdown and "Algorithm 9" in markdown
    assert {f"6.{i}" for i in range(1, 8)} <= set(re.findall(r"\\tag\{(6\.\d+)\}", markdown))


def test_lecture06_imports_algorithms_instead_of_pasting_them(nb: nbformat.NotebookNode) -> None:
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert "from fdrl_lib.algos import mb_mpo, mbrl, me_trpo" in code
    for name in ("train", "fit_dynamics", "imagine", "keep_improving", "adapt", "meta_objective"):
        assert f"def {name}(" not in code
    for shown in ("body(mbrl.train)", "body(me_trpo.train)", "me_trpo.keep_improving"):
        assert shown in code  # the loops are shown from the library
