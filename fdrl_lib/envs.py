"""Making, seeding and preprocessing environments.

``env`` arguments across the library are a Gymnasium id (``"CartPole-v1"``), a zero-argument
callable returning an env, or an env instance. Lecture 2's preprocessing ``phi`` (Algorithm 3:
the agent's state is a stack of recent observations) is the :class:`FrameStack` wrapper.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

EnvLike = str | Callable[[], gym.Env] | gym.Env

# The course's own environments, registered by string entry point: registering imports nothing,
# and the module named is imported only when the env is made.
COURSE_ENVS = {
    "fdrl/GridWorld-v0": dict(
        entry_point="fdrl_lib.tabular.gridworld:GridWorldEnv", max_episode_steps=100
    ),
}


def register_envs() -> None:
    """Register the course's envs (``"fdrl/GridWorld-v0"``) with Gymnasium; idempotent.

    Called by :func:`make_env` (and everything that makes envs), so an id works whatever was
    imported first; call it yourself before a bare ``gymnasium.make("fdrl/...")``.
    """
    for env_id, kwargs in COURSE_ENVS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, **kwargs)


def make_env(env: EnvLike, seed: int | None = None, frame_stack: int = 1, **kwargs: Any) -> gym.Env:
    """A fresh env from an id, a factory or an instance; seeded if ``seed`` is given.

    ``frame_stack > 1`` wraps it in :class:`FrameStack`. ``kwargs`` go to ``gym.make``.
    """
    if isinstance(env, str):
        register_envs()
        try:
            made = gym.make(env, **kwargs)
        except gym.error.Error as error:  # unknown id, missing dependency, bad version
            raise ValueError(f"cannot make the environment {env!r}: {error}") from error
    elif isinstance(env, gym.Env):
        made = env
    elif callable(env):
        made = env()
        if not isinstance(made, gym.Env):
            raise ValueError(f"the env factory must return a gymnasium.Env, got {type(made)}")
    else:
        raise ValueError(f"env must be a Gymnasium id, a callable or an env, got {env!r}")
    if frame_stack > 1:
        made = FrameStack(made, frame_stack)
    if seed is not None:
        seed_env(made, seed)
    return made


def seed_env(env: gym.Env, seed: int) -> None:
    """Seed the env's first reset and its action/observation spaces (for random actions)."""
    env.reset(seed=int(seed))
    env.action_space.seed(int(seed))
    env.observation_space.seed(int(seed))


def env_id(env: EnvLike) -> str:
    """A readable name for ``env`` (its id when it has one)."""
    if isinstance(env, str):
        return env
    spec = getattr(env, "spec", None)
    return spec.id if spec is not None else getattr(env, "__name__", type(env).__name__)


class FrameStack(gym.ObservationWrapper):
    """``phi(s_t)``: the last ``k`` observations stacked along a new first axis, ``(k, *obs)``.

    At reset the first observation is repeated ``k`` times. Lecture 2, Algorithm 3 (Atari DQN
    stacks 4 frames so that a single state shows velocities).
    """

    def __init__(self, env: gym.Env, k: int) -> None:
        super().__init__(env)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box):
            raise ValueError(f"FrameStack needs a Box observation space, got {space}")
        self.k = k
        self.frames: deque = deque(maxlen=k)
        low = np.repeat(space.low[None], k, axis=0)
        high = np.repeat(space.high[None], k, axis=0)
        self.observation_space = gym.spaces.Box(low=low, high=high, dtype=space.dtype)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        for _ in range(self.k):
            self.frames.append(obs)
        return self.observation(None), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.frames.append(obs)
        return self.observation(None), reward, terminated, truncated, info

    def observation(self, observation):
        return np.stack(self.frames, axis=0)  # (k, *obs_shape)


class StackFrames:
    """The same stacking for a policy that is handed raw observations one at a time.

    ``reset()`` forgets the past (``fdrl_lib.evaluate`` calls it at each episode start);
    ``__call__(obs)`` returns the stacked ``(k, *obs_shape)`` state.
    """

    def __init__(self, k: int) -> None:
        self.k = k
        self.frames: deque = deque(maxlen=k)

    def reset(self) -> None:
        self.frames.clear()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if not self.frames:
            for _ in range(self.k - 1):
                self.frames.append(obs)
        self.frames.append(obs)
        return np.stack(self.frames, axis=0)


def make_vec_env(
    env: str | Callable[[], gym.Env], num_envs: int = 8, seed: int = 0, **kwargs: Any
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env`` stepped together: Gymnasium's ``SyncVectorEnv``.

    - Same-step autoreset: when env i's episode ends at a step, the step returns the observation
      of its *next* episode's reset, and the ended episode's real last observation is in
      ``infos["final_obs"][i]`` (``infos["_final_obs"]`` masks which envs ended). A truncated
      step bootstraps from that final observation, never from the reset one.
    - Env i is seeded ``seed + i`` (its resets and its action and observation spaces), exactly as
      ``make_env(env, seed=seed + i)``; the batched action space is seeded ``seed``.
    - Finished episodes' returns and lengths are in ``infos["episode"]`` (``"r"``, ``"l"``,
      masked by ``infos["_episode"]``), from Gymnasium's vector ``RecordEpisodeStatistics``.

    ``env`` is a Gymnasium id or a zero-argument factory returning a fresh env each call;
    ``kwargs`` go to :func:`make_env` (``gym.make`` keywords, ``frame_stack``).
    """
    if isinstance(env, gym.Env) or not (isinstance(env, str) or callable(env)):
        raise ValueError(
            f"make_vec_env needs a Gymnasium id or a zero-argument env factory (it makes "
            f"num_envs copies), got {env!r}"
        )
    if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")

    def factory(i: int) -> Callable[[], gym.Env]:
        return lambda: make_env(env, seed=int(seed) + i, **kwargs)

    venv = gym.vector.SyncVectorEnv(
        [factory(i) for i in range(int(num_envs))],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    venv.action_space.seed(int(seed))
    venv.observation_space.seed(int(seed))
    return gym.wrappers.vector.RecordEpisodeStatistics(venv)
