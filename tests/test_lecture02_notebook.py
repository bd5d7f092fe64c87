"""Lecture 2's notebook: runs top to bottom in fast mode, and is shaped for slides and papermill."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "lectures" / "02_dqn.ipynb"


@pytest.fixture(scope="module")
def nb() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


def _outputs(notebook: nbformat.NotebookNode) -> list:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


@pytest.mark.notebook
def test_lecture02_runs_without_errors_in_fast_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "02_dqn.out.ipynb"
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
    outputs = _outputs(executed)
    assert [o for o in outputs if o.output_type == "error"] == []
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 10
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("<img" in h and "anim" in h.lower() for h in html)  # the CartPole animation
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "one-hot linear Q-learning == tabular Q-learning: True" in text
    assert "XDG_RUNTIME_DIR" not in text  # rendering needs no display


def test_parameters_cell_is_the_first_code_cell(nb: nbformat.NotebookNode) -> None:
    first_code = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert "parameters" in first_code.metadata.get("tags", [])
    for name in ("FAST", "SEEDS", "DQN_STEPS"):
        assert re.search(rf"^{name} = ", first_code.source, re.M)


def test_every_cell_has_slide_metadata(nb: nbformat.NotebookNode) -> None:
    allowed = {"slide", "subslide", "fragment", "skip", "notes", "-"}
    types = [cell.metadata.get("slideshow", {}).get("slide_type") for cell in nb.cells]
    assert set(types) <= allowed
    assert types[0] == "slide" and types.count("slide") >= 8


def test_lecture02_shows_the_chapter_equations_with_their_numbers(
    nb: nbformat.NotebookNode,
) -> None:
    markdown = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    tags = set(re.findall(r"\\tag\{(2\.\d+)\}", markdown))
    assert {f"2.{i}" for i in range(1, 13)} <= tags


def test_lecture02_imports_algorithms_instead_of_pasting_them(nb: nbformat.NotebookNode) -> None:
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert "from fdrl_lib.tabular.qlearning import" in code
    assert "from fdrl_lib.algos import dqn" in code
    for name in ("q_learning", "approximate_q_learning", "train", "td_target", "huber"):
        assert f"def {name}(" not in code
    for flag in ("double", "prioritized", "dueling", "n_step", "noisy", "distributional"):
        assert f"{flag}=" in code  # every improvement appears in the ablation
    assert "dqn.rainbow()" in code and "dqn.vanilla()" in code  # Algorithm 3 is the baseline


def test_lecture02_is_committed_with_outputs_and_stays_small(nb: nbformat.NotebookNode) -> None:
    assert NOTEBOOK.stat().st_size < 2 * 2**20
    outputs = _outputs(nb)
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 10
    assert not [o for o in outputs if o.output_type == "error"]


def test_lecture02_deck_builds_offline(tmp_path: Path) -> None:
    from fdrl_lib.slides import build_deck, remote_urls

    deck = build_deck(NOTEBOOK, tmp_path)
    html = deck.read_text()
    assert remote_urls(html) == []
    assert html.count("<section") >= 8
    assert "\\tag{2.12}" in html
