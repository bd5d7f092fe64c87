"""Shared training pieces: evaluate, History, lazy imports, the `fdrl train` entry point."""

import argparse
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from fdrl_lib import evaluate
from fdrl_lib.envs import FrameStack, StackFrames, make_env
from fdrl_lib.training import History


class _Counter(gym.Env):
    """Reward 1 per step, terminates after ``length`` steps; obs = steps so far."""

    observation_space = gym.spaces.Box(0, 100, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, length=3):
        self.length, self.t = length, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        reward = 1.0 + action  # action 1 doubles the reward
        return np.array([self.t], np.float32), reward, self.t >= self.length, False, {}


def test_evaluate_returns_the_mean_undiscounted_return():
    assert evaluate(lambda obs: 0, lambda: _Counter(3), episodes=4) == 3.0
    assert evaluate(lambda obs: 1, lambda: _Counter(5), episodes=2) == 10.0


def test_evaluate_is_deterministic_for_a_deterministic_policy():
    policy = lambda obs: int(obs[2] > 0)  # noqa: E731  CartPole: push toward the lean
    a = evaluate(policy, "CartPole-v1", episodes=3, seed=5)
    assert a == evaluate(policy, "CartPole-v1", episodes=3, seed=5)


def test_evaluate_resets_a_stateful_policy_each_episode():
    class Policy:
        resets = 0

        def reset(self):
            Policy.resets += 1

        def __call__(self, obs):
            return 0

    evaluate(Policy(), lambda: _Counter(2), episodes=3)
    assert Policy.resets == 3


def test_evaluate_rejects_zero_episodes():
    with pytest.raises(ValueError, match="episodes"):
        evaluate(lambda obs: 0, "CartPole-v1", episodes=0)


def test_history_records_episodes_and_pauses_the_clock_in_callbacks():
    import time

    history = History()
    for step in range(1, 7):
        history.step(1.0, done=step % 3 == 0, step=step)
    assert [h["episode_return"] for h in history.episodes] == [3.0, 3.0]
    assert [h["step"] for h in history.episodes] == [3, 6]
    before = history.wall_time()
    stop = history.callback(lambda progress: time.sleep(0.2) or True, 6, lambda obs: 0)
    assert stop and history.wall_time() - before < 0.1  # the callback's 0.2 s is not counted


def test_frame_stack_wrapper_and_policy_side_stacking_agree():
    env = make_env(lambda: _Counter(5), frame_stack=3)
    stack = StackFrames(3)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, stack(np.array([0.0], np.float32)))
    for t in range(1, 4):
        obs, *_ = env.step(0)
        np.testing.assert_array_equal(obs, stack(np.array([t], np.float32)))
    np.testing.assert_array_equal(obs[:, 0], [1, 2, 3])
    assert isinstance(env, FrameStack) and env.observation_space.shape == (3, 1)


def test_importing_fdrl_lib_and_algos_costs_no_torch():
    code = (
        "import sys, fdrl_lib, fdrl_lib.algos, fdrl_lib.training, fdrl_lib.buffers, "
        "fdrl_lib.returns, fdrl_lib.envs, fdrl_lib.tabular; "
        "from fdrl_lib.tabular import q_learning; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_main_train_trains_evaluates_and_saves(tmp_path, monkeypatch, capsys):
    from fdrl_lib.algos import dqn
    from fdrl_lib.training import main_train

    real_train = dqn.train
    tiny = dqn.Config(total_steps=200, hidden=(8,), learning_starts=50, batch_size=8)
    monkeypatch.setattr(dqn, "train", lambda env, **kw: real_train(env, tiny, **kw))
    args = argparse.Namespace(
        algo="dqn", env_id="CartPole-v1", seed=0, steps=200, out=str(tmp_path)
    )
    assert main_train(args) == 0
    assert "mean return over 10 episodes" in capsys.readouterr().out
    loaded = dqn.load(tmp_path / "policy.pt")
    assert loaded.policy(np.zeros(4, np.float32)) in (0, 1)
    assert (tmp_path / "history.json").exists()


def test_main_train_rejects_an_unknown_algorithm(capsys):
    from fdrl_lib.training import main_train

    args = argparse.Namespace(algo="nope", env_id="CartPole-v1", seed=0, steps=1, out=None)
    assert main_train(args) == 2
    assert "unknown algorithm" in capsys.readouterr().out


def test_main_train_names_a_missing_env_without_a_traceback(capsys):
    from fdrl_lib.training import main_train

    args = argparse.Namespace(algo="dqn", env_id="NoSuchEnv-v0", seed=0, steps=10, out=None)
    assert main_train(args) == 2
    assert "cannot make the environment 'NoSuchEnv-v0'" in capsys.readouterr().out


def test_make_env_raises_value_error_naming_an_unknown_id():
    from fdrl_lib.envs import make_env

    with pytest.raises(ValueError, match="NoSuchEnv-v0"):
        make_env("NoSuchEnv-v0")


def test_algos_lists_only_modules_that_exist_and_names_planned_ones():
    from fdrl_lib import algos

    assert "dqn" in algos.available()
    for name in algos.PLANNED:
        if name not in algos.available():
            with pytest.raises(AttributeError, match="not implemented yet"):
                getattr(algos, name)
