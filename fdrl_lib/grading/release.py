"""``fdrl release``: write exercises/ (and the grader's manifests) from solutions/.

solutions/NN_topic.ipynb is the one source of an exercise. Release writes

- ``exercises/NN_topic.ipynb``: solution regions become ``raise NotImplementedError("Exercise
  N.M")`` stubs, hidden tests are removed, outputs cleared;
- ``fdrl_lib/grading/manifests/NN_topic.json``: the content hash of every locked cell of the
  released notebook, so the grader can tell a learner that a check cell was edited or deleted.

``fdrl release --check`` writes nothing and fails when either file differs from what release
would write (CI and tests/test_grading_release.py run it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import nbformat

from fdrl_lib.grading.notebook import dumps, manifest, release_notebook

MANIFESTS = Path(__file__).parent / "manifests"


def repo_root(start: Path | None = None) -> Path:
    """The checkout holding solutions/: the package's parent (editable install) or the cwd."""
    candidates = [Path(__file__).resolve().parents[2], (start or Path.cwd()).resolve()]
    for candidate in candidates:
        if (candidate / "solutions").is_dir():
            return candidate
    raise ValueError(f"no solutions/ folder found in {', '.join(map(str, candidates))}")


def build(solution_path: Path) -> tuple[str, str, str] | None:
    """(name, exercise notebook text, manifest text) for one solution notebook, or None."""
    from fdrl_lib.grading.exercises import lectures

    nb = nbformat.read(solution_path, as_version=4)
    name = nb.metadata.get("fdrl", {}).get("exercise")
    if name is None:
        return None
    known = lectures()
    if name not in known:
        raise ValueError(
            f"{solution_path} declares exercise {name!r}; expected one of {sorted(known)} "
            "(register it in fdrl_lib/grading/exercises/__init__.py)"
        )
    numbers = {ex.grade_id: ex.number for ex in known[name].exercises}
    released = release_notebook(nb, numbers)
    manifest_text = json.dumps(manifest(released, name), indent=1, sort_keys=True) + "\n"
    return name, dumps(released), manifest_text


def release(root: Path, check: bool = False) -> list[str]:
    """Write (or with ``check``, compare) every exercise; returns the paths that differ."""
    differ = []
    for solution in sorted((root / "solutions").glob("*.ipynb")):
        built = build(solution)
        if built is None:
            continue
        name, exercise_text, manifest_text = built
        targets = {
            root / "exercises" / f"{name}.ipynb": exercise_text,
            MANIFESTS / f"{name}.json": manifest_text,
        }
        for path, text in targets.items():
            current = path.read_text() if path.exists() else None
            if current == text:
                continue
            differ.append(str(path))
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    return differ


def load_manifest(name: str) -> dict[str, Any]:
    path = MANIFESTS / f"{name}.json"
    if not path.exists():
        return {"exercise": name, "cells": {}}
    return json.loads(path.read_text())


def main_release(args: argparse.Namespace) -> int:
    root = repo_root()
    differ = release(root, check=bool(getattr(args, "check", False)))
    if getattr(args, "check", False):
        if differ:
            print(
                "out of date (run `fdrl release` or `make exercises`):\n  " + "\n  ".join(differ),
                file=sys.stderr,
            )
            return 1
        print("exercises/ is up to date with solutions/")
        return 0
    print("wrote " + ", ".join(differ) if differ else "exercises/ already up to date")
    return 0
