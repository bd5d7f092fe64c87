"""The ``fdrl`` command line: ``fdrl train``, ``fdrl grade``, ``fdrl release``, ``fdrl slides``.

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

    grade = sub.add_parser("grade", help="score an exercise notebook (or a class's, with --batch)")
    grade.add_argument("notebook", nargs="?", help="the notebook to grade")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "train":
        run = main_train
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
    (out / "history.json").write_text(json.dumps({"episodes": result.history, "logs": result.logs}))
    print(f"saved {path} and {out / 'history.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
