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

# ----------------------------------------------------------------------------------------------
# Sealing: each kernel in its own PID, mount, network, IPC and UTS namespaces (Linux).
#
# With bubblewrap (``bwrap``) or util-linux ``unshare`` the kernel sees: the whole file system
# read-only; fresh, private /tmp, /var/tmp and /dev/shm; one writable folder of its own (its
# connection file, sockets, inputs and outputs); the class's folder, the grader's output folder
# (cache, gradebook), the secret's file and the source checkout's solutions/ and .git hidden;
# its own /proc (no other process visible, not even the grader's command line); no network.
# It runs without capabilities, so it cannot undo any of this. When its first process exits or
# is killed, the kernel of the PID namespace kills everything it started (setsid included).

_SEAL = r"""
import ctypes, json, os, sys
cfg = json.loads(sys.argv[1]); argv = sys.argv[2:]
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
RDONLY, NOSUID, NODEV, REMOUNT, BIND, REC, PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
def mount(src, dst, fs, flags, data=None):
    enc = lambda x: None if x is None else x.encode()
    if libc.mount(enc(src), enc(dst), enc(fs), flags, enc(data)) != 0:
        e = ctypes.get_errno(); raise OSError(e, "mount %s: %s" % (dst, os.strerror(e)))
mount(None, "/", None, REC | PRIVATE)
keep = [(os.open(w, os.O_PATH | os.O_DIRECTORY), w) for w in cfg["writable"]]
readonly = [(os.open(r, os.O_PATH | os.O_DIRECTORY), r) for r in cfg["readonly"]]
def hide():
    for h in cfg["hide"]:
        if os.path.isdir(h):
            mount("tmpfs", h, "tmpfs", NOSUID | NODEV | RDONLY, "size=4k,mode=0555")
        elif os.path.exists(h):
            mount("/dev/null", h, None, BIND)
hide()
class Attr(ctypes.Structure):
    _fields_ = [("set", ctypes.c_uint64), ("clr", ctypes.c_uint64),
                ("prop", ctypes.c_uint64), ("userns", ctypes.c_uint64)]
attr = Attr(1, 0, 0, 0)  # MOUNT_ATTR_RDONLY, recursively (AT_RECURSIVE): everything read-only
if libc.syscall(442, -100, b"/", 0x8000, ctypes.byref(attr), ctypes.sizeof(attr)) != 0:
    for line in open("/proc/self/mountinfo").read().splitlines()[::-1]:
        point = line.split()[4].encode().decode("unicode_escape")
        try:
            mount(None, point, None, REMOUNT | BIND | RDONLY | NOSUID | NODEV)
        except OSError:
            pass
for t in cfg["tmp"]:
    if os.path.isdir(t):
        mount("tmpfs", t, "tmpfs", NOSUID | NODEV, "size=%dm,mode=1777" % cfg["tmp_mb"])
for fd, r in readonly:  # the venv and the package, when a tmp dir holds them: read-only
    os.makedirs(r, exist_ok=True)
    mount("/proc/self/fd/%d" % fd, r, None, BIND)
    mount(None, r, None, REMOUNT | BIND | RDONLY | NOSUID | NODEV)
    os.close(fd)
if readonly:
    hide()  # a bind brings no submounts along: hide again what lies inside
for fd, w in keep:
    os.makedirs(w, exist_ok=True)
    mount("/proc/self/fd/%d" % fd, w, None, BIND)
    mount(None, w, None, REMOUNT | BIND | NOSUID | NODEV)
    os.close(fd)
os.chdir(os.getcwd())  # the same path, now through the new mounts
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38
for cap in range(64):
    libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
header = (ctypes.c_uint32 * 2)(0x20080522, 0)
data = (ctypes.c_uint32 * 6)()
libc.capset(header, data)  # no effective, permitted or inheritable capabilities
libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
os.execv(argv[0], argv)
"""


@dataclass(frozen=True)
class Isolation:
    """How kernels are sealed on this machine: ``kind`` is "bwrap", "unshare" or "none"."""

    kind: str
    why: str  # what is isolated, or why nothing is

    def wrap(self, argv: list[str], writable: list[Path], hide: list[Path]) -> list[str]:
        """The kernel's command line, sealed."""
        hide = [h for h in dict.fromkeys(p.resolve() for p in hide) if h.exists()]
        writable = [w.resolve() for w in writable]
        if self.kind == "bwrap":
            cmd = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
            for t in _tmp_dirs():
                cmd += ["--tmpfs", str(t)]
            cmd += ["--tmpfs", "/dev/shm"]
            for k in _kept_under_tmp():  # the venv and the package when they live in a tmp dir
                cmd += ["--ro-bind", str(k), str(k)]
            for h in hide:
                cmd += ["--tmpfs", str(h)] if h.is_dir() else ["--ro-bind", "/dev/null", str(h)]
            for w in writable:
                cmd += ["--bind", str(w), str(w)]
            cmd += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
            # no --die-with-parent: jupyter_client may start the kernel from a short-lived thread,
            # whose exit would kill it; the kernel dies with its process group instead. The kernel
            # is the namespace's init (--as-pid-1): ipykernel quits when its parent is pid 1
            cmd += ["--as-pid-1", "--cap-drop", "ALL"]  # and the cwd jupyter_client gives it
            return [*cmd, "--", *argv]
        if self.kind == "unshare":
            cfg = {
                "writable": [str(w) for w in writable],
                "hide": [str(h) for h in hide],
                "tmp": [str(t) for t in _tmp_dirs()] + ["/dev/shm"],
                "readonly": [str(k) for k in _kept_under_tmp()],
                "tmp_mb": 512,
            }
            user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
            return [
                "unshare",
                *user,
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "--mount",
                "--net",
                "--ipc",
                "--uts",
                sys.executable,
                "-I",
                "-S",
                "-c",
                _SEAL,
                json.dumps(cfg),
                *argv,
            ]
        return argv


def _kept_under_tmp() -> list[Path]:
    """What the kernel must still see read-only though it lies in a tmp dir the seal replaces:
    the Python environment and the checkout holding ``fdrl_lib`` (a clone in /tmp, as CI's may
    be). Their hidden parts (solutions/, .git) are hidden again after."""
    import fdrl_lib

    tmp = _tmp_dirs()
    wanted = [Path(sys.prefix), Path(sys.executable).resolve().parents[1]]
    wanted.append(Path(fdrl_lib.__file__).resolve().parents[1])
    out = []
    for path in dict.fromkeys(p.resolve() for p in wanted):
        if any(path == t or t in path.parents for t in tmp) and path.is_dir():
            out.append(path)
    return [p for p in out if not any(q in p.parents for q in out)]  # outermost only


def _tmp_dirs() -> list[Path]:
    dirs = [Path("/tmp"), Path("/var/tmp"), Path(tempfile.gettempdir())]
    return [d for d in dict.fromkeys(d.resolve() for d in dirs) if d.is_dir()]


_ISOLATION: list[Isolation] = []


def isolation() -> Isolation:
    """The best sealing this machine offers (probed once): ``FDRL_GRADER_SANDBOX`` = auto
    (default), bwrap, unshare or off."""
    if _ISOLATION:
        return _ISOLATION[0]
    want = os.environ.get("FDRL_GRADER_SANDBOX", "auto").strip().lower() or "auto"
    found = Isolation("none", "sandbox turned off (FDRL_GRADER_SANDBOX=off)")
    if want != "off":
        tried = []
        for kind in ("bwrap", "unshare") if want == "auto" else (want,):
            candidate = Isolation(kind, "")
            probe = Path(tempfile.mkdtemp(prefix="fdrl-probe-"))
            try:
                argv = candidate.wrap(
                    [sys.executable, "-c", "open('ok', 'w').write('1')"], [probe], []
                )
                done = subprocess.run(argv, cwd=probe, capture_output=True, text=True, timeout=20)
                if done.returncode == 0 and (probe / "ok").exists():
                    found = Isolation(kind, SEALED[kind])
                    break
                tried.append(f"{kind}: {(done.stderr or f'exit {done.returncode}')[-200:]}")
            except (OSError, subprocess.SubprocessError) as error:
                tried.append(f"{kind}: {error}")
            finally:
                shutil.rmtree(probe, ignore_errors=True)
        else:
            found = Isolation(
                "none",
                "submissions are NOT sealed (no working bubblewrap or unshare on this machine"
                + (": " + "; ".join(tried) if tried else "")
                + "); kernels run as the grader's user and can reach its files, see "
                "docs/grading.md (install bubblewrap: apt-get install bubblewrap)",
            )
    _ISOLATION.append(found)
    return found


SEALED = {
    kind: f"sealed with {kind}: own PID, mount, network, IPC and UTS namespaces; file system "
    "read-only except a private /tmp and the kernel's own folder; the class, the grader's "
    "output and secret hidden; no capabilities"
    for kind in ("bwrap", "unshare")
}


def sandbox_note() -> str:
    """Warn once (stderr) when kernels cannot be sealed; return what isolation is in force."""
    found = isolation()
    if found.kind == "none" and not _WARNED:
        _WARNED.append(True)
        print(f"fdrl grade: warning: {found.why}", file=sys.stderr)
    return found.why


_WARNED: list[bool] = []


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
    shared: tuple[Path, ...] = ()  # more folders the kernel may write (the run's inputs/outputs)
    hide: tuple[Path, ...] = ()  # folders and files the kernel must not see (the class, ...)
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
        sealed = isolation()
        argv = sealed.wrap(argv, [self.workdir, *self.shared], list(self.hide))
        spec = {"argv": argv, "display_name": "fdrl grader", "language": "python"}
        if sealed.kind != "none":  # a SIGINT to the process group would also hit the wrapper
            spec["interrupt_mode"] = "message"  # ipykernel then signals itself
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        ksm = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)])
        self.km = KernelManager(
            kernel_name="fdrl-grader",
            kernel_spec_manager=ksm,
            transport="ipc",  # unix sockets in the kernel's folder: no network needed
            connection_file=str(self.workdir / "kernel.json"),
        )
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
            IPYTHONDIR=str(self.workdir / "ipython"),  # no startup files from the grader's home
            MPLCONFIGDIR=str(self.workdir / "mpl"),
            JUPYTER_RUNTIME_DIR=str(self.workdir / "runtime"),
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
        self._kill_sealed_kernel()
        try:
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
        except Exception:
            pass
        self.dead = True
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _kill_sealed_kernel(self) -> None:
        """Sealed, the started process is bwrap/unshare and the kernel its child: kill the kernel
        first (its namespace dies with it) so the wrapper reaps it and exits, instead of both
        dying at once and the kernel lingering as a zombie nobody waits for."""
        import signal

        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is None or isolation().kind == "none" or process.poll() is not None:
            return
        try:
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text()
            for child in children.split():
                os.kill(int(child), signal.SIGKILL)
            process.wait(timeout=2)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass

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
# The prelude: run in the kernel before the learner's first cell. The grader's checks,
# references and secret handling cannot be imported from the kernel (a sealed kernel does not
# even see their files); the message says why.

PRIVATE_MODULES = (
    "fdrl_lib.grading.exercises",
    "fdrl_lib.grading.runner",
    "fdrl_lib.grading.secret",
    "fdrl_lib.grading.release",
)

PRELUDE = r"""
def __fdrl_prelude__(private):
    import sys

    class __FdrlPrivate__:
        blocked = set()  # library modules not importable while an exercise is checked
        why = ""

        @staticmethod
        def find_spec(name, path=None, target=None):
            if any(name == p or name.startswith(p + ".") for p in private):
                raise ModuleNotFoundError(
                    "%s is not available while a submission is graded: the grader's checks and "
                    "references stay in the grader (check() works in your own notebook)" % name
                )
            if any(name == b or name.startswith(b + ".") for b in __FdrlPrivate__.blocked):
                raise ModuleNotFoundError("%s is not available %s" % (name, __FdrlPrivate__.why))
            return None

    for name in list(sys.modules):
        if any(name == p or name.startswith(p + ".") for p in private):
            del sys.modules[name]
    sys.meta_path.insert(0, __FdrlPrivate__)
    return __FdrlPrivate__
__fdrl_private__ = __fdrl_prelude__(PRIVATE_MODULES)
del __fdrl_prelude__
""".replace("PRIVATE_MODULES", repr(list(PRIVATE_MODULES)))


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

    # The library's implementations of this lecture's exercises fail while they are checked:
    # loaded functions get a body that raises (every alias of them included), modules not yet
    # loaded cannot be imported. Everything is put back afterwards.
    import importlib, sys
    why = "while exercise %s is graded: write your own `%s`" % (spec["number"], spec["function"])
    blocked = []
    private = g.get("__fdrl_private__")
    private = private if hasattr(private, "blocked") and hasattr(private, "why") else None
    for target in spec.get("library", []):
        module, _, qualname = target.partition(":")
        if module not in sys.modules:
            if private is not None:
                private.blocked.add(module)
            continue
        try:
            library_fn = sys.modules[module]
            for part in qualname.split("."):
                library_fn = getattr(library_fn, part)
            library_fn = getattr(library_fn, "__func__", library_fn)
            blocker = {}
            exec("def blocked(*args, **kwargs):\n    raise RuntimeError(%r)"
                 % ("%s.%s is not available %s" % (module, qualname, why)), blocker)
            blocked.append((library_fn, library_fn.__code__))
            library_fn.__code__ = blocker["blocked"].__code__
        except Exception:
            pass
    if private is not None:
        private.why = why

    wrap = None
    if spec.get("wrapper"):  # the exercise's adapter: wrap(fn, *args) -> outputs as numbers
        scope = {}
        exec(spec["wrapper"][1], scope)
        wrap = scope[spec["wrapper"][0]]
        if spec["wrapper"][2] is not None:  # an adapter with options: adapter(fn, options, names)
            adapted, options, names = wrap, spec["wrapper"][2], spec["wrapper"][3]
            wrap = lambda f, *a, **k: adapted(f, options, names, *a, **k)

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
                    if type(part).__module__.split(".")[0] == "torch" and hasattr(part, "detach"):
                        part = part.detach().cpu().numpy()  # tensors come back as numbers
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
        for library_fn, code in blocked:
            library_fn.__code__ = code
        if private is not None:
            private.blocked.clear()
    write()
"""
