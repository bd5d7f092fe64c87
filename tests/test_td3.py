"""TD3: clipped double Q, target policy smoothing, delayed policy updates."""

import numpy as np
import pytest
import torch

from fdrl_lib import evaluate
from fdrl_lib.algos import ddpg, td3
from fdrl_lib.nn import DeterministicActor, TwinQCritic


def _tiny(**overrides) -> td3.Config:
    values = dict(
        total_steps=400, learning_starts=200, batch_size=32, eval_every=200, eval_episodes=1
    )
    return td3.Config(**{**values, **overrides})


def test_clipped_double_q_takes_the_min_per_sample():
    q1, q2 = torch.tensor([1.0, 5.0, 0.0]), torch.tensor([3.0, 2.0, -1.0])
    y = td3.clipped_double_q_target(torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]), 0.5, q1, q2)
    torch.testing.assert_close(y, torch.tensor([0.5, 1.0, 0.0]))  # min is (1, 2, -); last ends


def test_target_smoothing_clips_the_noise_and_then_the_action():
    next_action = torch.tensor([[0.0], [0.9], [-0.2]])
    noise = torch.tensor([[0.3], [0.4], [-2.0]])
    smoothed = td3.smoothed_target_action(next_action, noise, noise_clip=0.5)
    torch.testing.assert_close(smoothed, torch.tensor([[0.3], [1.0], [-0.7]]))


def _parts():
    actor, critic = DeterministicActor(3, 1, (64, 64)), TwinQCritic(3, 1, (64, 64))
    optimizer = torch.optim.Adam([*actor.parameters(), *critic.parameters()], lr=0.1)
    batch = (torch.randn(8, 3), torch.rand(8, 1), torch.randn(8), torch.randn(8, 3), torch.zeros(8))
    return actor, critic, ddpg.make_target(actor), ddpg.make_target(critic), optimizer, batch


@pytest.mark.parametrize("with_actor", [False, True])
def test_the_actor_moves_only_on_delayed_steps(with_actor):
    actor, critic, actor_target, critic_target, optimizer, batch = _parts()
    before = [p.detach().clone() for p in actor.parameters()]
    critic_before = [p.detach().clone() for p in critic.parameters()]
    td3.update(
        actor, critic, actor_target, critic_target, optimizer, batch, td3.Config(), with_actor
    )
    moved = any((p - b).abs().sum() > 0 for p, b in zip(actor.parameters(), before, strict=True))
    assert moved == with_actor
    assert all(
        (p - b).abs().sum() > 0 for p, b in zip(critic.parameters(), critic_before, strict=True)
    )
    assert all(p.grad is None for p in [*actor_target.parameters(), *critic_target.parameters()])


def test_train_smoke_run_returns_a_bounded_deterministic_policy():
    result = td3.train("Pendulum-v1", _tiny(), seed=0, progress=False)
    action = result.policy(np.array([1.0, 0.0, 0.5], dtype=np.float32))
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0
    assert "critic_loss" in result.logs


def test_same_seed_same_result_and_save_load(tmp_path):
    a = td3.train("Pendulum-v1", _tiny(), seed=2, progress=False)
    b = td3.train("Pendulum-v1", _tiny(), seed=2, progress=False)
    assert [h["episode_return"] for h in a.history] == [h["episode_return"] for h in b.history]
    loaded = td3.load(a.save(tmp_path / "td3.pt"))
    assert loaded.config == a.config
    obs = np.array([0.0, 1.0, -3.0], dtype=np.float32)
    np.testing.assert_array_equal(loaded.policy(obs), b.policy(obs))


def test_a_bad_config_field_is_named():
    with pytest.raises(ValueError, match="policy_delay"):
        td3.Config(policy_delay=0)


@pytest.mark.slow
def test_config_learns_to_swing_up_pendulum():
    # the defaults train their whole 20,000-step budget; 8,000 steps keep this test short
    result = td3.train("Pendulum-v1", seed=0, total_steps=8_000, progress=False)
    assert result.kept_return >= -200
    assert evaluate(result.policy, "Pendulum-v1", episodes=10, seed=123) >= -250
