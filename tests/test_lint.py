"""ruff keeps the library, tests, benchmarks and notebooks in one style (CONTRIBUTING.md)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATHS = ["fdrl_lib", "tests", "benchmarks", "lectures", "solutions", "exercises"]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ruff", *args, *PATHS]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ruff_check_passes():
    done = _ruff("check", "--no-cache")
    assert done.returncode == 0, done.stdout[-3000:]


def test_ruff_format_leaves_every_file_as_it_is():
    done = _ruff("format", "--check", "--no-cache")
    assert done.returncode == 0, done.stdout[-3000:]
