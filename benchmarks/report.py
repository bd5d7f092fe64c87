"""One table for every algorithm: the report at the top of ``benchmarks/README.md``.

    python benchmarks/report.py            # rewrite the generated block of benchmarks/README.md
    python benchmarks/report.py --check    # exit 1 if the README's block is out of date
    python benchmarks/report.py --print    # print the block only

It reads what ``run.py`` wrote (``results/<algo>.json``: every seed of every library) and writes
env steps and training seconds to the threshold, median (min-max) over the solved seeds, the
ratio of the medians to the peer where the peer has the algorithm, the issue's bar and whether it
is met, and the machine the numbers were measured on (``run.py`` records it beside the runs in
``<algo>.machine.json``; results from before it did say "not recorded").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as harness  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE / "README.md"
TOP_README = HERE.parent / "README.md"  # its "How fast" section: the ratios only
START, END = "<!-- report:start -->", "<!-- report:end -->"
# Results written before run.py recorded the machine: all came from this project's 2-core
# development VM while other jobs shared it (load average 10-28).
UNRECORDED = "2-core VM, busy (not recorded)"

# (max env-steps ratio, max training-seconds ratio) against the peer, and where the bar is set.
BARS: dict[str, tuple[float | None, float | None, str]] = {
    "dqn": (1.0, 0.25, "issue 3"),
    "a2c": (None, 0.5, "issue 16"),
    "trpo": (None, 0.5, "issue 17"),
    "ppo": (None, 0.5, "issue 17"),
    "ddpg": (1.0, 0.25, "issue 18"),
    "td3": (1.0, 0.25, "issue 18"),
    "sac": (1.0, 0.25, "issue 18"),
    # against our own PPO: a tenth of its real env steps (mb_mpo's are reported, with no bar)
    "mbrl": (0.1, None, "issue 19"),
    "me_trpo": (0.1, None, "issue 19"),
}
# The peer's class for each algorithm, as the table names it.
PEER_NAMES = {
    "trpo": "sb3-contrib TRPO",
}


def _spread(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    return f"{fmt.format(med)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def _median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r["solved"]]
    return statistics.median(values) if values else None


def _machine(algo: str, results: Path) -> str:
    path = results / f"{algo}.machine.json"
    if not path.exists():
        return UNRECORDED
    m = json.loads(path.read_text())
    return (
        f"{m['date']}, {m['cores']} cores, load {m['load_before']:.1f}-{m['load_after']:.1f}, "
        f"torch {m['torch']}"
    )


def rows(results: Path = RESULTS) -> list[list[str]]:
    """One row per algorithm with results, in the order of the lectures."""
    out = []
    for algo, task in harness.TASKS.items():
        path = results / f"{algo}.json"
        if not path.exists():
            continue
        runs = json.loads(path.read_text())
        ours = runs["fdrl"]
        peer_name = next((k for k in runs if k != "fdrl"), None)
        peer = runs.get(peer_name, [])
        row = [
            f"{algo} ([curves](results/{algo}.png))",
            task.env_id,
            f"{sum(r['solved'] for r in ours)}/{len(ours)}",
            _spread([r["steps"] for r in ours if r["solved"]], "{:,.0f}"),
            _spread([r["seconds"] for r in ours if r["solved"]], "{:.1f}"),
        ]
        ratio_cells, verdict = ["-", "-"], "no peer"
        if peer:
            label = "our PPO" if peer_name == "ppo" else PEER_NAMES.get(algo, f"SB3 {algo.upper()}")
            row += [
                f"{label}: {sum(r['solved'] for r in peer)}/{len(peer)}, "
                f"{_spread([r['steps'] for r in peer if r['solved']], '{:,.0f}')} steps, "
                f"{_spread([r['seconds'] for r in peer if r['solved']], '{:.1f}')} s"
            ]
            met = []
            bar = BARS.get(algo, (None, None, ""))
            for i, key in enumerate(("steps", "seconds")):
                a, b = _median(ours, key), _median(peer, key)
                if a is None or b is None:
                    continue
                ratio = a / b
                ratio_cells[i] = f"{ratio:.2f}"
                if bar[i] is not None:
                    met.append(ratio <= bar[i])
                    ratio_cells[i] += f" (bar {bar[i]:g})"
            verdict = ("met" if all(met) else "**not met**") + f", {bar[2]}" if met else "no bar"
        else:
            row.append("-")
        out.append(row + ratio_cells + [verdict, _machine(algo, results)])
    return out


def block(results: Path = RESULTS) -> str:
    header = [
        "algorithm",
        "task",
        "solved",
        "env steps, median (min-max)",
        "training s, median (min-max)",
        "peer, same protocol",
        "steps ratio",
        "seconds ratio",
        "bar",
        "measured on",
    ]
    lines = [
        START,
        "<!-- generated by `python benchmarks/report.py` from results/*.json; do not edit -->",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows(results)]
    lines += [
        "",
        "Ratios are fdrl's median over the peer's median (seeds solved by each). Seconds exclude "
        "evaluation; seeds run interleaved, so a busy machine slows both libraries alike.",
        END,
    ]
    return "\n".join(lines)


def compact(results: Path = RESULTS) -> str:
    """The top README's block: the ratios to the peer, one line per algorithm that has one."""
    lines = [
        START,
        "<!-- generated by `python benchmarks/report.py`; do not edit -->",
        "",
        "| algorithm, task | env steps, ours / peer | training seconds, ours / peer | bar |",
        "|---|---|---|---|",
    ]
    for row in rows(results):
        if row[5] != "-":
            peer = row[5].split(":")[0]
            name = f"{row[0].split()[0].upper()}, {row[1]} (vs {peer})"
            steps, seconds = (cell.split(" (")[0] for cell in row[6:8])
            lines.append(f"| {name} | {steps} | {seconds} | {row[8]} |")
    return "\n".join([*lines, END])


def updated(text: str, made: str | None = None) -> str:
    """``text`` (a README) with its generated block replaced by ``made`` (default: the table)."""
    if START not in text or END not in text:
        raise ValueError(f"no {START} ... {END} block to fill")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + (block() if made is None else made) + tail


def _files() -> dict[Path, str]:
    return {
        path: updated(path.read_text(), made)
        for path, made in ((README, block()), (TOP_README, compact()))
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the README is stale")
    parser.add_argument("--print", action="store_true", help="print the block, write nothing")
    args = parser.parse_args(argv)
    if args.print:
        print(block())
        return 0
    for path, new in _files().items():
        if not args.check:
            path.write_text(new)
        elif new != path.read_text():
            print(f"{path} is out of date: run python benchmarks/report.py", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
