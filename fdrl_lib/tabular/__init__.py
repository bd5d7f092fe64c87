"""Lecture 1 (and tabular Q-learning of lecture 2): tabular MDPs and exact planning.

numpy + scipy only; gymnasium is imported only when a Gymnasium env is asked for
(``GridWorld.env()`` or ``fdrl_lib.tabular.GridWorldEnv``).
"""

from typing import Any

from fdrl_lib.tabular.gridworld import GridWorld
from fdrl_lib.tabular.mdp import TabularMDP
from fdrl_lib.tabular.planning import (
    PlanningResult,
    policy_evaluation,
    policy_iteration,
    q_value_iteration,
    soft_value_iteration,
    value_iteration,
)


def register_envs() -> None:
    """Register ``"fdrl/GridWorld-v0"`` with gymnasium (imports gymnasium; idempotent)."""
    from fdrl_lib.tabular.gridworld import _register

    _register()


__all__ = [
    "GridWorld",
    "GridWorldEnv",
    "PlanningResult",
    "TabularMDP",
    "policy_evaluation",
    "policy_iteration",
    "q_value_iteration",
    "register_envs",
    "soft_value_iteration",
    "value_iteration",
]


def __getattr__(name: str) -> Any:
    if name == "GridWorldEnv":  # lazy: defining it imports gymnasium
        from fdrl_lib.tabular import gridworld

        return gridworld.GridWorldEnv
    if name == "q_learning":  # lecture 2, in qlearning.py (its own owner)
        from fdrl_lib.tabular.qlearning import q_learning

        return q_learning
    if name == "approximate_q_learning":  # lecture 2, eq. 2.8 (qlearning.py)
        from fdrl_lib.tabular.qlearning import approximate_q_learning

        return approximate_q_learning
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
