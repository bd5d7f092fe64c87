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

import dataclasses
import datetime
import importlib
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fdrl_lib.training import PeriodicEvaluation, eval_seed


@dataclass(frozen=True)
class Task:
    env_id: str  # Gymnasium id of the reference task
    threshold: float  # mean evaluation return that counts as solved
    max_steps: int  # give up after this many env steps
    eval_every: int  # env steps between evaluations
    episodes: int = 10  # evaluation episodes (deterministic policy, seeds 123, 124, ...)


CARTPOLE = Task("CartPole-v1", 475.0, 50_000, 1_000)
PENDULUM = Task("Pendulum-v1", -200.0, 50_000, 1_000)
# The model-based algorithms' budget is their Config()'s: 10,000 real steps
PENDULUM_MODEL_BASED = dataclasses.replace(PENDULUM, max_steps=10_000)
# Each algorithm's reference task (API.md): the one its Config() defaults must solve.
TASKS = {
    **{algo: CARTPOLE for algo in ("dqn", "vpg", "a2c", "a3c", "trpo", "ppo")},
    **{algo: PENDULUM for algo in ("ddpg", "td3", "sac")},
    **{algo: PENDULUM_MODEL_BASED for algo in ("mbrl", "me_trpo", "mb_mpo")},
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
    """A peer's side of the protocol: the library's own :class:`PeriodicEvaluation` (the same
    schedule and episode seeds that our ``train`` uses inside), a clock without evaluation time,
    and the first step whose score reached the threshold."""

    def __init__(self, run: Run, task: Task) -> None:
        self.run, self.task = run, task
        self.start = time.perf_counter()
        self.evaluation = PeriodicEvaluation(
            task.env_id, task.eval_every, task.episodes, eval_seed(run.seed)
        )

    def __call__(self, step: int, policy: Callable) -> bool:
        """True when training should stop (solved)."""
        score = self.evaluation.maybe(step, policy)
        if score is None:
            return False
        self.run.curve.append((step, score))
        if score >= self.task.threshold and not self.run.solved:
            self.run.solved = True
            self.run.steps = step
            self.run.seconds = time.perf_counter() - self.start - self.evaluation.seconds
            return True
        return False


def warm_up() -> None:
    """Pay the one-time costs every library shares before any clock starts (see module doc)."""
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # imports torch._dynamo (~1 s)


def machine(load_before: float) -> dict:
    """What the numbers were measured on: date, CPU, cores, load average before and after."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.date.today().isoformat(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def run_fdrl(algo: str, seed: int, task: Task) -> Run:
    """Our ``fdrl_lib.algos.<algo>.train`` with its default Config; the protocol's evaluation
    is the one ``train`` does itself (every ``eval_every`` steps, stop at the threshold)."""
    import torch

    torch.set_num_threads(1)
    module = importlib.import_module(f"fdrl_lib.algos.{algo}")
    config = dataclasses.replace(
        module.Config(),
        eval_every=task.eval_every,
        eval_episodes=task.episodes,
        target_return=task.threshold,
        stop_at_target=True,
    )
    result = module.train(
        task.env_id, config, seed=seed, total_steps=task.max_steps, progress=False
    )
    run = Run("fdrl", seed)
    seconds = dict(result.logs.get("train_seconds", []))
    run.curve = list(result.logs.get("eval_return", []))
    for step, score in run.curve:
        if score >= task.threshold:
            run.solved, run.steps, run.seconds = True, step, seconds[step]
            break
    return run


# Stable-Baselines3 (or sb3-contrib) class and rl-baselines3-zoo's tuned hyperparameters for
# each (algorithm, task) we compare against; a lecture adds its rows here.
SB3_PEERS: dict[tuple[str, str], tuple[str, dict]] = {
    # rl-baselines3-zoo hyperparams/dqn.yml, CartPole-v1 (n_timesteps 5e4)
    ("dqn", "CartPole-v1"): (
        "stable_baselines3:DQN",
        dict(
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
        ),
    ),
    # rl-baselines3-zoo hyperparams/a2c.yml, CartPole-v1 (n_timesteps 5e5): 8 envs, no entropy
    # bonus, SB3's defaults otherwise (n_steps 5, lr 7e-4 RMSprop, gae_lambda 1, vf_coef 0.5)
    ("a2c", "CartPole-v1"): ("stable_baselines3:A2C", dict(n_envs=8, ent_coef=0.0)),
    # rl-baselines3-zoo hyperparams/ppo.yml, CartPole-v1 (n_timesteps 1e5): lin_0.001 and lin_0.2
    # decay to 0 over 1e5 steps; the harness runs learn() for 5e4, where SB3's progress p runs
    # 1 -> 0, so zoo's 1 - t / 1e5 is (1 + p) / 2.
    ("ppo", "CartPole-v1"): (
        "stable_baselines3:PPO",
        dict(
            n_envs=8,
            n_steps=32,
            batch_size=256,
            gae_lambda=0.8,
            gamma=0.98,
            n_epochs=20,
            ent_coef=0.0,
            learning_rate=lambda p: 1e-3 * (1 + p) / 2,
            clip_range=lambda p: 0.2 * (1 + p) / 2,
        ),
    ),
    # rl-baselines3-zoo hyperparams/trpo.yml, CartPole-v1 (sb3-contrib)
    ("trpo", "CartPole-v1"): (
        "sb3_contrib:TRPO",
        dict(
            n_envs=2,
            n_steps=512,
            batch_size=512,
            cg_damping=1e-3,
            gae_lambda=0.98,
            gamma=0.99,
            learning_rate=1e-3,
            n_critic_updates=20,
        ),
    ),
    # rl-baselines3-zoo hyperparams/sac.yml, Pendulum-v1 (n_timesteps 2e4): SB3 defaults but lr
    ("sac", "Pendulum-v1"): ("stable_baselines3:SAC", dict(learning_rate=1e-3)),
    # rl-baselines3-zoo hyperparams/td3.yml and ddpg.yml, Pendulum-v1 (n_timesteps 2e4)
    **{
        (algo, "Pendulum-v1"): (
            f"stable_baselines3:{algo.upper()}",
            dict(
                gamma=0.98,
                buffer_size=200_000,
                learning_starts=10_000,
                action_noise_std=0.1,  # noise_type normal, noise_std 0.1
                gradient_steps=-1,
                train_freq=(1, "episode"),
                learning_rate=1e-3,
                policy_kwargs=dict(net_arch=[400, 300]),
            ),
        )
        for algo in ("td3", "ddpg")
    },
}


def run_sb3(algo: str, seed: int, task: Task) -> Run:
    """Stable-Baselines3 with rl-zoo's tuned hyperparameters (``SB3_PEERS``), same protocol."""
    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    if (algo, task.env_id) not in SB3_PEERS:
        have = ", ".join(f"{a}/{e}" for a, e in SB3_PEERS)
        raise ValueError(f"no SB3 peer set up for {algo} on {task.env_id}; have: {have}")
    where, kwargs = SB3_PEERS[(algo, task.env_id)]
    module, name = where.split(":")
    cls = getattr(importlib.import_module(module), name)
    torch.set_num_threads(1)
    run = Run("sb3", seed)
    watch = ThresholdWatch(run, task)

    class Watch(BaseCallback):
        def _on_step(self) -> bool:
            def policy(obs):
                action = self.model.predict(obs, deterministic=True)[0]
                return int(action) if np.ndim(action) == 0 else action

            return not watch(self.num_timesteps, policy)

    kwargs = dict(kwargs)
    policy_name = kwargs.pop("policy", "MlpPolicy")
    if "action_noise_std" in kwargs:  # rl-zoo's noise_type normal: an object SB3 builds from
        from stable_baselines3.common.noise import NormalActionNoise

        dims = int(np.prod(gym.spec(task.env_id).make().action_space.shape))
        std = kwargs.pop("action_noise_std")
        kwargs["action_noise"] = NormalActionNoise(np.zeros(dims), std * np.ones(dims))
    env = task.env_id
    if kwargs.get("n_envs", 1) > 1:  # rl-zoo's n_envs: SB3's own vector env of that many
        from stable_baselines3.common.env_util import make_vec_env

        env = make_vec_env(task.env_id, n_envs=kwargs.pop("n_envs"), seed=seed)
    kwargs.pop("n_envs", None)
    model = cls(policy_name, env, seed=seed, device="cpu", verbose=0, **kwargs)
    watch.start = time.perf_counter()  # the model's construction is not training
    model.learn(total_timesteps=task.max_steps, callback=Watch())
    return run


# The model-based algorithms (lecture 6) have no SB3 peer; their bar is against our own PPO on
# the same task: steps to the threshold by the same protocol, PPO with its Config() defaults and
# its own step budget (its learning-rate schedule anneals over that budget).
OWN_PEERS = {"ppo": ("mbrl", "me_trpo", "mb_mpo")}


def run_own_ppo(algo: str, seed: int, task: Task) -> Run:
    """Our model-free PPO as the peer of model-based ``algo`` on ``task``, same protocol."""
    import gymnasium as gym

    from fdrl_lib.algos import ppo

    if algo not in OWN_PEERS["ppo"]:
        raise ValueError(f"our PPO is the peer of {', '.join(OWN_PEERS['ppo'])}, not of {algo}")
    env = gym.make(task.env_id)
    continuous = isinstance(env.action_space, gym.spaces.Box)
    env.close()
    budget = ppo.Config().resolved(continuous).total_steps
    run = run_fdrl("ppo", seed, dataclasses.replace(task, max_steps=budget))
    run.library = "ppo"
    return run


PEERS = {"sb3": run_sb3, "ppo": run_own_ppo}


def has_peer(peer: str, algo: str, env_id: str) -> bool:
    """Whether ``peer`` (a key of :data:`PEERS`) is set up for ``algo`` on ``env_id``."""
    if peer == "sb3":
        return (algo, env_id) in SB3_PEERS
    return algo in OWN_PEERS.get(peer, ())


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


def on_grid(curve: list[tuple[int, float]], steps) -> list[float]:  # noqa: ANN001
    """The latest evaluation at or before each of ``steps`` (NaN before the first).

    Algorithms that evaluate at multiples of their batch (VPG's 2,048 steps, A3C's workers)
    are drawn on the same grid as the rest.
    """
    curve, row, i, last = sorted(curve), [], 0, float("nan")
    for s in steps:
        while i < len(curve) and curve[i][0] <= s:
            last = curve[i][1]
            i += 1
        row.append(last)
    return row


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
            if run.curve:
                curves.append(on_grid(run.curve, steps))
        if not curves:
            continue
        curves = np.array(curves)  # (seeds, evaluations)
        with warnings.catch_warnings():  # all-NaN columns before the first evaluation
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, low, high = (f(curves, axis=0) for f in (np.nanmean, np.nanmin, np.nanmax))
        ax.plot(steps, mean, label=f"{library} (mean of {len(curves)} seeds)")
        ax.fill_between(steps, low, high, alpha=0.2)
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
