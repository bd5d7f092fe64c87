"""Replay memory, n-step transitions and the sum tree of prioritized replay."""

import numpy as np
import pytest
from scipy import stats

from fdrl_lib.buffers import PrioritizedReplayBuffer, ReplayBuffer, SumTree
from fdrl_lib.returns import n_step_targets


def test_replay_buffer_is_a_ring_that_keeps_the_latest_transitions():
    memory = ReplayBuffer(3, (1,))
    for t in range(5):
        memory.add([t], t % 2, float(t), [t + 1], False, False)
    assert len(memory) == 3
    assert sorted(memory.reward.tolist()) == [2.0, 3.0, 4.0]


def test_replay_buffer_stores_terminated_and_not_truncated():
    memory = ReplayBuffer(4, (1,))
    memory.add([0], 0, 1.0, [1], False, True)  # a time-limit cut: still bootstraps
    memory.add([1], 0, 1.0, [2], True, False)
    assert memory.terminated[:2].tolist() == [0.0, 1.0]


def test_uniform_sample_has_unit_weights_and_same_seed_same_batch():
    a, b = ReplayBuffer(10, (2,), seed=3), ReplayBuffer(10, (2,), seed=3)
    for memory in (a, b):
        for t in range(10):
            memory.add([t, t], 1, 0.0, [t, t], False, False)
    batch_a, batch_b = a.sample(6), b.sample(6)
    np.testing.assert_array_equal(batch_a["indices"], batch_b["indices"])
    np.testing.assert_array_equal(batch_a["weights"], np.ones(6))
    assert batch_a["obs"].shape == (6, 2)


@pytest.mark.parametrize("n", [2, 3])
def test_n_step_transitions_match_returns_n_step_targets(n):
    rng = np.random.default_rng(0)
    T, gamma = 30, 0.9
    rewards = rng.normal(size=T)
    terminated, truncated = np.zeros(T), np.zeros(T)
    terminated[[4, 5, 17]] = 1
    truncated[[11, T - 1]] = 1
    memory = ReplayBuffer(100, (1,), n_step=n, gamma=gamma)
    for t in range(T):
        memory.add([t], 0, rewards[t], [t + 1], bool(terminated[t]), bool(truncated[t]))
    returns, discounts, bootstrap, last = n_step_targets(rewards, terminated, truncated, gamma, n)
    order = np.argsort(memory.obs[: len(memory), 0])  # stored out of order at episode ends
    assert len(memory) == T
    np.testing.assert_allclose(memory.reward[order], returns, rtol=1e-5)
    np.testing.assert_allclose(memory.discount[order], discounts, rtol=1e-6)
    np.testing.assert_array_equal(1 - memory.terminated[order], bootstrap)
    np.testing.assert_array_equal(memory.next_obs[order, 0], last + 1)


def test_sum_tree_root_is_the_sum_and_find_inverts_prefix_sums():
    tree = SumTree(5)
    tree.update([0, 1, 2, 3, 4], [1.0, 2.0, 3.0, 0.0, 4.0])
    assert tree.total == pytest.approx(10.0)
    # prefix sums: [0,1) -> 0, [1,3) -> 1, [3,6) -> 2, leaf 3 empty, [6,10) -> 4
    np.testing.assert_array_equal(
        tree.find([0.0, 0.99, 1.0, 2.9, 3.0, 5.99, 6.0, 9.99]), [0, 0, 1, 1, 2, 2, 4, 4]
    )


def test_sum_tree_samples_in_proportion_to_priority_chi_square():
    rng = np.random.default_rng(0)
    priorities = np.array([1.0, 5.0, 0.5, 3.0, 2.5, 8.0, 0.0, 4.0, 1.0, 7.0])
    tree = SumTree(len(priorities))
    tree.update(np.arange(len(priorities)), priorities)
    draws = 200_000
    leaves = tree.find(rng.random(draws) * tree.total)
    counts = np.bincount(leaves, minlength=len(priorities))
    assert counts[6] == 0  # zero priority: never sampled
    mask = priorities > 0
    expected = draws * priorities[mask] / priorities.sum()
    _, p_value = stats.chisquare(counts[mask], expected)
    assert p_value > 0.01


@pytest.mark.parametrize("capacity", [2**4, 2**10, 2**16])
def test_sum_tree_update_touches_log_n_nodes(capacity):
    tree = SumTree(capacity)
    tree.touches = 0
    tree.update(capacity // 3, 1.0)
    assert tree.touches == int(np.log2(capacity)) + 1  # the leaf and one node per level above


def test_prioritized_sampling_follows_priorities_and_weights_undo_the_bias():
    memory = PrioritizedReplayBuffer(4, (1,), alpha=1.0, eps=0.0, seed=0)
    for t in range(4):
        memory.add([t], 0, 0.0, [t], False, False)
    memory.update_priorities(np.arange(4), [1.0, 1.0, 2.0, 4.0])
    batch = memory.sample(80_000, beta=1.0)
    freq = np.bincount(batch["indices"], minlength=4) / 80_000
    np.testing.assert_allclose(freq, [0.125, 0.125, 0.25, 0.5], atol=0.01)
    # beta = 1: w_i = (N P(i))^-1 / max w  -> exactly cancels the non-uniform sampling
    expected = (1 / (4 * np.array([0.125, 0.125, 0.25, 0.5]))) / 2.0
    np.testing.assert_allclose(batch["weights"], expected[batch["indices"]], rtol=1e-6)


def test_new_transitions_get_the_largest_priority_seen():
    memory = PrioritizedReplayBuffer(8, (1,), alpha=1.0, eps=0.0)
    memory.add([0], 0, 0.0, [0], False, False)
    memory.update_priorities([0], [5.0])
    memory.add([1], 0, 0.0, [1], False, False)
    assert memory.tree[1] == pytest.approx(5.0)


def test_negative_capacity_is_rejected():
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, (1,))
