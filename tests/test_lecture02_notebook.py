"""Lecture 2's notebook: runs top to bottom in fast mode, and is shaped for slides and papermill."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from conftest import code_outputs, run_fast

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "lectures" / "02_dqn.ipynb"


@pytest.fixture(scope="module")
def nb() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.mark.notebook
def test_lecture02_runs_without_errors_in_fast_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = code_outputs(run_fast(NOTEBOOK, tmp_path, monkeypatch))
    assert [o for o in outputs if o.output_type == "error"] == []
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 10
    assert any("image/gif" in o.get("data", {}) for o in outputs)  # the CartPole animation
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "one-hot linear Q-learning == tabular Q-learning: True" in text
    assert "XDG_RUNTIME_DIR" not in text  # rendering needs no display
    # the n-step demo: the last three transitions reach the terminal state and do not bootstrap
    weights = re.search(r"bootstrap weight\s+\[([^\]]*)\]", text).group(1).split()
    assert [float(w) for w in weights] == pytest.approx([0.729, 0.729, 0.0, 0.0, 0.0])
    markdown = "".join(str(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "Fast mode" in markdown  # says what fast mode's ablation shows (and what it does not)


def test_lecture02_shows_the_chapter_equations_with_their_numbers(
    nb: nbformat.NotebookNode,
) -> None:
    markdown = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    tags = set(re.findall(r"\\tag\{(2\.\d+)\}", markdown))
    assert {f"2.{i}" for i in range(1, 13)} <= tags
    for words in ("Algorithm 2", "Algorithm 3", "terminated", "truncated", "2015", "Errata"):
        assert words in markdown


def test_lecture02_imports_algorithms_instead_of_pasting_them(nb: nbformat.NotebookNode) -> None:
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert "from fdrl_lib.tabular.qlearning import" in code
    assert "from fdrl_lib.algos import dqn" in code
    for name in ("q_learning", "approximate_q_learning", "train", "dqn_target", "huber"):
        assert f"def {name}(" not in code
    for flag in ("double", "prioritized", "dueling", "n_step", "noisy", "distributional"):
        assert f"{flag}=" in code  # every improvement appears in the ablation
    assert "dqn.rainbow()" in code and "dqn.vanilla()" in code  # Algorithm 3 is the baseline
