"""SAC (lecture 5, section 5.2): the squashed Gaussian, the soft target, temperature, training."""

import math

import numpy as np
import pytest
import torch

from fdrl_lib import evaluate
from fdrl_lib.algos import sac
from fdrl_lib.tabular import TabularMDP, soft_value_iteration


def _tiny(**overrides) -> sac.Config:
    values = dict(
        total_steps=400, learning_starts=200, batch_size=32, eval_every=200, eval_episodes=1
    )
    return sac.Config(**{**values, **overrides})


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(x)


@pytest.mark.parametrize("mean, std", [(0.0, 1.0), (0.7, 0.3), (-1.5, 2.0)])
def test_squashed_log_prob_matches_a_numerical_change_of_variables(mean, std):
    # P(a - h < tanh(u) < a + h) / 2h from the Gaussian CDF of atanh of the interval's ends:
    # no Jacobian written anywhere, just the probability of an interval.
    a = np.array([-0.95, -0.5, 0.0, 0.3, 0.9, 0.99])
    h = 1e-5
    lo, hi = np.arctanh(a - h), np.arctanh(a + h)
    density = (_normal_cdf((hi - mean) / std) - _normal_cdf((lo - mean) / std)) / (2 * h)
    pre_tanh = torch.tensor(np.arctanh(a))[:, None]
    mean_t = torch.full_like(pre_tanh, mean)
    log_std = torch.full_like(pre_tanh, math.log(std))
    log_prob = sac.squashed_gaussian_log_prob(mean_t, log_std, pre_tanh)
    np.testing.assert_allclose(log_prob.numpy(), np.log(density), rtol=1e-5, atol=1e-5)


def test_squashed_log_prob_sums_over_action_dimensions_and_integrates_to_one():
    grid = torch.linspace(-0.999999, 0.999999, 200_001, dtype=torch.float64)
    pre_tanh = torch.atanh(grid)[:, None]
    mean, log_std = torch.full_like(pre_tanh, 0.4), torch.full_like(pre_tanh, math.log(0.8))
    one_dim = sac.squashed_gaussian_log_prob(mean, log_std, pre_tanh)  # (N,)
    assert float(torch.trapezoid(one_dim.exp(), grid)) == pytest.approx(1.0, abs=1e-3)
    two = sac.squashed_gaussian_log_prob(
        torch.cat([mean, mean], 1), torch.cat([log_std, log_std], 1), pre_tanh.repeat(1, 2)
    )
    torch.testing.assert_close(two, 2 * one_dim)


def test_squashed_log_prob_stays_finite_where_tanh_saturates():
    pre_tanh = torch.tensor([[30.0], [-30.0]])
    log_prob = sac.squashed_gaussian_log_prob(torch.zeros(2, 1), torch.zeros(2, 1), pre_tanh)
    assert torch.isfinite(log_prob).all()
    expected = -0.5 * 900 - 0.5 * math.log(2 * math.pi) - 2 * (math.log(2) - 30)
    torch.testing.assert_close(log_prob, torch.tensor([expected, expected]))


def test_squashed_log_prob_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        sac.squashed_gaussian_log_prob(torch.zeros(3, 1), torch.zeros(3, 2), torch.zeros(3, 1))


def test_soft_q_target_matches_a_hand_computed_case():
    reward = torch.tensor([1.0, 1.0, -0.5])
    terminated = torch.tensor([0.0, 1.0, 0.0])
    next_q1, next_q2 = torch.tensor([2.0, 9.0, 1.0]), torch.tensor([3.0, 9.0, -1.0])
    next_log_prob = torch.tensor([-1.0, 0.0, 0.5])
    y = sac.soft_q_target(reward, terminated, 0.5, next_q1, next_q2, next_log_prob, alpha=0.2)
    # 1 + 0.5 (min(2, 3) + 0.2);  terminated: 1;  -0.5 + 0.5 (min(1, -1) - 0.1)
    torch.testing.assert_close(y, torch.tensor([2.1, 1.0, -1.05]))


def test_soft_q_target_takes_the_twin_min_per_sample_not_per_critic():
    q1, q2 = torch.tensor([0.0, 10.0]), torch.tensor([10.0, 0.0])  # each critic lower once
    y = sac.soft_q_target(torch.zeros(2), torch.zeros(2), 1.0, q1, q2, torch.zeros(2), 0.1)
    torch.testing.assert_close(y, torch.zeros(2))


@pytest.mark.parametrize("entropy, rises", [(-3.0, True), (1.0, False)])
def test_temperature_rises_when_entropy_is_below_target_and_falls_above(entropy, rises):
    log_alpha = torch.tensor(0.0, requires_grad=True)
    log_prob = torch.full((16,), -entropy)  # entropy = -E[log pi]
    optimizer = torch.optim.SGD([log_alpha], lr=0.1)
    sac.temperature_loss(log_alpha, log_prob, target_entropy=-1.0).backward()
    optimizer.step()
    assert (float(log_alpha.detach()) > 0) == rises


def test_actor_loss_minimiser_is_lecture_ones_soft_optimal_policy():
    # Eq. 5.6 on one state with 3 discrete actions: minimising E_pi[alpha log pi - Q] over pi
    # gives exp(Q / alpha) / Z, the policy soft value iteration finds (eq. 1.37).
    Q, alpha = np.array([1.0, 0.5, -1.0]), 0.5
    mdp = TabularMDP(np.ones((1, 3, 1)), Q[None, :], gamma=0.0)
    expected = soft_value_iteration(mdp, beta=alpha).policy[0]
    logits = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.05)
    q = torch.tensor(Q, dtype=torch.float32)
    for _ in range(2000):
        pi = logits.softmax(-1)
        loss = (pi * (alpha * pi.log() - q)).sum()  # the exact expectation of sac_actor_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    np.testing.assert_allclose(logits.softmax(-1).detach().numpy(), expected, atol=1e-3)
    # and sac_actor_loss is that expectation, sampled: one sample per action, weighted
    sampled = sac.sac_actor_loss(q, q, logits.log_softmax(-1).detach(), alpha)
    assert float(sampled) == pytest.approx(
        float((alpha * logits.log_softmax(-1) - q).mean().detach())
    )


def test_actor_samples_lie_in_the_unit_box_with_their_log_prob():
    actor = sac.SquashedGaussianActor(3, 2)
    action, log_prob = actor.sample(torch.randn(50, 3))
    assert action.shape == (50, 2) and log_prob.shape == (50,)
    assert action.abs().max() < 1.0


def test_train_smoke_run_with_automatic_temperature():
    result = sac.train("Pendulum-v1", _tiny(), seed=0, progress=False)
    action = result.policy(np.array([1.0, 0.0, 0.5], dtype=np.float32))
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0
    assert {"critic_loss", "actor_loss", "entropy", "alpha"} <= set(result.logs)


def test_fixed_temperature_stays_fixed():
    result = sac.train("Pendulum-v1", _tiny(alpha=0.3, auto_alpha=False), progress=False)
    alphas = [v for _, v in result.logs["alpha"]]
    assert alphas and all(v == pytest.approx(0.3) for v in alphas)


def test_same_seed_same_result_and_save_load(tmp_path):
    a = sac.train("Pendulum-v1", _tiny(), seed=4, progress=False)
    b = sac.train("Pendulum-v1", _tiny(), seed=4, progress=False)
    assert [h["episode_return"] for h in a.history] == [h["episode_return"] for h in b.history]
    loaded = sac.load(a.save(tmp_path / "sac.pt"))
    obs = np.array([0.0, 1.0, -3.0], dtype=np.float32)
    np.testing.assert_array_equal(loaded.policy(obs), b.policy(obs))


def test_a_bad_config_field_is_named():
    with pytest.raises(ValueError, match="alpha"):
        sac.Config(alpha=0.0)


@pytest.mark.slow
def test_config_learns_to_swing_up_pendulum():
    result = sac.train("Pendulum-v1", seed=0, progress=False)
    assert result.kept_return >= -200
    assert evaluate(result.policy, "Pendulum-v1", episodes=10, seed=123) >= -250
