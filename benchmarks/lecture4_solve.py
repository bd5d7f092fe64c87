"""The API.md solve bar for lecture 4: Config() defaults, seeds 0-9, the returned policy on a
fresh 10-episode evaluation (seed 123), plus a 50-episode check (seed 1000).

    python benchmarks/lecture4_solve.py trpo CartPole-v1 - out.json
    python benchmarks/lecture4_solve.py ppo CartPole-v1 clip out.json      # or kl
    python benchmarks/lecture4_solve.py ppo Pendulum-v1 clip out.json 0,1,2  # some seeds
    python benchmarks/lecture4_solve.py table out.json -200   # the markdown table of a run
"""

import json
import sys
import time

import torch

from fdrl_lib import algos, evaluate


def table(path: str, threshold: float) -> str:
    """The results file of a run as the markdown table of ``benchmarks/results/*.solve.md``."""
    rows = sorted(json.load(open(path)), key=lambda row: row["seed"])
    solved = sum(row["fresh"] >= threshold for row in rows)
    lines = [
        f"{solved}/{len(rows)} seeds reach {threshold:g} on the fresh evaluation",
        "",
        "| seed | kept step | kept (training eval) | fresh, 10 episodes (seed 123) "
        "| 50 episodes (seed 1000) | training s to kept | wall s (run + evaluations) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['seed']} | {row['kept_step']:,} | {row['kept_return']:.1f} "
            f"| {row['fresh']:.1f} | {row['wide50']:.1f} | {row['train_seconds']:.0f} "
            f"| {row['wall']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1] == "table":
        print(table(sys.argv[2], float(sys.argv[3])))
        sys.exit()
    torch.set_num_threads(1)
    algo, env, variant, out = sys.argv[1:5]
    seeds = [int(s) for s in sys.argv[5].split(",")] if len(sys.argv) > 5 else list(range(10))
    module = getattr(algos, algo)
    rows = []
    for seed in seeds:
        config = module.Config(variant=variant) if algo == "ppo" else module.Config()
        t0 = time.time()
        result = module.train(env, config, seed=seed, progress=False)
        row = dict(
            seed=seed,
            kept_step=result.kept_step,
            kept_return=result.kept_return,
            fresh=evaluate(result.policy, env, episodes=10, seed=123),
            wide50=evaluate(result.policy, env, episodes=50, seed=1000),
            train_seconds=dict(result.logs["train_seconds"]).get(result.kept_step),
            wall=time.time() - t0,
            last_step=result.logs["eval_return"][-1][0],
            curve=[(step, round(score, 1)) for step, score in result.logs["eval_return"]],
        )
        rows.append(row)
        print(json.dumps(row), flush=True)
        with open(out, "w") as f:
            json.dump(rows, f, indent=1)
