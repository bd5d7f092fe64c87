"""Returns and targets (fdrl_lib.returns) against brute-force sums."""

import numpy as np
import pytest
import torch

from fdrl_lib.returns import discounted_returns, gae, lambda_returns, n_step_targets


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


# --- (T, N) rollouts: brute force per column ------------------------------------------------------


def _rollout(T=25, N=4, seed=0):
    """Random rewards and values with episode ends of both kinds scattered over N columns.

    As in a collected rollout, ``next_values[t] = values[t + 1]`` inside an episode; after an
    episode end (and at the cut) it is the value of a final observation no later step sees.
    """
    rng = np.random.default_rng(seed)
    rewards, values, final_values = rng.normal(size=(3, T, N))
    terminated = (rng.random((T, N)) < 0.1).astype(float)
    truncated = ((rng.random((T, N)) < 0.1) & (terminated == 0)).astype(float)
    ends = np.maximum(terminated, truncated)
    next_values = np.append(values[1:], final_values[-1:], axis=0)  # (T, N)
    next_values = np.where(ends == 1, final_values, next_values)
    return rewards, values, next_values, terminated, truncated


def _episode_end(t, terminated, truncated):
    """Index of the last step of the episode containing step t (or the rollout's last step)."""
    e = t
    while e < len(terminated) - 1 and not (terminated[e] or truncated[e]):
        e += 1
    return e


def _k_step_advantage(t, k, r, v, nv, terminated, gamma):
    """``sum_{i<k} gamma^i r_{t+i} + gamma^k (1 - terminated) V(s_{t+k}) - V(s_t)``."""
    last = t + k - 1
    total = sum(gamma ** (i - t) * r[i] for i in range(t, last + 1))
    return total + gamma**k * (1 - terminated[last]) * nv[last] - v[t]


def _brute_force_gae(r, v, nv, terminated, truncated, gamma, lam):
    """The exponentially weighted average of k-step advantages, one column, eq. by eq.

    ``A^GAE = (1 - lam) sum_k lam^(k-1) A^(k)``; past the episode's end every A^(k) equals the
    longest one A^(K), so its weights add up to ``lam^(K-1)``.
    """
    out = np.zeros(len(r))
    for t in range(len(r)):
        K = _episode_end(t, terminated, truncated) - t + 1
        advantages = [_k_step_advantage(t, k, r, v, nv, terminated, gamma) for k in range(1, K + 1)]
        out[t] = sum((1 - lam) * lam ** (k - 1) * advantages[k - 1] for k in range(1, K))
        out[t] += lam ** (K - 1) * advantages[K - 1]
    return out


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
def test_gae_on_t_by_n_equals_brute_force_per_column(lam):
    rewards, values, next_values, terminated, truncated = _rollout()
    adv = gae(rewards, values, next_values, terminated, truncated, gamma=0.9, lam=lam)
    assert adv.shape == rewards.shape
    for i in range(rewards.shape[1]):
        column = (rewards[:, i], values[:, i], next_values[:, i], terminated[:, i], truncated[:, i])
        np.testing.assert_allclose(adv[:, i], _brute_force_gae(*column, 0.9, lam), atol=1e-12)
        one_column = gae(*column, gamma=0.9, lam=lam)  # (T,) gives the same numbers
        np.testing.assert_allclose(adv[:, i], one_column, atol=1e-12)


def test_gae_never_leaks_across_envs_or_episodes():
    rewards, values, next_values, terminated, truncated = _rollout()
    adv = gae(rewards, values, next_values, terminated, truncated, gamma=0.99, lam=0.95)
    changed = rewards.copy()
    changed[10, 2] += 100.0  # a huge reward at one step of env 2
    adv2 = gae(changed, values, next_values, terminated, truncated, gamma=0.99, lam=0.95)
    moved = np.argwhere(adv2 != adv)
    start = 10
    while start > 0 and not (terminated[start - 1, 2] or truncated[start - 1, 2]):
        start -= 1
    assert set(map(tuple, moved)) == {(t, 2) for t in range(start, 11)}  # its episode, up to it


def test_gae_with_lambda_zero_is_the_one_step_td_advantage_on_t_by_n():
    rewards, values, next_values, terminated, truncated = _rollout()
    adv = gae(rewards, values, next_values, terminated, truncated, gamma=0.9, lam=0.0)
    np.testing.assert_allclose(adv, rewards + 0.9 * (1 - terminated) * next_values - values)


def test_gae_with_lambda_one_is_the_bootstrapped_monte_carlo_advantage():
    rewards, values, next_values, terminated, truncated = _rollout()
    adv = gae(rewards, values, next_values, terminated, truncated, gamma=0.9, lam=1.0)
    G = discounted_returns(
        rewards, 0.9, terminated=terminated, truncated=truncated, next_values=next_values
    )
    np.testing.assert_allclose(adv, G - values, atol=1e-12)


def test_lambda_returns_are_gae_plus_values():
    rewards, values, next_values, terminated, truncated = _rollout()
    args = (rewards, values, next_values, terminated, truncated)
    np.testing.assert_allclose(
        lambda_returns(*args, gamma=0.9, lam=0.7), gae(*args, gamma=0.9, lam=0.7) + values
    )


def test_terminated_does_not_bootstrap_and_truncated_does():
    # one step, next state value 10: terminated -> G = r, truncated -> G = r + gamma * 10
    for flags, expected in [((1, 0), 1.0), ((0, 1), 1.0 + 0.5 * 10.0), ((0, 0), 6.0)]:
        G = discounted_returns(
            [1.0], 0.5, terminated=[flags[0]], truncated=[flags[1]], next_values=[10.0]
        )
        assert G[0] == pytest.approx(expected)
        adv = gae([1.0], [0.0], [10.0], [flags[0]], [flags[1]], gamma=0.5, lam=0.9)
        assert adv[0] == pytest.approx(expected)


def test_discounted_returns_bootstrap_at_the_rollout_cut_and_truncation_by_hand():
    # columns: env 0 truncated after step 1; env 1 terminated after step 0, then cut after step 2
    rewards = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])  # (T=3, N=2)
    terminated = np.array([[0, 1], [0, 0], [0, 0]])
    truncated = np.array([[0, 0], [1, 0], [0, 0]])
    next_values = np.array([[9.0, 9.0], [4.0, 9.0], [8.0, 6.0]])
    G = discounted_returns(
        rewards, 0.5, terminated=terminated, truncated=truncated, next_values=next_values
    )
    env0 = [1 + 0.5 * (2 + 0.5 * 4), 2 + 0.5 * 4, 3 + 0.5 * 8]
    env1 = [1, 2 + 0.5 * (3 + 0.5 * 6), 3 + 0.5 * 6]
    np.testing.assert_allclose(G, np.array([env0, env1]).T)
    # without next values: Monte-Carlo sums that stop at every end, nothing bootstrapped
    G = discounted_returns(rewards, 0.5, terminated=terminated, truncated=truncated)
    np.testing.assert_allclose(G, np.array([[1 + 0.5 * 2, 2, 3], [1, 2 + 0.5 * 3, 3]]).T)


def test_torch_tensors_in_give_tensors_out_with_the_same_dtype():
    rewards, values, next_values, terminated, truncated = (
        torch.as_tensor(x, dtype=torch.float32) for x in _rollout()
    )
    adv = gae(rewards, values, next_values, terminated, truncated, gamma=0.9, lam=0.95)
    assert isinstance(adv, torch.Tensor) and adv.dtype == torch.float32
    expected = gae(
        *(x.numpy() for x in (rewards, values, next_values, terminated, truncated)),
        gamma=0.9,
        lam=0.95,
    )
    np.testing.assert_allclose(adv.numpy(), expected, rtol=1e-6)
    G = discounted_returns(rewards, 0.9, terminated=terminated)
    assert isinstance(G, torch.Tensor) and G.shape == (25, 4)


def test_mismatched_shapes_are_rejected_naming_the_array():
    with pytest.raises(ValueError, match="values"):
        gae(
            np.zeros((5, 2)),
            np.zeros(5),
            np.zeros((5, 2)),
            np.zeros((5, 2)),
            np.zeros((5, 2)),
            0.9,
            0.9,
        )
    with pytest.raises(ValueError, match="rewards"):
        discounted_returns(np.zeros((2, 2, 2)), 0.9)
    with pytest.raises(ValueError, match="lam"):
        gae([1.0], [0.0], [0.0], [0], [0], 0.9, 1.5)


def test_an_empty_stream_is_rejected():
    with pytest.raises(ValueError, match="T >= 1"):
        discounted_returns([], 0.9)
