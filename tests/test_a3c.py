"""A3C (lecture 3, section 3.7): shared parameters and optimizer state, real worker processes
that always exit, and a statistical learning check (the same seed need not repeat a run)."""

import multiprocessing
import os

import gymnasium as gym
import numpy as np
import pytest
import torch

from fdrl_lib import evaluate
from fdrl_lib.algos import a3c


def _tiny(**overrides) -> a3c.Config:
    values = dict(total_steps=600, envs_per_worker=2, n_steps=5, hidden=(8,), eval_every=300)
    return a3c.Config(**{**values, **overrides})


def _no_workers_left():
    children = multiprocessing.active_children()
    assert children == [], children


def test_shared_adam_keeps_its_state_in_shared_memory():
    model = torch.nn.Linear(3, 2).share_memory()
    optimizer = a3c.SharedAdam(model.parameters(), lr=0.1)
    for p in model.parameters():
        state = optimizer.state[p]
        assert all(state[k].is_shared() for k in ("step", "exp_avg", "exp_avg_sq"))
        p.grad = torch.ones_like(p)
    optimizer.step()
    assert float(optimizer.state[model.weight]["step"]) == 1.0


def test_workers_update_the_shared_model_and_all_exit():
    result = a3c.train("CartPole-v1", _tiny(num_workers=2), seed=0, progress=False)
    assert {rank for _, rank in result.logs["worker"]} == {0, 1}  # both processes' updates landed
    assert result.logs["eval_return"] and result.history
    assert result.policy(np.zeros(4, dtype=np.float32)) in (0, 1)
    _no_workers_left()


def test_a_callback_that_stops_training_early_leaves_no_worker_running():
    result = a3c.train("CartPole-v1", _tiny(total_steps=100_000), callback=lambda p: p.step > 200,
                       progress=False)  # fmt: skip
    assert result.logs["loss"][-1][0] < 100_000
    _no_workers_left()


def test_an_error_in_a_worker_is_raised_and_no_worker_is_left():
    main = os.getpid()

    def env_that_fails_in_workers():
        if os.getpid() != main:
            raise OSError("this env cannot be made in a worker")
        return gym.make("CartPole-v1")

    with pytest.raises(RuntimeError, match="cannot be made in a worker"):
        a3c.train(env_that_fails_in_workers, _tiny(), progress=False)
    _no_workers_left()


def test_saves_and_loads(tmp_path):
    result = a3c.train("CartPole-v1", _tiny(num_workers=1), seed=1, progress=False)
    loaded = a3c.load(result.save(tmp_path / "a3c.pt"))
    obs = np.ones(4, dtype=np.float32)
    assert loaded.policy(obs) == result.policy(obs)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="num_workers"):
        a3c.Config(num_workers=0)
    with pytest.raises(ValueError, match="env factory"):
        a3c.train(gym.make("CartPole-v1"), _tiny(), progress=False)


@pytest.mark.slow
def test_solves_cartpole_on_most_seeds():
    # statistical: asynchronous updates make runs differ, so judge several seeds, not one replay
    solved = 0
    for seed in range(3):
        result = a3c.train("CartPole-v1", seed=seed, total_steps=60_000, progress=False)
        solved += evaluate(result.policy, "CartPole-v1", episodes=10, seed=123) >= 475
        _no_workers_left()
    assert solved >= 2
