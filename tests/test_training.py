"""Shared training pieces: evaluate, History, lazy imports, the `fdrl train` entry point."""

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


# ----------------------------------------------------------------- seeding, config, Monitor
def test_spawned_streams_are_reproducible_and_independent():
    from fdrl_lib.training import Streams

    a, b = Streams(5), Streams(5)
    first_a, first_b = a.generator(), b.generator()
    second_a, second_b = a.generator(), b.generator()
    first_a.random(1000)  # drawing a lot from one stream ...
    np.testing.assert_array_equal(second_a.random(5), second_b.random(5))  # ... moves no other
    assert not np.array_equal(first_b.random(5), second_b.random(5))
    assert a.integer() != a.integer()


def test_seeded_restores_threads_and_the_callers_torch_state():
    import torch

    from fdrl_lib.training import seeded

    threads = torch.get_num_threads()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    with seeded(7, threads=1):
        assert torch.get_num_threads() == 1
        inside = torch.rand(3)
    np.testing.assert_array_equal(torch.rand(3), expected)  # caller's stream untouched
    with seeded(7, threads=1):
        np.testing.assert_array_equal(torch.rand(3), inside)  # same seed, same numbers
    assert torch.get_num_threads() == threads


def test_check_config_names_the_field_and_the_range():
    from dataclasses import dataclass

    from fdrl_lib.training import check_config

    @dataclass
    class Config:
        lr: float = 0.1
        gamma: float = 0.9
        warmup: int = 0

    check_config(Config(), positive=["lr"], unit=["gamma"], non_negative=["warmup"])
    for bad, name in [(dict(lr=0), "lr"), (dict(gamma=2.0), "gamma"), (dict(warmup=-1), "warm")]:
        with pytest.raises(ValueError, match=f"Config.{name}"):
            check_config(Config(**bad), positive=["lr"], unit=["gamma"], non_negative=["warmup"])


def test_history_tracks_each_env_of_a_vector_env_apart():
    history = History()
    history.step([1.0, 2.0], [False, False], step=2)
    history.step([1.0, 2.0], [False, True], step=4)
    history.step([1.0, 2.0], [True, False], step=6)
    assert [(h["step"], h["episode_return"]) for h in history.episodes] == [(4, 4.0), (6, 3.0)]
    history.log(6, loss=0.5, kl=0.01)
    history.log(8, loss=0.25)
    assert history.logs == {"loss": [(6, 0.5), (8, 0.25)], "kl": [(6, 0.01)]}


class _Switch:
    """A 'network' whose one weight picks CartPole's action: the monitor copies its state."""

    def __init__(self):
        import torch

        self.weight = torch.zeros(1)

    def state_dict(self):
        return {"weight": self.weight}

    def load_state_dict(self, state):
        self.weight = state["weight"].clone()

    def __call__(self, obs):
        return int(obs[2] + 0.5 * obs[3] > 0) if self.weight.item() > 0 else 0  # > 0: balances


def _monitor(**settings):
    from fdrl_lib.training import EvalSettings, Monitor

    values = dict(eval_every=10, eval_episodes=2, target_return=None, stop_at_target=True)
    return Monitor("test", "CartPole-v1", 100, EvalSettings(**{**values, **settings}),
                   progress=False)  # fmt: skip


def test_monitor_keeps_the_best_evaluated_weights_and_says_when():
    policy = _Switch()
    monitor = _monitor(stop_at_target=False)
    for step, weight in [(10, 0.0), (20, 1.0), (30, 0.0)]:  # good only at step 20
        policy.weight[0] = weight
        assert not monitor.after_update(step, policy, [policy])
    kept = monitor.finish(30, policy, [policy])
    assert kept["kept_step"] == 20 and policy.weight.item() == 1.0  # weights put back
    scores = dict(kept["logs"]["eval_return"])
    assert scores[20] == kept["kept_return"] > scores[10]


def test_monitor_stops_at_the_envs_own_threshold():
    from fdrl_lib.training import reward_threshold

    assert reward_threshold("CartPole-v1") == 475.0 and reward_threshold("Pendulum-v1") == -200.0
    policy = _Switch()
    policy.weight[0] = 1.0  # the lean-following policy balances for all 500 steps (else: falls)
    assert _monitor().after_update(10, policy, [policy])
    assert not _monitor(stop_at_target=False).after_update(10, policy, [policy])
    assert not _monitor(target_return=1e9).after_update(10, policy, [policy])


def test_monitor_evaluates_on_schedule_even_when_steps_jump():
    policy = _Switch()
    monitor = _monitor(stop_at_target=False)
    for step in (8, 16, 24, 32, 64):  # a rollout of 8 env steps per update, then a jump
        monitor.after_update(step, policy, [policy])
    assert [s for s, _ in monitor.history.logs["eval_return"]] == [16, 24, 32, 64]


def test_callback_time_is_not_training_time():
    import time

    policy = _Switch()
    monitor = _monitor(eval_every=10**9)
    monitor.callback = lambda progress: time.sleep(0.2)
    before = monitor.history.wall_time()
    monitor.after_update(1, policy, [policy])
    assert monitor.history.wall_time() - before < 0.1


def test_grid_world_id_works_whatever_was_imported_first():
    # lecture 1's order: the tabular package before gymnasium; the id was once unknown then
    code = (
        "import fdrl_lib.tabular; from fdrl_lib.envs import make_env; "
        "env = make_env('fdrl/GridWorld-v0'); assert env.reset(seed=0)[0] >= 0"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
