"""DDPG (lecture 5, section 5.1): Polyak averaging, the critic target, the actor loss, training."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from fdrl_lib import evaluate
from fdrl_lib.algos import ddpg
from fdrl_lib.nn import DeterministicActor, QCritic


def _tiny(**overrides) -> ddpg.Config:
    values = dict(
        total_steps=400, learning_starts=200, batch_size=32, eval_every=200, eval_episodes=1
    )
    return ddpg.Config(**{**values, **overrides})


def test_polyak_with_tau_one_copies_the_source():
    target, source = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    ddpg.polyak_update(target, source, 1.0)
    for t, s in zip(target.parameters(), source.parameters(), strict=True):
        torch.testing.assert_close(t, s)


def test_polyak_with_tau_zero_keeps_the_target():
    target, source = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in target.parameters()]
    ddpg.polyak_update(target, source, 0.0)
    for t, b in zip(target.parameters(), before, strict=True):
        torch.testing.assert_close(t, b)


def test_polyak_moves_the_target_a_fraction_tau_toward_the_source():
    target, source = [torch.tensor([1.0, 10.0])], [torch.tensor([3.0, 0.0])]
    ddpg.polyak_update(target, source, 0.25)
    torch.testing.assert_close(target[0], torch.tensor([1.5, 7.5]))  # 0.25 s + 0.75 t
    with pytest.raises(ValueError, match="tau"):
        ddpg.polyak_update(target, source, 1.5)


def test_ddpg_target_bootstraps_unless_terminated():
    reward = torch.tensor([1.0, 1.0, -2.0])
    terminated = torch.tensor([0.0, 1.0, 0.0])
    next_q = torch.tensor([10.0, 10.0, 4.0])
    y = ddpg.ddpg_target(reward, terminated, 0.9, next_q)
    torch.testing.assert_close(y, torch.tensor([10.0, 1.0, 1.6]))  # r + 0.9 (1 - d) Q'


def test_a_truncated_step_is_stored_as_not_terminated_so_it_bootstraps():
    memory = ddpg.replay_memory(ddpg.Config(buffer_size=4), obs_dim=2, action_dim=1, seed=0)
    memory.add(np.ones(2), np.array([0.5]), -1.0, 2 * np.ones(2), False, truncated=True)
    obs, action, reward, next_obs, terminated = ddpg.sample(memory, 3)
    assert obs.shape == (3, 2) and action.shape == (3, 1) and reward.shape == (3,)
    torch.testing.assert_close(next_obs, torch.full((3, 2), 2.0))
    assert float(action[0, 0]) == 0.5 and float(reward[0]) == -1.0
    assert terminated.tolist() == [0.0, 0.0, 0.0]


def test_critic_loss_is_the_mean_squared_error_and_the_target_is_a_label():
    q = torch.tensor([1.0, 4.0], requires_grad=True)
    y = torch.tensor([2.0, 2.0], requires_grad=True)
    loss = ddpg.critic_loss(q, y)
    torch.testing.assert_close(loss, torch.tensor((1.0 + 4.0) / 2))
    loss.backward()
    assert y.grad is None  # the target is a label
    torch.testing.assert_close(q.grad, torch.tensor([-1.0, 2.0]))  # 2 (q - y) / B


def test_actor_loss_climbs_q_through_the_action_and_leaves_the_critic_alone():
    actor, critic = DeterministicActor(3, 1, (64, 64)), QCritic(3, 1, (64, 64))
    obs = torch.randn(64, 3)
    with ddpg.frozen(critic):
        loss = ddpg.actor_loss(critic(obs, actor(obs)))
    loss.backward()
    assert all(p.grad is None for p in critic.parameters())
    assert all(p.grad is not None for p in actor.parameters())
    assert all(p.requires_grad for p in critic.parameters())  # unfrozen afterwards
    # eq. 5.3 by the chain rule: dL/da = -dQ/da / B for each sample
    action = actor(obs).detach().requires_grad_(True)
    ddpg.actor_loss(critic(obs, action)).backward()
    q_grad = torch.autograd.grad(critic(obs, action).sum(), action)[0]
    torch.testing.assert_close(action.grad, -q_grad / 64)


def test_an_update_leaves_the_target_networks_untouched():
    actor, critic = DeterministicActor(3, 1, (64, 64)), QCritic(3, 1, (64, 64))
    actor_target, critic_target = ddpg.make_target(actor), ddpg.make_target(critic)
    before = [p.clone() for p in [*actor_target.parameters(), *critic_target.parameters()]]
    optimizer = torch.optim.Adam([*actor.parameters(), *critic.parameters()], lr=0.1)
    batch = (torch.randn(8, 3), torch.rand(8, 1), torch.randn(8), torch.randn(8, 3), torch.zeros(8))
    ddpg.update(actor, critic, actor_target, critic_target, optimizer, batch, 0.9)
    after = [*actor_target.parameters(), *critic_target.parameters()]
    assert all(p.grad is None for p in after)
    for a, b in zip(after, before, strict=True):
        torch.testing.assert_close(a, b)
    assert any(
        (p - q).abs().sum() > 0
        for p, q in zip(actor.parameters(), actor_target.parameters(), strict=True)
    )


def test_train_smoke_run_returns_a_bounded_deterministic_policy():
    result = ddpg.train("Pendulum-v1", _tiny(), seed=0, progress=False)
    assert result.history and result.history[-1]["step"] <= 400
    obs = np.array([1.0, 0.0, 0.5], dtype=np.float32)
    action = result.policy(obs)
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0
    np.testing.assert_array_equal(action, result.policy(obs))
    assert {"critic_loss", "actor_loss", "eval_return"} <= set(result.logs)


def test_same_seed_same_result():
    a = ddpg.train("Pendulum-v1", _tiny(), seed=5, progress=False)
    b = ddpg.train("Pendulum-v1", _tiny(), seed=5, progress=False)
    assert [h["episode_return"] for h in a.history] == [h["episode_return"] for h in b.history]
    for key, value in a.checkpoint["state_dict"].items():
        torch.testing.assert_close(value, b.checkpoint["state_dict"][key])


def test_save_load_round_trips_the_policy(tmp_path):
    result = ddpg.train("Pendulum-v1", _tiny(), progress=False)
    loaded = ddpg.load(result.save(tmp_path / "ddpg.pt"))
    assert loaded.config == result.config
    for obs in np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32):
        np.testing.assert_array_equal(loaded.policy(obs), result.policy(obs))


def test_discrete_actions_are_rejected_with_a_clear_error():
    with pytest.raises(ValueError, match="continuous"):
        ddpg.train("CartPole-v1", _tiny(), progress=False)


def test_a_bad_config_field_is_named():
    with pytest.raises(ValueError, match="tau"):
        ddpg.Config(tau=2.0)
    with pytest.raises(ValueError, match="batch_size"):
        ddpg.Config(batch_size=0)


def test_result_config_records_the_budget_actually_run():
    result = ddpg.train("Pendulum-v1", _tiny(), total_steps=300, progress=False)
    assert result.config == dataclasses.replace(_tiny(), total_steps=300)


@pytest.mark.slow
def test_config_learns_to_swing_up_pendulum():
    result = ddpg.train("Pendulum-v1", seed=0, progress=False)
    assert result.kept_return >= -200
    assert evaluate(result.policy, "Pendulum-v1", episodes=10, seed=123) >= -250


def test_env_instance_is_accepted():
    result = ddpg.train(gym.make("Pendulum-v1"), _tiny(total_steps=250), progress=False)
    assert result.history
