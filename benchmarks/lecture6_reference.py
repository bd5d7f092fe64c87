"""Lecture 6's solve table and the notebook's shipped reference curves.

    python benchmarks/lecture6_reference.py run mbrl 0 >> runs.jsonl      # one seed, one line
    python benchmarks/lecture6_reference.py run trpo 0 >> runs.jsonl      # the model-free curve
    python benchmarks/lecture6_reference.py seeds mbrl,me_trpo 10 >> runs.jsonl  # one process
    python benchmarks/lecture6_reference.py summarise runs.jsonl          # table + JSON

``run`` trains with the module's ``Config()`` defaults on Pendulum-v1 (model-free TRPO, the
comparison, gets a 30k-step budget with 4 envs x 512 steps per batch, stated below), evaluates
the returned policy on a fresh 10-episode evaluation (seed 123) and prints one JSON line: kept
step, fresh return, training seconds (wall clock, evaluation excluded), CPU seconds of the whole
run (one torch thread: the time of one core, which a shared machine's wall clock hides) and the
evaluation curve. ``summarise`` prints a markdown table and writes
``fdrl_lib/widgets/data/lecture6_reference.json``, which the notebook draws its runs over.
Runs take minutes each; start them in the background with ``nice`` on a shared machine.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "fdrl_lib" / "widgets" / "data" / "lecture6_reference.json"
KEPT_LOGS = ("eval_return", "imagined_return", "adapted_return", "policy_updates", "model_loss")


def run(algo: str, seed: int) -> dict:
    from fdrl_lib import algos
    from fdrl_lib.training import evaluate

    warnings.filterwarnings("ignore", category=UserWarning)
    module = getattr(algos, algo)
    config = None
    if algo == "trpo":  # model-free reference: more envs per batch than CartPole's defaults
        config = module.Config(total_steps=30_000, num_envs=4, rollout_steps=512, eval_every=2_000)
    start, cpu = time.time(), time.process_time()
    result = module.train("Pendulum-v1", config, seed=seed, progress=False)
    cpu = time.process_time() - cpu  # one torch thread: the seconds of one core this run used
    return {
        "algo": algo,
        "seed": seed,
        "kept_step": result.kept_step,
        "kept_return": result.kept_return,
        "fresh": evaluate(result.policy, "Pendulum-v1", episodes=10, seed=123),
        "train_seconds": result.logs["train_seconds"][-1][1],
        "wall_seconds": time.time() - start,
        "cpu_seconds": cpu,
        "curve": result.logs["eval_return"],
        "logs": {k: v for k, v in result.logs.items() if k in KEPT_LOGS},
    }


def summarise(paths: list[str]) -> str:
    rows = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line]
    rows = sorted((r for r in rows if "curve" in r), key=lambda r: (r["algo"], r["seed"]))
    curves: dict[str, list] = {}
    summary: dict[str, dict] = {}
    lines = [
        "| algo | seed | kept step | fresh return | training s (wall) | CPU s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in sorted(rows, key=lambda r: (r["algo"], r["seed"])):
        curves.setdefault(r["algo"], []).append(
            [[s for s, _ in r["curve"]], [v for _, v in r["curve"]]]
        )
        lines.append(
            f"| {r['algo']} | {r['seed']} | {r['kept_step']} | {r['fresh']:.0f} | "
            f"{r['train_seconds']:.0f} | {r.get('cpu_seconds', float('nan')):.0f} |"
        )
    for algo in curves:
        mine = [r for r in rows if r["algo"] == algo]
        solved = sum(r["fresh"] >= -200 for r in mine)
        steps = sorted(r["kept_step"] for r in mine)
        summary[algo] = {"median_steps": steps[len(steps) // 2], "solved": f"{solved}/{len(mine)}"}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    runs = [{k: r[k] for k in r if k != "curve"} for r in rows]
    OUT.write_text(json.dumps({"curves": curves, "summary": summary, "runs": runs}))
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1] == "run":
        print(json.dumps(run(sys.argv[2], int(sys.argv[3]))), flush=True)
    elif sys.argv[1] == "seeds":  # seeds 0..N-1 of each algorithm, in sequence, one process
        import os

        from fdrl_lib import lectures

        load, start, cpu = os.getloadavg()[0], time.perf_counter(), time.process_time()
        for algo in sys.argv[2].split(","):
            for seed in range(int(sys.argv[3])):
                print(json.dumps(run(algo, seed)), flush=True)
        timing = lectures.measured(time.perf_counter() - start, time.process_time() - cpu, load)
        command = f"benchmarks/lecture6_reference.py seeds {sys.argv[2]} {sys.argv[3]}"
        lectures.record(command, timing)
        lectures.refresh()
    else:
        print(summarise(sys.argv[2:]))
