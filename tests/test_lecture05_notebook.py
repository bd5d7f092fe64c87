"""Lecture 5's notebook: runs top to bottom in fast mode, and is shaped for slides and papermill."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from conftest import code_outputs, run_fast

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "lectures" / "05_ddpg_sac.ipynb"


@pytest.fixture(scope="module")
def nb() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.mark.notebook
def test_lecture05_runs_without_errors_in_fast_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = code_outputs(run_fast(NOTEBOOK, tmp_path, monkeypatch))
    assert [o for o in outputs if o.output_type == "error"] == []
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 10
    assert any("image/gif" in o.get("data", {}) for o in outputs)  # the swing-up animation
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "(= beta log sum exp(Q / beta): True)" in text  # lecture 1's soft value, eq. 1.36
    assert "DDPG: kept step" in text and "TD3: kept step" in text  # the overestimation study
    assert "XDG_RUNTIME_DIR" not in text  # rendering needs no display


def test_lecture05_shows_the_chapter_equations_with_their_numbers(
    nb: nbformat.NotebookNode,
) -> None:
    markdown = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    tags = set(re.findall(r"\\tag\{(\d\.\d+)\}", markdown))
    assert {f"5.{i}" for i in range(1, 7)} <= tags
    assert {"1.22", "1.36", "1.37"} <= tags  # the max-entropy objective, back from lecture 1
    assert "Algorithm: DDPG" in markdown and "Algorithm: SAC" in markdown


def test_lecture05_imports_algorithms_instead_of_pasting_them(nb: nbformat.NotebookNode) -> None:
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert "from fdrl_lib.algos import ddpg, sac, td3" in code
    for name in ("train", "update", "polyak_update", "soft_q_target", "squashed_gaussian_log_prob"):
        assert f"def {name}(" not in code


def test_lecture05_is_a_slide_deck_with_a_parameters_cell(nb: nbformat.NotebookNode) -> None:
    kinds = [cell.metadata.get("slideshow", {}).get("slide_type") for cell in nb.cells]
    assert None not in kinds and kinds[0] == "slide" and kinds.count("slide") >= 8
    first_code = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert "parameters" in first_code.metadata.get("tags", [])
    assert "FAST = fdrl_lib.fast_mode()" in first_code.source


def test_lecture05_is_committed_with_full_mode_outputs(nb: nbformat.NotebookNode) -> None:
    outputs = code_outputs(nb)
    assert [o for o in outputs if o.output_type == "error"] == []
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 10
    assert NOTEBOOK.stat().st_size < 2_000_000
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "sac: final evaluation" in text
