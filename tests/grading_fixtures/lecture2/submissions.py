"""Submissions for the lecture 2 grading tests, built from solutions/02_dqn.ipynb.

Each bug is one source replacement in one solution cell; ``BUGS`` says what each must score per
exercise and which words the feedback must use to name the mistake. Points per exercise:
2.1 = 4, 2.2 = 4, 2.3 = 5, 2.4 = 4, 2.5 = 4, 2.6 = 4 (total 25).
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from grading_fixtures.submissions import append, replace_in

ROOT = Path(__file__).resolve().parents[3]
SOLUTION = ROOT / "solutions" / "02_dqn.ipynb"
EXERCISE = ROOT / "exercises" / "02_dqn.ipynb"
FULL = {"2.1": 4, "2.2": 4, "2.3": 5, "2.4": 4, "2.5": 4, "2.6": 4}
TOTAL = sum(FULL.values())

# name: ([(cell, old, new)], expected scores, words the failed cases' feedback must contain)
BUGS = {
    # the DQN target bootstraps after terminal transitions: the 2 terminal cases fail.
    "bug_target_ignores_terminated": (
        [("dqn_target", "gamma * (1.0 - terminated) * next_value", "gamma * next_value")],
        {**FULL, "2.3": 3},
        "your target bootstraps from terminal transitions (terminated=True)",
    ),
    # double DQN evaluates a* with the online net: the 2 double-DQN cases fail.
    "bug_double_evaluates_with_online": (
        [
            (
                "dqn_target",
                "next_value = next_q_target[np.arange(len(reward)), next_action]",
                "chosen = next_q_target if next_q_online is None else next_q_online\n"
                "    next_value = chosen[np.arange(len(reward)), next_action]",
            )
        ],
        {**FULL, "2.3": 3},
        "evaluates the chosen action with the online network",
    ),
    # the torch loss computes y with gradients: they reach the target network in every case.
    "bug_backprop_into_target": (
        [("dqn_loss", "with torch.no_grad():  # y is a fixed regression label", "if True:")],
        {**FULL, "2.6": 0},
        "your loss backpropagates into the target network",
    ),
    # the tabular update bootstraps after terminal transitions: the 2 terminal streams fail.
    "bug_q_update_ignores_terminated": (
        [("q_update", "0.0 if terminated else gamma", "0.0 if False else gamma")],
        {**FULL, "2.1": 2},
        "your target bootstraps from terminal transitions (terminated=True)",
    ),
    # a time-limit cut treated as terminal: the 2 streams with truncations fail.
    "bug_truncated_as_terminal": (
        [("q_update", "0.0 if terminated else", "0.0 if terminated or truncated else")],
        {**FULL, "2.1": 2},
        "stops bootstrapping when an episode is cut by a time limit",
    ),
    # the random action never is the greedy one: every case with 0 < epsilon fails.
    "bug_random_action_excludes_greedy": (
        [
            (
                "epsilon_greedy",
                "return int(rng.integers(len(q_values)))",
                "others = [a for a in range(len(q_values)) if a != np.argmax(q_values)]\n"
                "        return int(rng.choice(others))",
            )
        ],
        {**FULL, "2.2": 1},
        "(the greedy one included)",
    ),
    # exploration drawn from the global np.random: not repeatable when 0 < epsilon < 1.
    "bug_global_random": (
        [("epsilon_greedy", "if rng.random() < epsilon", "if np.random.random() < epsilon")],
        {**FULL, "2.2": 2},
        "draw every random number from the rng argument",
    ),
    # the linear branch without -delta/2: every case with |error| > delta fails.
    "bug_huber_no_offset": (
        [("huber", "delta * (np.abs(error) - 0.5 * delta)", "delta * np.abs(error)")],
        {**FULL, "2.4": 1},
        "subtract delta^2 / 2",
    ),
    # ties go left in the descent: the case with draws on leaf boundaries fails.
    "bug_sum_tree_boundary_left": (
        [("sum_tree_sample", "if value < tree[2 * k]:", "if value <= tree[2 * k]:")],
        {**FULL, "2.5": 3},
        "a value on a boundary between two leaves went to the left one",
    ),
    # the whole loss under no_grad: nothing to train, every case of 2.6 says so.
    "bug_loss_without_gradient": (
        [
            (
                "dqn_loss",
                "    return torch.nn.functional.huber_loss(q, y, delta=1.0)",
                "    return torch.nn.functional.huber_loss(q, y, delta=1.0).detach()",
            )
        ],
        {**FULL, "2.6": 0},
        "dqn_loss returned a loss with no gradient",
    ),
}

# A learner who calls the library instead of writing 2.3 still gets the points (outputs are
# judged, not code; see docs/grading.md), and a learner helper cell between exercises is fine.
HELPER_CELL = """
def _unused_helper(x):
    return 2 * x
"""


# Correct work written differently from the solution: each must score full marks, in the
# notebook's check cell and in ``fdrl grade`` alike (issue 14, defect 3).
FAIR = {
    # dqn_loss reuses the learner's own dqn_target from 2.3, on tensors, under torch.no_grad().
    "fair_reuses_own_dqn_target": [
        (
            "dqn_loss",
            """        chooser = online(next_obs) if double else next_q
        next_action = chooser.argmax(dim=1, keepdim=True)  # (B, 1)
        next_value = next_q.gather(1, next_action).squeeze(1)  # (B,)
        y = reward + gamma * (1.0 - terminated) * next_value""",
            "        chooser = online(next_obs) if double else None\n"
            "        y = dqn_target(reward, terminated, gamma, next_q, chooser)",
        )
    ],
}


# Stubs handing in the library's or the grader's own answers (issue 14, defect 2): appended
# after the solution, they replace three functions; those exercises must score 0.
CHEAT = """
import fdrl_lib.algos.dqn as library_dqn
from fdrl_lib.buffers import SumTree
def huber(error, delta=1.0):
    import torch
    e = torch.tensor(error, requires_grad=True)
    loss = library_dqn.huber(e, kappa=delta)
    (grad,) = torch.autograd.grad(loss.sum(), e)
    return loss.detach().numpy(), grad.numpy()
def sum_tree_sample(priorities, uniforms):
    tree = SumTree(len(priorities))
    tree.update(np.arange(len(priorities)), priorities)
    values = (np.arange(len(uniforms)) + uniforms) * tree.total / len(uniforms)
    return tree.nodes.copy(), tree.find(values)
def q_update(Q, obs, action, reward, next_obs, terminated, truncated, alpha, gamma):
    from fdrl_lib.grading.exercises.dqn import _replay
    raise RuntimeError("unreachable")
"""
CHEATS = {"cheat_library_and_helpers": {**FULL, "2.1": 0, "2.4": 0, "2.5": 0}}


def _load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def build(name: str) -> nbformat.NotebookNode:
    nb = _load(SOLUTION)
    if name in CHEATS:
        append(nb, CHEAT)
        return nb
    for grade_id, old, new in BUGS[name][0] if name in BUGS else FAIR[name]:
        replace_in(nb, grade_id, old, new)
    if name == "bug_huber_no_offset":
        append(nb, HELPER_CELL, after="check_huber")
    return nb


def expected(name: str) -> dict[str, int]:
    return BUGS[name][1] if name in BUGS else CHEATS.get(name, FULL)


def write_all(folder: Path) -> dict[str, Path]:
    """Every bug, the solution and the untouched exercise, as notebooks in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in [*BUGS, *FAIR, *CHEATS]:
        paths[name] = folder / f"{name}.ipynb"
        nbformat.write(build(name), paths[name])
    paths["solution"] = folder / "solution.ipynb"
    nbformat.write(_load(SOLUTION), paths["solution"])
    paths["blank"] = folder / "blank.ipynb"
    nbformat.write(_load(EXERCISE), paths["blank"])
    return paths
