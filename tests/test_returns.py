"""Returns and targets (fdrl_lib.returns) against brute-force sums."""

import numpy as np
import pytest

from fdrl_lib.returns import discounted_returns, gae, n_step_targets


def _brute_force_n_step(rewards, terminated, truncated, gamma, n):
    """Explicit per-window sums, written as differently as possible from the library."""
    T = len(rewards)
    out = []
    for t in range(T):
        window = []
        for i in range(t, min(t + n, T)):
            window.append(i)
            if terminated[i] or truncated[i]:
                break
        total = sum(gamma ** (i - t) * rewards[i] for i in window)
        last = window[-1]
        out.append((total, gamma ** len(window), 0.0 if terminated[last] else 1.0, last))
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_n_step_targets_match_brute_force_with_episode_ends_inside_the_window(n):
    rng = np.random.default_rng(0)
    T = 40
    rewards = rng.normal(size=T)
    terminated = np.zeros(T)
    truncated = np.zeros(T)
    terminated[[6, 7, 20]] = 1  # a one-step episode at 7
    truncated[[13, 31]] = 1
    returns, discounts, bootstrap, last = n_step_targets(rewards, terminated, truncated, 0.9, n)
    expected = _brute_force_n_step(rewards, terminated, truncated, 0.9, n)
    np.testing.assert_allclose(returns, [e[0] for e in expected])
    np.testing.assert_allclose(discounts, [e[1] for e in expected])
    np.testing.assert_array_equal(bootstrap, [e[2] for e in expected])
    np.testing.assert_array_equal(last, [e[3] for e in expected])


def test_n_step_window_ending_in_truncation_still_bootstraps():
    rewards, terminated, truncated = [1.0, 1.0, 1.0], [0, 0, 0], [0, 1, 0]
    returns, discounts, bootstrap, last = n_step_targets(rewards, terminated, truncated, 0.5, 3)
    assert returns[0] == pytest.approx(1.5) and discounts[0] == pytest.approx(0.25)
    assert bootstrap[0] == 1.0 and last[0] == 1  # bootstrap = 1 - terminated, not 1 - done


def test_n_step_window_ending_in_termination_does_not_bootstrap():
    _, _, bootstrap, _ = n_step_targets([1.0, 1.0], [1, 0], [0, 0], 0.9, 3)
    assert bootstrap[0] == 0.0


def test_one_step_target_is_the_reward():
    returns, discounts, _, last = n_step_targets([3.0, 4.0], [0, 0], [0, 0], 0.9, 1)
    np.testing.assert_allclose(returns, [3.0, 4.0])
    np.testing.assert_allclose(discounts, [0.9, 0.9])
    np.testing.assert_array_equal(last, [0, 1])


def test_discounted_returns_restart_at_episode_ends():
    G = discounted_returns([1.0, 2.0, 3.0, 4.0], 0.5, episode_ends=[0, 1, 0, 0])
    np.testing.assert_allclose(G, [1 + 0.5 * 2, 2, 3 + 0.5 * 4, 4])


def test_gae_with_lambda_one_is_monte_carlo_advantage():
    rng = np.random.default_rng(1)
    T, gamma = 12, 0.9
    rewards, values = rng.normal(size=T), rng.normal(size=T)
    next_values = np.append(values[1:], 0.0)
    terminated = np.zeros(T)
    terminated[-1] = 1
    adv = gae(rewards, values, next_values, terminated, np.zeros(T), gamma, lam=1.0)
    np.testing.assert_allclose(adv, discounted_returns(rewards, gamma) - values)


def test_gae_with_lambda_zero_is_the_td_error_and_truncation_bootstraps():
    adv = gae([1.0, 1.0], [0.5, 0.5], [2.0, 3.0], [0, 0], [0, 1], gamma=0.9, lam=0.0)
    np.testing.assert_allclose(adv, [1 + 0.9 * 2 - 0.5, 1 + 0.9 * 3 - 0.5])


@pytest.mark.parametrize("gamma", [-0.1, 1.5])
def test_gamma_outside_unit_interval_is_rejected(gamma):
    with pytest.raises(ValueError, match="gamma"):
        n_step_targets([1.0], [0], [0], gamma, 1)
