"""Run the lecture notebooks and save them as a learner should first meet them.

    python -m fdrl_lib.lectures                      # every lectures/*.ipynb, full mode
    python -m fdrl_lib.lectures lectures/02_dqn.ipynb --fast
    python -m fdrl_lib.lectures solutions/*.ipynb --no-save   # time them only
    python -m fdrl_lib.lectures --table              # refresh README's and START_HERE's tables

Every run from the command line records how long it took, per mode (full or fast), in
``docs/run-times.json``: wall seconds, the CPU seconds of the kernel (and of the processes it
started and waited for), the load average before it and the machine's cores; README's run-time
table and the start page's lecture table are rebuilt from it. On a quiet machine a one-thread
notebook's wall time is about its CPU time; on a busy one the CPU seconds are what an instructor
should expect.

A saved notebook must open in JupyterLab unmodified and without broken outputs, so after the run:

* its ``kernelspec`` and ``language_info`` are the ones the kernel reports (JupyterLab rewrites
  both when it connects, and marks the notebook modified when they differ);
* live widget views are dropped from the outputs, keeping their text fallback (a one-line "run
  this cell" note) under the static picture: a widget view saved without its kernel shows "Error
  displaying widget: model not found";
* run-time metadata (papermill's, execution timings, saved widget state) is removed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

from fdrl_lib.widgets import STATIC_NOTE

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
RUNTIME_METADATA = ("papermill", "widgets")
RUNTIME_CELL_METADATA = ("papermill", "execution", "ExecuteTime", "collapsed", "scrolled")


def clean_outputs(nb: Any) -> Any:
    """Drop widget views (keeping any text fallback) and run-time metadata, in place."""
    for key in RUNTIME_METADATA:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in RUNTIME_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            data = output.get("data")
            if data is not None and WIDGET_VIEW in data:
                del data[WIDGET_VIEW]
                plain = "".join(data.get("text/plain", ""))
                if set(data) <= {"text/plain"} and plain != STATIC_NOTE:
                    # not our "run this cell" note: a progress bar ("dqn: 0%|...", frozen at its
                    # first frame) or a widget's "HBox(children=...)" says nothing true
                    continue
            kept.append(output)
        cell.outputs = kept
    return nb


def kernel_metadata(kernel_name: str = "python3") -> tuple[dict[str, str], dict[str, Any]]:
    """The ``kernelspec`` and ``language_info`` that JupyterLab will write for this kernel."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name=kernel_name)
    try:
        info = client.kernel_info(reply=True, timeout=60)["content"]["language_info"]
        spec = manager.kernel_spec
        kernelspec = {
            "display_name": spec.display_name,
            "language": spec.language,
            "name": kernel_name,
        }
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return kernelspec, info


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(wall_s: float, cpu_s: float, load: float, fast: bool = False) -> dict[str, Any]:
    """One timing record: seconds, the load average before, the machine's cores, the date."""
    return {
        "mode": "fast" if fast else "full",
        "wall_s": round(wall_s, 1),
        "cpu_s": round(cpu_s, 1),
        "load": round(load, 1),
        "cores": os.cpu_count(),
        "date": datetime.date.today().isoformat(),
    }


def run(
    path: str | Path, fast: bool = False, kernel_name: str = "python3", save: bool = True
) -> dict[str, Any]:
    """Execute ``path`` top to bottom on a fresh kernel, clean it and (``save``) save it.

    Returns the timing: ``wall_s``, ``cpu_s`` (the kernel's CPU seconds and those of the
    processes it waited for: it is a child of this process, reaped when it shuts down),
    ``load`` (1-minute load average before), ``cores``, ``date`` and ``mode``.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    os.environ["FDRL_FAST"] = "1" if fast else "0"
    load, cpu_before, start = os.getloadavg()[0], _children_cpu_seconds(), time.perf_counter()
    NotebookClient(
        nb,
        kernel_name=kernel_name,
        timeout=None,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    timing = measured(time.perf_counter() - start, _children_cpu_seconds() - cpu_before, load, fast)
    if save:
        kernelspec, language_info = kernel_metadata(kernel_name)
        nb.metadata["kernelspec"] = kernelspec
        nb.metadata["language_info"] = language_info
        nbformat.write(clean_outputs(nb), path)
    return timing


ROOT = Path(__file__).resolve().parents[1]
TIMES = ROOT / "docs" / "run-times.json"
README = ROOT / "README.md"
TABLE_START, TABLE_END = "<!-- run-times:start -->", "<!-- run-times:end -->"


def record(what: str | Path, timing: dict[str, Any], times: Path = TIMES) -> None:
    """Keep ``timing`` as the latest run of ``what`` (a notebook's path, or a command such as
    ``benchmarks/run.py sac --seeds 5 --peer sb3``) in its mode (full or fast) in ``times``."""
    key = str(what)
    if Path(what).exists():
        path = Path(what).resolve()
        key = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.as_posix()
    data = json.loads(times.read_text()) if times.exists() else {}
    data.setdefault(key, {})[timing["mode"]] = timing
    times.parent.mkdir(parents=True, exist_ok=True)
    times.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n")


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 600 else f"{seconds / 60:.0f} min"


def _load(times: Path) -> dict[str, dict[str, dict[str, Any]]]:
    return json.loads(times.read_text()) if times.exists() else {}


def _cpu(runs: dict[str, dict[str, Any]], mode: str) -> str:
    return _minutes(runs[mode]["cpu_s"]) if mode in runs else "-"


def times_table(times: Path = TIMES) -> str:
    """The README's block: every recorded run, full mode (CPU and wall time) and fast mode."""
    lines = [
        TABLE_START,
        "<!-- generated by `python -m fdrl_lib.lectures --table` from docs/run-times.json -->",
        "",
        "| notebook or benchmark | full mode: CPU | full mode: wall (load, cores) "
        "| fast mode: CPU | measured |",
        "|---|---|---|---|---|",
    ]
    for key, runs in _load(times).items():
        full = runs.get("full")
        wall = f"{_minutes(full['wall_s'])} ({full['load']:g}, {full['cores']})" if full else "-"
        date = max(run["date"] for run in runs.values())
        lines.append(f"| `{key}` | {_cpu(runs, 'full')} | {wall} | {_cpu(runs, 'fast')} | {date} |")
    return "\n".join([*lines, TABLE_END])


# The start page's table: (number, notebook stem, title, the lectures it builds on).
LECTURES = (
    (1, "01_mdps", "MDPs and exact solution methods", "-"),
    (2, "02_dqn", "Deep Q-learning", "1"),
    (3, "03_policy_gradients", "Policy gradients, A2C/A3C, GAE", "1"),
    (4, "04_trpo_ppo", "TRPO and PPO", "3"),
    (5, "05_ddpg_sac", "DDPG, SAC and TD3", "1 (soft values), 2 (replay, targets)"),
    (6, "06_model_based", "Model-based RL, ME-TRPO, MB-MPO", "4 (TRPO)"),
)
START_PAGE = ROOT / "START_HERE.ipynb"
START_TABLE = ("<!-- lectures:start -->", "<!-- lectures:end -->")


def start_table(times: Path = TIMES, root: Path = ROOT) -> str:
    """The start page's list of lectures, exercises and solutions, with measured run times."""
    data = _load(times)
    lines = [
        START_TABLE[0],
        "| # | lecture | builds on | exercise | solution | lecture runs (CPU): full / fast |",
        "|---|---|---|---|---|---|",
    ]
    for number, stem, title, needs in LECTURES:
        links = [
            f"[{folder}/{stem}.ipynb]({folder}/{stem}.ipynb)"
            if (root / folder / f"{stem}.ipynb").exists()
            else "not yet"
            for folder in ("exercises", "solutions")
        ]
        runs = data.get(f"lectures/{stem}.ipynb", {})
        lines.append(
            f"| {number} | [{title}](lectures/{stem}.ipynb) | {needs} | {links[0]} | {links[1]} "
            f"| {_cpu(runs, 'full')} / {_cpu(runs, 'fast')} |"
        )
    return "\n".join([*lines, START_TABLE[1]])


def _between(text: str, marks: tuple[str, str], made: str) -> str:
    if marks[0] not in text or marks[1] not in text:
        raise ValueError(f"no {marks[0]} ... {marks[1]} block to fill")
    head, rest = text.split(marks[0], 1)
    return head + made + rest.split(marks[1], 1)[1]


def with_start_table(nb: Any, times: Path = TIMES) -> Any:
    """The start page notebook with its first cell's table rebuilt, in place."""
    cell = nb.cells[0]
    cell.source = _between(cell.source, START_TABLE, start_table(times))
    return nb


def refresh(times: Path = TIMES) -> None:
    """Rewrite README's run-time table and the start page's table from ``times``."""
    import nbformat

    README.write_text(with_table(README.read_text(), times))
    nb = nbformat.read(START_PAGE, as_version=4)
    nbformat.write(with_start_table(nb, times), START_PAGE)


def with_table(text: str, times: Path = TIMES) -> str:
    """``text`` (the README) with its run-time block replaced by the current one."""
    return _between(text, (TABLE_START, TABLE_END), times_table(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fdrl_lib.lectures", description=__doc__)
    parser.add_argument("notebooks", nargs="*", help="default: every lectures/*.ipynb")
    parser.add_argument("--fast", action="store_true", help="FDRL_FAST=1 (small budgets)")
    parser.add_argument("--no-save", action="store_true", help="run and time only")
    parser.add_argument(
        "--table", action="store_true", help="refresh README's and START_HERE's tables"
    )
    args = parser.parse_args(argv)
    if args.table:
        refresh()
        return 0
    notebooks = args.notebooks or sorted(str(p) for p in (ROOT / "lectures").glob("*.ipynb"))
    for notebook in notebooks:
        timing = run(notebook, fast=args.fast, save=not args.no_save)
        record(notebook, timing)
        saved = "not saved" if args.no_save else "saved"
        print(
            f"{notebook}: {timing['wall_s']:.0f} s wall, {timing['cpu_s']:.0f} s CPU "
            f"({timing['mode']} mode, load {timing['load']:g}), {saved}",
            flush=True,
        )
    refresh()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
