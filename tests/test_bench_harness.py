"""The benchmark harness (benchmarks/_harness.py): protocol, timing and reports."""

import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _harness as harness  # noqa: E402

TASK = harness.Task("CartPole-v1", threshold=100.0, max_steps=3_000, eval_every=1_000, episodes=2)


def _slow_policy(obs):
    time.sleep(0.002)
    return int(obs[2] + obs[3] > 0)


def test_watch_evaluates_every_eval_every_steps_and_stops_at_the_threshold():
    run = harness.Run("test", 0)
    watch = harness.ThresholdWatch(run, TASK)
    assert not watch(999, lambda obs: 0)  # before the first evaluation point: no evaluation
    assert not watch(1_000, lambda obs: 0)  # always-left scores ~9 < 100
    assert not watch(1_500, lambda obs: 0)
    assert watch(
        2_003, lambda obs: int(obs[2] + obs[3] > 0)
    )  # angle + angular-velocity policy scores > 100
    assert [s for s, _ in run.curve] == [1_000, 2_003]
    assert run.solved and run.steps == 2_003


def test_watch_excludes_evaluation_time_from_training_seconds():
    run = harness.Run("test", 0)
    watch = harness.ThresholdWatch(run, TASK)
    t0 = time.perf_counter()
    assert watch(1_000, _slow_policy)
    elapsed = time.perf_counter() - t0
    assert elapsed > 0.2  # hundreds of slow policy calls
    assert run.seconds < 0.05


def test_summary_and_table_report_median_min_and_max_of_solved_runs():
    runs = [
        harness.Run("fdrl", s, True, steps, secs)
        for s, (steps, secs) in enumerate([(3_000, 2.0), (1_000, 1.0), (2_000, 4.0)])
    ]
    runs.append(harness.Run("fdrl", 3))  # not solved: left out of the statistics
    summary = harness.summarize(runs)
    assert summary["solved"] == 3 and summary["runs"] == 4
    assert summary["steps"] == (2_000, 1_000, 3_000)
    assert summary["seconds"] == (2.0, 1.0, 4.0)
    table = harness.markdown_table(TASK, "dqn", {"fdrl": runs})
    assert "| fdrl | 3/4 | 2,000 (1,000-3,000) | 2.0 (1.0-4.0) |" in table


def test_plot_curves_writes_a_png(tmp_path):
    runs = [
        harness.Run("fdrl", 0, True, 2_000, 1.0, [(1_000, 50.0), (2_000, 120.0)]),
        harness.Run("fdrl", 1, False, None, None, [(1_000, 20.0), (2_000, 30.0)]),
    ]
    path = harness.plot_curves(TASK, "dqn", {"fdrl": runs}, tmp_path / "dqn.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_run_fdrl_reports_steps_and_seconds_for_dqn():
    easy = harness.Task("CartPole-v1", threshold=0.0, max_steps=2_000, eval_every=1_000, episodes=1)
    run = harness.run_fdrl("dqn", 0, easy)
    assert run.solved and run.steps == 1_000 and run.seconds > 0


def test_sb3_peer_refuses_tasks_it_has_no_hyperparameters_for():
    pytest.importorskip("stable_baselines3")
    with pytest.raises(ValueError, match="no SB3 peer"):
        harness.run_sb3("vpg", 0, TASK)


def test_every_algorithm_has_a_reference_task():
    for algo in ("dqn", "vpg", "a2c", "a3c", "trpo", "ppo"):
        assert harness.TASKS[algo].env_id == "CartPole-v1"
    for algo in ("ddpg", "td3", "sac", "mbrl", "me_trpo", "mb_mpo"):
        assert harness.TASKS[algo].env_id == "Pendulum-v1"
    from fdrl_lib.algos import mb_mpo, mbrl, me_trpo

    for name, module in (("mbrl", mbrl), ("me_trpo", me_trpo), ("mb_mpo", mb_mpo)):
        assert harness.TASKS[name].max_steps == module.Config().total_steps  # their own budget


def test_warm_up_pays_the_first_optimizer_import_before_any_clock_starts():
    import subprocess

    code = (
        "import sys, time; sys.path.insert(0, 'benchmarks'); import _harness as h; import torch;"
        "h.warm_up(); assert 'torch._dynamo' in sys.modules; t = time.perf_counter();"
        "torch.optim.Adam([torch.zeros(1, requires_grad=True)]); print(time.perf_counter() - t)"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) < 0.05  # the second optimizer costs milliseconds, not a second


def test_curves_off_the_evaluation_grid_are_drawn_at_their_latest_evaluation():
    # VPG evaluates every 2,048 steps: on a 1,000-step grid, hold each score until the next one
    row = harness.on_grid([(2048, 10.0), (4096, 30.0)], [1000, 2000, 3000, 4000, 5000])
    assert np.isnan(row[0]) and np.isnan(row[1])
    assert row[2:] == [10.0, 10.0, 30.0]


def test_peers_are_offered_only_where_they_are_set_up():
    assert harness.has_peer("sb3", "dqn", "CartPole-v1")
    assert not harness.has_peer("sb3", "mbrl", "Pendulum-v1")  # SB3 has no model-based RL
    for algo in ("mbrl", "me_trpo", "mb_mpo"):
        assert harness.has_peer("ppo", algo, "Pendulum-v1")
    assert not harness.has_peer("ppo", "dqn", "CartPole-v1")
    with pytest.raises(ValueError, match="peer of mbrl, me_trpo, mb_mpo, not of dqn"):
        harness.run_own_ppo("dqn", 0, TASK)


def test_parallel_jobs_give_the_same_runs_as_one_process(tmp_path):
    """Same seed, same result, whether the seeds run one after another or in processes."""
    import json

    import run as bench_run  # benchmarks/run.py (benchmarks/ is on the path, above)

    for jobs in (1, 2):
        bench_run.benchmark("vpg", 2, None, tmp_path / f"jobs{jobs}", max_steps=2_000, jobs=jobs)
    one, two = (
        json.loads((tmp_path / f"jobs{jobs}" / "vpg.json").read_text())["fdrl"] for jobs in (1, 2)
    )
    assert [r["curve"] for r in one] == [r["curve"] for r in two]
    assert [r["seed"] for r in two] == [0, 1] and all(r["curve"] for r in two)
