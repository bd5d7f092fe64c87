"""What every deep algorithm's ``train`` shares: seeding, results, history, evaluation, files.

- :func:`seeded`: one seed -> torch seeded, one torch thread, independent numpy streams.
- :class:`Monitor`: episodes finished, diagnostics (``log``), periodic evaluation that keeps the
  best-evaluated policy and may stop at a target return, the user's callback and the progress bar.
  Every algorithm's loop calls ``monitor.track`` after env steps and ``monitor.after_update``
  after each update; ``monitor.finish`` puts the kept weights back into the policy's modules.
- :func:`evaluate`: mean return of a deterministic policy on fixed-seed episodes.
- :func:`check_config`: a Config's fields checked by name, with a message naming the bad one.

Nothing here imports torch at module level: ``evaluate`` also serves tabular policies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fdrl_lib.envs import EnvLike, make_env

Policy = Callable[[np.ndarray], Any]


# ---------------------------------------------------------------------------------- seeding
class Streams:
    """Independent random streams spawned from one seed (``numpy.random.SeedSequence``).

    Each call to :meth:`generator` or :meth:`integer` spawns a new child, so acting, replay
    sampling and minibatch shuffling never share a stream: changing how often one of them draws
    leaves the others' numbers unchanged.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.sequence = np.random.SeedSequence(self.seed)

    def generator(self) -> np.random.Generator:
        """A fresh, independent ``numpy.random.Generator``."""
        return np.random.default_rng(self.sequence.spawn(1)[0])

    def integer(self) -> int:
        """A fresh 31-bit seed for something that takes an int (a buffer, a torch generator)."""
        return int(self.sequence.spawn(1)[0].generate_state(1)[0] >> 1)


@contextlib.contextmanager
def seeded(seed: int, threads: int = 1) -> Iterator[Streams]:
    """Seed torch and fix its thread count for one training run; yields :class:`Streams`.

    torch's global generator is forked and restored on exit, and the thread count put back, so a
    ``train`` call leaves the caller's random state and threads as they were. Small networks run
    fastest on one thread, and one thread keeps results reproducible.
    """
    import torch

    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            yield Streams(seed)
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------------ validation
def check_config(
    config: Any,
    positive: Sequence[str] = (),
    non_negative: Sequence[str] = (),
    unit: Sequence[str] = (),
) -> None:
    """Raise ``ValueError`` naming the first field outside its range.

    ``positive``: must be > 0; ``non_negative``: >= 0; ``unit``: in [0, 1]. Call it from a
    Config's ``__post_init__`` so a bad value fails where it is written, not deep in training.
    """
    name = type(config).__name__
    rules = [
        (positive, lambda v: v > 0, "> 0"),
        (non_negative, lambda v: v >= 0, ">= 0"),
        (unit, lambda v: 0 <= v <= 1, "in [0, 1]"),
    ]
    for fields, ok, want in rules:
        for f in fields:
            value = getattr(config, f)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not ok(value):
                raise ValueError(f"{name}.{f} must be {want}, got {value!r}")


# ------------------------------------------------------------------------- results, history
@dataclass
class Progress:
    """What a ``callback(progress)`` sees during training; returning True stops training."""

    step: int  # env steps so far
    policy: Policy  # the current deterministic policy (same contract as TrainResult.policy)
    history: list[dict]  # episodes finished so far
    logs: dict = field(default_factory=dict)  # diagnostics so far: {"name": [(step, value)]}


@dataclass
class TrainResult:
    """What ``algos.<name>.train`` returns."""

    policy: Policy  # one observation -> one action, deterministic (the best-evaluated one)
    history: list[dict]  # one dict per finished episode: "step", "episode_return", "wall_time"
    config: Any  # the Config actually used (total_steps as run)
    algo: str = ""  # module name, e.g. "dqn"
    checkpoint: dict = field(default_factory=dict, repr=False)  # what save() writes
    logs: dict = field(default_factory=dict)  # {"name": [(step, value), ...]} diagnostics
    kept_step: int | None = None  # env step whose policy ``policy`` is (None: the last one)
    kept_return: float | None = None  # its evaluation return during training

    def save(self, path: str | Path) -> Path:
        """Write the policy (and config, history) to ``path``; ``algos.<algo>.load`` reads it."""
        payload = {**self.checkpoint, "history": self.history, "kept_step": self.kept_step}
        return save_checkpoint(path, payload)


class History:
    """Episode records and diagnostics; ``wall_time`` counts training seconds only.

    ``step`` takes one env's reward and done flag, or arrays ``(N,)`` of a vector env's. The clock
    pauses while evaluation and callbacks run (:meth:`paused_clock`).
    """

    def __init__(self) -> None:
        self.episodes: list[dict] = []
        self.logs: dict[str, list[tuple[int, float]]] = {}
        self.start = time.perf_counter()
        self.paused = 0.0
        self.returns = np.zeros(1)  # running return per env
        self.lengths = np.zeros(1, dtype=np.int64)

    def wall_time(self) -> float:
        return time.perf_counter() - self.start - self.paused

    @contextlib.contextmanager
    def paused_clock(self) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.paused += time.perf_counter() - t0

    def step(self, reward, done, step: int) -> None:
        """Add one env step's reward(s); close the episode record of each env that is ``done``."""
        reward = np.atleast_1d(np.asarray(reward, dtype=np.float64))
        done = np.atleast_1d(np.asarray(done, dtype=bool))
        if self.returns.shape != reward.shape:
            if self.returns.any() or self.lengths.any():
                raise ValueError(f"reward shape {reward.shape} changed from {self.returns.shape}")
            self.returns = np.zeros(reward.shape)
            self.lengths = np.zeros(reward.shape, dtype=np.int64)
        self.returns += reward
        self.lengths += 1
        for i in np.flatnonzero(done):
            self.episodes.append(
                {
                    "step": int(step),
                    "episode_return": float(self.returns[i]),
                    "episode_length": int(self.lengths[i]),
                    "wall_time": self.wall_time(),
                }
            )
            self.returns[i], self.lengths[i] = 0.0, 0

    def log(self, step: int, **scalars: float) -> None:
        """Record diagnostics, e.g. ``history.log(step, loss=0.3, kl=0.01)``, into ``logs``."""
        for name, value in scalars.items():
            self.logs.setdefault(name, []).append((int(step), float(value)))

    def callback(self, callback: Callable | None, step: int, policy: Policy) -> bool:
        """Run the user's callback with the clock paused; True means stop training."""
        if callback is None:
            return False
        with self.paused_clock():
            progress = Progress(step=step, policy=policy, history=self.episodes, logs=self.logs)
            return bool(callback(progress))


class ProgressBar:
    """A tqdm bar over env steps, refreshed in chunks (cheap enough to update every step)."""

    def __init__(self, total: int, enabled: bool, desc: str = "") -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="step", mininterval=0.5)
        self.shown = 0

    def update(self, step: int, history: list[dict], **postfix: Any) -> None:
        if self.bar is not None and (step - self.shown >= 1000 or postfix):
            self.bar.update(step - self.shown)
            self.shown = step
            if history:
                postfix["ret"] = f"{np.mean([h['episode_return'] for h in history[-10:]]):.1f}"
            self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------------------------ evaluation
def evaluate(policy: Policy, env: EnvLike, episodes: int = 10, seed: int = 123) -> float:
    """Mean undiscounted return of ``policy`` over ``episodes`` episodes.

    Episode i resets with seed ``seed + i``, so the same policy always gets the same score.
    A policy with a ``reset()`` method (stateful preprocessing, e.g. frame stacking) is reset at
    each episode start.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = make_env(env)
    total = 0.0
    for i in range(episodes):
        if hasattr(policy, "reset"):
            policy.reset()
        obs, _ = env.reset(seed=seed + i)
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += float(reward)
            done = terminated or truncated
    env.close()
    return total / episodes


def reward_threshold(env: EnvLike) -> float | None:
    """The env's own ``spec.reward_threshold`` (CartPole-v1: 475), or None when it has none.

    Pendulum-v1 has none in Gymnasium; the course's reference threshold for it is -200
    (API.md), used here so that "stop at the target" means the same for every algorithm.
    """
    spec = _spec(env)
    if spec is None:
        return None
    if spec.reward_threshold is not None:
        return float(spec.reward_threshold)
    return COURSE_THRESHOLDS.get(spec.id)


COURSE_THRESHOLDS = {"Pendulum-v1": -200.0}  # reference tasks without a Gymnasium threshold


def _spec(env: EnvLike):
    import gymnasium as gym

    if isinstance(env, str):
        try:
            return gym.spec(env)
        except gym.error.Error:
            return None
    return getattr(env, "spec", None)


def _eval_env(env: EnvLike) -> EnvLike | None:
    """Something ``evaluate`` can build fresh envs from: never the training env instance."""
    import gymnasium as gym

    if isinstance(env, gym.Env):  # an instance is the training env: build fresh ones from its spec
        spec = env.spec
        return None if spec is None else (lambda: gym.make(spec))
    return env


def eval_seed(seed: int) -> int:
    """First episode seed of training-time evaluations for run ``seed`` (apart from 123.., the
    seeds of a fresh check by ``evaluate``'s default)."""
    return 10_000 + 100 * int(seed)


class PeriodicEvaluation:
    """Score a policy every ``every`` env steps on ``episodes`` fixed-seed episodes.

    ``maybe(step, policy)`` evaluates when at least ``every`` steps have passed since the last
    due point (steps may jump by a whole rollout) and returns the score, else None. ``records``
    keeps ``(step, score)``; ``seconds`` the time spent evaluating. The one evaluation schedule of
    the library: training's :class:`Monitor` and the benchmark harness's peers both use it.
    """

    def __init__(self, env: EnvLike, every: int, episodes: int = 10, seed: int = 10_000) -> None:
        if every < 1 or episodes < 1:
            raise ValueError(f"every and episodes must be >= 1, got {every}, {episodes}")
        self.env, self.every, self.episodes, self.seed = env, int(every), int(episodes), seed
        self.next_due = self.every
        self.records: list[tuple[int, float]] = []
        self.seconds = 0.0

    def maybe(self, step: int, policy: Policy) -> float | None:
        if step < self.next_due:
            return None
        while self.next_due <= step:
            self.next_due += self.every
        return self.now(step, policy)

    def now(self, step: int, policy: Policy) -> float:
        t0 = time.perf_counter()
        score = evaluate(policy, self.env, episodes=self.episodes, seed=self.seed)
        self.seconds += time.perf_counter() - t0
        self.records.append((int(step), score))
        return score


@dataclass(frozen=True)
class EvalSettings:
    """How training evaluates: each algorithm's Config carries these four fields."""

    eval_every: int  # env steps between evaluations of the current deterministic policy
    eval_episodes: int  # episodes per evaluation (fixed seeds, so rounds compare fairly)
    target_return: float | None  # stop when an evaluation reaches this (None: the env's own)
    stop_at_target: bool  # False: train the whole budget, still keeping the best policy

    @classmethod
    def of(cls, config: Any) -> EvalSettings:
        return cls(*(getattr(config, f.name) for f in dataclasses.fields(cls)))


class Monitor:
    """Episodes, diagnostics, evaluation with the best policy kept, callback and progress bar.

    Every ``eval_every`` env steps (checked in :meth:`after_update`, by
    :class:`PeriodicEvaluation`) the current deterministic policy plays ``eval_episodes``
    fixed-seed episodes (seeds :func:`eval_seed`, apart from the ``evaluate`` default 123 that
    tests use for a fresh check). When the mean return is at least the best so far, the
    weights of ``modules`` are copied: at
    :meth:`finish` they are put back, so ``result.policy`` is the best-evaluated policy, as
    Stable-Baselines3's ``EvalCallback`` keeps its best model. Reaching the target return stops
    training when ``stop_at_target``. Evaluation and the callback run with the clock paused.
    """

    def __init__(
        self,
        algo: str,
        env: EnvLike,
        total_steps: int,
        settings: EvalSettings,
        *,
        seed: int = 0,
        callback: Callable | None = None,
        progress: bool = True,
    ) -> None:
        self.algo, self.total_steps, self.settings = algo, int(total_steps), settings
        self.history = History()
        self.callback = callback
        self.bar = ProgressBar(total_steps, progress, desc=algo)
        eval_env = _eval_env(env)
        self.evaluation = None
        if eval_env is not None:
            self.evaluation = PeriodicEvaluation(
                eval_env, settings.eval_every, settings.eval_episodes, eval_seed(seed)
            )
        target = settings.target_return
        self.target = reward_threshold(env) if target is None else float(target)
        self.best_return = -math.inf
        self.best_step: int | None = None
        self.best_state: list[dict] | None = None

    @property
    def episodes(self) -> list[dict]:
        return self.history.episodes

    def track(self, reward, done, step: int) -> None:
        """After env step(s): rewards and done flags (scalars, or ``(N,)`` for a vector env)."""
        self.history.step(reward, done, step)
        self.bar.update(step, self.history.episodes)

    def log(self, step: int, **scalars: float) -> None:
        """Diagnostics for the lecture plots: ``monitor.log(step, loss=..., kl=...)``."""
        self.history.log(step, **scalars)

    def after_update(self, step: int, policy: Policy, modules: Sequence[Any] = ()) -> bool:
        """Evaluate when due, run the user's callback; True means stop training now."""
        stop = False
        if self.evaluation is not None:
            with self.history.paused_clock():
                score = self.evaluation.maybe(step, policy)
            if score is not None:
                stop = self._keep(step, score, modules)
        return self.history.callback(self.callback, step, policy) or stop

    def _keep(self, step: int, score: float, modules: Sequence[Any]) -> bool:
        """Log the evaluation, copy the weights if it is the best so far; True: target reached."""
        self.history.log(step, eval_return=score, train_seconds=self.history.wall_time())
        if score >= self.best_return:  # ties: the later policy has trained longer
            self.best_return, self.best_step = score, step
            self.best_state = [_copy_state(m) for m in modules]
        if self.bar.bar is not None:
            self.bar.update(step, self.history.episodes, eval=f"{score:.1f}")
        reached = self.target is not None and score >= self.target
        return reached and self.settings.stop_at_target

    def finish(self, step: int, policy: Policy, modules: Sequence[Any] = ()) -> dict:
        """End of training: a last evaluation if the final policy was not scored, then the kept
        weights go back into ``modules``. Returns ``TrainResult`` fields (history, logs, kept)."""
        evaluation = self.evaluation
        last = evaluation.records[-1][0] if evaluation is not None and evaluation.records else None
        if evaluation is not None and modules and last != step:  # the final policy competes too
            with self.history.paused_clock():
                self._keep(step, evaluation.now(step, policy), modules)
        if self.best_state is not None:
            for module, state in zip(modules, self.best_state, strict=True):
                module.load_state_dict(state)
        if hasattr(policy, "reset"):  # a stateful policy starts its next episode afresh
            policy.reset()
        self.bar.close()
        if self.best_step is not None:
            self.history.log(self.best_step, kept_return=self.best_return)
        return {
            "history": self.history.episodes,
            "logs": self.history.logs,
            "kept_step": self.best_step,
            "kept_return": None if self.best_step is None else self.best_return,
        }


def _copy_state(module: Any) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ----------------------------------------------------------------------------------- files
def config_from_dict(cls: type, values: dict) -> Any:
    """Rebuild a frozen Config dataclass from ``dataclasses.asdict`` output (lists -> tuples)."""
    names = {f.name for f in dataclasses.fields(cls)}
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names}
    return cls(**clean)


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """``torch.save`` a dict of plain values and tensors; makes parent folders."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def load_checkpoint(path: str | Path, algo: str) -> dict:
    """Read a checkpoint written by :meth:`TrainResult.save` and check it belongs to ``algo``."""
    import torch

    payload = torch.load(Path(path), weights_only=True)
    if payload.get("algo") != algo:
        raise ValueError(f"{path} holds a {payload.get('algo')!r} policy, expected {algo!r}")
    return payload
