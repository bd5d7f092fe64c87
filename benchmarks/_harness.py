"""Benchmark harness: env steps and training seconds until an algorithm first solves its task.

Protocol (the same for our algorithms and for a peer library): every ``eval_every`` env steps
the current deterministic policy plays ``episodes`` evaluation episodes (seeds 123, 124, ...);
the run stops the first time the mean return reaches the task's threshold. Reported: env steps
and training seconds at that point; the seconds spent evaluating are excluded. One torch thread.

The clock runs from the call that trains (our ``train``, SB3's ``learn``); building a peer's
model happens before it. :func:`warm_up` runs once before any timed run, so one-time imports
(torch loads ``torch._dynamo`` on the first optimizer it builds, about a second) are charged to
no library: without it they fell on our first seed and on no peer's.
"""

from __future__ import annotations

import importlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fdrl_lib import evaluate


@dataclass(frozen=True)
class Task:
    env_id: str  # Gymnasium id of the reference task
    threshold: float  # mean evaluation return that counts as solved
    max_steps: int  # give up after this many env steps
    eval_every: int  # env steps between evaluations
    episodes: int = 10  # evaluation episodes (deterministic policy, seeds 123, 124, ...)


CARTPOLE = Task("CartPole-v1", 475.0, 50_000, 1_000)
PENDULUM = Task("Pendulum-v1", -200.0, 50_000, 1_000)
# Each algorithm's reference task (API.md): the one its Config() defaults must solve.
TASKS = {
    **{algo: CARTPOLE for algo in ("dqn", "vpg", "a2c", "a3c", "trpo", "ppo")},
    **{algo: PENDULUM for algo in ("ddpg", "td3", "sac", "mbrl", "me_trpo", "mb_mpo")},
}


@dataclass
class Run:
    """One seed of one library on one task."""

    library: str  # "fdrl" or a peer, e.g. "sb3"
    seed: int
    solved: bool = False
    steps: int | None = None  # env steps at the first evaluation >= threshold
    seconds: float | None = None  # training seconds (evaluation excluded) at that point
    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, evaluation return)


class ThresholdWatch:
    """Evaluates every ``eval_every`` steps, keeps the curve, times training without evaluation."""

    def __init__(self, run: Run, task: Task) -> None:
        self.run, self.task = run, task
        self.start = time.perf_counter()
        self.eval_seconds = 0.0
        self.next_eval = task.eval_every

    def __call__(self, step: int, policy: Callable) -> bool:
        """True when training should stop (solved)."""
        if step < self.next_eval:
            return False
        self.next_eval = step - step % self.task.eval_every + self.task.eval_every
        t0 = time.perf_counter()
        score = evaluate(policy, self.task.env_id, episodes=self.task.episodes, seed=123)
        self.eval_seconds += time.perf_counter() - t0
        self.run.curve.append((step, score))
        if score >= self.task.threshold and not self.run.solved:
            self.run.solved = True
            self.run.steps = step
            self.run.seconds = time.perf_counter() - self.start - self.eval_seconds
            return True
        return False


def warm_up() -> None:
    """Pay the one-time costs every library shares before any clock starts (see module doc)."""
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # imports torch._dynamo (~1 s)


def run_fdrl(algo: str, seed: int, task: Task) -> Run:
    """Our ``fdrl_lib.algos.<algo>.train`` with its default Config."""
    import torch

    torch.set_num_threads(1)
    module = importlib.import_module(f"fdrl_lib.algos.{algo}")
    run = Run("fdrl", seed)
    watch = ThresholdWatch(run, task)
    module.train(
        task.env_id,
        seed=seed,
        total_steps=task.max_steps,
        callback=lambda progress: watch(progress.step, progress.policy),
        progress=False,
    )
    return run


def run_sb3(algo: str, seed: int, task: Task) -> Run:
    """Stable-Baselines3 with rl-zoo's tuned hyperparameters (only DQN on CartPole-v1 so far)."""
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    if (algo, task.env_id) != ("dqn", "CartPole-v1"):
        raise ValueError(f"no SB3 peer set up for {algo} on {task.env_id}; only dqn/CartPole-v1")
    torch.set_num_threads(1)
    run = Run("sb3", seed)
    watch = ThresholdWatch(run, task)

    class Watch(BaseCallback):
        def _on_step(self) -> bool:
            def policy(obs):
                return int(self.model.predict(obs, deterministic=True)[0])

            return not watch(self.num_timesteps, policy)

    # rl-baselines3-zoo hyperparams/dqn.yml, CartPole-v1 (n_timesteps 5e4)
    model = DQN(
        "MlpPolicy",
        task.env_id,
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1_000,
        gamma=0.99,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs=dict(net_arch=[256, 256]),
        seed=seed,
        device="cpu",
        verbose=0,
    )
    watch.start = time.perf_counter()  # the model's construction is not training
    model.learn(total_timesteps=task.max_steps, callback=Watch())
    return run


PEERS = {"sb3": run_sb3}


def summarize(runs: list[Run]) -> dict:
    """Median, min and max of steps and seconds over the solved runs."""
    solved = [r for r in runs if r.solved]
    out = {"solved": len(solved), "runs": len(runs)}
    for key in ("steps", "seconds"):
        values = [getattr(r, key) for r in solved]
        if values:
            out[key] = (statistics.median(values), min(values), max(values))
    return out


def markdown_table(task: Task, algo: str, results: dict[str, list[Run]]) -> str:
    lines = [
        f"### {algo} on {task.env_id} (threshold {task.threshold:g}, "
        f"evaluation every {task.eval_every} steps over {task.episodes} episodes)",
        "",
        "| library | solved | env steps: median (min-max) | training s: median (min-max) |",
        "|---|---|---|---|",
    ]
    for library, runs in results.items():
        s = summarize(runs)
        cells = []
        for key, fmt in (("steps", "{:,.0f}"), ("seconds", "{:.1f}")):
            if key in s:
                med, lo, hi = s[key]
                cells.append(f"{fmt.format(med)} ({fmt.format(lo)}-{fmt.format(hi)})")
            else:
                cells.append("-")
        lines.append(f"| {library} | {s['solved']}/{s['runs']} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def plot_curves(task: Task, algo: str, results: dict[str, list[Run]], path: Path) -> Path:
    """Evaluation return vs env steps: mean over seeds, shaded min-max.

    A run that stopped at the threshold keeps its last score afterwards (it was solved).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4))
    steps = np.arange(task.eval_every, task.max_steps + 1, task.eval_every)
    for library, runs in results.items():
        curves = []
        for run in runs:
            if not run.curve:
                continue
            at = dict(run.curve)
            last, row = np.nan, []
            for s in steps:
                last = at.get(int(s), last)
                row.append(last)
            curves.append(row)
        if not curves:
            continue
        curves = np.array(curves)  # (seeds, evaluations)
        mean = np.nanmean(curves, axis=0)
        ax.plot(steps, mean, label=f"{library} (mean of {len(curves)} seeds)")
        ax.fill_between(steps, np.nanmin(curves, 0), np.nanmax(curves, 0), alpha=0.2)
    ax.axhline(task.threshold, color="k", ls="--", lw=1, label="threshold")
    ax.set_xlabel("env steps")
    ax.set_ylabel(f"evaluation return ({task.episodes} episodes)")
    ax.set_title(f"{algo} on {task.env_id}")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
