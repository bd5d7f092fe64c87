"""Lecture 4's notebook: runs top to bottom in fast mode, shows the chapter, imports the library."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from conftest import code_outputs, run_fast

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "lectures" / "04_trpo_ppo.ipynb"


@pytest.fixture(scope="module")
def nb() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.mark.notebook
def test_lecture04_runs_without_errors_in_fast_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = code_outputs(run_fast(NOTEBOOK, tmp_path, monkeypatch))
    assert [o for o in outputs if o.output_type == "error"] == []
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 10
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    # eq. 4.2 at theta_old: the surrogate's gradient is the policy gradient
    match = re.search(r"max \|grad surrogate - policy gradient\| = ([0-9.e-]+)", text)
    assert match and float(match.group(1)) < 1e-6
    # the TRPO step on the CartPole batch stays inside its trust region
    match = re.search(r"\{'kl': ([0-9.e-]+),", text)
    assert match and float(match.group(1)) <= 0.02


def test_lecture04_shows_every_equation_and_both_algorithm_boxes(nb) -> None:
    markdown = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    tags = set(re.findall(r"\\tag\{(4\.\d+)\}", markdown))
    assert {f"4.{i}" for i in range(1, 15)} <= tags
    assert "Algorithm 6" in markdown and "Algorithm 7" in markdown


def test_lecture04_imports_algorithms_instead_of_pasting_them(nb) -> None:
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert "from fdrl_lib.algos import ppo, trpo" in code
    for name in (
        "conjugate_gradient",
        "clipped_surrogate",
        "trpo_update",
        "adaptive_beta",
        "train",
    ):
        assert f"def {name}(" not in code
    assert "inspect.getsource(trpo.trpo_update)" in code  # the loop beside Algorithm 6
    assert 'variant="kl"' in code or "PPO-KL" in code
