"""Run a submission's code in its own Jupyter kernel, under limits, and collect raw outputs.

Nothing produced here is trusted. The kernel (a separate process, started through
jupyter_client, the layer nbclient and papermill use) runs with an address-space cap and no core
files (``resource.setrlimit`` in the kernel's own process, before ipykernel starts), every
execution has a wall-clock limit after which the kernel is interrupted and then killed, and
whatever the code prints is counted and thrown away beyond a small limit. The grader reads back
only files of numbers (``.npz`` with ``allow_pickle=False``) and a small JSON status, both
tagged with a per-run secret nonce, from a folder it created.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# Sets the limits in the kernel's own process, then becomes ipykernel (same pid).
_LAUNCHER = (
    "import os, resource, sys\n"
    "mem, fsize, conn = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]\n"
    "resource.setrlimit(resource.RLIMIT_AS, (mem, mem))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'ipykernel_launcher', '-f', conn])\n"
)

CANCEL = threading.Event()  # set on Ctrl-C in batch mode: every running kernel is stopped


@dataclass
class Limits:
    """Limits for one submission. Seconds are wall-clock."""

    timeout: float = 300.0  # whole submission: start, every cell, every check
    cell_timeout: float = 60.0  # one notebook cell
    case_timeout: float = 10.0  # one call of a learner function on one case
    memory_mb: int = 2048  # address space of the kernel process
    file_mb: int = 64  # largest file the kernel may write
    output_kb: int = 64  # printed output kept per cell (the rest is counted, then dropped)


@dataclass
class Execution:
    """What happened when one piece of code ran in the kernel."""

    status: str  # "ok" | "error" | "timeout" | "died" | "not run"
    ename: str = ""
    evalue: str = ""
    traceback: str = ""
    seconds: float = 0.0
    output_bytes: int = 0
    output: str = ""  # the first ``output_kb`` of stdout/stderr


@dataclass
class Kernel:
    """One kernel for one submission: ``with Kernel(limits) as kernel: kernel.run(code)``."""

    limits: Limits
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fdrl-kernel-")))
    deadline: float = 0.0
    dead: bool = False

    def __enter__(self) -> Kernel:
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        self.deadline = time.monotonic() + self.limits.timeout
        spec_dir = self.workdir / "kernelspec" / "fdrl-grader"
        spec_dir.mkdir(parents=True)
        argv = [
            sys.executable,
            "-c",
            _LAUNCHER,
            str(self.limits.memory_mb * 2**20),
            str(self.limits.file_mb * 2**20),
            "{connection_file}",
        ]
        spec = {"argv": argv, "display_name": "fdrl grader", "language": "python"}
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        ksm = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)])
        self.km = KernelManager(kernel_name="fdrl-grader", kernel_spec_manager=ksm)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("JPY_", "PYTEST_", "FDRL_GRADER"))
        }
        env.update(
            OPENBLAS_NUM_THREADS="1",
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
            MALLOC_ARENA_MAX="2",
            MPLBACKEND="Agg",
            PYTHONHASHSEED="0",
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        cwd = self.workdir / "cwd"
        cwd.mkdir()
        self.km.start_kernel(
            env=env, cwd=str(cwd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.kc = self.km.client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=max(5.0, min(60.0, self._left())))
        except RuntimeError:
            self.dead = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        try:
            self.kc.stop_channels()
        except Exception:
            pass
        try:
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
        except Exception:
            pass
        self.dead = True
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, code: str, timeout: float) -> Execution:
        """Execute ``code``; interrupt after ``timeout`` s, kill if the interrupt is ignored."""
        if self.dead:
            return Execution("died", evalue="the kernel was already dead")
        start = time.monotonic()
        msg_id = self.kc.execute(code, store_history=False, allow_stdin=False)
        result = Execution("ok")
        keep = self.limits.output_kb * 1024
        chunks: list[str] = []
        reply: dict[str, Any] | None = None
        interrupted_at: float | None = None
        stop_at = start + min(timeout, max(0.0, self._left()))
        idle = False
        reply_at = 0.0
        last_alive_check = start
        while reply is None or not idle:
            now = time.monotonic()
            if CANCEL.is_set():
                self.stop()
                return Execution("died", evalue="grading was cancelled", seconds=now - start)
            if reply is not None and now > reply_at + 2.0:
                break  # the reply came but 'idle' got lost in a flood: good enough
            if reply is None and interrupted_at is None and now > stop_at:
                self.km.interrupt_kernel()
                interrupted_at = now
            if interrupted_at is not None and reply is None and now > interrupted_at + 5.0:
                self.stop()  # ignored the interrupt (e.g. a loop in C): kill
                result.status = "timeout"
                result.evalue = "killed: did not stop when interrupted"
                break
            # drain printed output, keeping only the first ``keep`` characters
            drained = 0
            while drained < 500:
                try:
                    msg = self.kc.get_iopub_msg(timeout=0)
                except queue.Empty:
                    break
                drained += 1
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    text = content.get("text", "")
                    result.output_bytes += len(text)
                    if sum(map(len, chunks)) < keep:
                        chunks.append(text)
                elif kind == "status" and content.get("execution_state") == "idle":
                    idle = True
            if reply is None:
                try:
                    msg = self.kc.get_shell_msg(timeout=0.05)
                    if msg.get("parent_header", {}).get("msg_id") == msg_id:
                        reply, reply_at = msg["content"], time.monotonic()
                except queue.Empty:
                    pass
            if reply is None and now - last_alive_check > 0.5:
                last_alive_check = now
                if not self.km.is_alive():
                    self.dead = True
                    result.status = "died"
                    break
        result.seconds = time.monotonic() - start
        result.output = "".join(chunks)[:keep]
        if reply is not None and reply.get("status") == "error":
            result.ename = str(reply.get("ename", ""))[:200]
            result.evalue = str(reply.get("evalue", ""))[:1000]
            result.traceback = trim_traceback(reply.get("traceback", []))
            result.status = "timeout" if interrupted_at is not None else "error"
        elif interrupted_at is not None and result.status == "ok":
            result.status = "timeout"
        if result.status == "ok" and reply is None:
            result.status = "died" if self.dead else "timeout"
        if result.status in ("died", "timeout") and not self.km.is_alive():
            self.dead = True
        return result


def trim_traceback(lines: list[str] | str, max_lines: int = 25, max_chars: int = 3000) -> str:
    """A learner's traceback without colour codes, last ``max_lines`` lines, bounded in size."""
    text = "\n".join(lines) if isinstance(lines, list) else str(lines)
    text = _ANSI.sub("", text)
    kept = text.strip("\n").splitlines()[-max_lines:]
    out = "\n".join(kept)
    return out if len(out) <= max_chars else "..." + out[-max_chars:]


# ----------------------------------------------------------------------------------------------
# The harness: code run in the kernel after the learner's cells, once per exercise. It calls the
# learner's function on the grader's inputs and writes what came back. It decides nothing.

HARNESS = r"""
def __fdrl_produce__(spec_json):
    import json, os, signal, time, traceback, warnings
    import numpy as np
    spec = json.loads(spec_json)
    g = globals()
    status = {"nonce": spec["nonce"], "number": spec["number"], "cases": {}}
    outputs = {}

    def write():
        tmp = spec["out"] + ".tmp.npz"
        np.savez(tmp, **outputs)
        os.replace(tmp, spec["out"] + ".npz")
        with open(spec["out"] + ".json.tmp", "w") as f:
            json.dump(status, f)
        os.replace(spec["out"] + ".json.tmp", spec["out"] + ".json")

    fn = g.get(spec["function"])
    if not callable(fn):
        status["missing"] = True
        write()
        return
    data = np.load(spec["inputs"], allow_pickle=False)
    saved = {name: g.get(name, None) for name in spec["isolate"]}
    for name, source in spec["isolate"].items():  # the reference replaces earlier exercises
        scope = {}
        exec(source, scope)
        g[name] = scope[name]

    wrap = None
    if spec.get("wrapper"):  # the exercise's adapter: wrap(fn, *args) -> outputs as numbers
        scope = {}
        exec(spec["wrapper"][1], scope)
        wrap = scope[spec["wrapper"][0]]

    def alarm(signum, frame):
        raise TimeoutError("took longer than %g s" % spec["case_timeout"])

    try:
        for case in spec["cases"]:
            prefix = case + "/"
            values = {k[len(prefix):]: data[k] for k in data.files if k.startswith(prefix)}
            values = {k: (v.item() if v.ndim == 0 else v.copy()) for k, v in values.items()}
            args = [values[name] for name in spec["args"]]
            kwargs = {name: values[name] for name in spec["kwargs"] if name in values}
            entry = {"status": "ok"}
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    try:
                        signal.signal(signal.SIGALRM, alarm)
                        signal.setitimer(signal.ITIMER_REAL, spec["case_timeout"])
                    except Exception:
                        pass
                    if wrap is None:
                        result = fn(*args, **kwargs)
                    else:
                        result = wrap(fn, *args, **kwargs)
                except BaseException as error:
                    kind = type(error).__name__
                    slow = kind in ("TimeoutError", "KeyboardInterrupt")
                    entry["status"] = "timeout" if slow else "error"
                    entry["error"] = "%s: %s" % (kind, str(error)[:500])
                    tb = traceback.format_exception(type(error), error, error.__traceback__)
                    entry["traceback"] = "".join(tb[1:])[-3000:]  # frame 0 is this harness
                    result = None
                finally:
                    try:
                        signal.setitimer(signal.ITIMER_REAL, 0)
                    except Exception:
                        pass
            entry["seconds"] = time.perf_counter() - start
            entry["warnings"] = [
                "%s: %s" % (w.category.__name__, str(w.message)[:200]) for w in caught[:5]
            ]
            if entry["status"] == "ok":
                several = spec["n_outputs"] > 1
                parts = list(result) if several and isinstance(result, (tuple, list)) else [result]
                if several and not isinstance(result, (tuple, list)):
                    entry["status"] = "bad_output"
                    entry["error"] = "returned one %s, expected a tuple of %d values" % (
                        type(result).__name__, spec["n_outputs"])
                    parts = []
                entry["n"] = len(parts)
                for i, part in enumerate(parts):
                    try:
                        array = np.asarray(part)
                    except Exception as error:
                        array = None
                    numeric = array is not None and array.dtype.kind in "biuf"
                    if not numeric or array.size > 10**6:
                        entry["status"] = "bad_output"
                        entry["error"] = "value %d is a %s, expected an array of numbers" % (
                            i, type(part).__name__)
                        break
                    outputs["%s/%d" % (case, i)] = array
            status["cases"][case] = entry
            write()
    finally:
        for name, value in saved.items():
            if value is None:
                g.pop(name, None)
            else:
                g[name] = value
    write()
"""
