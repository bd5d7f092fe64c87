"""Model-based RL pieces (lecture 6, section 6.1) against known answers."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from fdrl_lib.algos import mbrl

torch.set_num_threads(1)  # small networks: one thread is fastest on a shared machine

from fdrl_lib.algos.mbrl import (  # noqa: E402
    DynamicsEnsemble,
    FitSettings,
    disagreement,
    fit_dynamics,
    pendulum_apply,
    pendulum_delta,
    pendulum_dynamics,
    pendulum_reward,
)


def random_pendulum_steps(n: int, seed: int = 0):
    """n single steps of the real Pendulum-v1 from random states and actions."""
    env = gym.make("Pendulum-v1").unwrapped
    rng = np.random.default_rng(seed)
    obs, action, reward, next_obs = [], [], [], []
    env.reset(seed=seed)
    for _ in range(n):
        env.state = np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-8, 8)])
        o = env._get_obs()
        a = rng.uniform(-3, 3, size=1).astype(np.float32)  # also outside the torque limit
        o2, r, *_ = env.step(a)
        obs.append(o), action.append(a), reward.append(r), next_obs.append(o2)
    return [
        torch.as_tensor(np.array(x), dtype=torch.float32) for x in (obs, action, reward, next_obs)
    ]


def test_pendulum_reward_equals_the_env_reward_on_random_states_and_actions():
    obs, action, reward, _ = random_pendulum_steps(500)
    torch.testing.assert_close(pendulum_reward(obs, action), reward, atol=1e-4, rtol=1e-5)


def test_pendulum_dynamics_equals_the_env_step():
    obs, action, _, next_obs = random_pendulum_steps(500, seed=1)
    torch.testing.assert_close(pendulum_dynamics(obs, action), next_obs, atol=1e-5, rtol=1e-5)


def test_pendulum_delta_round_trips_and_wraps_the_angle():
    obs, action, _, next_obs = random_pendulum_steps(200, seed=2)
    delta = pendulum_delta(obs, next_obs)
    assert delta[:, 0].abs().max() <= 8 * 0.05 + 1e-5  # a turn is at most max_speed * dt
    torch.testing.assert_close(pendulum_apply(obs, delta), next_obs, atol=1e-5, rtol=1e-5)
    across = torch.tensor([[np.cos(3.1), np.sin(3.1), 0.0]], dtype=torch.float32)
    after = torch.tensor([[np.cos(-3.1), np.sin(-3.1), 0.0]], dtype=torch.float32)
    assert pendulum_delta(across, after)[0, 0].item() == pytest.approx(2 * np.pi - 6.2, abs=1e-5)


def test_unknown_env_gets_an_error_naming_it():
    with pytest.raises(ValueError, match="CartPole-v1"):
        mbrl.task_of("CartPole-v1")


def linear_system(n: int = 2000, seed: int = 0):
    A = np.array([[0.9, 0.2], [-0.1, 0.8]])
    B = np.array([[0.5], [1.0]])
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 2))
    action = rng.normal(size=(n, 1))
    next_obs = obs @ A.T + action @ B.T
    return A, B, obs, action, next_obs


def model_jacobian(model, member: int = 0) -> np.ndarray:
    """d delta / d [s, a] by unit differences around 0 (exact for a linear model)."""
    base = torch.zeros(1, 3)
    rows = []
    with torch.no_grad():
        f0 = model(base[:, :2], base[:, 2:])[member, 0]
        for j in range(3):
            x = base.clone()
            x[0, j] = 1.0
            rows.append((model(x[:, :2], x[:, 2:])[member, 0] - f0).numpy())
    return np.stack(rows, axis=1)  # (2, 3)


def test_linear_model_fit_on_a_linear_system_recovers_its_matrices():
    A, B, obs, action, next_obs = linear_system()
    torch.manual_seed(0)
    model = DynamicsEnsemble(1, 2, 1, hidden=())  # a linear model of the residual
    fit_dynamics(model, obs, action, next_obs, rng=0, settings=FitSettings(lr=1e-2, patience=20))
    # the model learns s' - s = (A - I) s + B u
    np.testing.assert_allclose(model_jacobian(model), np.hstack([A - np.eye(2), B]), atol=1e-3)


def test_mlp_fit_on_a_linear_system_recovers_its_matrices_approximately():
    A, B, obs, action, next_obs = linear_system()
    torch.manual_seed(0)
    model = DynamicsEnsemble(1, 2, 1, hidden=(32, 32))
    settings = FitSettings(lr=3e-3, max_epochs=40)
    info = fit_dynamics(model, obs, action, next_obs, rng=0, settings=settings)
    assert info["holdout_loss"][0] < 1e-3  # standardised MSE
    np.testing.assert_allclose(model_jacobian(model), np.hstack([A - np.eye(2), B]), atol=0.05)


def test_early_stopping_keeps_the_best_held_out_epoch_and_stops():
    A, B, obs, action, next_obs = linear_system(n=60)
    torch.manual_seed(0)
    model = DynamicsEnsemble(1, 2, 1, hidden=(64, 64))
    noisy = next_obs + np.random.default_rng(1).normal(scale=0.5, size=next_obs.shape)
    info = fit_dynamics(model, obs, action, noisy, rng=0, settings=FitSettings(max_epochs=2000))
    assert info["epochs"] < 2000  # stopped by patience, not by the epoch cap
    x = torch.as_tensor(np.hstack([obs, action]), dtype=torch.float32)
    assert torch.isfinite(model(x[:, :2], x[:, 2:])).all()


def test_ensemble_disagrees_little_on_training_data_and_more_away_from_it():
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, size=(400, 1))
    action = np.zeros((400, 1))
    next_obs = obs + 0.3 * np.sin(3 * obs)
    torch.manual_seed(0)
    model = DynamicsEnsemble(5, 1, 1, hidden=(64, 64))
    fit_dynamics(model, obs, action, next_obs, rng=0)
    grid = torch.linspace(-1, 1, 50)[:, None]
    inside = disagreement(model, grid, torch.zeros(50, 1)).mean()
    far = torch.linspace(3, 4, 50)[:, None]
    outside = disagreement(model, far, torch.zeros(50, 1)).mean()
    assert outside > 5 * inside


def test_members_start_different_and_see_different_bootstrap_samples():
    torch.manual_seed(0)
    model = DynamicsEnsemble(3, 1, 1, hidden=(8,))
    w = model.net.net[0].weight  # (K, in, out)
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, size=(30, 1))
    # a noisy target: members fit their own resamples, so their held-out losses differ
    next_obs = obs + rng.normal(scale=0.3, size=obs.shape)
    info = fit_dynamics(model, obs, np.zeros((30, 1)), next_obs, rng=0)
    assert len(set(np.round(info["holdout_loss"], 6))) == 3


def test_next_obs_with_members_uses_each_rows_own_model():
    torch.manual_seed(0)
    model = DynamicsEnsemble(3, 2, 1, hidden=(8,))
    obs, action = torch.randn(6, 2), torch.randn(6, 1)
    every = model.next_obs(obs, action)  # (K, B, 2)
    members = torch.tensor([0, 1, 2, 2, 1, 0])
    torch.testing.assert_close(
        model.next_obs(obs, action, members), every[members, torch.arange(6)]
    )


def test_fit_dynamics_names_bad_shapes():
    model = DynamicsEnsemble(1, 3, 1)
    with pytest.raises(ValueError, match="obs, action, next_obs"):
        fit_dynamics(model, np.zeros((10, 2)), np.zeros((10, 1)), np.zeros((10, 2)))


def test_imagined_rollout_with_the_true_dynamics_equals_the_real_rollout():
    from fdrl_lib.buffers import RolloutBuffer, collect_rollout
    from fdrl_lib.envs import make_vec_env

    T, N = 40, 4  # short: the real env keeps float64 states, the model float32 observations
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)

    def act(obs):  # a stochastic policy: the same seed draws the same actions in both
        dist = torch.distributions.Normal(net(obs), 0.5)
        action = dist.sample()
        return action, dist.log_prob(action).sum(-1)

    def value_fn(obs):
        return obs[:, 0] + 2 * obs[:, 2]

    venv = make_vec_env("Pendulum-v1", num_envs=N, seed=0)
    start, _ = venv.reset(seed=0)
    real = RolloutBuffer.for_env(venv, T)
    torch.manual_seed(1)
    collect_rollout(venv, act, real, start, value_fn)
    torch.manual_seed(1)
    imagined = mbrl.imagine(
        pendulum_dynamics, pendulum_reward, act, start, T, venv.single_action_space, value_fn
    )
    assert type(imagined) is type(real) and (imagined.T, imagined.N) == (real.T, real.N)
    for name in ("obs", "action", "reward", "value", "log_prob"):
        torch.testing.assert_close(getattr(imagined, name), getattr(real, name), atol=1e-3, rtol=0)
    torch.testing.assert_close(imagined.next_value[:-1], real.next_value[:-1], atol=1e-3, rtol=0)
    assert imagined.truncated[-1].all() and not imagined.truncated[:-1].any()
    assert not imagined.terminated.any()
    # the last step bootstraps from the last imagined state, not from the restarted one
    last = pendulum_dynamics(imagined.obs[-1], imagined.action[-1])
    torch.testing.assert_close(imagined.next_value[-1], value_fn(last))


def test_member_rollouts_keep_one_model_per_episode_and_random_ones_mix():
    torch.manual_seed(0)
    model = DynamicsEnsemble(
        3, 3, 1, hidden=(16,), to_delta=pendulum_delta, from_delta=pendulum_apply
    )
    space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    start = torch.tensor([[1.0, 0.0, 0.0]]).repeat(3, 1)

    def act(obs):
        return torch.ones(len(obs), 1), torch.zeros(len(obs))

    fixed = mbrl.imagine(
        mbrl.member_dynamics(model, [0, 1, 2]), pendulum_reward, act, start, 5, space
    )
    for k in range(3):  # episode k equals a roll-out in member k alone
        alone = mbrl.imagine(
            mbrl.member_dynamics(model, [k]), pendulum_reward, act, start[:1], 5, space
        )
        torch.testing.assert_close(fixed.obs[:, k], alone.obs[:, 0])
    mixed = mbrl.imagine(
        mbrl.random_member_dynamics(model, np.random.default_rng(0)),
        pendulum_reward,
        act,
        start,
        5,
        space,
    )
    assert not all(torch.allclose(mixed.obs[:, 0], fixed.obs[:, k]) for k in range(3))
    with pytest.raises(ValueError, match="members"):
        mbrl.member_dynamics(model, [3])


def tiny(config_class, **overrides):
    settings = dict(
        total_steps=400, policy_iterations=2, imagined_episodes=4, horizon=10, model_hidden=(16,),
        model_max_epochs=3, eval_every=200, eval_episodes=1, value_epochs=1,
    )  # fmt: skip
    return config_class(**{**settings, **overrides})


def test_mbrl_train_smoke_runs_the_loop_and_keeps_an_evaluated_policy(tmp_path):
    result = mbrl.train("Pendulum-v1", tiny(mbrl.Config), seed=0, progress=False)
    assert result.kept_step in (200, 400)
    assert {"model_loss", "imagined_return", "kl", "eval_return"} <= set(result.logs)
    action = result.policy(np.zeros(3, dtype=np.float32))
    assert action.shape == (1,) and -2 <= action[0] <= 2
    again = mbrl.train("Pendulum-v1", tiny(mbrl.Config), seed=0, progress=False)
    assert again.logs["eval_return"] == result.logs["eval_return"]  # same seed, same run
    loaded = mbrl.load(result.save(tmp_path / "mbrl.pt"))
    np.testing.assert_array_equal(loaded.policy(np.ones(3)), result.policy(np.ones(3)))


def test_mbrl_names_an_env_without_a_known_reward_and_a_bad_config():
    with pytest.raises(ValueError, match="MountainCarContinuous"):
        mbrl.train("MountainCarContinuous-v0", tiny(mbrl.Config), progress=False)
    with pytest.raises(ValueError, match="horizon"):
        mbrl.Config(horizon=0)


def test_imagined_observations_stay_inside_the_real_observation_bounds():
    def runaway(obs, action):  # a model that extrapolates to impossible speeds
        return obs + torch.tensor([0.0, 0.0, 50.0])

    env = gym.make("Pendulum-v1")
    start = torch.tensor([[1.0, 0.0, 0.0]])
    buffer = mbrl.imagine(
        runaway, pendulum_reward, lambda o: torch.zeros(len(o), 1), start, 3,
        env.action_space, observation_space=env.observation_space,
    )  # fmt: skip
    assert buffer.obs[1:, 0, 2].tolist() == [8.0, 8.0]  # the env's max speed


def test_the_model_pieces_live_once_and_mbrl_still_exports_them():
    from fdrl_lib import dynamics
    from fdrl_lib.algos import me_trpo, trpo

    shared = "DynamicsEnsemble fit_dynamics imagine disagreement TASKS pendulum_reward ModelEnv"
    shared += " member_dynamics random_member_dynamics"
    for name in shared.split():
        assert getattr(mbrl, name) is getattr(dynamics, name), name
    assert set(mbrl.__all__) <= set(dir(mbrl))
    assert mbrl.eval_settings is trpo.eval_settings  # one stop rule: the threshold + a margin
    assert me_trpo.dynamics is dynamics


def test_start_states_take_their_share_from_the_real_episode_starts():
    data = mbrl.Dataset()
    data.starts = [np.full(3, 100.0 + i, dtype=np.float32) for i in range(2)]
    data.rows = [(np.full(3, float(i)), np.zeros(1), np.zeros(3)) for i in range(50)]
    rng = np.random.default_rng(0)
    from_reset = lambda starts: int((starts[:, 0] >= 100).sum())  # noqa: E731
    assert from_reset(mbrl.start_states(data, 10, rng, reset_share=0.5)) == 5
    assert from_reset(mbrl.start_states(data, 10, rng, reset_share=1.0)) == 10
    assert from_reset(mbrl.start_states(data, 10, rng)) == 0  # default: any real state
    with pytest.raises(ValueError, match="reset_share"):
        mbrl.Config(reset_share=1.5)


@pytest.mark.slow
def test_mbrl_defaults_solve_pendulum_in_a_thousand_real_steps():
    # Config() defaults, seed 2: one evaluation (5 real episodes) reaches the stop, about 45 CPU
    # seconds (benchmarks/results/model_based.solves.md); judged on fresh episodes, not the kept
    # evaluation
    from fdrl_lib.training import evaluate

    result = mbrl.train("Pendulum-v1", seed=2, progress=False)
    assert result.kept_step <= 1_000
    assert evaluate(result.policy, "Pendulum-v1", episodes=10, seed=123) >= -200
