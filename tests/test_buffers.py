"""Replay memory, n-step transitions and the sum tree of prioritized replay."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from scipy import stats

from fdrl_lib.buffers import (
    PrioritizedReplayBuffer,
    ReplayBuffer,
    RolloutBuffer,
    SumTree,
    collect_rollout,
    importance_weights,
    priority,
    priority_probabilities,
)
from fdrl_lib.envs import make_vec_env
from fdrl_lib.returns import lambda_returns, n_step_targets, n_step_window


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


def test_replay_buffer_stores_continuous_actions_with_their_shape():
    memory = ReplayBuffer(4, (3,), action_shape=(2,), action_dtype=np.float32)
    memory.add(np.zeros(3), [0.25, -1.5], 1.0, np.ones(3), False, False)
    batch = memory.sample(2)
    assert batch["action"].shape == (2, 2) and batch["action"].dtype == np.float32
    np.testing.assert_array_equal(batch["action"][0], [0.25, -1.5])
    assert ReplayBuffer(4, (3,)).action.dtype == np.int64  # discrete stays the default


def test_n_step_window_is_the_discounted_sum_and_its_bootstrap_discount():
    total, discount = n_step_window([1.0, 2.0, 4.0], 0.5)
    assert total == pytest.approx(1 + 0.5 * 2 + 0.25 * 4) and discount == pytest.approx(0.125)
    assert n_step_window([], 0.9) == (0.0, 1.0)


def test_priority_probabilities_closed_form_and_the_tree_agree():
    td_errors = np.array([0.5, -2.0, 0.0, 1.0])
    alpha, eps = 0.7, 0.01
    p = (np.abs(td_errors) + eps) ** alpha
    np.testing.assert_allclose(priority(td_errors, alpha, eps), p)
    np.testing.assert_allclose(priority_probabilities(td_errors, alpha, eps), p / p.sum())
    np.testing.assert_allclose(priority_probabilities(td_errors, 0.0, eps), np.full(4, 0.25))
    memory = PrioritizedReplayBuffer(4, (1,), alpha=alpha, eps=eps)
    for t in range(4):
        memory.add([t], 0, 0.0, [t], False, False)
    memory.update_priorities(np.arange(4), td_errors)
    np.testing.assert_allclose(
        memory.tree[np.arange(4)] / memory.tree.total, priority_probabilities(td_errors, alpha, eps)
    )


def test_importance_weights_closed_form():
    probs = np.array([0.1, 0.2, 0.7])
    w = (3 * probs) ** -0.5
    np.testing.assert_allclose(importance_weights(probs, 3, 0.5), w / w.max())
    np.testing.assert_allclose(importance_weights(probs, 3, 0.0), np.ones(3))
    # beta = 1: weight times probability is the same for every transition (bias undone)
    w1 = importance_weights(probs, 3, 1.0)
    np.testing.assert_allclose(w1 * probs, np.full(3, (w1 * probs)[0]))


# --- on-policy rollouts -------------------------------------------------------------------------

RESET_OBS = -100.0  # far from every in-episode observation: a bootstrap from it is easy to spot


class Counter(gym.Env):
    """Observation = steps taken so far (RESET_OBS right after a reset); reward 1 per step.

    Terminates after ``terminate_at`` steps (if given); a TimeLimit around it truncates.
    """

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, terminate_at=None):
        self.terminate_at, self.count = terminate_at, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.count = 0
        return np.array([RESET_OBS], dtype=np.float32), {}

    def step(self, action):
        self.count += 1
        terminated = self.terminate_at is not None and self.count == self.terminate_at
        return np.array([self.count], dtype=np.float32), 1.0, terminated, False, {}


def _counter_venv(num_envs=2, max_steps=3, terminate_at=None):
    return make_vec_env(
        lambda: gym.wrappers.TimeLimit(Counter(terminate_at), max_steps), num_envs=num_envs
    )


def _act(obs):
    return torch.zeros(len(obs), dtype=torch.int64), torch.full((len(obs),), -0.5)


def _value(obs):
    return obs[:, 0]  # V(s) = the observation itself: which state was valued shows in the number


def test_truncated_step_bootstraps_from_the_final_observation_not_the_reset_one():
    venv = _counter_venv(max_steps=3)
    buffer = RolloutBuffer.for_env(venv, T=7)
    obs, _ = venv.reset(seed=0)
    collect_rollout(venv, _act, buffer, obs, value_fn=_value)
    # steps 0..6 see observations reset, 1, 2, [truncated after 3] reset, 1, 2, [cut] reset
    np.testing.assert_array_equal(buffer.truncated[:, 0], [0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(
        buffer.obs[:, 0, 0], [RESET_OBS, 1, 2, RESET_OBS, 1, 2, RESET_OBS]
    )
    np.testing.assert_array_equal(buffer.next_value[:, 0], [1, 2, 3, 1, 2, 3, 1])
    np.testing.assert_array_equal(buffer.value[:, 0], buffer.obs[:, 0, 0])
    assert buffer.terminated.sum() == 0


def test_terminated_step_has_next_value_zero_and_other_steps_chain_values():
    venv = _counter_venv(max_steps=10, terminate_at=2)
    buffer = RolloutBuffer.for_env(venv, T=5)
    obs, _ = venv.reset(seed=0)
    obs, episode_returns = collect_rollout(venv, _act, buffer, obs, value_fn=_value)
    np.testing.assert_array_equal(buffer.terminated[:, 1], [0, 1, 0, 1, 0])
    np.testing.assert_array_equal(buffer.next_value[:, 1], [1, 0, 1, 0, 1])
    # within an episode next_value[t] is the next step's value
    np.testing.assert_array_equal(buffer.next_value[[0, 2], :], buffer.value[[1, 3], :])
    assert episode_returns == [2.0, 2.0, 2.0, 2.0]  # two envs, two finished episodes each
    np.testing.assert_array_equal(obs[:, 0], [1, 1])  # where the next rollout continues
    np.testing.assert_array_equal(buffer.log_prob, torch.full((5, 2), -0.5))


def test_gae_from_a_collected_rollout_bootstraps_the_truncation_and_the_cut():
    venv = _counter_venv(num_envs=1, max_steps=2)
    buffer = RolloutBuffer.for_env(venv, T=3)
    collect_rollout(venv, _act, buffer, venv.reset(seed=0)[0], value_fn=_value)
    returns = lambda_returns(
        buffer.reward,
        buffer.value,
        buffer.next_value,
        buffer.terminated,
        buffer.truncated,
        gamma=0.5,
        lam=1.0,
    )
    # episode 1: r=1, r=1 then truncated with final obs 2 -> G_1 = 1 + 0.5 * 2, G_0 = 1 + 0.5 G_1
    # episode 2: r=1, then the rollout is cut at obs 1 -> G_2 = 1 + 0.5 * 1
    torch.testing.assert_close(returns[:, 0], torch.tensor([2.0, 2.0, 1.5]))


def test_rollout_runs_under_no_grad_but_not_inference_mode():
    seen = []

    def act(obs):
        seen.append((torch.is_grad_enabled(), torch.is_inference_mode_enabled()))
        return _act(obs)

    venv = _counter_venv()
    collect_rollout(venv, act, RolloutBuffer.for_env(venv, T=2), venv.reset(seed=0)[0])
    assert seen == [(False, False)] * 2


def test_box_actions_are_clipped_for_the_env_but_stored_as_sampled():
    venv = make_vec_env("Pendulum-v1", num_envs=2, seed=0)
    buffer = RolloutBuffer.for_env(venv, T=4)
    assert buffer.action.shape == (4, 2, 1) and buffer.action.dtype == torch.float32
    sent = []
    step = venv.step
    venv.step = lambda actions: (sent.append(actions), step(actions))[1]
    collect_rollout(venv, lambda obs: torch.full((len(obs), 1), 5.0), buffer, venv.reset()[0])
    assert np.all(np.asarray(sent) == 2.0)  # Pendulum's torque bound
    assert torch.all(buffer.action == 5.0)


def test_minibatches_cover_every_sample_once_and_same_seed_same_batches():
    T, N = 5, 3
    buffer = RolloutBuffer(T, N, obs_shape=(2,))
    for t in range(T):
        buffer.add(
            np.full((N, 2), t),
            np.arange(N),
            reward=t * 10 + np.arange(N),
            terminated=0,
            truncated=0,
        )
    advantage = torch.arange(T * N, dtype=torch.float32).reshape(T, N)
    batches = list(buffer.minibatches(4, np.random.default_rng(0), advantage=advantage))
    assert [len(b["reward"]) for b in batches] == [4, 4, 4, 3]
    rewards = torch.cat([b["reward"] for b in batches])
    assert sorted(rewards.tolist()) == sorted((10 * np.arange(T)[:, None] + np.arange(N)).ravel())
    for b in batches:  # fields stay aligned: sample (t, i) has reward 10 t + i, action i, obs t
        t, i = b["reward"] // 10, b["reward"] % 10
        torch.testing.assert_close(b["action"], i.long())
        torch.testing.assert_close(b["obs"][:, 0], t)
        torch.testing.assert_close(b["advantage"], t * N + i)
    again = list(buffer.minibatches(4, np.random.default_rng(0), advantage=advantage))
    assert all(torch.equal(a["reward"], b["reward"]) for a, b in zip(batches, again, strict=True))
    other = torch.cat([b["reward"] for b in buffer.minibatches(4, np.random.default_rng(1))])
    assert not torch.equal(rewards, other)


def test_rollout_buffer_rejects_overfilling_and_mis_shaped_extras():
    buffer = RolloutBuffer(1, 2, obs_shape=(1,))
    with pytest.raises(ValueError, match="fill"):
        buffer.flatten()
    buffer.add(np.zeros((2, 1)), [0, 1], [0, 0], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="full"):
        buffer.add(np.zeros((2, 1)), [0, 1], [0, 0], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="advantage"):
        buffer.flatten(advantage=np.zeros(2))


class _ModelEnv:
    """A learned-model stand-in: torch in and out, no autoreset, no action space (lecture 6)."""

    num_envs = 3

    def step(self, actions):
        self.state = self.state + torch.as_tensor(actions)  # (N, 1): the model's prediction
        reward = -self.state[:, 0].abs()
        done = torch.zeros(self.num_envs, dtype=torch.bool)
        return self.state, reward, done, done, {}


def test_collect_rollout_drives_a_learned_model_that_returns_tensors():
    model = _ModelEnv()
    model.state = torch.zeros(3, 1)
    buffer = RolloutBuffer(4, 3, obs_shape=(1,), action_shape=(1,))
    obs, episode_returns = collect_rollout(
        model, lambda obs: torch.ones(len(obs), 1), buffer, model.state, value_fn=_value
    )
    np.testing.assert_array_equal(buffer.obs[:, 0, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(buffer.reward[:, 0], [-1, -2, -3, -4])
    np.testing.assert_array_equal(buffer.next_value[:, 0], [1, 2, 3, 4])
    assert episode_returns == [] and torch.equal(obs, torch.full((3, 1), 4.0))


def test_same_seeds_give_the_same_rollout():
    def rollout(seed):
        torch.manual_seed(seed)
        venv = make_vec_env("CartPole-v1", num_envs=3, seed=seed)
        buffer = RolloutBuffer.for_env(venv, T=40)
        act = lambda obs: torch.randint(0, 2, (len(obs),))  # noqa: E731
        collect_rollout(venv, act, buffer, venv.reset()[0], value_fn=lambda obs: obs.sum(-1))
        return buffer

    a, b, c = rollout(0), rollout(0), rollout(1)
    for name in ("obs", "action", "reward", "terminated", "next_value"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.obs, c.obs)
