"""``fdrl train``: trains, says which policy it kept, evaluates it afresh, saves it."""

import argparse

import numpy as np


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
    assert "cannot make the environment 'NoSuchEnv-v0'" in capsys.readouterr().out
