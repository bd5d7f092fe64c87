"""Lecture 1's notebook: runs top to bottom in fast mode, and is shaped for slides and papermill."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from conftest import code_outputs, run_fast

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "lectures" / "01_mdps.ipynb"


@pytest.fixture(scope="module")
def nb() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.mark.notebook
def test_lecture01_runs_without_errors_in_fast_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = code_outputs(run_fast(NOTEBOOK, tmp_path, monkeypatch))
    assert [o for o in outputs if o.output_type == "error"] == []
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 10


def test_lecture01_shows_the_chapter_equations_with_their_numbers(
    nb: nbformat.NotebookNode,
) -> None:
    markdown = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    tags = set(re.findall(r"\\tag\{(1\.\d+)\}", markdown))
    wanted = {"1.1", "1.4", "1.5", "1.6", "1.7", "1.10", "1.11", "1.12", "1.14", "1.15", "1.16"}
    wanted |= {"1.17", "1.18", "1.19", "1.20", "1.22", "1.26", "1.27", "1.28", "1.29", "1.30"}
    wanted |= {"1.36", "1.37"}
    assert wanted <= tags


def test_lecture01_imports_algorithms_instead_of_pasting_them(nb: nbformat.NotebookNode) -> None:
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert "from fdrl_lib.tabular import" in code
    for name in ("value_iteration", "policy_iteration", "soft_value_iteration"):
        assert f"def {name}(" not in code
