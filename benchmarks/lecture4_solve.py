"""The API.md solve bar for lecture 4: Config() defaults, seeds 0-9, the returned policy on a
fresh 10-episode evaluation (seed 123), plus a 50-episode check (seed 1000).

    python benchmarks/lecture4_solve.py trpo CartPole-v1 - out.json
    python benchmarks/lecture4_solve.py ppo CartPole-v1 clip out.json      # or kl
    python benchmarks/lecture4_solve.py ppo Pendulum-v1 clip out.json 0,1,2  # some seeds
"""

import json
import sys
import time

import torch

from fdrl_lib import algos, evaluate

if __name__ == "__main__":
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
