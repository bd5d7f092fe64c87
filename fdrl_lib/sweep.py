"""Seed and setting sweeps: ``fdrl sweep ALGO ENV --seeds N --set key=v1,v2 ...``.

Every combination of the ``--set`` values is trained on seeds ``0 .. N-1``. Runs go to local
processes by default (``jobs`` at a time) or to a Ray cluster (``ray="auto"`` or an address;
Ray is the optional ``sweep`` extra). Each run reports what the course judges an agent by: the
policy ``train`` returns, evaluated afresh (10 episodes, seeds 123..132). The results land in one
table (markdown, CSV, JSON) and one plot of training-time evaluations, mean and spread over seeds.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import importlib
import itertools
import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class Job:
    algo: str
    env_id: str
    seed: int
    overrides: tuple[tuple[str, Any], ...]  # Config fields set by --set
    total_steps: int | None = None

    @property
    def setting(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.overrides) or "defaults"


def parse_sets(algo: str, sets: Sequence[str]) -> list[tuple[tuple[str, Any], ...]]:
    """``["lr=1e-3,3e-3", "double=True,False"]`` -> every combination, values typed like the
    Config field they set. Raises ValueError naming an unknown field or a malformed item."""
    config_cls = importlib.import_module(f"fdrl_lib.algos.{algo}").Config
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    axes: list[list[tuple[str, Any]]] = []
    for item in sets:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not values:
            raise ValueError(f"--set {item!r}: expected key=value[,value...]")
        if key not in fields:
            raise ValueError(
                f"--set {key}: {algo}.Config has no field {key!r}; fields: {', '.join(fields)}"
            )
        axes.append([(key, _typed(v.strip(), getattr(config_cls(), key))) for v in _split(values)])
    return [tuple(combo) for combo in itertools.product(*axes)] or [()]


def _split(values: str) -> list[str]:
    """Split on commas outside brackets: ``hidden=(64,64),(32,)`` is two values."""
    out, depth, current = [], 0, ""
    for ch in values:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    return out + [current]


def _typed(text: str, default: Any) -> Any:
    if isinstance(default, str):
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as error:
        raise ValueError(f"cannot read {text!r} as a value like {default!r}") from error
    if isinstance(default, bool) or default is None:
        return value
    if isinstance(default, float) and isinstance(value, int):
        return float(value)
    if isinstance(default, tuple) and isinstance(value, (list, tuple, int)):
        return tuple(value) if not isinstance(value, int) else (value,)
    return value


def run_job(job: Job) -> dict[str, Any]:
    """Train one run and evaluate its returned policy afresh; a plain dict (crosses processes)."""
    import torch

    from fdrl_lib.training import evaluate

    torch.set_num_threads(1)
    module = importlib.import_module(f"fdrl_lib.algos.{job.algo}")
    config = dataclasses.replace(module.Config(), **dict(job.overrides))
    result = module.train(
        job.env_id, config, seed=job.seed, total_steps=job.total_steps, progress=False
    )
    seconds = result.logs.get("train_seconds", [])
    return {
        "setting": job.setting,
        "seed": job.seed,
        "fresh_return": evaluate(result.policy, job.env_id, episodes=10, seed=123),
        "kept_step": result.kept_step,
        "kept_return": result.kept_return,
        "train_seconds": seconds[-1][1] if seconds else None,
        "curve": result.logs.get("eval_return", []),
    }


def run_sweep(
    jobs: Sequence[Job],
    workers: int = 2,
    ray: str | None = None,
    on_done: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run every job; on local processes (``workers`` at a time) or on Ray (``ray`` address)."""
    if ray:
        return _run_ray(jobs, ray, on_done)
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # torch and fork do not mix safely
    results = []
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        for future in concurrent.futures.as_completed(futures):
            results.append(future.result())
            if on_done:
                on_done(results[-1])
    return sorted(results, key=lambda r: (r["setting"], r["seed"]))


def _run_ray(jobs: Sequence[Job], address: str, on_done) -> list[dict]:
    try:
        import ray
    except ImportError as error:
        raise ValueError(
            "--ray needs Ray: pip install 'fdrl[sweep]' (or run without --ray: local processes)"
        ) from error
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, log_to_driver=False, include_dashboard=False)
    try:
        remote = ray.remote(num_cpus=1)(run_job)
        pending = [remote.remote(job) for job in jobs]
        results = []
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            results.append(ray.get(done[0]))
            if on_done:
                on_done(results[-1])
    finally:
        if started:
            ray.shutdown()
    return sorted(results, key=lambda r: (r["setting"], r["seed"]))


def common_parts(results: Sequence[dict]) -> list[str]:
    """The ``key=value`` parts every setting shares (shown once, in the title)."""
    parts = [r["setting"].split(", ") for r in results]
    return [p for p in parts[0] if all(p in other for other in parts)] if parts else []


def _label(setting: str, common: Sequence[str]) -> str:
    return ", ".join(p for p in setting.split(", ") if p not in common) or setting


def summary_table(results: Sequence[dict], threshold: float | None) -> str:
    """One row per setting: fresh return mean (min-max), seeds solved, median kept step."""
    common = common_parts(results) if len({r["setting"] for r in results}) > 1 else []
    lines = [
        "| setting | seeds | fresh return: mean (min-max) | solved | kept step: median |",
        "|---|---|---|---|---|",
    ]
    for setting in dict.fromkeys(r["setting"] for r in results):
        rows = [r for r in results if r["setting"] == setting]
        fresh = [r["fresh_return"] for r in rows]
        solved = "-" if threshold is None else f"{sum(f >= threshold for f in fresh)}/{len(rows)}"
        kept = [r["kept_step"] for r in rows if r["kept_step"] is not None]
        kept_cell = f"{statistics.median(kept):,.0f}" if kept else "-"
        lines.append(
            f"| {_label(setting, common)} | {len(rows)} | {statistics.mean(fresh):.1f} "
            f"({min(fresh):.1f}-{max(fresh):.1f}) | {solved} | {kept_cell} |"
        )
    return "\n".join(lines)


def write_outputs(results: Sequence[dict], out: Path, title: str, threshold) -> dict[str, Path]:
    """sweep.md, sweep.csv, sweep.json and sweep.png (evaluation curves, spread over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fdrl_lib.plotting import learning_curve

    out.mkdir(parents=True, exist_ok=True)
    common = common_parts(results) if len({r["setting"] for r in results}) > 1 else []
    if common:
        title += f" ({', '.join(common)})"
    paths = {k: out / f"sweep.{k}" for k in ("md", "csv", "json", "png")}
    paths["md"].write_text(f"### {title}\n\n{summary_table(results, threshold)}\n")
    paths["json"].write_text(json.dumps(list(results), indent=1))
    with paths["csv"].open("w", newline="") as f:
        columns = ["setting", "seed", "fresh_return", "kept_step", "kept_return", "train_seconds"]
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for setting in dict.fromkeys(r["setting"] for r in results):
        curves = [
            [{"step": s, "eval_return": v} for s, v in r["curve"]]
            for r in results
            if r["setting"] == setting and r["curve"]
        ]
        if curves:
            learning_curve(curves, ax=ax, label=_label(setting, common), key="eval_return")
    if threshold is not None:
        ax.axhline(threshold, color="gray", ls="--", lw=1)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("evaluation return (training-time)")
    fig.tight_layout()
    fig.savefig(paths["png"], dpi=110)
    plt.close(fig)
    return paths
