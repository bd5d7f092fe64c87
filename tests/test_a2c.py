"""A2C (lecture 3, Algorithm 5, eqs. 3.37-3.45): k-step and GAE advantages by hand, the loss's
gradients, shared and separate networks, smoke runs and a learning check."""

import numpy as np
import pytest
import torch

from fdrl_lib import evaluate
from fdrl_lib.algos import a2c, vpg


def test_n_step_estimate_looks_ahead_to_the_rollout_end_and_bootstraps_there():
    # one env, T = 3, gamma = 0.5: Q_hat_0 = r0 + g r1 + g^2 r2 + g^3 V(s_3) (eq. 3.43), etc.
    reward = torch.tensor([[1.0], [2.0], [4.0]])
    value = torch.tensor([[0.5], [0.25], [1.0]])
    next_value = torch.tensor([[0.25], [1.0], [8.0]])  # V(s_1), V(s_2), V(s_3)
    zeros = torch.zeros(3, 1)
    advantage, q_hat = a2c.advantage_estimates(
        reward, value, next_value, zeros, zeros, gamma=0.5, lam=0.3, kind="nstep"
    )
    expected = torch.tensor([[1 + 0.5 * 2 + 0.25 * 4 + 0.125 * 8], [2 + 0.5 * 4 + 0.25 * 8],
                             [4 + 0.5 * 8]])  # fmt: skip
    torch.testing.assert_close(q_hat, expected)
    torch.testing.assert_close(advantage, expected - value)


def test_n_step_estimate_stops_at_a_terminated_episode_and_bootstraps_a_truncated_one():
    reward = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    value = torch.tensor([[0.0, 0.0], [3.0, 3.0], [0.0, 0.0]])  # V(s_{t+1}) = next_value[t]
    next_value = torch.tensor([[3.0, 3.0], [0.0, 5.0], [7.0, 7.0]])  # 0 after a termination
    terminated = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])  # env 0 ends at t = 1
    truncated = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # env 1 is cut at t = 1
    _, q_hat = a2c.advantage_estimates(
        reward, value, next_value, terminated, truncated, gamma=1.0, lam=1.0, kind="nstep"
    )
    torch.testing.assert_close(q_hat[:, 0], torch.tensor([2.0, 1.0, 8.0]))  # nothing after the end
    torch.testing.assert_close(q_hat[:, 1], torch.tensor([7.0, 6.0, 8.0]))  # bootstraps V = 5


def test_gae_kind_with_lambda_zero_is_the_one_step_look_ahead():
    reward, value = torch.tensor([[1.0], [2.0]]), torch.tensor([[0.5], [0.5]])
    next_value = torch.tensor([[0.5], [3.0]])
    zeros = torch.zeros(2, 1)
    advantage, q_hat = a2c.advantage_estimates(reward, value, next_value, zeros, zeros, 0.9, 0.0,
                                               "gae")  # fmt: skip
    torch.testing.assert_close(q_hat, reward + 0.9 * next_value)  # eq. 3.41
    torch.testing.assert_close(advantage, reward + 0.9 * next_value - value)


def test_loss_gradients_are_the_policy_gradient_and_the_value_regression():
    log_prob = torch.tensor([-0.5, -1.0], requires_grad=True)
    value = torch.tensor([1.0, 2.0], requires_grad=True)
    advantage, target = torch.tensor([2.0, -1.0]), torch.tensor([3.0, 1.0])
    loss = a2c.actor_critic_loss(log_prob, advantage, value, target, value_coef=0.5)
    loss.backward()
    torch.testing.assert_close(log_prob.grad, -advantage / 2)  # descend -surrogate: ascend g
    torch.testing.assert_close(value.grad, 0.5 * 2 * (value.detach() - target) / 2)


def test_entropy_bonus_pushes_towards_uniform():
    logits = torch.tensor([[2.0, 0.0]], requires_grad=True)
    log_p = logits.log_softmax(-1)
    entropy = -(log_p.exp() * log_p).sum(-1)
    zero = torch.zeros(1)
    a2c.actor_critic_loss(log_p[:, 0], zero, zero, zero, entropy, entropy_coef=1.0).backward()
    assert logits.grad[0, 0] > 0 > logits.grad[0, 1]  # descending lowers the favoured logit


@pytest.mark.parametrize("shared", [False, True])
def test_log_prob_and_entropy_match_torch_distributions(shared):
    torch.manual_seed(0)
    model = a2c.ActorCritic(obs_dim=4, actions=3, discrete=True, hidden=(8,), shared=shared)
    obs = torch.randn(5, 4)
    action, log_prob = model.sample(obs)
    reference = torch.distributions.Categorical(logits=model._head(obs))
    torch.testing.assert_close(log_prob, reference.log_prob(action))
    log_prob2, entropy = model.log_prob_entropy(obs, action)
    torch.testing.assert_close(log_prob2, reference.log_prob(action))
    torch.testing.assert_close(entropy, reference.entropy())
    assert model.value(obs).shape == (5,)


def test_shared_body_gets_gradients_from_both_heads_and_separate_nets_do_not_mix():
    obs = torch.randn(6, 4)
    for shared in (True, False):
        model = a2c.ActorCritic(4, 2, True, hidden=(8,), shared=shared)
        model.value(obs).sum().backward()  # the value loss alone
        policy_params = model.body if shared else model.actor
        touched = any(p.grad is not None and p.grad.abs().sum() > 0
                      for p in policy_params.parameters())  # fmt: skip
        assert touched == shared


def _tiny(**overrides) -> a2c.Config:
    values = dict(total_steps=400, num_envs=2, n_steps=5, hidden=(8,), eval_every=200)
    return a2c.Config(**{**values, **overrides})


@pytest.mark.parametrize("overrides", [{}, {"shared": True}, {"advantage": "nstep"}])
def test_train_runs_and_is_reproducible(overrides):
    a = a2c.train("CartPole-v1", _tiny(**overrides), seed=2, progress=False)
    b = a2c.train("CartPole-v1", _tiny(**overrides), seed=2, progress=False)
    assert a.logs["eval_return"] == b.logs["eval_return"]
    assert [h["episode_return"] for h in a.history] == [h["episode_return"] for h in b.history]
    assert a.policy(np.zeros(4, dtype=np.float32)) in (0, 1)


def test_gaussian_actor_critic_on_pendulum_saves_and_loads(tmp_path):
    result = a2c.train("Pendulum-v1", _tiny(), seed=0, progress=False)
    loaded = a2c.load(result.save(tmp_path / "a2c.pt"))
    obs = np.ones(3, dtype=np.float32)
    np.testing.assert_allclose(loaded.policy(obs), result.policy(obs))


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="advantage"):
        a2c.Config(advantage="td")
    with pytest.raises(ValueError, match="lam"):
        a2c.Config(lam=1.5)
    with pytest.raises(ValueError, match="kind"):
        z = torch.zeros(2, 1)
        a2c.advantage_estimates(z, z, z, z, z, 0.9, 0.9, "mc")


def test_a2c_uses_the_lecture_surrogate():
    # the actor's term of the loss is exactly -vpg.policy_gradient_surrogate
    log_prob, advantage = torch.tensor([-0.2, -0.7]), torch.tensor([1.5, -0.5])
    zero = torch.zeros(2)
    loss = a2c.actor_critic_loss(log_prob, advantage, zero, zero)
    assert float(loss) == pytest.approx(-float(vpg.policy_gradient_surrogate(log_prob, advantage)))


@pytest.mark.slow
def test_default_config_solves_cartpole():
    result = a2c.train("CartPole-v1", seed=0, progress=False)
    assert evaluate(result.policy, "CartPole-v1", episodes=10, seed=123) >= 475
