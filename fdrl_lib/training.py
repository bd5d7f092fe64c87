"""What every deep algorithm's ``train`` shares: results, history, callbacks, evaluation, files.

Nothing here imports torch at module level: ``evaluate`` also serves tabular policies.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fdrl_lib.envs import EnvLike, make_env

Policy = Callable[[np.ndarray], Any]


@dataclass
class Progress:
    """What a ``callback(progress)`` sees during training; returning True stops training."""

    step: int  # env steps so far
    policy: Policy  # the current deterministic policy (same contract as TrainResult.policy)
    history: list[dict]  # episodes finished so far


@dataclass
class TrainResult:
    """What ``algos.<name>.train`` returns."""

    policy: Policy  # one observation -> one action, deterministic
    history: list[dict]  # one dict per finished episode: "step", "episode_return", "wall_time"
    config: Any  # the Config actually used
    algo: str = ""  # module name, e.g. "dqn"
    checkpoint: dict = field(default_factory=dict, repr=False)  # what save() writes

    def save(self, path: str | Path) -> Path:
        """Write the policy (and config, history) to ``path``; ``algos.<algo>.load`` reads it."""
        return save_checkpoint(path, {**self.checkpoint, "history": self.history})


class History:
    """Collects per-episode records while training; ``wall_time`` counts training seconds only.

    The clock pauses while a callback runs, so evaluation done in a callback is not counted.
    """

    def __init__(self) -> None:
        self.episodes: list[dict] = []
        self.start = time.perf_counter()
        self.paused = 0.0
        self.episode_return = 0.0
        self.episode_length = 0

    def wall_time(self) -> float:
        return time.perf_counter() - self.start - self.paused

    def step(self, reward: float, done: bool, step: int) -> None:
        """Add one env step's reward; close the episode record when ``done``."""
        self.episode_return += float(reward)
        self.episode_length += 1
        if done:
            self.episodes.append(
                {
                    "step": step,
                    "episode_return": self.episode_return,
                    "episode_length": self.episode_length,
                    "wall_time": self.wall_time(),
                }
            )
            self.episode_return, self.episode_length = 0.0, 0

    def callback(self, callback: Callable | None, step: int, policy: Policy) -> bool:
        """Run the user's callback with the clock paused; True means stop training."""
        if callback is None:
            return False
        t0 = time.perf_counter()
        stop = bool(callback(Progress(step=step, policy=policy, history=self.episodes)))
        self.paused += time.perf_counter() - t0
        return stop


class ProgressBar:
    """A tqdm bar over env steps, refreshed in chunks (cheap enough to update every step)."""

    def __init__(self, total: int, enabled: bool, desc: str = "") -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="step", mininterval=0.5)
        self.shown = 0

    def update(self, step: int, history: list[dict]) -> None:
        if self.bar is not None and step - self.shown >= 1000:
            self.bar.update(step - self.shown)
            self.shown = step
            if history:
                recent = [h["episode_return"] for h in history[-10:]]
                self.bar.set_postfix(ret=f"{np.mean(recent):.1f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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


def main_train(args) -> int:
    """``fdrl train ALGO ENV_ID [--seed] [--steps] [--out]``: train, evaluate, save."""
    import importlib
    import json

    from fdrl_lib import algos

    if args.algo not in algos.available():
        print(f"unknown algorithm {args.algo!r}; available: {', '.join(algos.available())}")
        return 2
    module = importlib.import_module(f"fdrl_lib.algos.{args.algo}")
    try:
        result = module.train(args.env_id, seed=args.seed, total_steps=args.steps, progress=True)
    except ValueError as error:  # bad env id, bad steps: say what, no traceback
        print(f"fdrl train: {error}")
        return 2
    score = evaluate(result.policy, args.env_id, episodes=10)
    print(
        f"{args.algo} on {args.env_id} (seed {args.seed}): mean return over 10 episodes {score:.1f}"
    )
    out = Path(args.out or f"runs/{args.algo}-{args.env_id.replace('/', '_')}-seed{args.seed}")
    path = result.save(out / "policy.pt")
    (out / "history.json").write_text(json.dumps(result.history))
    print(f"saved {path} and {out / 'history.json'}")
    return 0
