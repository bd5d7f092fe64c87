"""Lecture 1's notebook: runs top to bottom in fast mode, and is shaped for slides and papermill."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "lectures" / "01_mdps.ipynb"


@pytest.fixture(scope="module")
def nb() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.mark.notebook
def test_lecture01_runs_without_errors_in_fast_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "01_mdps.out.ipynb"
    monkeypatch.setenv("FDRL_FAST", "1")  # the kernel inherits it: fdrl_lib.fast_mode() is True
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(out),
        kernel_name="python3",
        cwd=str(NOTEBOOK.parent),
        progress_bar=False,
        parameters={"FAST": True},
    )
    executed = nbformat.read(out, as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    images = sum(
        "image/png" in o.get("data", {}) for c in executed.cells for o in c.get("outputs", [])
    )
    assert images >= 10


def test_parameters_cell_is_the_first_code_cell(nb: nbformat.NotebookNode) -> None:
    first_code = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert "parameters" in first_code.metadata.get("tags", [])
    assert re.search(r"^FAST = ", first_code.source, re.M)


def test_every_cell_has_slide_metadata(nb: nbformat.NotebookNode) -> None:
    allowed = {"slide", "subslide", "fragment", "skip", "notes", "-"}
    types = [cell.metadata.get("slideshow", {}).get("slide_type") for cell in nb.cells]
    assert set(types) <= allowed
    assert types[0] == "slide" and types.count("slide") >= 8


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


def test_lecture01_is_committed_with_outputs_and_stays_small(nb: nbformat.NotebookNode) -> None:
    assert NOTEBOOK.stat().st_size < 2 * 2**20
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 10
    assert not [o for o in outputs if o.output_type == "error"]
