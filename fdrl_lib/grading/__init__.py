"""Graded exercises: the checks notebooks call, ``fdrl release`` and the ``fdrl grade`` runner.

- ``check("1.2", value_iteration)`` in a notebook: visible feedback in the learner's kernel.
- ``grade_notebook(path)``: the trustworthy score (the learner's kernel only produces outputs;
  inputs, expected answers and verdicts stay in the grader's process). See docs/grading.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["check", "grade_notebook", "grade_batch", "GRADER_VERSION"]

GRADER_VERSION = "2.0"  # bump when grading changes a score or a message: the batch cache
# is keyed by it (1.1: lecture 1 feedback names typical mistakes; 2.0: sealed kernels, secret
# hidden seeds, new cases for 1.1 and 1.5, more named mistakes)


def __getattr__(name: str) -> Any:  # lazy: notebooks importing `check` pay for nothing else
    if name == "check":
        from fdrl_lib.grading.checking import check

        return check
    if name in ("grade_notebook", "grade_batch"):
        from fdrl_lib.grading import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'fdrl_lib.grading' has no attribute {name!r}")
