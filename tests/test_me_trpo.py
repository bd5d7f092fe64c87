"""ME-TRPO (lecture 6, Algorithm 8): the validation rule and the per-model return estimates."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from fdrl_lib.algos import mbrl, me_trpo
from fdrl_lib.algos.me_trpo import keep_improving, model_returns

torch.set_num_threads(1)


def test_keep_improving_counts_models_that_improved_against_the_fraction():
    before = torch.tensor([-500.0, -500.0, -500.0, -500.0, -500.0])
    assert keep_improving(before, before + torch.tensor([1.0, 1, 1, 1, -1]), 0.7)  # 4/5
    assert not keep_improving(before, before + torch.tensor([1.0, 1, 1, -1, -1]), 0.7)  # 3/5
    assert keep_improving(before, before + torch.tensor([1.0, 1, 1, -1, -1]), 0.6)  # 3/5 = 0.6


def test_one_model_promising_a_huge_gain_does_not_outvote_the_others():
    before = torch.zeros(5)
    exploited = torch.tensor([1000.0, -1, -1, -1, -1])  # the mean went up by 199
    assert exploited.mean() > before.mean()
    assert not keep_improving(before, exploited, 0.7)


def test_keep_improving_needs_two_same_shaped_return_vectors():
    with pytest.raises(ValueError, match=r"\(K,\)"):
        keep_improving(torch.zeros(3), torch.zeros(4))


def test_model_returns_in_the_true_dynamics_equal_real_returns():
    class TrueEnsemble:  # K = 2 "members" that are both the real dynamics
        K = 2

        def next_obs(self, obs, action, members):
            return mbrl.pendulum_dynamics(obs, action)

    torch.manual_seed(0)
    net = mbrl.GaussianPolicy(3, 1, (8,))
    task = mbrl.TASKS["Pendulum-v1"]
    space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    env = gym.make("Pendulum-v1")
    starts, real = [], []
    for i in range(3):
        obs, _ = env.reset(seed=i)
        starts.append(obs)
        total = 0.0
        for _ in range(30):
            with torch.no_grad():
                action = net(torch.as_tensor(obs)[None]).mean[0].numpy()
            obs, reward, *_ = env.step(action)
            total += reward
        real.append(total)
    eta = model_returns(TrueEnsemble(), net, task, np.array(starts), 30, (space, None))
    np.testing.assert_allclose(eta.numpy(), [np.mean(real)] * 2, rtol=1e-4)


def test_me_trpo_train_smoke_validates_and_keeps_an_evaluated_policy(tmp_path):
    config = me_trpo.Config(
        K=3, total_steps=400, policy_iterations=4, validate_every=2, validation_episodes=2,
        imagined_episodes=4, horizon=10, model_hidden=(16,), model_max_epochs=3,
        eval_every=200, eval_episodes=1, value_epochs=1,
    )  # fmt: skip
    result = me_trpo.train("Pendulum-v1", config, seed=0, progress=False)
    assert result.kept_step in (200, 400)
    updates = [v for _, v in result.logs["policy_updates"]]
    assert all(2 <= u <= 4 for u in updates)  # stops at a validation point or at N_sim
    assert result.config.K == 3
    loaded = me_trpo.load(result.save(tmp_path / "me_trpo.pt"))
    assert loaded.config == result.config
    np.testing.assert_array_equal(loaded.policy(np.ones(3)), result.policy(np.ones(3)))
