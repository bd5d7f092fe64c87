"""A3C: asynchronous advantage actor-critic, Algorithm 5 run by parallel workers.

Lecture 3, section 3.7 (Mnih et al. 2016). One actor-critic lives in shared memory, and so does
its Adam optimizer's state (moment estimates and step count). Each worker process has its own
envs and its own copy of the network; it repeats, without waiting for the others: copy the
shared weights, run ``n_steps`` steps, form k-step (or GAE) advantages exactly as ``a2c`` does,
take the gradient of Algorithm 5's loss on its copy, hand that gradient to the shared parameters
and step the shared optimizer (no lock: Hogwild-style updates). A worker's gradient may be a few
updates stale by the time it lands; the variety of the workers' experience stands in for a
replay memory.

The main process counts env steps, feeds the episode records to ``Monitor``, and every
``eval_every`` steps pauses the workers, evaluates a snapshot of the shared weights and keeps the
best one. Workers always stop: at the budget, at the target, when training raises or is
interrupted (they are ended after a grace period), and when they find their parent gone.

Not reproducible: the order in which the workers' updates land depends on how the operating
system schedules them, so the same seed need not give the same result (the one exception to
the library's "same seed, same result"). Its tests are statistical.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import queue as queue_module
import sys
import time
import traceback
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fdrl_lib.algos.a2c import ADVANTAGES, ActorCritic, rollout_loss
from fdrl_lib.algos.vpg import policy_kwargs
from fdrl_lib.buffers import RolloutBuffer, collect_rollout
from fdrl_lib.envs import EnvLike, make_env, make_vec_env
from fdrl_lib.training import (
    EvalSettings,
    Monitor,
    TrainResult,
    check_config,
    config_from_dict,
    load_checkpoint,
    seeded,
)


@dataclass(frozen=True)
class Config:
    total_steps: int = 100_000  # env steps to train for, all workers together
    num_workers: int = 2  # worker processes (one per core is the sweet spot)
    envs_per_worker: int = 4  # each worker's own envs, stepped side by side
    n_steps: int = 8  # rollout length per env: the longest look-ahead k (eqs. 3.41-3.43)
    advantage: str = "gae"  # "nstep" or "gae", as in a2c
    lam: float = 0.95  # GAE's lambda
    gamma: float = 0.99  # discount
    lr: float = 3e-3  # shared Adam's step size
    value_coef: float = 0.5  # weight of the critic's loss
    entropy_coef: float = 0.0  # bonus for the policy's entropy
    max_grad_norm: float = 0.5  # clip each worker's gradient norm (0 = no clipping)
    shared: bool = False  # one body with two heads, or separate actor and critic networks
    hidden: tuple[int, ...] = (64, 64)  # hidden widths
    torch_threads: int = 1  # threads per process
    eval_every: int = 5_000  # env steps between evaluations; the best-evaluated policy is kept
    eval_episodes: int = 10  # episodes per evaluation
    target_return: float | None = 500.0  # stop at a perfect evaluation (None: the env's 475)
    stop_at_target: bool = True  # False: use the whole budget (still keeping the best policy)

    def __post_init__(self) -> None:
        check_config(
            self,
            positive=(
                "total_steps", "num_workers", "envs_per_worker", "n_steps", "lr",
                "torch_threads", "eval_every", "eval_episodes",
            ),
            non_negative=("value_coef", "entropy_coef", "max_grad_norm"),
            unit=("gamma", "lam"),
        )  # fmt: skip
        if self.advantage not in ADVANTAGES:
            raise ValueError(
                f"Config.advantage must be one of {ADVANTAGES}, got {self.advantage!r}"
            )


class SharedAdam(torch.optim.Adam):
    """Adam whose state (step count, first and second moments) lives in shared memory, so every
    worker's step moves the same moment estimates (A3C's "shared statistics" variant)."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr=lr, foreach=False)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = torch.zeros(()).share_memory_()
                state["exp_avg"] = torch.zeros_like(p).share_memory_()
                state["exp_avg_sq"] = torch.zeros_like(p).share_memory_()


def _context():
    """fork where the platform has it (start-up in milliseconds), spawn elsewhere."""
    import torch.multiprocessing as mp

    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return mp.get_context(method)


def _worker(rank, env, c, seed, model, optimizer, counter, running, paused, stop, messages):
    """One A3C worker: its own envs and rollouts; gradients into the shared model."""
    try:
        parent = os.getppid()
        torch.set_num_threads(c.torch_threads)
        torch.manual_seed(seed * 1_000 + rank)
        venv = make_vec_env(env, num_envs=c.envs_per_worker, seed=seed * 1_000 + 100 * rank)
        local = copy.deepcopy(model)  # this worker's copy of theta, phi
        buffer = RolloutBuffer.for_env(venv, c.n_steps)
        obs, _ = venv.reset(seed=seed * 1_000 + 100 * rank)
        while not stop.is_set():
            if not running.is_set():  # the main process is evaluating: wait for it
                with paused.get_lock():
                    paused.value += 1
                while not running.wait(0.05) and not stop.is_set():
                    pass
                with paused.get_lock():
                    paused.value -= 1
                continue
            if os.getppid() != parent:  # orphaned: the main process is gone
                messages.cancel_join_thread()  # nobody will read: exit without flushing
                break
            local.load_state_dict(model.state_dict())  # copy the shared weights
            obs, _ = collect_rollout(venv, local.sample, buffer, obs, local.value)
            loss = rollout_loss(local, buffer, c)
            local.zero_grad(set_to_none=True)
            loss.backward()
            if c.max_grad_norm > 0:
                nn.utils.clip_grad_norm_(local.parameters(), c.max_grad_norm)
            for shared_param, param in zip(model.parameters(), local.parameters(), strict=True):
                shared_param.grad = param.grad  # this worker's gradient on the shared weights
            optimizer.step()  # in place, in shared memory; no lock (Hogwild)
            with counter.get_lock():
                counter.value += buffer.T * buffer.N
                step = counter.value
            done = ((buffer.terminated + buffer.truncated) > 0).numpy()
            messages.put(("rollout", rank, step, buffer.reward.numpy(), done, loss.item()))
        venv.close()
    except BaseException:  # report it; the main process raises it
        messages.put(("error", rank, traceback.format_exc()))
        messages.close()
        messages.join_thread()  # make sure the report is written before this process exits


def train(
    env: EnvLike,
    config: Config | None = None,
    *,
    seed: int = 0,
    total_steps: int | None = None,
    callback=None,
    progress: bool = True,
) -> TrainResult:
    """Train A3C with ``config.num_workers`` asynchronous workers; see the module docstring.

    The same seed need not give the same result. Returns the best-evaluated policy.
    """
    config = config or Config()
    if total_steps is not None:
        config = dataclasses.replace(config, total_steps=int(total_steps))
    if not isinstance(env, str) and not callable(env):
        raise ValueError(
            f"A3C needs a Gymnasium id or an env factory (envs per worker), got {env!r}"
        )
    probe = make_env(env)
    net_kwargs = policy_kwargs(probe.observation_space, probe.action_space)
    probe.close()
    with seeded(seed, config.torch_threads):
        monitor = Monitor(
            "a3c", env, config.total_steps, EvalSettings.of(config),
            seed=seed, callback=callback, progress=progress,
        )  # fmt: skip
        # Initialize theta_0, phi_0 in shared memory, and the optimizer's state beside them
        model = ActorCritic(**net_kwargs, hidden=config.hidden, shared=config.shared)
        model.share_memory()
        optimizer = SharedAdam(model.parameters(), lr=config.lr)
        snapshot = copy.deepcopy(model)  # what gets evaluated, kept and returned
        return _run(env, config, seed, monitor, model, optimizer, snapshot, net_kwargs)


def _run(env, c: Config, seed, monitor, model, optimizer, snapshot, net_kwargs) -> TrainResult:
    ctx = _context()
    counter, paused = ctx.Value("q", 0), ctx.Value("i", 0)
    running, stop = ctx.Event(), ctx.Event()
    running.set()
    messages = ctx.Queue()
    workers = [
        ctx.Process(
            target=_worker,
            args=(rank, env, c, seed, model, optimizer, counter, running, paused, stop, messages),
            daemon=True,  # never outlive the main process
        )
        for rank in range(c.num_workers)
    ]
    try:
        for worker in workers:
            worker.start()
        step, running_returns = 0, {}
        while step < c.total_steps:
            step = _drain(messages, monitor, step, running_returns)
            evaluation = monitor.evaluation
            due = evaluation is not None and step >= evaluation.next_due
            if due:  # pause the workers so the snapshot is the policy being evaluated
                running.clear()
                _wait_paused(paused, workers)
            snapshot.load_state_dict(model.state_dict())
            stop_now = monitor.after_update(step, snapshot.act, [snapshot])
            running.set()
            if stop_now:
                break
            if not any(w.is_alive() for w in workers):
                _drain(messages, monitor, step, running_returns)
                raise RuntimeError("every A3C worker exited before the budget was used")
    finally:
        _shut_down(workers, stop, running, messages)
    snapshot.load_state_dict(model.state_dict())
    kept = monitor.finish(step, snapshot.act, [snapshot])
    checkpoint = {
        "algo": "a3c",
        "config": dataclasses.asdict(c),
        "net_kwargs": net_kwargs,
        "state_dict": snapshot.state_dict(),
    }
    return TrainResult(snapshot.act, config=c, algo="a3c", checkpoint=checkpoint, **kept)


def _drain(messages, monitor: Monitor, step: int, running_returns: dict) -> int:
    """Read the workers' reports (wait briefly for the first); returns the newest step count."""
    timeout = 0.05
    while True:
        try:
            message = messages.get(timeout=timeout)
        except queue_module.Empty:
            return step
        timeout = 0.0
        if message[0] == "error":
            raise RuntimeError(f"A3C worker {message[1]} failed:\n{message[2]}")
        _, rank, at, reward, done, loss = message
        _track(monitor, running_returns, rank, reward, done, at)
        monitor.log(at, loss=loss, worker=rank)  # which worker's update landed at this step
        step = max(step, at)


def _track(monitor: Monitor, running_returns: dict, rank: int, reward, done, step: int) -> None:
    """Episode records from worker ``rank``'s rollout ``(T, envs)``: each worker's envs keep
    their own running returns and lengths here, and finished episodes go into the history."""
    history = monitor.history
    returns, lengths = running_returns.setdefault(
        rank, (np.zeros(reward.shape[1]), np.zeros(reward.shape[1], dtype=np.int64))
    )
    for t in range(len(reward)):
        returns += reward[t]
        lengths += 1
        for i in np.flatnonzero(done[t]):
            history.episodes.append(
                {
                    "step": int(step),
                    "episode_return": float(returns[i]),
                    "episode_length": int(lengths[i]),
                    "wall_time": history.wall_time(),
                }
            )
            returns[i], lengths[i] = 0.0, 0
    monitor.bar.update(step, history.episodes)


def _wait_paused(paused, workers, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = sum(w.is_alive() for w in workers)
        if paused.value >= alive:
            return
        time.sleep(0.001)


def _shut_down(workers, stop, running, messages, grace: float = 5.0) -> None:
    """Stop every worker: ask, wait a grace period, then end those still running."""
    stop.set()
    running.set()
    deadline = time.monotonic() + grace
    for worker in workers:
        if worker.pid is None:  # never started
            continue
        while worker.is_alive() and time.monotonic() < deadline:
            try:  # keep reading, so no worker blocks on a full pipe
                messages.get(timeout=0.01)
            except queue_module.Empty:
                pass
        if worker.is_alive():
            worker.terminate()
        worker.join(1.0)
    messages.close()


def load(path) -> TrainResult:
    """Rebuild the policy saved by ``TrainResult.save``."""
    payload = load_checkpoint(path, "a3c")
    config = config_from_dict(Config, payload["config"])
    model = ActorCritic(**payload["net_kwargs"], hidden=config.hidden, shared=config.shared)
    model.load_state_dict(payload["state_dict"])
    return TrainResult(model.act, payload.get("history", []), config, algo="a3c",
                       checkpoint=payload, kept_step=payload.get("kept_step"))  # fmt: skip
