"""Tabular and approximate Q-learning (lecture 2, Algorithm 2, eqs. 2.4-2.10) vs. known answers."""

import gymnasium as gym
import numpy as np
import pytest

from fdrl_lib import evaluate
from fdrl_lib.tabular import (
    GridWorld,
    TabularMDP,
    approximate_q_learning,
    policy_evaluation,
    q_learning,
    q_value_iteration,
)
from fdrl_lib.tabular.qlearning import learning_rate


class _TruncationAsTermination(gym.Wrapper):
    """The classic bug, for contrast: report a time-limit cut as a terminal state."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated or truncated, False, info


def _max_error(Q, Q_star):
    return np.abs(Q - Q_star)[:-1].max()  # the hidden terminal state is never visited


def test_q_learning_converges_to_q_star_of_value_iteration_on_the_book_grid():
    grid = GridWorld.book()
    Q_star = q_value_iteration(grid.mdp).Q
    # off-policy: a uniformly random behaviour policy still learns Q* (eqs. 2.6-2.7 schedule)
    res = q_learning(grid, steps=100_000, alpha=1.0, omega=0.8, epsilon=1.0, gamma=0.9, seed=0)
    assert _max_error(res.Q, Q_star) < 0.06
    np.testing.assert_array_equal(res.policy[:-1], Q_star[:-1].argmax(axis=1))


def test_time_limit_truncation_bootstraps_so_q_learning_still_converges():
    grid = GridWorld.book()
    Q_star = q_value_iteration(grid.mdp).Q
    kwargs = dict(steps=100_000, alpha=1.0, omega=0.8, epsilon=1.0, gamma=0.9, seed=0)
    res = q_learning(grid, max_episode_steps=8, **kwargs)  # most episodes are cut
    assert _max_error(res.Q, Q_star) < 0.06
    wrong = q_learning(lambda: _TruncationAsTermination(grid.env(max_episode_steps=8)), **kwargs)
    assert _max_error(wrong.Q, Q_star) > 0.1  # no bootstrap on truncation: biased low


def test_q_learning_on_slippery_frozenlake_matches_value_iteration():
    mdp = TabularMDP.from_env(gym.make("FrozenLake-v1"), gamma=0.95)
    Q_star = q_value_iteration(mdp).Q[:16]  # from_env may append an absorbing state
    res = q_learning(
        "FrozenLake-v1", steps=200_000, alpha=1.0, omega=0.8, epsilon=1.0, gamma=0.95, seed=0
    )
    visited = res.visits.sum(axis=1) > 0  # holes and the goal end episodes: never updated
    assert np.abs(res.Q - Q_star)[visited].max() < 0.1
    assert evaluate(lambda s: int(res.policy[s]), "FrozenLake-v1", episodes=200) > 0.6


def test_q_learning_finds_the_shortest_path_on_deterministic_frozenlake():
    make = lambda: gym.make("FrozenLake-v1", is_slippery=False)  # noqa: E731
    res = q_learning(make, steps=20_000, alpha=0.5, epsilon=0.2, gamma=0.95, seed=0)
    assert evaluate(lambda s: int(res.policy[s]), make, episodes=1) == 1.0
    assert res.Q[0].max() == pytest.approx(0.95**5, abs=1e-3)  # 6 moves to the goal


def test_q_learning_walks_along_the_cliff_on_cliffwalking():
    res = q_learning("CliffWalking-v1", steps=20_000, alpha=0.5, epsilon=0.1, gamma=1.0, seed=0)
    assert evaluate(lambda s: int(res.policy[s]), "CliffWalking-v1", episodes=1) == -13.0


def test_history_holds_per_episode_returns():
    res = q_learning(GridWorld.book(), steps=2_000, epsilon=0.3, gamma=0.9, seed=0)
    assert len(res.history) == len(res.episode_ends) > 0
    assert set(np.round(res.history, 6)) <= {1.0, -1.0, 0.0}  # exit rewards, or a time-limit cut


def test_same_seed_same_result():
    a = q_learning(GridWorld.book(), steps=3_000, seed=4)
    b = q_learning(GridWorld.book(), steps=3_000, seed=4)
    np.testing.assert_array_equal(a.Q, b.Q)
    assert a.history == b.history


def test_registered_gridworld_id_works():
    res = q_learning("fdrl/GridWorld-v0", steps=500, seed=0)
    assert res.Q.shape == (12, 4)


def test_learning_rate_schedule_meets_eqs_2_6_and_2_7():
    alphas = np.array([learning_rate(1.0, 0.8, n) for n in range(200_000)])
    assert alphas[0] == 1.0 and np.all(np.diff(alphas) < 0)
    # partial sums: sum alpha keeps growing like n^0.2, sum alpha^2 levels off
    assert alphas.sum() > 2 * alphas[:2_000].sum()
    assert (alphas**2).sum() - (alphas[:100_000] ** 2).sum() < 1e-3
    assert learning_rate(0.1, None, 10**6) == 0.1  # constant schedule


@pytest.mark.parametrize(
    "kwargs", [dict(omega=0.4), dict(epsilon=1.5), dict(gamma=2.0), dict(alpha=0.0), dict(steps=0)]
)
def test_invalid_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        q_learning(GridWorld.book(), **kwargs)


def test_continuous_observations_are_rejected():
    with pytest.raises(ValueError, match="Discrete observation_space"):
        q_learning("CartPole-v1", steps=10)


def test_approximate_q_learning_with_one_hot_features_is_tabular_q_learning():
    kwargs = dict(steps=5_000, alpha=0.5, epsilon=0.3, gamma=0.9, seed=1)
    approx = approximate_q_learning(GridWorld.book(), "one_hot", **kwargs)
    table = q_learning(GridWorld.book(), **kwargs)
    np.testing.assert_allclose(approx.Q, table.Q, atol=1e-12)
    assert approx.history == table.history


def test_approximate_q_learning_one_hot_on_cliffwalking_matches_tabular():
    kwargs = dict(steps=3_000, alpha=0.5, epsilon=0.1, gamma=1.0, seed=0)
    approx = approximate_q_learning("CliffWalking-v1", "one_hot", **kwargs)
    np.testing.assert_allclose(approx.Q, q_learning("CliffWalking-v1", **kwargs).Q, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_approximate_q_learning_with_four_grid_features_finds_a_near_optimal_policy(seed):
    grid = GridWorld.book()
    res = approximate_q_learning(
        grid, "grid", steps=20_000, alpha=0.05, epsilon=0.1, gamma=0.9, seed=seed
    )
    assert res.theta.shape == (4,)
    V_greedy = policy_evaluation(grid.mdp, res.policy, method="exact")
    V_star = q_value_iteration(grid.mdp).V
    assert V_greedy[grid.start] > V_star[grid.start] - 0.01


def test_approximate_q_learning_rejects_features_of_the_wrong_shape():
    with pytest.raises(ValueError, match="features must have shape"):
        approximate_q_learning(GridWorld.book(), np.zeros((3, 4, 2)), steps=10)
