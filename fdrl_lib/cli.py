"""The ``fdrl`` command line: train, grade, release, slides, sweep, bench, doctor.

Each subcommand's work lives in its own module; this file only parses arguments, and imports
lazily so that ``fdrl grade`` never pays for torch.
"""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fdrl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train an algorithm, evaluate it and save its policy")
    train.add_argument("algo", help="dqn, vpg, a2c, a3c, trpo, ppo, ddpg, td3, sac, ...")
    train.add_argument("env_id", help="a Gymnasium id, e.g. CartPole-v1")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--steps", type=int, default=None, help="env steps (default: the Config's)")
    train.add_argument("--out", default=None, help="folder for the saved policy and history")
    train.add_argument("--no-video", action="store_true", help="skip the GIF of the agent")

    grade = sub.add_parser("grade", help="score an exercise notebook (or a class's, with --batch)")
    grade.add_argument("notebook", nargs="?", help="the notebook to grade (with --all: a folder)")
    grade.add_argument(
        "--all",
        action="store_true",
        help="every exercise notebook of a folder (default exercises/)",
    )
    grade.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    grade.add_argument("--batch", metavar="DIR_OR_GLOB", help="grade every notebook in a folder")
    grade.add_argument("--out", default=None, help="with --batch: where gradebook and feedback go")
    grade.add_argument("--jobs", type=int, default=None, help="with --batch: parallel graders")
    grade.add_argument("--timeout", type=float, default=None, help="seconds per submission")
    grade.add_argument("--exercise", default=None, help="grade as this exercise, e.g. 01_mdps")
    grade.add_argument("--cell-timeout", type=float, default=None, help="seconds per notebook cell")
    grade.add_argument("--case-timeout", type=float, default=None, help="seconds per checked call")
    grade.add_argument("--memory-mb", type=int, default=None, help="memory cap of the kernel (MB)")

    release = sub.add_parser(
        "release", help="write exercises/ from solutions/ (stubs, no hidden tests)"
    )
    release.add_argument("--check", action="store_true", help="fail if exercises/ is out of date")

    slides = sub.add_parser("slides", help="build an offline reveal.js deck per lecture")
    slides.add_argument("notebooks", nargs="*", help="default: every notebook in lectures/")
    slides.add_argument("--out", default="build/slides")

    sweep = sub.add_parser("sweep", help="train many seeds and settings; one table, one plot")
    sweep.add_argument("algo")
    sweep.add_argument("env_id")
    sweep.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 (default 3)")
    sweep.add_argument(
        "--set", action="append", default=[], metavar="KEY=V1,V2", help="Config values to sweep"
    )
    sweep.add_argument("--steps", type=int, default=None, help="env steps per run")
    sweep.add_argument("--jobs", type=int, default=2, help="local processes (default 2)")
    sweep.add_argument("--ray", default=None, metavar="ADDRESS", help="'auto' or a Ray address")
    sweep.add_argument("--out", default=None, help="folder for sweep.{md,csv,json,png}")

    bench = sub.add_parser("bench", help="the speed benchmarks (benchmarks/run.py, from a clone)")
    bench.add_argument("algo", nargs="?", default="all")
    bench.add_argument("--seeds", type=int, default=5)
    bench.add_argument("--peer", default=None, help="e.g. sb3 (needs the bench extra)")

    sub.add_parser("doctor", help="check Python, packages, widgets, kernel, torch, chromium")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in LOCAL:
        run = LOCAL[args.command]
    elif args.command == "grade":
        from fdrl_lib.grading.runner import main_grade as run
    elif args.command == "release":
        from fdrl_lib.grading.release import main_release as run
    else:
        from fdrl_lib.slides import main_slides as run
    return int(run(args) or 0)


def main_train(args) -> int:
    """``fdrl train ALGO ENV_ID [--seed] [--steps] [--out]``: train, evaluate, save."""
    import importlib
    import json
    from pathlib import Path

    from fdrl_lib import algos
    from fdrl_lib.training import evaluate

    if args.algo not in algos.available():
        print(f"unknown algorithm {args.algo!r}; available: {', '.join(algos.available())}")
        return 2
    module = importlib.import_module(f"fdrl_lib.algos.{args.algo}")
    try:
        result = module.train(args.env_id, seed=args.seed, total_steps=args.steps, progress=True)
    except ValueError as error:  # bad env id, bad steps: say what, no traceback
        print(f"fdrl train: {error}")
        if "cannot make the environment" in str(error):
            print(f"reference tasks: {REFERENCE_TASKS}; any Gymnasium id with a matching action")
            print("space works (python -c 'import gymnasium; gymnasium.pprint_registry()')")
        return 2
    if result.kept_step is not None:
        print(
            f"kept the policy of step {result.kept_step:,} "
            f"(evaluation return {result.kept_return:.1f} during training)"
        )
    score = evaluate(result.policy, args.env_id, episodes=10)
    print(
        f"{args.algo} on {args.env_id} (seed {args.seed}): fresh evaluation of the kept policy, "
        f"mean return over 10 episodes {score:.1f}"
    )
    out = Path(args.out or f"runs/{args.algo}-{args.env_id.replace('/', '_')}-seed{args.seed}")
    path = result.save(out / "policy.pt")
    (out / "history.json").write_text(json.dumps(result.history))
    (out / "logs.json").write_text(json.dumps(result.logs))
    saved = [path, out / "history.json", out / "logs.json", _curve_png(result, args, out)]
    if not getattr(args, "no_video", False):
        saved.append(_agent_gif(result.policy, args.env_id, out / "agent.gif"))
    print("saved " + ", ".join(str(p) for p in saved if p is not None))
    return 0


REFERENCE_TASKS = (
    "CartPole-v1 (dqn, vpg, a2c, a3c, trpo, ppo), Pendulum-v1 (ddpg, td3, sac, mbrl, ...)"
)


def _curve_png(result, args, out):
    """Episode returns and training-time evaluations against env steps, with the kept step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    if result.history:
        ax.plot(
            [h["step"] for h in result.history],
            [h["episode_return"] for h in result.history],
            lw=0.8, alpha=0.5, label="training episodes",
        )  # fmt: skip
    evals = result.logs.get("eval_return", [])
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="evaluation (greedy policy)")
    if result.kept_step is not None:
        ax.axvline(result.kept_step, color="gray", ls="--", lw=1, label="kept policy")
    ax.set(xlabel="env steps", ylabel="return", title=f"{args.algo} on {args.env_id}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = out / "curve.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _agent_gif(policy, env_id: str, path, max_steps: int = 500, fps: int = 30):
    """One episode of the policy as a GIF from rgb_array frames: no X server, no ffmpeg."""
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders off-screen
    import gymnasium as gym

    from fdrl_lib.plotting import animate, rollout_frames

    try:
        env = gym.make(env_id, render_mode="rgb_array")
    except Exception as error:  # an env without rgb_array rendering: skip the video, say why
        print(f"no GIF: {env_id} cannot render rgb_array frames ({error})")
        return None
    if hasattr(policy, "reset"):
        policy.reset()
    frames = rollout_frames(env, policy, max_steps=max_steps, seed=123)
    env.close()
    path.write_bytes(animate(frames, fps=fps).data)  # the notebooks' GIF maker
    return path


def main_sweep(args) -> int:
    """``fdrl sweep ALGO ENV --seeds N --set key=v1,v2``: local processes, or Ray."""
    from pathlib import Path

    from fdrl_lib import algos, sweep
    from fdrl_lib.training import reward_threshold

    if args.algo not in algos.available():
        print(f"unknown algorithm {args.algo!r}; available: {', '.join(algos.available())}")
        return 2
    try:
        settings = sweep.parse_sets(args.algo, args.set)
    except ValueError as error:
        print(f"fdrl sweep: {error}")
        return 2
    jobs = [
        sweep.Job(args.algo, args.env_id, seed, setting, args.steps)
        for setting in settings
        for seed in range(args.seeds)
    ]
    from tqdm.auto import tqdm

    where = f"Ray at {args.ray}" if args.ray else f"{args.jobs} local processes"
    print(f"{len(jobs)} runs ({len(settings)} settings x {args.seeds} seeds) on {where}")
    bar = tqdm(total=len(jobs), desc="sweep", unit="run")
    try:
        results = sweep.run_sweep(
            jobs, workers=args.jobs, ray=args.ray, on_done=lambda r: bar.update()
        )
    except ValueError as error:
        print(f"fdrl sweep: {error}")
        return 2
    finally:
        bar.close()
    out = Path(args.out or f"runs/sweep-{args.algo}-{args.env_id.replace('/', '_')}")
    threshold = reward_threshold(args.env_id)
    paths = sweep.write_outputs(results, out, f"{args.algo} on {args.env_id}", threshold)
    print(sweep.summary_table(results, threshold))
    print("saved " + ", ".join(str(p) for p in paths.values()))
    return 0


def main_bench(args) -> int:
    """``fdrl bench``: benchmarks/run.py of a repository checkout (it is not installed)."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
    if not script.exists():
        print("fdrl bench: the benchmarks live in the repository (benchmarks/run.py); clone it")
        return 2
    command = [sys.executable, str(script), args.algo, "--seeds", str(args.seeds)]
    if args.peer:
        command += ["--peer", args.peer]
    return subprocess.call(command)


def main_doctor(args) -> int:
    """``fdrl doctor``: what is installed, what is wrong, how to fix it. Exit 1 on a problem."""
    from fdrl_lib.doctor import report

    problems = 0
    for ok, what, fix in report():
        mark = {True: "ok ", False: "BAD", None: " - "}[ok]
        print(f"{mark}  {what}" + ("" if ok else f"\n     fix: {fix}"))
        problems += ok is False
    print("all good" if not problems else f"{problems} problem(s)")
    return 1 if problems else 0


LOCAL = {"train": main_train, "sweep": main_sweep, "bench": main_bench, "doctor": main_doctor}


if __name__ == "__main__":
    sys.exit(main())
