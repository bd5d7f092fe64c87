"""DQN (lecture 2, Algorithm 3 and section 2.2.2): the math, smoke runs, and learning checks."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from fdrl_lib import evaluate
from fdrl_lib.algos import dqn

FLAGS = ("double", "dueling", "prioritized", "n_step", "noisy", "distributional")


def _tiny(**flags) -> dqn.Config:
    """A seconds-long config; every improvement off unless switched on in ``flags``."""
    flags = {"double": False, "n_step": 1, **flags}
    return dqn.Config(
        total_steps=300,
        hidden=(16,),
        batch_size=8,
        learning_starts=50,
        target_update=20,
        epsilon_decay_steps=100,
        train_every=1,
        gradient_steps=1,
        atoms=11,
        **flags,
    )


def test_huber_matches_its_definition():
    error = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.25, 1.0, 2.0])
    for delta in (1.0, 0.5, 2.0):
        expected = [
            0.5 * e**2 if abs(e) <= delta else delta * (abs(e) - 0.5 * delta)
            for e in error.tolist()
        ]
        torch.testing.assert_close(dqn.huber(error, delta), torch.tensor(expected))


def test_huber_gradient_is_clipped_to_kappa():
    error = torch.tensor([-5.0, 0.3, 5.0], requires_grad=True)
    dqn.huber(error, 1.0).sum().backward()
    torch.testing.assert_close(error.grad, torch.tensor([-1.0, 0.3, 1.0]))


def _mock_networks():
    online_q = torch.tensor([[1.0, 5.0, 2.0], [9.0, 0.0, 0.0]])  # online picks a=1, a=0
    target_q = torch.tensor([[7.0, 3.0, 4.0], [1.0, 2.0, 8.0]])  # target's max: a=0, a=2
    return online_q, target_q


def test_double_dqn_target_picks_with_online_and_evaluates_with_target():
    online_q, target_q = _mock_networks()
    reward, terminated = torch.tensor([1.0, 2.0]), torch.zeros(2)
    y = dqn.dqn_target(reward, terminated, 0.5, target_q, next_q_online=online_q)
    torch.testing.assert_close(y, torch.tensor([1 + 0.5 * 3.0, 2 + 0.5 * 1.0]))  # eq. 2.12


def test_plain_dqn_target_maxes_the_target_network():
    _, target_q = _mock_networks()
    y = dqn.dqn_target(torch.tensor([1.0, 2.0]), torch.zeros(2), torch.full((2,), 0.5), target_q)
    torch.testing.assert_close(y, torch.tensor([1 + 0.5 * 7.0, 2 + 0.5 * 8.0]))


def test_target_bootstraps_unless_terminated():
    _, target_q = _mock_networks()
    y = dqn.dqn_target(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.0]), 0.5, target_q)
    torch.testing.assert_close(y, torch.tensor([1.0, 2 + 0.5 * 8.0]))


def test_td_loss_is_the_weighted_mean_huber_of_the_td_errors():
    q_taken, y = torch.tensor([0.0, 1.0, 5.0]), torch.tensor([0.5, 1.0, 1.0])
    weights = torch.tensor([1.0, 2.0, 0.5])
    loss, error = dqn.td_loss(q_taken, y, delta=1.0, weights=weights)
    expected = (1.0 * 0.5 * 0.5**2 + 2.0 * 0.0 + 0.5 * 1.0 * (4.0 - 0.5)) / 3
    torch.testing.assert_close(loss, torch.tensor(expected))
    torch.testing.assert_close(error, torch.tensor([0.5, 0.0, -4.0]))


def test_categorical_projection_conserves_probability_mass():
    gen = torch.Generator().manual_seed(0)
    support = torch.linspace(-10, 10, 51)
    probs = torch.rand(32, 51, generator=gen).softmax(-1)
    reward = torch.randn(32, generator=gen) * 8  # some shifts fall off the support: clipped
    discount = torch.rand(32, generator=gen)
    terminated = (torch.rand(32, generator=gen) < 0.3).float()
    projected = dqn.categorical_projection(probs, reward, discount, terminated, support)
    assert (projected >= 0).all()
    torch.testing.assert_close(projected.sum(-1), torch.ones(32))


def test_categorical_projection_matches_a_hand_worked_case():
    support = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])
    probs = torch.tensor([[0.2, 0.3, 0.5, 0.0, 0.0]])
    # r = 0.5, discount 1: atoms move to 0.5, 1.5, 2.5 -> each splits half/half
    projected = dqn.categorical_projection(
        probs, torch.tensor([0.5]), torch.tensor([1.0]), torch.tensor([0.0]), support
    )
    torch.testing.assert_close(projected, torch.tensor([[0.1, 0.25, 0.4, 0.25, 0.0]]))
    # terminated: all mass goes to the reward itself, r = 3 exactly on an atom
    projected = dqn.categorical_projection(
        probs, torch.tensor([3.0]), torch.tensor([0.9]), torch.tensor([1.0]), support
    )
    torch.testing.assert_close(projected, torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0]]))


def test_rainbow_turns_every_improvement_on():
    config = dqn.rainbow()
    assert config.double and config.dueling and config.prioritized and config.noisy
    assert config.distributional and config.n_step > 1


def test_vanilla_is_algorithm_3_without_improvements():
    config = dqn.vanilla()
    assert not (config.double or config.dueling or config.prioritized or config.noisy)
    assert not config.distributional and config.n_step == 1


def test_vanilla_takes_one_small_gradient_step_per_env_step_whatever_the_defaults():
    # the ablation's base keeps its own conservative optimiser settings (not the speed-tuned
    # Config() ones), and flags layered on top keep them
    for config in (dqn.vanilla(), dqn.vanilla(dueling=True)):
        assert config.gradient_steps / config.train_every == 1
        assert (config.lr, config.batch_size, config.target_update) == (2.3e-3, 64, 128)
    assert dqn.vanilla(lr=1e-3).lr == 1e-3  # overrides still win


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        dqn.Config().lr = 1.0


@pytest.mark.parametrize(
    "flags",
    [
        {},
        *({f: (3 if f == "n_step" else True)} for f in FLAGS),
        {f: v for f, v in dataclasses.asdict(dqn.rainbow()).items() if f in FLAGS},
        {"frame_stack": 3},
    ],
    ids=lambda f: "+".join(f) or "plain",
)
def test_train_smoke_runs_for_every_rainbow_flag(flags):
    result = dqn.train("CartPole-v1", _tiny(**flags), seed=0, progress=False)
    assert result.history and {"step", "episode_return", "wall_time"} <= set(result.history[0])
    assert result.history[-1]["step"] <= 300
    obs = np.zeros(4, dtype=np.float32)
    assert result.policy(obs) in (0, 1)
    assert result.policy(obs) == result.policy(obs)  # deterministic, noisy nets included


def test_same_seed_same_result():
    config = _tiny(prioritized=True, noisy=True, n_step=2)
    a = dqn.train("CartPole-v1", config, seed=7, progress=False)
    b = dqn.train("CartPole-v1", config, seed=7, progress=False)
    assert [h["episode_return"] for h in a.history] == [h["episode_return"] for h in b.history]
    for key, value in a.checkpoint["state_dict"].items():
        torch.testing.assert_close(value, b.checkpoint["state_dict"][key])


def test_save_load_round_trips_the_policy(tmp_path):
    result = dqn.train("CartPole-v1", _tiny(dueling=True, distributional=True), progress=False)
    path = result.save(tmp_path / "dqn.pt")
    loaded = dqn.load(path)
    assert loaded.config == result.config
    rng = np.random.default_rng(0)
    for obs in rng.normal(size=(50, 4)).astype(np.float32):
        assert loaded.policy(obs) == result.policy(obs)


def test_callback_sees_progress_and_can_stop_training():
    seen = []

    def callback(progress):
        seen.append(progress.step)
        return progress.step >= 120

    result = dqn.train("CartPole-v1", _tiny(), callback=callback, progress=False)
    assert seen[-1] == 120 and all(h["step"] <= 120 for h in result.history)


class _RecordActions(gym.Wrapper):
    """CartPole that remembers every action it was given."""

    def __init__(self, actions: list[int]) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.actions = actions

    def step(self, action):
        self.actions.append(int(action))
        return super().step(action)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_nets_alone_try_both_actions(seed):
    # With epsilon 0 every action is the argmax of the noisy net. One noise sample held fixed
    # is one fixed policy: before noise was resampled per acting step, all 1,000 actions were
    # the same one. The first 500 steps are the warm-up (no training yet).
    actions: list[int] = []
    config = dqn.Config(noisy=True, epsilon_start=0.0, epsilon_end=0.0, total_steps=1_000)
    dqn.train(lambda: _RecordActions(actions), config, seed=seed, progress=False)
    assert len(actions) >= 1_000  # training's 1,000, then the evaluation episodes
    share_of_action_1 = np.mean(actions[:1_000])
    assert 0.2 <= share_of_action_1 <= 0.8


def test_non_discrete_actions_are_rejected():
    with pytest.raises(ValueError, match="Discrete action"):
        dqn.train("Pendulum-v1", _tiny(), progress=False)


def _solve(config, max_steps):
    """Train with the library's own evaluation (best policy kept, stop at 475)."""
    result = dqn.train("CartPole-v1", config, seed=0, total_steps=max_steps, progress=False)
    return result, [score for _, score in result.logs["eval_return"]]


SOLVERS = {
    "default Config()": (dqn.Config, 50_000),
    "vanilla()": (dqn.vanilla, 30_000),
    # no epsilon-greedy at all, not even in the warm-up: the noise does all the exploring
    "noisy nets alone": (
        lambda: dqn.Config(noisy=True, epsilon_start=0.0, epsilon_end=0.0),
        30_000,
    ),
    "rainbow()": (dqn.rainbow, 50_000),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SOLVERS))
def test_config_solves_cartpole(name):
    make_config, budget = SOLVERS[name]
    result, scores = _solve(make_config(), budget)
    assert max(scores) >= 475 and result.kept_return == max(scores)
    # judged on fresh episodes (seeds 123..132, not the ones training evaluated on)
    assert evaluate(result.policy, "CartPole-v1", episodes=10, seed=123) >= 475


def test_a_bad_config_field_is_named():
    with pytest.raises(ValueError, match="train_every"):
        dqn.Config(train_every=0)
    with pytest.raises(ValueError, match="gamma"):
        dqn.Config(gamma=1.5)


def test_result_config_records_the_budget_actually_run():
    result = dqn.train("CartPole-v1", _tiny(), total_steps=120, progress=False)
    assert result.config.total_steps == 120
    assert result.config == dataclasses.replace(_tiny(), total_steps=120)


def test_the_kept_policy_is_the_best_evaluated_one():
    config = dataclasses.replace(_tiny(), total_steps=600, eval_every=100, eval_episodes=2)
    result = dqn.train("CartPole-v1", config, seed=3, progress=False)
    scores = dict(result.logs["eval_return"])
    assert result.kept_return == max(scores.values())
    assert scores[result.kept_step] == result.kept_return
    # the returned policy really is that one: re-evaluating it on the training-time episodes
    # (seeds 10_000 + 100 * seed + i) gives the same score
    again = evaluate(result.policy, "CartPole-v1", episodes=2, seed=10_000 + 100 * 3)
    assert again == result.kept_return
