"""TabularMDP: validation messages, storage formats and Gymnasium toy-text import."""

import gymnasium as gym
import numpy as np
import pytest
import scipy.sparse as sp

from fdrl_lib.tabular import (
    GridWorld,
    TabularMDP,
    policy_evaluation,
    policy_iteration,
    soft_value_iteration,
    value_iteration,
)


def two_state_chain() -> tuple[np.ndarray, np.ndarray]:
    """s0 --a0--> stay, --a1--> s1 (absorbing, reward 0). Rewards (S, A)."""
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = 1.0
    P[0, 1, 1] = 1.0
    P[1, :, 1] = 1.0
    R = np.array([[-0.5, 1.0], [0.0, 0.0]])
    return P, R


# ----------------------------------------------------------------------------- validation
def test_rows_not_summing_to_one_name_the_state_action_pair():
    P, R = two_state_chain()
    P[1, 0, 1] = 0.7
    with pytest.raises(ValueError, match=r"P\[1, 0, :\] sums to 0.7.*\(s, a\) = \(1, 0\)"):
        TabularMDP(P, R)


def test_rows_not_summing_to_one_detected_in_sparse_input():
    P, R = two_state_chain()
    P_list = [sp.csr_matrix(P[:, a, :]) for a in range(2)]
    P_list[1] = sp.csr_matrix(np.array([[0.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"\(s, a\) = \(0, 1\)"):
        TabularMDP(P_list, R)


def test_negative_probability_is_rejected_with_its_location():
    P, R = two_state_chain()
    P[0, 0] = [1.5, -0.5]
    with pytest.raises(ValueError, match=r"negative probability P\[0, 0, 1\] = -0.5"):
        TabularMDP(P, R)
    P_list = [sp.csr_matrix(P[:, a, :]) for a in range(2)]
    with pytest.raises(ValueError, match=r"negative probability at \(s, a\) = \(0, 0\)"):
        TabularMDP(P_list, R)


@pytest.mark.parametrize(
    "P_shape, R_shape, message",
    [
        ((2, 2), (2, 2), r"P has shape \(2, 2\), expected \(S, A, S'\)"),
        ((2, 2, 3), (2, 2), r"P has shape \(2, 2, 3\), expected \(S, A, S'\) with S' == S"),
        ((2, 2, 2), (2, 3), r"R has shape \(2, 3\), expected \(S, A\) = \(2, 2\)"),
        ((2, 2, 2), (2, 2, 3), r"R has shape \(2, 2, 3\)"),
    ],
)
def test_shape_mismatch_is_rejected(P_shape, R_shape, message):
    P = np.zeros(P_shape)
    if len(P_shape) == 3:
        P[..., 0] = 1.0
    with pytest.raises(ValueError, match=message):
        TabularMDP(P, np.zeros(R_shape))


def test_sparse_matrices_of_different_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"P\[1\] has shape \(3, 3\), expected \(2, 2\)"):
        TabularMDP([sp.identity(2), sp.identity(3)], np.zeros((2, 2)))


@pytest.mark.parametrize("gamma", [-0.1, 1.01, 2.0, float("nan")])
def test_gamma_outside_unit_interval_is_rejected(gamma):
    P, R = two_state_chain()
    with pytest.raises(ValueError, match="gamma must be in \\[0, 1\\]"):
        TabularMDP(P, R, gamma=gamma)


def test_gamma_one_without_horizon_needs_a_terminating_mdp():
    P = np.zeros((2, 1, 2))
    P[0, 0, 1] = P[1, 0, 0] = 1.0  # a two-cycle: never terminates
    loop = TabularMDP(P, np.ones((2, 1)), gamma=1.0)
    for planner in (value_iteration, policy_iteration):
        with pytest.raises(ValueError, match="gamma = 1 and horizon=None.*does not terminate"):
            planner(loop)
    with pytest.raises(ValueError, match="gamma = 1 and horizon=None"):
        soft_value_iteration(loop, beta=1.0)
    with pytest.raises(ValueError, match="gamma = 1 and horizon=None"):
        policy_evaluation(loop, np.zeros(2, dtype=int))
    # A finite horizon is fine: 5 steps of reward 1.
    assert np.allclose(value_iteration(loop, horizon=5).V, 5.0)
    # A terminating MDP is fine with gamma = 1: take a1 (reward 1) into the absorbing state.
    chain = TabularMDP(*two_state_chain(), gamma=1.0)
    res = value_iteration(chain)
    assert res.converged and np.allclose(res.V, [1.0, 0.0])


def test_gamma_one_rejects_a_state_that_cannot_reach_the_terminal_state():
    P = np.zeros((3, 1, 3))
    P[0, 0, 1] = P[1, 0, 0] = 1.0  # 0 <-> 1 forever; state 2 absorbing
    P[2, 0, 2] = 1.0
    mdp = TabularMDP(P, np.zeros((3, 1)), gamma=1.0)
    assert mdp.terminal.tolist() == [False, False, True]
    assert not mdp.can_terminate()
    with pytest.raises(ValueError, match="does not terminate"):
        value_iteration(mdp)


@pytest.mark.parametrize("beta", [0.0, -1.0])
def test_beta_must_be_positive(beta):
    with pytest.raises(ValueError, match=f"beta must be > 0.*got {beta}"):
        soft_value_iteration(TabularMDP(*two_state_chain()), beta=beta)


@pytest.mark.parametrize(
    "policy, message",
    [
        (np.array([0, 2]), r"actions in \[0, 2\], expected actions in \[0, 2\)"),
        (np.array([[0.5, 0.6], [1.0, 0.0]]), r"pi\(.\|0\) sums to 1.1"),
        (np.array([[1.5, -0.5], [1.0, 0.0]]), "negative probability"),
        (np.zeros(3, dtype=int), r"policy has shape \(3,\)"),
    ],
)
def test_invalid_policies_are_rejected(policy, message):
    with pytest.raises(ValueError, match=message):
        policy_evaluation(TabularMDP(*two_state_chain()), policy)


# ----------------------------------------------------------------------------- model
def test_expected_reward_is_probability_weighted_reward_of_next_state():
    P = np.array([[[0.25, 0.75]], [[0.0, 1.0]]])  # (S=2, A=1, S'=2)
    R = np.array([[[4.0, 8.0]], [[0.0, 0.0]]])  # R(s, a, s')
    mdp = TabularMDP(P, R)
    assert mdp.R.shape == (2, 1)
    assert mdp.R[0, 0] == pytest.approx(0.25 * 4 + 0.75 * 8)
    assert mdp.R_original is R


def test_terminal_states_are_detected_as_absorbing_and_reward_free():
    mdp = TabularMDP(*two_state_chain())
    assert mdp.terminal.tolist() == [False, True]
    P, R = two_state_chain()
    R[1, 0] = 1.0  # absorbing but paying: not a terminal state
    assert TabularMDP(P, R).terminal.tolist() == [False, False]


def test_backup_is_reward_plus_discounted_expected_next_value():
    mdp = TabularMDP.random(5, 3, gamma=0.8, seed=1)
    V = np.arange(5.0)
    Q = mdp.backup(V)
    expected = np.array(
        [
            [
                sum(mdp.P[s, a, t] * (mdp.R_original[s, a, t] + 0.8 * V[t]) for t in range(5))
                for a in range(3)
            ]
            for s in range(5)
        ]
    )
    assert Q.shape == (5, 3)
    np.testing.assert_allclose(Q, expected)


def test_sparse_and_dense_storage_give_identical_plans():
    dense = TabularMDP.random(30, 4, gamma=0.95, seed=3, branching=5)
    sparse = TabularMDP(dense.P, dense.R, gamma=0.95, sparse=True)
    assert sparse.sparse and isinstance(sparse.P, list) and sp.issparse(sparse.P[0])
    assert not dense.sparse
    V = np.random.default_rng(0).normal(size=30)
    np.testing.assert_allclose(sparse.backup(V), dense.backup(V), atol=1e-12)
    np.testing.assert_allclose(sparse.max_backup(V), dense.backup(V).max(axis=1), atol=1e-12)
    lean = value_iteration(sparse, keep_history=False)
    np.testing.assert_allclose(lean.V, value_iteration(dense).V, atol=1e-9)
    for planner in (value_iteration, policy_iteration):
        a, b = planner(dense), planner(sparse)
        np.testing.assert_allclose(a.V, b.V, atol=1e-9)
        np.testing.assert_array_equal(a.policy, b.policy)
    soft_d, soft_s = soft_value_iteration(dense, 0.5), soft_value_iteration(sparse, 0.5)
    np.testing.assert_allclose(soft_d.V, soft_s.V, atol=1e-9)
    pi = np.random.default_rng(1).dirichlet(np.ones(4), size=30)
    for method in ("exact", "iterative"):
        np.testing.assert_allclose(
            policy_evaluation(dense, pi, method=method),
            policy_evaluation(sparse, pi, method=method),
            atol=1e-8,
        )
    # and back: a sparse list converted to dense storage
    back = TabularMDP(sparse.P, sparse.R, gamma=0.95, sparse=False)
    np.testing.assert_allclose(back.P, dense.P)


def test_random_mdp_is_reproducible_from_its_seed():
    a, b = TabularMDP.random(6, 2, seed=7), TabularMDP.random(6, 2, seed=7)
    np.testing.assert_array_equal(a.P, b.P)
    np.testing.assert_array_equal(a.R, b.R)


# ----------------------------------------------------------------------------- from_env
def toy_text_value_iteration(env, gamma: float, sweeps: int = 2000) -> np.ndarray:
    """Brute force straight from the env's dict: V(s) = max_a sum p (r + gamma V(s') [not done])."""
    table = env.unwrapped.P
    n = env.unwrapped.observation_space.n
    V = [0.0] * n
    for _ in range(sweeps):
        V = [
            max(
                sum(p * (r + (0.0 if done else gamma * V[s2])) for p, s2, r, done in table[s][a])
                for a in table[s]
            )
            for s in range(n)
        ]
    return np.array(V)


def test_from_env_frozen_lake_matches_brute_force_on_the_toy_text_table():
    env = gym.make("FrozenLake-v1", is_slippery=True)
    mdp = TabularMDP.from_env(env, gamma=0.95)
    assert (mdp.S, mdp.A) == (17, 4) and mdp.terminal.tolist() == [False] * 16 + [True]
    assert mdp.start == 0
    V = value_iteration(mdp, tol=1e-12).V
    np.testing.assert_allclose(V[:16], toy_text_value_iteration(env, 0.95, sweeps=800), atol=1e-9)
    assert V[16] == 0.0
    assert V[15] == 0.0  # the goal cell itself: the episode has already ended there


def test_from_env_cliff_walking_optimal_return_is_minus_thirteen():
    env = gym.make("CliffWalking-v1")
    mdp = TabularMDP.from_env(env, gamma=1.0)  # episodic, so gamma = 1 is allowed
    res = value_iteration(mdp)
    assert res.converged
    assert res.V[mdp.start] == pytest.approx(-13.0)  # 13 steps along the cliff edge, -1 each


def test_from_env_taxi_matches_brute_force_and_can_be_forced_sparse():
    env = gym.make("Taxi-v4")
    dense = TabularMDP.from_env(env, gamma=0.9)
    sparse = TabularMDP.from_env(env, gamma=0.9, sparse=True)
    assert (dense.S, dense.A) == (501, 6) and sparse.sparse
    V_d, V_s = value_iteration(dense).V, value_iteration(sparse).V
    np.testing.assert_allclose(V_d, V_s, atol=1e-9)
    np.testing.assert_allclose(V_d[:500], toy_text_value_iteration(env, 0.9, sweeps=300), atol=1e-9)
    assert dense.start is None and dense.initial_distribution.sum() == pytest.approx(1.0)


def test_from_env_of_a_gridworld_env_reproduces_the_grid_mdp():
    grid = GridWorld.book()
    mdp = TabularMDP.from_env(grid.env(), gamma=0.9)
    assert mdp.S == grid.S + 1  # the env's own terminal state plus the added one
    np.testing.assert_allclose(value_iteration(mdp).V[: grid.S], value_iteration(grid.mdp).V)


def test_from_env_without_a_transition_table_is_rejected():
    with pytest.raises(ValueError, match="no toy-text transition table"):
        TabularMDP.from_env(gym.make("CartPole-v1"))
