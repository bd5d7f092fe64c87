"""Value iteration, policy evaluation/iteration, soft VI: known answers and brute force."""

import itertools
import subprocess
import sys
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from fdrl_lib.tabular import (
    GridWorld,
    TabularMDP,
    policy_evaluation,
    policy_iteration,
    q_value_iteration,
    soft_value_iteration,
    value_iteration,
)

ROOT = Path(__file__).resolve().parents[1]


def exact_value(mdp: TabularMDP, policy: np.ndarray) -> np.ndarray:
    """Independent V^pi of a deterministic policy on a dense discounted MDP: a linear solve."""
    idx = np.arange(mdp.S)
    P_pi = mdp.P[idx, policy]  # (S, S')
    return np.linalg.solve(np.eye(mdp.S) - mdp.gamma * P_pi, mdp.R[idx, policy])


# ----------------------------------------------------------------------------- known values
def test_book_grid_values_match_cs188():
    grid = GridWorld.book()  # gamma 0.9, noise 0.2, living reward 0
    V = grid.to_grid(value_iteration(grid.mdp).V)
    expected = np.array(
        [
            [0.64, 0.74, 0.85, 1.00],
            [0.57, np.nan, 0.57, -1.00],
            [0.49, 0.43, 0.48, 0.28],
        ]
    )
    np.testing.assert_array_equal(np.round(V, 2), expected)


def test_book_grid_with_gamma_one_and_living_cost_matches_aima_utilities():
    # Russell & Norvig's 4x3 world: R = -0.04 per move, gamma = 1 (episodic).
    grid = GridWorld.book(living_reward=-0.04, gamma=1.0)
    V = grid.to_grid(value_iteration(grid.mdp).V)
    expected = np.array(
        [
            [0.812, 0.868, 0.918, 1.0],
            [0.762, np.nan, 0.660, -1.0],
            [0.705, 0.655, 0.611, 0.388],
        ]
    )
    np.testing.assert_array_equal(np.round(V, 3), expected)


def test_book_grid_policy_is_the_classic_one():
    grid = GridWorld.book()
    arrows = grid.policy_arrows(value_iteration(grid.mdp).policy)
    assert arrows == [["→", "→", "→", "1"], ["↑", "#", "↑", "-1"], ["↑", "←", "↑", "←"]]


def test_converged_values_satisfy_eq_1_5_next_to_the_plus_one():
    grid = GridWorld.book()
    gamma = grid.gamma
    V = grid.to_grid(value_iteration(grid.mdp, tol=1e-13).V)
    # eq. 1.5: right of (0, 2) is the +1 exit (value 1); "up" bounces back; "down" is (1, 2)
    rhs = 0.8 * gamma * 1.0 + 0.1 * gamma * V[0, 2] + 0.1 * gamma * V[1, 2]
    assert V[0, 2] == pytest.approx(rhs, abs=1e-12)


def bfs_distance(grid: GridWorld, exit_state: int) -> np.ndarray:
    """Moves to reach ``exit_state`` (walking through non-exit cells), by breadth-first search."""
    dist = np.full(grid.S - 1, np.inf)
    dist[exit_state] = 0
    queue = deque([exit_state])
    while queue:
        s = queue.popleft()
        r, c = grid.cells[s]
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            try:
                t = grid.state_of(r + dr, c + dc)
            except ValueError:
                continue
            if dist[t] == np.inf and t not in grid.exits:
                dist[t] = dist[s] + 1
                queue.append(t)
    return dist


@pytest.mark.parametrize("layout", ["maze", "open"])
def test_deterministic_grid_value_is_gamma_to_the_distance(layout):
    gamma = 0.9
    if layout == "maze":
        grid = GridWorld.maze(noise=0.0, gamma=gamma)
    else:
        grid = GridWorld.open_grid(6, noise=0.0, gamma=gamma)
    (exit_state,) = grid.exits
    V = value_iteration(grid.mdp).V[:-1]
    np.testing.assert_allclose(V, gamma ** bfs_distance(grid, exit_state), atol=1e-9)


# ----------------------------------------------------------------------------- equivalences
@pytest.mark.parametrize(
    "make",
    [
        GridWorld.book,
        GridWorld.discount,
        GridWorld.bridge,
        lambda: GridWorld.cliff(living_reward=-1.0),
        lambda: TabularMDP.random(12, 3, gamma=0.9, seed=0),
        lambda: TabularMDP.random(40, 4, gamma=0.97, seed=1, branching=3),
    ],
)
def test_value_iteration_equals_policy_iteration_equals_q_value_iteration(make):
    obj = make()
    mdp = obj.mdp if isinstance(obj, GridWorld) else obj
    vi, pi, qvi = value_iteration(mdp), policy_iteration(mdp), q_value_iteration(mdp)
    assert vi.converged and pi.converged and qvi.converged
    np.testing.assert_allclose(pi.V, vi.V, atol=1e-7)
    np.testing.assert_allclose(qvi.V, vi.V, atol=1e-8)
    np.testing.assert_allclose(qvi.Q, vi.Q, atol=1e-7)
    np.testing.assert_array_equal(pi.policy, vi.policy)
    np.testing.assert_array_equal(qvi.policy, vi.policy)


def test_finite_horizon_q_value_iteration_equals_value_iteration():
    mdp = TabularMDP.random(8, 3, gamma=0.8, seed=4)
    for H in range(6):
        np.testing.assert_allclose(
            q_value_iteration(mdp, horizon=H).V, value_iteration(mdp, horizon=H).V, atol=1e-12
        )


def test_policy_iteration_counts_improvement_steps_and_records_policies():
    res = policy_iteration(GridWorld.book().mdp)
    assert res.iterations == len(res.policy_history)  # one per improvement, the last confirms
    assert len(res.history) == res.iterations
    # each policy's value dominates the previous one (policy improvement theorem)
    for older, newer in zip(res.history, res.history[1:], strict=False):
        assert np.all(newer >= older - 1e-10)


# ----------------------------------------------------------------------------- evaluation
def test_exact_and_iterative_policy_evaluation_agree():
    mdp = TabularMDP.random(15, 3, gamma=0.9, seed=2)
    rng = np.random.default_rng(0)
    deterministic = rng.integers(0, 3, size=15)
    stochastic = rng.dirichlet(np.ones(3), size=15)
    for policy in (deterministic, stochastic):
        exact = policy_evaluation(mdp, policy, method="exact")
        iterative = policy_evaluation(mdp, policy, method="iterative", tol=1e-12)
        np.testing.assert_allclose(exact, iterative, atol=1e-9)
    np.testing.assert_allclose(
        policy_evaluation(mdp, deterministic, method="exact"), exact_value(mdp, deterministic)
    )


def test_stochastic_policy_evaluation_follows_eq_1_16():
    mdp = TabularMDP.random(10, 3, gamma=0.85, seed=5)
    pi = np.random.default_rng(3).dirichlet(np.ones(3), size=10)
    V = policy_evaluation(mdp, pi, method="exact")
    # eq. 1.16 at its fixed point, written with explicit sums
    rhs = np.array(
        [
            sum(
                pi[s, a] * mdp.P[s, a, t] * (mdp.R_original[s, a, t] + mdp.gamma * V[t])
                for a in range(3)
                for t in range(10)
            )
            for s in range(10)
        ]
    )
    np.testing.assert_allclose(V, rhs, atol=1e-10)
    one_hot = np.eye(3)[np.argmax(pi, axis=1)]
    np.testing.assert_allclose(
        policy_evaluation(mdp, one_hot), policy_evaluation(mdp, np.argmax(pi, axis=1)), atol=1e-9
    )


def test_exact_evaluation_with_gamma_one_on_an_episodic_grid():
    grid = GridWorld.book(living_reward=-0.04, gamma=1.0)
    vi = value_iteration(grid.mdp)
    V = policy_evaluation(grid.mdp, vi.policy, method="exact")
    np.testing.assert_allclose(V, vi.V, atol=1e-8)


def test_unknown_evaluation_method_is_rejected():
    with pytest.raises(ValueError, match="method must be 'iterative' or 'exact', got 'magic'"):
        policy_evaluation(GridWorld.book().mdp, np.zeros(12, dtype=int), method="magic")


# ----------------------------------------------------------------------------- brute force
@pytest.mark.parametrize("seed", range(4))
def test_value_iteration_matches_best_of_all_deterministic_policies(seed):
    mdp = TabularMDP.random(4, 3, gamma=0.9, seed=seed)
    values = np.array(
        [exact_value(mdp, np.array(p)) for p in itertools.product(range(3), repeat=4)]
    )  # (3^4, S)
    best = values.max(axis=0)  # per state; one policy attains it everywhere
    V_star = value_iteration(mdp).V
    np.testing.assert_allclose(V_star, best, atol=1e-8)
    assert np.any(np.all(values >= best - 1e-8, axis=1))


def expectimax(mdp: TabularMDP, s: int, steps_left: int) -> float:
    """Finite-horizon optimum by plain recursion over the tree of outcomes."""
    if steps_left == 0:
        return 0.0
    return max(
        sum(
            mdp.P[s, a, t]
            * (mdp.R_original[s, a, t] + mdp.gamma * expectimax(mdp, t, steps_left - 1))
            for t in range(mdp.S)
        )
        for a in range(mdp.A)
    )


def test_finite_horizon_value_iteration_matches_expectimax_recursion():
    mdp = TabularMDP.random(3, 2, gamma=0.7, seed=11)
    for H in range(6):
        res = value_iteration(mdp, horizon=H)
        assert res.iterations == H and len(res.history) == H + 1
        brute = [expectimax(mdp, s, H) for s in range(3)]
        np.testing.assert_allclose(res.V, brute, atol=1e-12)


def test_convergence_bound_eq_1_10():
    # Lecture's V_H sums rewards t = 0..H, i.e. H + 1 backups here.
    mdp = TabularMDP.random(20, 3, gamma=0.9, seed=6)
    gamma, R_max = mdp.gamma, np.abs(mdp.R).max()
    V_star = value_iteration(mdp, tol=1e-13).V
    for H in range(40):
        V_H = value_iteration(mdp, horizon=H + 1).V
        assert np.max(np.abs(V_star - V_H)) <= gamma ** (H + 1) / (1 - gamma) * R_max + 1e-12


def test_convergence_bound_is_tight_for_a_constant_reward():
    mdp = TabularMDP(np.ones((1, 1, 1)), np.ones((1, 1)), gamma=0.5)
    for H in range(10):
        gap = 1 / (1 - 0.5) - value_iteration(mdp, horizon=H + 1).V[0]
        assert gap == pytest.approx(0.5 ** (H + 1) / (1 - 0.5))


# ----------------------------------------------------------------------------- soft VI
def test_soft_value_iteration_recovers_value_iteration_as_beta_goes_to_zero():
    mdp = GridWorld.discount().mdp
    V = value_iteration(mdp).V
    gaps = []
    for beta in (1.0, 0.1, 0.01, 1e-4):
        soft = soft_value_iteration(mdp, beta)
        gap = np.max(soft.V - V)
        # entropy adds at most beta * log A per step
        assert 0 <= gap <= beta * np.log(mdp.A) / (1 - mdp.gamma) + 1e-9
        gaps.append(gap)
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-3


def test_soft_values_are_at_least_the_hard_values():
    mdp = TabularMDP.random(10, 4, gamma=0.9, seed=8)
    V = value_iteration(mdp).V
    for beta in (0.05, 0.5, 5.0):
        assert np.all(soft_value_iteration(mdp, beta).V >= V - 1e-10)


def test_soft_policy_is_uniform_as_beta_goes_to_infinity_and_greedy_as_it_goes_to_zero():
    # Continuing MDP (no terminal state): every action leads to the same future entropy, so
    # Q differences stay O(R) while beta grows. (In an episodic grid they do not: there the
    # entropy bonus itself rewards staying away from the exits.)
    random_mdp = TabularMDP.random(10, 4, gamma=0.9, seed=12)
    assert not random_mdp.terminal.any()
    wide = soft_value_iteration(random_mdp, beta=1e6)
    np.testing.assert_allclose(wide.policy, 0.25, atol=1e-5)
    mdp = GridWorld.book().mdp
    narrow = soft_value_iteration(mdp, beta=1e-3)
    vi = value_iteration(mdp)
    decided = np.ptp(vi.Q, axis=1) > 1e-2  # states where one action is clearly best
    np.testing.assert_array_equal(narrow.policy[decided].argmax(axis=1), vi.policy[decided])


def test_soft_value_iteration_satisfies_eqs_1_36_and_1_37():
    mdp = TabularMDP.random(6, 3, gamma=0.8, seed=9)
    beta = 0.7
    res = soft_value_iteration(mdp, beta, tol=1e-13)
    Q = mdp.backup(res.V)
    np.testing.assert_allclose(res.V, beta * np.log(np.exp(Q / beta).sum(axis=1)), atol=1e-10)
    pi = np.exp(Q / beta) / np.exp(Q / beta).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(res.policy, pi, atol=1e-10)
    assert res.policy.shape == (6, 3)


def test_soft_value_iteration_is_stable_for_tiny_beta_and_large_rewards():
    mdp = GridWorld.bridge().mdp  # rewards of -100 and +10
    res = soft_value_iteration(mdp, beta=1e-6)
    assert np.all(np.isfinite(res.V)) and np.all(np.isfinite(res.policy))
    np.testing.assert_allclose(res.V, value_iteration(mdp).V, atol=1e-4)


def test_soft_value_iteration_leaves_the_terminal_state_at_zero():
    grid = GridWorld.book()
    assert soft_value_iteration(grid.mdp, beta=1.0).V[grid.terminal_state] == 0.0


# ----------------------------------------------------------------------------- bookkeeping
def test_history_holds_every_value_function_and_q_table():
    res = value_iteration(GridWorld.book().mdp)
    assert len(res.history) == res.iterations + 1 and np.all(res.history[0] == 0)
    assert len(res.Q_history) == res.iterations == len(res.deltas)
    np.testing.assert_array_equal(res.history[-1], res.V)
    assert res.deltas[-1] < 1e-10


def test_keep_history_false_gives_the_same_answer_without_storing():
    mdp = GridWorld.discount().mdp
    full, lean = value_iteration(mdp), value_iteration(mdp, keep_history=False)
    assert lean.history == [] and lean.Q_history == []
    np.testing.assert_allclose(lean.V, full.V, atol=1e-12)
    np.testing.assert_allclose(lean.Q, full.Q, atol=1e-12)
    assert lean.iterations == full.iterations


def test_horizon_zero_returns_zero_values():
    res = value_iteration(GridWorld.book().mdp, horizon=0)
    assert res.iterations == 0 and np.all(res.V == 0) and len(res.history) == 1


def test_ties_are_broken_toward_the_lowest_action():
    mdp = TabularMDP(np.ones((1, 3, 1)), np.zeros((1, 3)), gamma=0.5)
    assert value_iteration(mdp).policy.tolist() == [0]
    grid = GridWorld.book()
    res = value_iteration(grid.mdp)
    assert all(res.policy[s] == 0 for s in grid.exits)  # every action exits: tie


def test_invalid_horizon_is_rejected():
    with pytest.raises(ValueError, match="horizon must be a non-negative integer"):
        value_iteration(GridWorld.book().mdp, horizon=-1)


def test_benchmark_quick_mode_runs():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_value_iteration.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ours s" in out.stdout
