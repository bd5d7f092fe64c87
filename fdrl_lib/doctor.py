"""``fdrl doctor``: is this machine ready for the course? Each check says what is wrong and the fix.

Every check is a function returning ``(ok, what, fix)``; :func:`report` runs them all and never
raises, so a broken install still gets a full report.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

Check = tuple[bool | None, str, str]  # ok (None: optional and missing), what, how to fix
SUPPORTED = ((3, 11), (3, 13))  # oldest and newest Python the pinned stack installs on


def python_version() -> Check:
    v = sys.version_info[:2]
    ok = SUPPORTED[0] <= v <= SUPPORTED[1]
    return (
        ok,
        f"Python {sys.version.split()[0]}",
        "install Python 3.11, 3.12 or 3.13, then make lab",
    )


def pinned_packages() -> list[Check]:
    """Every ``name==version`` pin of the fdrl package, installed at that version."""
    try:
        requires = importlib.metadata.requires("fdrl") or []
    except importlib.metadata.PackageNotFoundError:
        return [(False, "fdrl is not installed", "make install (or pip install -e .)")]
    checks = []
    for line in requires:
        if "extra ==" in line:
            continue
        match = re.match(r"([A-Za-z0-9_.\-]+)==([^;\s]+)", line)
        if not match:
            continue
        name, pinned = match.groups()
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            checks.append((False, f"{name} missing (pinned {pinned})", "make install"))
            continue
        ok = have.split("+")[0] == pinned  # torch reports 2.13.0+cpu for the 2.13.0 pin
        checks.append(
            (ok, f"{name} {have}" + ("" if ok else f" (pinned {pinned})"), "make install")
        )
    return checks


def widgets_extension() -> Check:
    manager = "labextensions/@jupyter-widgets/jupyterlab-manager/package.json"
    found = any((Path(p) / "share/jupyter" / manager).exists() for p in (sys.prefix, "/usr/local"))
    return (
        found,
        "JupyterLab widgets extension " + ("installed" if found else "missing"),
        "pip install jupyterlab-widgets==3.0.17 into the same environment as jupyterlab",
    )


def kernel() -> Check:
    try:
        from jupyter_client.kernelspec import find_kernel_specs

        specs = find_kernel_specs()
    except Exception as error:  # jupyter_client missing or broken
        return False, f"no Jupyter kernels ({error})", "make install"
    ok = "python3" in specs
    return ok, f"Jupyter kernels: {', '.join(sorted(specs)) or 'none'}", "make install"


def torch_build() -> Check:
    try:
        import torch
    except ImportError:
        return False, "torch missing", "make install (torch==2.13.0, the CPU build)"
    cuda = torch.version.cuda
    what = f"torch {torch.__version__}, {torch.get_num_threads()} threads, " + (
        f"CUDA {cuda} build" if cuda else "CPU build"
    )
    return True, what, ""


def fdrl_on_path() -> Check:
    found = shutil.which("fdrl")
    mine = Path(sys.prefix) / "bin" / "fdrl"
    ok = found is not None and Path(found).resolve() == mine.resolve()
    fix = f"put {mine.parent} first on PATH (make lab does this for the lab's terminal)"
    return ok or None, f"fdrl command on PATH: {found or 'no'}", fix  # None: works via make


def rendering() -> Check:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    try:
        import gymnasium as gym

        env = gym.make("CartPole-v1", render_mode="rgb_array")
        env.reset(seed=0)
        frame = env.render()
        env.close()
        ok = frame is not None and frame.ndim == 3
    except Exception as error:
        return False, f"rgb_array rendering fails ({error})", "pip install pygame==2.6.1"
    return ok, "Gymnasium renders frames without a display", ""


def chromium() -> Check:
    found = next(
        (shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None
    )
    return (
        True if found else None,
        f"chromium for the slide tests: {found or 'missing (optional: those tests skip)'}",
        "apt-get install chromium (Debian/Ubuntu); only the browser tests need it",
    )


CHECKS: list[Callable[[], Check | list[Check]]] = [
    python_version,
    pinned_packages,
    widgets_extension,
    kernel,
    torch_build,
    fdrl_on_path,
    rendering,
    chromium,
]


def report() -> list[Check]:
    """Run every check; a check that crashes is reported as a problem, not raised."""
    out: list[Check] = []
    for check in CHECKS:
        try:
            result = check()
        except Exception as error:
            result = (False, f"{check.__name__} crashed: {error}", "report this as a bug")
        out.extend(result if isinstance(result, list) else [result])
    return out
