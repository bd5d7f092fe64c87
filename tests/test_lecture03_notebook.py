"""Lecture 3's notebook: runs top to bottom in fast mode, shows every equation of chapter 3 and
both Algorithm boxes, and imports the library instead of pasting it."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from conftest import code_outputs, run_fast

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "lectures" / "03_policy_gradients.ipynb"


@pytest.fixture(scope="module")
def nb() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.mark.notebook
def test_lecture03_runs_without_errors_in_fast_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = code_outputs(run_fast(NOTEBOOK, tmp_path, monkeypatch))
    assert [o for o in outputs if o.output_type == "error"] == []
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 10
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "exact gradient" in text and "mean of estimates" in text
    assert "b = 5 + 3 a_t" in text  # the action-dependent baseline's bias is shown
    assert "updates landed from workers [0, 1]" in text  # A3C really ran two workers


def test_lecture03_shows_every_equation_of_chapter_3(nb: nbformat.NotebookNode) -> None:
    markdown = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    tags = set(re.findall(r"\\tag\{(3\.\d+)\}", markdown))
    assert {f"3.{i}" for i in range(1, 46)} <= tags
    assert "Algorithm 4" in markdown and "Algorithm 5" in markdown


def test_lecture03_imports_algorithms_instead_of_pasting_them(nb: nbformat.NotebookNode) -> None:
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert "from fdrl_lib.algos import a2c, a3c, vpg" in code
    for name in ("train", "policy_gradient_surrogate", "gae", "advantage_estimates"):
        assert f"def {name}(" not in code
    assert "inspect.getsource(vpg._train)" in code and "inspect.getsource(a2c._train)" in code


def test_lecture03_is_shaped_for_slides_and_papermill(nb: nbformat.NotebookNode) -> None:
    assert "parameters" in nb.cells[1].metadata.get("tags", [])
    kinds = [cell.metadata.get("slideshow", {}).get("slide_type") for cell in nb.cells]
    assert all(kinds) and kinds[0] == "slide" and kinds.count("slide") >= 8
