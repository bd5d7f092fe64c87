"""benchmarks/report.py: the one table of every algorithm in benchmarks/README.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import report  # noqa: E402


def _runs(steps, seconds, solved=True):
    return [
        {"library": "x", "seed": i, "solved": solved, "steps": a, "seconds": b, "curve": []}
        for i, (a, b) in enumerate(zip(steps, seconds, strict=True))
    ]


def test_the_readme_tables_are_the_ones_the_shipped_results_give():
    for path, made in report._files().items():
        assert made == path.read_text(), f"{path} is stale: run python benchmarks/report.py"


def test_the_top_readme_lists_the_ratio_of_every_algorithm_with_a_peer():
    ratios = report.compact()
    for algo in ("DQN", "A2C", "TRPO", "PPO", "DDPG", "TD3", "SAC"):
        assert f"| {algo}, " in ratios
    assert "VPG" not in ratios  # no peer, no ratio


def test_every_algorithm_with_results_has_a_row():
    shipped = {p.stem for p in report.RESULTS.glob("*.json") if "." not in p.stem}
    named = {row[0].split()[0] for row in report.rows()}
    assert shipped <= named


def test_ratios_are_of_medians_and_the_bar_is_judged_on_them(tmp_path):
    # medians: ours 2,000 steps / 3 s; peer 4,000 steps / 20 s -> 0.50 and 0.15 (bar 1, 0.25)
    runs = {
        "fdrl": _runs([1000, 2000, 9000], [1.0, 3.0, 50.0]),
        "sb3": _runs([4000, 3000, 5000], [20.0, 10.0, 30.0]),
    }
    (tmp_path / "sac.json").write_text(json.dumps(runs))
    (row,) = report.rows(tmp_path)
    assert row[3] == "2,000 (1,000-9,000)"
    assert row[4] == "3.0 (1.0-50.0)"
    assert row[6].startswith("0.50") and row[7].startswith("0.15")
    assert row[8].startswith("met")
    assert row[9] == report.UNRECORDED


def test_a_missed_bar_and_unsolved_seeds_are_shown(tmp_path):
    runs = {
        "fdrl": _runs([2000, 2000], [9.0, 9.0]) + _runs([0], [0.0], solved=False),
        "sb3": _runs([2000, 2000], [10.0, 10.0]),
    }
    (tmp_path / "ppo.json").write_text(json.dumps(runs))
    (tmp_path / "ppo.machine.json").write_text(
        json.dumps(
            {
                "date": "2026-11-30",
                "cores": 2,
                "load_before": 0.5,
                "load_after": 1.5,
                "torch": "2.13.0+cpu",
            }
        )
    )
    (row,) = report.rows(tmp_path)
    assert row[2] == "2/3"
    assert row[7].startswith("0.90") and "not met" in row[8]
    assert row[9].startswith("2026-11-30, 2 cores, load 0.5-1.5")


def test_a_readme_without_the_block_is_an_error_that_says_so():
    import pytest

    with pytest.raises(ValueError, match="report:start"):
        report.updated("# Benchmarks\n")


def test_run_py_records_the_machine_the_report_names():
    import _harness

    m = _harness.machine(0.25)
    assert m["cores"] >= 1 and m["load_before"] == 0.25 and m["torch"].startswith("2.")
    assert m["cpu"] and len(m["date"]) == 10
