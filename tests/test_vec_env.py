"""Vector envs (fdrl_lib.envs.make_vec_env): seeding, same-step autoreset, bad input."""

import gymnasium as gym
import numpy as np
import pytest

from fdrl_lib.envs import make_env, make_vec_env


def _run(venv, steps=60, seed=0):
    """Observations, rewards and flags of ``steps`` random steps, as one list of arrays."""
    obs, _ = venv.reset()
    out = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = venv.step(venv.action_space.sample())
        out += [obs, reward, terminated, truncated]
    return out


def test_same_seed_gives_identical_runs_and_another_seed_differs():
    a, b = (_run(make_vec_env("CartPole-v1", num_envs=4, seed=3)) for _ in range(2))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    c = _run(make_vec_env("CartPole-v1", num_envs=4, seed=4))
    assert not np.array_equal(a[0], c[0])


def test_env_i_equals_a_single_env_seeded_seed_plus_i():
    seed, num_envs = 7, 3
    venv = make_vec_env("CartPole-v1", num_envs=num_envs, seed=seed)
    vec_obs, _ = venv.reset()
    singles = [make_env("CartPole-v1", seed=seed + i) for i in range(num_envs)]
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(vec_obs[i], env.reset()[0])
    # the sub-envs' action spaces are seeded seed + i too: same random actions
    for i in range(num_envs):
        sub_space = venv.unwrapped.envs[i].action_space
        assert [sub_space.sample() for _ in range(20)] == [
            singles[i].action_space.sample() for _ in range(20)
        ]
    # and the same actions give the same trajectories, through resets
    rng = np.random.default_rng(0)
    for _ in range(100):
        actions = rng.integers(0, 2, size=num_envs)
        vec_obs, *_, infos = venv.step(actions)
        for i, env in enumerate(singles):
            obs, _, terminated, truncated, _ = env.step(int(actions[i]))
            if terminated or truncated:
                np.testing.assert_array_equal(infos["final_obs"][i], obs)
                obs, _ = env.reset()
            np.testing.assert_array_equal(vec_obs[i], obs)


def test_same_step_autoreset_puts_the_final_observation_in_infos():
    venv = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    venv.reset()
    for _ in range(500):  # always pushing left ends an episode within a few dozen steps
        obs, _, terminated, truncated, infos = venv.step(np.zeros(2, dtype=np.int64))
        if terminated.any():
            break
    i = int(np.flatnonzero(terminated)[0])
    assert infos["_final_obs"][i]
    assert abs(infos["final_obs"][i][2]) > 0.2  # the final pole angle is past the limit
    assert abs(obs[i][2]) < 0.05  # the returned observation is already the reset one
    assert infos["_episode"][i] and infos["episode"]["l"][i] == infos["episode"]["r"][i]


def test_a_factory_is_accepted_and_kwargs_reach_gym_make():
    venv = make_vec_env(lambda: gym.make("CartPole-v1", max_episode_steps=5), num_envs=2)
    assert venv.num_envs == 2
    venv = make_vec_env("CartPole-v1", num_envs=2, max_episode_steps=3)
    venv.reset()
    for _ in range(3):
        *_, truncated, _ = venv.step(np.zeros(2, dtype=np.int64) + [0, 1])
    assert truncated.any()


@pytest.mark.parametrize("num_envs", [0, -1, 2.5, True])
def test_num_envs_below_one_or_not_an_integer_is_rejected(num_envs):
    with pytest.raises(ValueError, match="num_envs"):
        make_vec_env("CartPole-v1", num_envs=num_envs)


def test_unknown_id_or_an_env_instance_is_rejected_with_a_clear_error():
    with pytest.raises(ValueError, match="NoSuchEnv-v0"):
        make_vec_env("NoSuchEnv-v0", num_envs=2)
    with pytest.raises(ValueError, match="factory"):
        make_vec_env(gym.make("CartPole-v1"), num_envs=2)
