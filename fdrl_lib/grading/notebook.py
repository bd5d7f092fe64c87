"""nbgrader-style notebook handling: cell metadata, solution/hidden-test markers, release, manifest.

A solution notebook marks the learner's parts the nbgrader way:

- a code cell with ``{"nbgrader": {"solution": true, "grade": false, "grade_id": "value_iteration",
  ...}}`` holds ``### BEGIN SOLUTION`` / ``### END SOLUTION``; release replaces the region with
  ``raise NotImplementedError("Exercise 1.2")`` (same indentation), keeping the signature and
  docstring around it;
- a check cell with ``{"grade": true, "solution": false, "locked": true, "points": N,
  "grade_id": "check_value_iteration"}`` calls ``check(...)``; anything between
  ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` is removed on release.

The notebook's top-level metadata ``{"fdrl": {"exercise": "01_mdps"}}`` names its graded exercise.
"""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

import nbformat

SOLUTION = re.compile(
    r"^([ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*(\n|$)", re.M | re.S
)
HIDDEN = re.compile(
    r"^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n.*?^[ \t]*### END HIDDEN TESTS[^\n]*(\n|$)", re.M | re.S
)
MARKDOWN_SOLUTION = "YOUR ANSWER HERE"


def nbgrader_meta(cell: Any) -> dict[str, Any]:
    """The cell's nbgrader metadata, or {} when it has none (or it is malformed)."""
    meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell, dict) else {}
    return meta if isinstance(meta, dict) else {}


def is_check_cell(cell: Any) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.get("cell_type") == "code"


def stub_source(source: str, number: str) -> str:
    """Replace every solution region with the stub, keeping its indentation."""

    def stub(match: re.Match[str]) -> str:
        indent = match.group(1)
        return (
            f"{indent}# YOUR CODE HERE\n"
            f'{indent}raise NotImplementedError("Exercise {number}")' + match.group(2)
        )

    return SOLUTION.sub(stub, source)


def strip_hidden(source: str) -> str:
    return HIDDEN.sub("", source).rstrip("\n")


def source_hash(source: str) -> str:
    """Whitespace-insensitive at line ends, so re-saving a notebook does not count as an edit."""
    canonical = "\n".join(line.rstrip() for line in source.strip().splitlines())
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def release_notebook(nb: Any, numbers: dict[str, str]) -> Any:
    """The learner's version of a solution notebook.

    ``numbers`` maps a solution cell's grade_id to its exercise number (for the stub's message).
    Solution regions become stubs, hidden tests go, outputs and execution counts are cleared.
    """
    out = nbformat.from_dict(copy.deepcopy(dict(nb)))
    for cell in out.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            if meta.get("solution"):
                grade_id = str(meta.get("grade_id", ""))
                if grade_id not in numbers:
                    raise ValueError(
                        f"solution cell {grade_id!r} is not an exercise of this notebook; "
                        f"expected one of {sorted(numbers)}"
                    )
                cell.source = stub_source(cell.source, numbers[grade_id])
            cell.source = strip_hidden(cell.source)
        elif cell.cell_type == "markdown" and meta.get("solution"):
            cell.source = SOLUTION.sub(MARKDOWN_SOLUTION + "\n", cell.source)
        cell.metadata.pop("execution", None)
    return out


def manifest(released: Any, name: str) -> dict[str, Any]:
    """What the grader needs from the released notebook: the locked cells' content hashes."""
    cells = {}
    for cell in released.cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade_id") and (meta.get("locked") or meta.get("grade")):
            cells[str(meta["grade_id"])] = {
                "hash": source_hash(cell.source),
                "check": is_check_cell(cell),
                "points": meta.get("points", 0),
            }
    return {"exercise": name, "cells": cells}


def dumps(nb: Any) -> str:
    """Stable text of a notebook (what release writes and --check compares)."""
    return nbformat.writes(nb, version=4) + "\n"
