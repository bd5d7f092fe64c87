"""``fdrl train``: trains, says which policy it kept, evaluates it afresh, saves it."""

import argparse
import json

import numpy as np
import pytest


def test_main_train_trains_evaluates_and_saves(tmp_path, monkeypatch, capsys):
    from fdrl_lib.algos import dqn
    from fdrl_lib.cli import main_train

    real_train = dqn.train
    tiny = dqn.Config(total_steps=200, hidden=(8,), learning_starts=50, batch_size=8)
    monkeypatch.setattr(dqn, "train", lambda env, **kw: real_train(env, tiny, **kw))
    args = argparse.Namespace(
        algo="dqn", env_id="CartPole-v1", seed=0, steps=200, out=str(tmp_path)
    )
    assert main_train(args) == 0
    out = capsys.readouterr().out
    assert "mean return over 10 episodes" in out and "kept the policy of step" in out
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "agent.gif").read_bytes()[:6] == b"GIF89a"  # no X server needed
    assert json.loads((tmp_path / "logs.json").read_text())["eval_return"]
    loaded = dqn.load(tmp_path / "policy.pt")
    assert loaded.policy(np.zeros(4, np.float32)) in (0, 1)
    assert (tmp_path / "history.json").exists()


def test_main_train_rejects_an_unknown_algorithm(capsys):
    from fdrl_lib.cli import main_train

    args = argparse.Namespace(algo="nope", env_id="CartPole-v1", seed=0, steps=1, out=None)
    assert main_train(args) == 2
    assert "unknown algorithm" in capsys.readouterr().out


def test_main_train_names_a_missing_env_without_a_traceback(capsys):
    from fdrl_lib.cli import main_train

    args = argparse.Namespace(algo="dqn", env_id="NoSuchEnv-v0", seed=0, steps=10, out=None)
    assert main_train(args) == 2
    out = capsys.readouterr().out
    assert "cannot make the environment 'NoSuchEnv-v0'" in out and "CartPole-v1 (dqn" in out


def _tiny_sets() -> list[str]:
    # a seconds-long DQN: small network, early learning, frequent short evaluations
    return [
        "hidden=(16,)",
        "learning_starts=50",
        "batch_size=8",
        "eval_every=100",
        "eval_episodes=1",
        "lr=0.001,0.01",
    ]


def test_sweep_parses_sets_into_typed_combinations():
    from fdrl_lib.sweep import parse_sets

    combos = parse_sets("dqn", ["lr=1e-3,3e-3", "hidden=(64,64),(32,)", "double=True,False"])
    assert len(combos) == 8
    assert combos[0] == (("lr", 1e-3), ("hidden", (64, 64)), ("double", True))
    assert isinstance(parse_sets("dqn", ["lr=1"])[0][0][1], float)  # typed like the field


def test_sweep_names_an_unknown_field_and_a_malformed_item():
    from fdrl_lib.sweep import parse_sets

    with pytest.raises(ValueError, match="no field 'learning_rate'"):
        parse_sets("dqn", ["learning_rate=0.1"])
    with pytest.raises(ValueError, match="key=value"):
        parse_sets("dqn", ["lr"])


@pytest.mark.slow
def test_sweep_on_local_processes_writes_one_table_and_one_plot(tmp_path, capsys):
    from fdrl_lib.cli import main

    sets = sum((["--set", s] for s in _tiny_sets()), [])
    argv = ["sweep", "dqn", "CartPole-v1", "--seeds", "1", "--steps", "300", "--jobs", "2"]
    assert main(argv + sets + ["--out", str(tmp_path)]) == 0
    table = (tmp_path / "sweep.md").read_text()
    assert "| lr=0.001 | 1 |" in table and "| lr=0.01 | 1 |" in table  # a row per setting
    assert "(hidden=(16,), learning_starts=50" in table  # what they share: once, in the title
    rows = json.loads((tmp_path / "sweep.json").read_text())
    assert sorted(r["setting"].split(", ")[-1] for r in rows) == ["lr=0.001", "lr=0.01"]
    assert all(r["curve"] and r["fresh_return"] > 0 for r in rows)
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "sweep.csv").read_text().count("\n") == 3


@pytest.mark.slow
def test_sweep_on_a_local_ray_cluster_matches_the_local_processes(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    from fdrl_lib import sweep

    # Ray's agents take tens of seconds to start on a busy 2-core machine; its node start-up
    # wait is a fixed 30 s, so a start that timed out is tried again
    monkeypatch.setenv("RAY_agent_register_timeout_ms", "180000")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")

    jobs = [
        sweep.Job("dqn", "CartPole-v1", seed, combo, 300)
        for combo in sweep.parse_sets("dqn", _tiny_sets()[:-1] + ["lr=0.01"])
        for seed in (0, 1)
    ]
    for attempt in range(3):  # the test's own local cluster
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    try:
        on_ray = sweep.run_sweep(jobs, ray="auto")
    finally:
        ray.shutdown()
    local = sweep.run_sweep(jobs, workers=2)
    strip = [{k: v for k, v in r.items() if k != "train_seconds"} for r in on_ray]
    assert strip == [{k: v for k, v in r.items() if k != "train_seconds"} for r in local]


def test_sweep_without_ray_installed_says_how_to_get_it(monkeypatch):
    import builtins

    from fdrl_lib import sweep

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ValueError, match=r"fdrl\[sweep\]"):
        sweep.run_sweep([sweep.Job("dqn", "CartPole-v1", 0, ())], ray="auto")


def test_doctor_reports_every_check_and_its_fix(capsys):
    from fdrl_lib import doctor
    from fdrl_lib.cli import main

    code = main(["doctor"])
    out = capsys.readouterr().out
    assert "Python 3." in out and "torch 2.13.0" in out and "numpy 2.4.6" in out
    problems = [c for c in doctor.report() if c[0] is False]
    assert code == (1 if problems else 0)


def test_doctor_turns_a_crashing_check_into_a_reported_problem(monkeypatch):
    from fdrl_lib import doctor

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(doctor, "CHECKS", [broken])
    assert doctor.report() == [(False, "broken crashed: boom", "report this as a bug")]


@pytest.mark.slow
def test_grade_all_scores_every_exercise_of_a_folder_in_one_table(tmp_path, capsys):
    import shutil
    from pathlib import Path

    from fdrl_lib.cli import main

    root = Path(__file__).resolve().parents[1]
    shutil.copy(root / "solutions" / "01_mdps.ipynb", tmp_path / "01_mdps.ipynb")  # all done
    shutil.copy(root / "exercises" / "02_dqn.ipynb", tmp_path / "02_dqn.ipynb")  # nothing done
    (tmp_path / "notes.ipynb").write_text("{}")  # not an exercise: not graded
    assert main(["grade", "--all", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| 01_mdps | 19/19 |" in out and "| 02_dqn | 0/25 |" in out
    assert "| **all** | **19/44** |" in out and "notes" not in out


def test_grade_all_says_when_a_folder_has_no_exercise(tmp_path, capsys):
    from fdrl_lib.cli import main

    assert main(["grade", "--all", str(tmp_path)]) == 1
    assert "no exercise notebooks" in capsys.readouterr().err
