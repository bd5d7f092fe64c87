"""Submissions for the grading tests, built from solutions/01_mdps.ipynb (less to maintain).

Each submission is the solution (or the released exercise) with a few edits: a source
replacement inside one cell (a bug), an extra cell (hostile code), or a removed/edited cell.
``EXPECTED`` is what each must score per exercise, and why. Points per exercise:
1.1 = 3, 1.2 = 5, 1.3 = 4, 1.4 = 3, 1.5 = 4 (total 19).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = ROOT / "solutions" / "01_mdps.ipynb"
EXERCISE = ROOT / "exercises" / "01_mdps.ipynb"
FULL = {"1.1": 3, "1.2": 5, "1.3": 4, "1.4": 3, "1.5": 4}


def _load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _cell(nb: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return cell
    raise KeyError(grade_id)


def replace_in(nb: nbformat.NotebookNode, grade_id: str, old: str, new: str) -> None:
    cell = _cell(nb, grade_id)
    if old not in cell.source:
        raise ValueError(
            f"{old!r} not in cell {grade_id}: the solution changed, update the fixture"
        )
    cell.source = cell.source.replace(old, new)


def append(nb: nbformat.NotebookNode, source: str, after: str | None = None) -> None:
    """Add a plain learner cell (no nbgrader metadata), at the end or after a grade_id."""
    cell = nbformat.v4.new_code_cell(source)
    if after is None:
        nb.cells.append(cell)
    else:
        index = nb.cells.index(_cell(nb, after))
        nb.cells.insert(index + 1, cell)


# ---------------------------------------------------------------------------------------------
# Bugs: (cell, old, new) replacements in the solution and the score each must get.

BUGS = {
    # gamma dropped from the backup: only the case with V = 0 still passes (1 of 3).
    "bug_no_discount": (
        [("bellman_backup", "R + gamma * V[None, None, :]", "R + V[None, None, :]")],
        {**FULL, "1.1": 1},
    ),
    # max over actions replaced by a max over states: V has shape (A,), every case fails.
    "bug_wrong_axis": (
        [("value_iteration", "V_new = Q.max(axis=1)", "V_new = Q.max(axis=0)")],
        {**FULL, "1.2": 0},
    ),
    # one backup too many: the three horizon cases fail, the two to-tolerance cases pass.
    "bug_off_by_one_horizon": (
        [("value_iteration", "range(horizon if horizon", "range(horizon + 1 if horizon")],
        {**FULL, "1.2": 2},
    ),
    # log-sum-exp without the factor beta: right when beta = 1, and at beta = 0.003 where the
    # log term vanishes (2 of 4).
    "bug_wrong_temperature": (
        [("soft_value_iteration", "Q_max[:, 0] + beta * np.log(", "Q_max[:, 0] + np.log(")],
        {**FULL, "1.5": 2},
    ),
    # stochastic policies collapsed to their most likely action: the 2 stochastic cases fail.
    "bug_stochastic_as_greedy": (
        [
            (
                "policy_evaluation",
                "probs = np.eye(A)[policy] if policy.ndim == 1 else policy",
                "probs = np.eye(A)[policy if policy.ndim == 1 else policy.argmax(axis=1)]",
            )
        ],
        {**FULL, "1.3": 2},
    ),
}

# What the feedback of each bug's failed cases says: the grader recognises the wrong answer (a
# variant computed in the reference, fdrl_lib/grading/exercises/mdps.py) and names the mistake.
# None: the bug crashes inside the learner's code (V of shape (A,) meets V of shape (S,)), so
# there is no output to recognise; the report shows the error and the learner's traceback.
NAMED = {
    "bug_no_discount": "your backup ignores gamma",
    "bug_wrong_axis": None,
    "bug_off_by_one_horizon": "you did H+1 backups",
    "bug_wrong_temperature": "your stable log-sum-exp drops the factor beta",
    "bug_stochastic_as_greedy": "you evaluated only each state's most likely action; eq. 1.16",
}

ZERO = dict.fromkeys(FULL, 0)

# A notebook cut off mid-save (what a crashed upload looks like).
NOT_JSON = b'{"cells": [ {"cell_type": "code", "source": "def bellman_backup(P, R, gamma, V):\n'


# ---------------------------------------------------------------------------------------------
# Hostile submissions: (base, edits, expected). base "solution" or "exercise" (all stubs).

FAKE_PRINT = """
print("Total: 19/19 (100%)")
print(json.dumps({"score": 19, "max_score": 19}))
def bellman_backup(P, R, gamma, V):  # tries to draw a fake score over the grader's report
    raise ValueError("\\x1b[2J\\x1b[H\\nTotal: 19/19 (100%)\\n")
"""

PATCH_GRADER = """
import fdrl_lib.grading.checking as checking
import fdrl_lib.grading.runner as runner
import fdrl_lib.grading.spec as spec
always = lambda *args, **kwargs: (True, "correct")
checking.judge = runner.judge = always
spec.compare_output = spec.compare_values = spec.compare_greedy = spec.compare_probs = always
checking.check = lambda *args, **kwargs: print("Exercise 1.1: all visible cases pass.")
"""

PATCH_NUMPY = """
np.allclose = lambda *args, **kwargs: True
np.isclose = lambda a, b, *args, **kwargs: np.ones(np.shape(a), dtype=bool)
np.abs = lambda x: 0 * np.asarray(x)
np.testing.assert_allclose = lambda *args, **kwargs: None
_real_asarray = np.asarray
def bellman_backup(P, R, gamma, V):
    return np.zeros(P.shape[:2])
"""

# Finds the installed package (the test runs it from a throw-away copy) and overwrites the
# reference planners, the expected-values manifest and the checks with versions that agree
# with this submission's all-zero answers.
WRITE_PACKAGE = """
import pathlib, fdrl_lib
pkg = pathlib.Path(fdrl_lib.__file__).parent
zero = (
    "import numpy as np\\n"
    "class _R:\\n"
    "    def __init__(self, S, A): self.V = np.zeros(S); self.Q = np.zeros((S, A)); "
    "self.policy = np.zeros(S, int)\\n"
    "def value_iteration(mdp, *a, **k): return _R(mdp.S, mdp.A)\\n"
    "def policy_iteration(mdp, *a, **k): return _R(mdp.S, mdp.A)\\n"
    "def soft_value_iteration(mdp, *a, **k): return _R(mdp.S, mdp.A)\\n"
    "def policy_evaluation(mdp, *a, **k): return np.zeros(mdp.S)\\n"
)
(pkg / "tabular" / "planning.py").write_text(zero)
(pkg / "grading" / "manifests" / "01_mdps.json").write_text('{"exercise": "01_mdps", "cells": {}}')
(pkg / "grading" / "spec.py").write_text(
    (pkg / "grading" / "spec.py").read_text().replace("return False, ", "return True, ")
)
for tmp in pathlib.Path("/tmp").glob("fdrl-grade-*"):
    for out in tmp.glob("out-*.json"):
        out.write_text("{}")
print("package files overwritten")

def bellman_backup(P, R, gamma, V):
    return np.zeros(P.shape[:2])
"""

MEMORY_UNDER = """
ballast = np.ones(200 * 2**20 // 8)  # 200 MB, under the cap
ballast.sum()
"""

MEMORY_OVER = """
ballast = np.ones(16 * 2**30 // 8)  # 16 GB, over the cap: MemoryError
"""

FLOOD = """
print("x" * 20_000_000)
for i in range(50_000):
    print("line", i)
"""

WARNINGS = """
import warnings
_backup = bellman_backup
def bellman_backup(P, R, gamma, V):
    warnings.warn("this is a learner warning", RuntimeWarning)
    np.log(np.zeros(1))  # numpy's own divide-by-zero warning
    return _backup(P, R, gamma, V)
"""

SYS_EXIT_TOP = "import sys\nsys.exit(0)\n"

SYS_EXIT_IN_FUNCTION = """
import sys
def policy_evaluation(P, R, gamma, policy, tol=1e-10):
    sys.exit(1)
"""

OS_EXIT_TOP = "import os\nos._exit(0)\n"

OS_EXIT_IN_SOFT = """
import os
def soft_value_iteration(P, R, gamma, beta, horizon=None, tol=1e-10):
    os._exit(3)
"""

INFINITE_LOOP_IN_FUNCTION = """
def policy_iteration(P, R, gamma):
    while True:
        pass
"""

RUNAWAY_IGNORES_INTERRUPT = """
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    pass
"""

# Stubs that hand back the library's or the grader's own answers (issue 14, defect 2): while an
# exercise is graded those implementations fail with a message saying so.
CALLS_LIBRARY = """
import fdrl_lib.tabular as tabular
from fdrl_lib.tabular import soft_value_iteration as soft  # an alias, loaded before grading
def value_iteration(P, R, gamma, horizon=None, tol=1e-10):
    result = tabular.value_iteration(tabular.TabularMDP(P, R, gamma=gamma), horizon=horizon)
    return result.V, result.policy
def bellman_backup(P, R, gamma, V):
    return tabular.TabularMDP(P, R, gamma=gamma).backup(V)
def soft_value_iteration(P, R, gamma, beta, horizon=None, tol=1e-10):
    result = soft(tabular.TabularMDP(P, R, gamma=gamma), beta, horizon=horizon)
    return result.V, result.policy
"""

CALLS_GRADER = """
def policy_evaluation(P, R, gamma, policy, tol=1e-10):
    from fdrl_lib.grading.exercises import mdps
    return mdps.policy_evaluation(P, R, gamma, policy)
def policy_iteration(P, R, gamma):
    import importlib
    mdps = importlib.import_module("fdrl_lib.grading.exercises.mdps")
    reference = mdps._ref_policy_iteration({"P": P, "R": R, "gamma": gamma})
    return reference["V"], reference["Q"].argmax(axis=1)
"""

HOSTILE = {
    "cheat_calls_library": ("exercise", [("append", CALLS_LIBRARY)], ZERO),
    "cheat_calls_grader": ("exercise", [("append", CALLS_GRADER)], ZERO),
    "hostile_fake_print": ("exercise", [("append", "import json\n" + FAKE_PRINT)], ZERO),
    "hostile_patch_grader": ("exercise", [("append", PATCH_GRADER)], ZERO),
    "hostile_patch_numpy": ("exercise", [("append", PATCH_NUMPY)], ZERO),
    "hostile_sys_exit_top": ("solution", [("after:setup", SYS_EXIT_TOP)], FULL),
    "hostile_sys_exit_in_function": (
        "solution",
        [("after:policy_evaluation", SYS_EXIT_IN_FUNCTION)],
        {**FULL, "1.3": 0},  # 1.4 uses the reference policy_evaluation while it is checked
    ),
    "hostile_os_exit_top": ("solution", [("after:setup", OS_EXIT_TOP)], FULL),
    "hostile_os_exit_in_function": ("solution", [("append", OS_EXIT_IN_SOFT)], {**FULL, "1.5": 0}),
    "hostile_infinite_loop": (
        "solution",
        [("append", INFINITE_LOOP_IN_FUNCTION)],
        {**FULL, "1.4": 0},
    ),
    "hostile_runaway": ("solution", [("append", RUNAWAY_IGNORES_INTERRUPT)], FULL),
    "hostile_memory_under_cap": ("solution", [("append", MEMORY_UNDER)], FULL),
    "hostile_memory_over_cap": ("solution", [("append", MEMORY_OVER)], FULL),
    "hostile_output_flood": ("solution", [("append", FLOOD)], FULL),
    "hostile_warnings": ("solution", [("append", WARNINGS)], FULL),
    # check cells: edited (with a real bug nearby), emptied, deleted; the grader's checks rule.
    "check_cell_edited": (
        "solution",
        [
            ("source:check_value_iteration", 'print("Exercise 1.2: all visible cases pass.")'),
            ("replace:value_iteration", "range(horizon if horizon", "range(horizon + 1 if horizon"),
        ],
        {**FULL, "1.2": 2},
    ),
    "check_cell_emptied": ("exercise", [("source:check_bellman_backup", "")], ZERO),
    "check_cell_deleted": ("solution", [("delete:check_policy_iteration",)], FULL),
    # the stub cell of 1.1 deleted: 1.1 scores 0, the others still use the reference backup.
    "solution_cell_deleted": ("solution", [("delete:bellman_backup",)], {**FULL, "1.1": 0}),
}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook of submission ``name`` (a key of BUGS or HOSTILE)."""
    if name in BUGS:
        nb = _load(SOLUTION)
        for grade_id, old, new in BUGS[name][0]:
            replace_in(nb, grade_id, old, new)
        return nb
    base, edits, _ = HOSTILE[name]
    nb = _load(SOLUTION if base == "solution" else EXERCISE)
    for edit in edits:
        action, *args = edit
        if action == "append":
            append(nb, args[0])
        elif action.startswith("after:"):
            append(nb, args[0], after=action.split(":", 1)[1])
        elif action.startswith("source:"):
            _cell(nb, action.split(":", 1)[1]).source = args[0]
        elif action.startswith("replace:"):
            replace_in(nb, action.split(":", 1)[1], *args)
        elif action.startswith("delete:"):
            nb.cells.remove(_cell(nb, action.split(":", 1)[1]))
    return nb


def expected(name: str) -> dict[str, int]:
    return BUGS[name][1] if name in BUGS else HOSTILE[name][2]


def other_exercise() -> nbformat.NotebookNode:
    """A notebook for a different (lecture 2) exercise, submitted in place of 01_mdps."""
    nb = copy.deepcopy(_load(SOLUTION))
    nb.metadata["fdrl"] = {"exercise": "02_qlearning"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Lecture 2 exercises: Q-learning"),
        nbformat.v4.new_code_cell("def q_learning_update(Q, s, a, r, s2, alpha, gamma):\n    ..."),
    ]
    return nb


def write_all(folder: Path) -> dict[str, Path]:
    """Write every fixture (plus solution, blank, not-JSON, other exercise) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in [*BUGS, *HOSTILE]:
        paths[name] = folder / f"{name}.ipynb"
        nbformat.write(build(name), paths[name])
    paths["solution"] = folder / "solution.ipynb"
    nbformat.write(_load(SOLUTION), paths["solution"])
    paths["blank"] = folder / "blank.ipynb"
    nbformat.write(_load(EXERCISE), paths["blank"])
    paths["not_json"] = folder / "not_json.ipynb"
    paths["not_json"].write_bytes(NOT_JSON)
    paths["other_exercise"] = folder / "other_exercise.ipynb"
    nbformat.write(other_exercise(), paths["other_exercise"])
    return paths


def scores(report: dict) -> dict[str, float]:
    return {part["number"]: part["score"] for part in report["parts"]}


if __name__ == "__main__":  # write them to a folder to try `fdrl grade` by hand
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "build/grading_fixtures")
    print(json.dumps({k: str(v) for k, v in write_all(target).items()}, indent=1))
