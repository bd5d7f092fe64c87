"""Registry of graded notebooks: notebook name -> its ``Lecture`` of exercises.

Adding a lecture's exercise: write ``fdrl_lib/grading/exercises/<topic>.py`` with a ``LECTURE``
(see ``mdps.py``), add it below, and write ``solutions/<name>.ipynb`` (see docs/grading.md).
"""

from __future__ import annotations

from fdrl_lib.grading.spec import Lecture


def lectures() -> dict[str, Lecture]:
    """All graded notebooks by name (imported lazily: each lecture may import its library)."""
    from fdrl_lib.grading.exercises import (
        ddpg_sac,
        dqn,
        mdps,
        model_based,
        policy_gradients,
        trpo_ppo,
    )

    lectures = (mdps.LECTURE, dqn.LECTURE, policy_gradients.LECTURE)  # lectures 1-3
    lectures += (trpo_ppo.LECTURE, ddpg_sac.LECTURE, model_based.LECTURE)  # lectures 4-6
    return {lecture.name: lecture for lecture in lectures}


def lecture_of(number: str) -> Lecture:
    """The lecture holding exercise ``number`` ("1.2" -> 01_mdps)."""
    for lecture in lectures().values():
        if any(exercise.number == number for exercise in lecture.exercises):
            return lecture
    raise ValueError(f"no graded exercise numbered {number!r}; expected e.g. '1.2'")
