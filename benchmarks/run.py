"""Run an algorithm on its reference task for several seeds; report steps and seconds to solve.

    python benchmarks/run.py dqn --seeds 5               # our DQN on CartPole-v1
    python benchmarks/run.py dqn --seeds 5 --peer sb3    # side by side with Stable-Baselines3
    python benchmarks/run.py mbrl --seeds 5 --peer ppo   # model-based against our own PPO
    python benchmarks/run.py all                         # every algorithm that exists so far
    python benchmarks/run.py mbrl --jobs 10 --peer ppo   # seeds in parallel processes

``--jobs N`` runs the seeds (and the peer's) in N processes at once: for a machine with many
cores. Its seconds then share the machine, and README's run-time table is not updated.

Writes ``<algo>.md`` (a markdown table) and ``<algo>.png`` (learning curves: mean and min-max
over seeds) to ``--out`` (default ``benchmarks/results/``). See ``_harness.py`` for the protocol.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import importlib.util
import json
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path

from fdrl_lib import lectures

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as harness  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def _cpu_seconds() -> float:
    """CPU seconds of this process and the ones it started and waited for (A3C's workers)."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _available(algo: str) -> bool:
    return importlib.util.find_spec(f"fdrl_lib.algos.{algo}") is not None


def benchmark(
    algo: str, seeds: int, peer: str | None, out: Path, max_steps: int | None, jobs: int = 1
) -> str:
    task = harness.TASKS[algo]
    if max_steps:
        task = dataclasses.replace(task, max_steps=max_steps)
    libraries = {"fdrl": harness.run_fdrl}
    if peer:
        libraries[peer] = harness.PEERS[peer]
    results: dict[str, list[harness.Run]] = {name: [] for name in libraries}
    harness.warm_up()  # one-time imports off every clock
    load_before = os.getloadavg()[0]
    # interleaved, so a busy machine slows every library alike
    work = [(name, seed) for seed in range(seeds) for name in libraries]
    if jobs > 1:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
            futures = [pool.submit(libraries[name], algo, seed, task) for name, seed in work]
            runs = [future.result() for future in futures]
    else:
        runs = (libraries[name](algo, seed, task) for name, seed in work)
    for (name, seed), run in zip(work, runs, strict=True):
        results[name].append(run)
        shown = f"{run.steps} steps, {run.seconds:.1f} s" if run.solved else "not solved"
        print(f"{algo} {name} seed {seed}: {shown}", flush=True)
    table = harness.markdown_table(task, algo, results)
    if peer:
        ours, theirs = harness.summarize(results["fdrl"]), harness.summarize(results[peer])
        if "steps" in ours and "steps" in theirs:
            table += (
                f"\n\nMedian ratio fdrl / {peer}: env steps "
                f"{ours['steps'][0] / theirs['steps'][0]:.2f}, training seconds "
                f"{ours['seconds'][0] / theirs['seconds'][0]:.2f}"
            )
    if peer == "sb3":
        import stable_baselines3
        import torch

        table += f"\n\nStable-Baselines3 {stable_baselines3.__version__}, torch {torch.__version__}"
        table += ", one thread each."
    if peer == "ppo":
        table += "\n\nThe peer is our own PPO (`fdrl_lib.algos.ppo`: `Config()`, its own budget)."
    if jobs > 1:
        table += f"\n\nSeeds run {jobs} at a time in parallel processes (`--jobs {jobs}`)."
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{algo}.md").write_text(table + "\n")
    raw = {k: [dataclasses.asdict(r) for r in v] for k, v in results.items()}
    (out / f"{algo}.json").write_text(json.dumps(raw, indent=1))
    machine = harness.machine(load_before)
    (out / f"{algo}.machine.json").write_text(json.dumps(machine, indent=1))
    harness.plot_curves(task, algo, results, out / f"{algo}.png")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("algo", help="an algorithm (dqn, ppo, ...) or 'all'")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 (default 5)")
    parser.add_argument("--peer", choices=sorted(harness.PEERS), help="run a peer side by side")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--max-steps", type=int, default=None, help="override the step budget")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, in processes")
    args = parser.parse_args(argv)
    if args.algo == "all":
        algos = [a for a in harness.TASKS if _available(a)]
    elif args.algo in harness.TASKS:
        algos = [args.algo]
    else:
        parser.error(f"unknown algorithm {args.algo!r}; choose from {sorted(harness.TASKS)} or all")
    for algo in algos:
        if not _available(algo):
            print(f"fdrl_lib.algos.{algo} does not exist yet", file=sys.stderr)
            return 2
        task = harness.TASKS[algo]
        peer = args.peer if args.peer and harness.has_peer(args.peer, algo, task.env_id) else None
        load, start, cpu = os.getloadavg()[0], time.perf_counter(), _cpu_seconds()
        print(benchmark(algo, args.seeds, peer, args.out, args.max_steps, args.jobs), flush=True)
        if args.out == DEFAULT_OUT and args.max_steps is None and args.jobs == 1:  # README's times
            command = f"benchmarks/run.py {algo} --seeds {args.seeds}"
            timing = lectures.measured(time.perf_counter() - start, _cpu_seconds() - cpu, load)
            lectures.record(command + (f" --peer {peer}" if peer else ""), timing)
            lectures.refresh()
    return 0


if __name__ == "__main__":
    sys.exit(main())
