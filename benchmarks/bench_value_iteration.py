"""Value iteration on an N x N slippery grid: fdrl_lib.tabular vs pymdptoolbox.

The task: an N x N open grid (start top left, one +1 exit bottom right, living reward 0), moves
succeed with probability 0.8 and slip to each perpendicular side with 0.1, gamma = 0.99; iterate
from V_0 = 0 until max|V_k - V_{k-1}| < 1e-8. States: N^2 cells + 1 terminal (N = 300: 90,001).

* ours      - ``value_iteration(GridWorld.open_grid(N).mdp, keep_history=False)``: the grid MDP's
              structured backup (gather the 4 neighbour values, 8 elementwise ops). Timed
              including building the MDP.
* ours CSR  - the same MDP as a plain sparse TabularMDP (one stacked CSR matvec per backup).
* peer      - ``mdptoolbox.mdp.ValueIteration`` (pymdptoolbox 4.0b3) on the same CSR matrices,
              timed from construction (which checks the input and bounds the iterations) to the
              end of ``run()``; "peer run" is ``run()`` alone. Its stopping test is
              span(V_k - V_{k-1}) < epsilon (1 - gamma) / gamma; we pass epsilon so that this is
              1e-8, which here equals our test (V only grows, and is fixed at the exit cells).

Every measurement runs in a fresh subprocess with one BLAS/OpenMP thread, so peak memory (max
RSS above the process's baseline) belongs to that solver alone. Bars (exit status 1 if missed):
ours at N = 300 within ``--bar-seconds`` (default 1.0 s); ours >= 50x faster than the peer at
N = 100; both solvers' V agree to 1e-6 at N = 100. ``--quick`` runs small N only, no bars.

    .venv/bin/python benchmarks/bench_value_iteration.py            # full (about 1 minute)
    .venv/bin/python benchmarks/bench_value_iteration.py --quick    # smoke test (seconds)
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads: one core, as the bar says

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

GAMMA, NOISE, TOL = 0.99, 0.2, 1e-8


def _rss_mb() -> float:
    """Peak resident set size of this process so far (MB); ru_maxrss is in KB on Linux."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(solver: str, n: int, repeats: int, save: str | None) -> dict:
    """One solver on one grid size, in this (fresh) process."""
    from fdrl_lib.tabular import GridWorld, TabularMDP, value_iteration

    result: dict = {"solver": solver, "N": n}
    if solver == "ours":
        times, solve_times = [], []
        for _ in range(repeats):
            base = _current_rss_mb()
            t0 = time.perf_counter()
            mdp = GridWorld.open_grid(n, noise=NOISE, gamma=GAMMA).mdp
            t1 = time.perf_counter()
            res = value_iteration(mdp, tol=TOL, keep_history=False)
            t2 = time.perf_counter()
            times.append(t2 - t0)
            solve_times.append(t2 - t1)
            del mdp
        V, iterations, converged = res.V, res.iterations, res.converged
        result["seconds"] = float(np.median(times))
        result["run_seconds"] = float(np.median(solve_times))
    elif solver == "ours_csr":
        grid_mdp = GridWorld.open_grid(n, noise=NOISE, gamma=GAMMA).mdp
        mdp = TabularMDP(grid_mdp.P, grid_mdp.R, gamma=GAMMA, sparse=True)  # no structure
        del grid_mdp
        base = _current_rss_mb()
        t0 = time.perf_counter()
        res = value_iteration(mdp, tol=TOL, keep_history=False)
        result["seconds"] = time.perf_counter() - t0
        V, iterations, converged = res.V, res.iterations, res.converged
    else:  # pymdptoolbox
        import scipy.sparse as sp

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its own SparseEfficiencyWarning / deprecations
            import mdptoolbox.mdp as mdptoolbox_mdp

            grid_mdp = GridWorld.open_grid(n, noise=NOISE, gamma=GAMMA).mdp
            P = (
                [sp.csr_matrix(p) for p in grid_mdp.P]
                if grid_mdp.sparse
                else [sp.csr_matrix(grid_mdp.P[:, a, :]) for a in range(grid_mdp.A)]
            )
            R = np.ascontiguousarray(grid_mdp.R)  # (S, A)
            del grid_mdp
            epsilon = TOL * GAMMA / (1 - GAMMA)  # its threshold epsilon (1-g)/g becomes TOL
            base = _current_rss_mb()
            t0 = time.perf_counter()
            vi = mdptoolbox_mdp.ValueIteration(P, R, GAMMA, epsilon=epsilon)
            vi.max_iter = 10**7  # its iteration bound must not stop it before the threshold
            t1 = time.perf_counter()
            vi.run()
            t2 = time.perf_counter()
        result["seconds"], result["run_seconds"] = t2 - t0, t2 - t1
        V, iterations, converged = np.array(vi.V), vi.iter, True
    result.update(
        iterations=int(iterations),
        converged=bool(converged),
        peak_mb=max(0.0, _rss_mb() - base),
        V_start=float(V[0]),
    )
    if save:
        np.save(save, V)
    return result


def run_worker(solver: str, n: int, repeats: int = 1, save: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", solver, str(n), "--repeats", str(repeats)]
    if save:
        cmd += ["--save", save]
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if out.returncode != 0:
        return {"solver": solver, "N": n, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def peer_available() -> str | None:
    """None if pymdptoolbox imports, else the reason."""
    code = "import warnings; warnings.simplefilter('ignore'); import mdptoolbox.mdp"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return None if out.returncode == 0 else (out.stderr.strip().splitlines() or ["?"])[-1]


def fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N only, no bars (smoke)")
    parser.add_argument("--sizes", type=int, nargs="*", help="grid sizes N (default 10 30 100 300)")
    parser.add_argument("--peer-max-n", type=int, default=100, help="largest N given to the peer")
    parser.add_argument("--bar-seconds", type=float, default=1.0, help="bar for ours at N = 300")
    parser.add_argument("--repeats", type=int, default=3, help="ours: median of this many runs")
    parser.add_argument("--worker", nargs=2, metavar=("SOLVER", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.repeats, args.save)))
        return 0

    load, start = os.getloadavg()[0], time.perf_counter()
    sizes = args.sizes or ([5, 12] if args.quick else [10, 30, 100, 300])
    peer_max = 12 if args.quick else args.peer_max_n
    repeats = 1 if args.quick else args.repeats
    why_no_peer = peer_available()
    if why_no_peer:
        print(f"pymdptoolbox unavailable ({why_no_peer}); install the 'bench' extra")
    check_n = max([n for n in sizes if n <= peer_max], default=None)
    tmp = Path(tempfile.mkdtemp(prefix="fdrl_bench_"))
    print(
        f"value iteration, N x N slippery grid (0.8/0.1/0.1), gamma={GAMMA}, "
        f"stop at max|dV| < {TOL:g}; one thread; ours = median of {repeats}"
    )
    header = (
        f"{'N':>5} {'states':>7} {'ours s':>8} {'peer s':>8} {'ratio':>6} {'iterations':>10} "
        f"{'ours MB':>8} {'peer MB':>8} | {'ours run':>8} {'ours CSR':>8} {'peer run':>8} "
        f"{'run ratio':>9}"
    )
    print(header)
    print("-" * len(header))
    rows = {}
    for n in sizes:
        save = n == check_n
        ours = run_worker("ours", n, repeats, str(tmp / f"ours{n}.npy") if save else None)
        csr = run_worker("ours_csr", n)
        peer = None
        if why_no_peer is None and n <= peer_max:
            peer = run_worker("peer", n, save=str(tmp / f"peer{n}.npy") if save else None)
        rows[n] = (ours, csr, peer)
        for r in (ours, csr, peer):
            if r and "error" in r:
                print(f"  {r['solver']} failed at N={n}: {r['error']}")
        ok = peer and "error" not in peer
        ratio = peer["seconds"] / ours["seconds"] if ok else None
        run_ratio = peer["run_seconds"] / ours["run_seconds"] if ok else None
        iters = f"{ours['iterations']}" + (f" ({peer['iterations']})" if ok else "")
        print(
            f"{n:>5} {n * n + 1:>7} {ours['seconds']:>8.3f} "
            f"{fmt(peer['seconds'] if ok else None, '8.3f')} {fmt(ratio, '6.0f')} {iters:>10} "
            f"{ours['peak_mb']:>8.1f} {fmt(peer['peak_mb'] if ok else None, '8.1f')} | "
            f"{ours['run_seconds']:>8.3f} {fmt(csr.get('seconds'), '8.3f')} "
            f"{fmt(peer['run_seconds'] if ok else None, '8.3f')} {fmt(run_ratio, '9.1f')}"
        )
    print(
        "ours s = build the grid MDP + value iteration; peer s = ValueIteration() + run();\n"
        "ratio = peer s / ours s; iterations: ours (peer); MB = peak RSS above baseline;\n"
        "right of '|': the iterations alone: ours (stencil), ours on plain CSR, peer run(),\n"
        "run ratio = peer run / ours run (the peer's setup is what makes it slow overall)"
    )

    failures = []
    if check_n is not None and why_no_peer is None:
        a, b = np.load(tmp / f"ours{check_n}.npy"), tmp / f"peer{check_n}.npy"
        if b.exists():
            diff = float(np.max(np.abs(a - np.load(b))))
            print(f"agreement at N={check_n}: max |V_ours - V_peer| = {diff:.2e}")
            if diff > 1e-6:
                failures.append(f"solvers disagree at N={check_n}: {diff:.2e} > 1e-6")
        else:
            failures.append(f"no peer values at N={check_n}")
    if not args.quick:
        if 300 in rows:
            t = rows[300][0]["seconds"]
            if t > args.bar_seconds:
                failures.append(f"N=300 took {t:.3f} s > {args.bar_seconds} s")
        if why_no_peer:
            failures.append("peer unavailable: the 50x bar cannot be checked")
        elif 100 in rows and rows[100][2] and "error" not in rows[100][2]:
            ratio = rows[100][2]["seconds"] / rows[100][0]["seconds"]
            if ratio < 50:
                failures.append(f"only {ratio:.1f}x faster than pymdptoolbox at N=100 (< 50x)")
        elif 100 in sizes:
            failures.append("no peer timing at N=100")
    if not args.quick and not args.sizes:  # the full run: README's run-time table
        from fdrl_lib import lectures

        used = resource.getrusage(resource.RUSAGE_CHILDREN)  # the solver processes
        own = resource.getrusage(resource.RUSAGE_SELF)
        cpu = used.ru_utime + used.ru_stime + own.ru_utime + own.ru_stime
        timing = lectures.measured(time.perf_counter() - start, cpu, load)
        lectures.record("benchmarks/bench_value_iteration.py", timing)
        lectures.refresh()
    for f in failures:
        print("BAR MISSED:", f)
    if not failures:
        print("all bars met" if not args.quick else "quick run ok (no bars in --quick)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
