"""A shared catalogue of typical RL mistakes, declared as variants of the reference.

An exercise lists the mistakes it expects, ``Exercise(..., variants=(IGNORES_TERMINATED,
SIGN_FLIPPED))``; the grader then also computes each variant's answer (the reference on
changed inputs, the reference's outputs changed, or the reference asked for that mistake by
name) and, when a learner's wrong output matches one, the feedback names the mistake instead
of printing numbers only. A variant equal to the right answer on a case is dropped there, so a
mistake is named only where it shows.

Three ways to declare what a mistake does:

- ``inputs``: a function of the case's inputs (``terminated`` all False, ...); the reference
  runs on the changed inputs;
- ``outputs``: a function of the reference's answer dict (every value negated, ...);
- neither: the reference is called as ``reference(inputs, mistake=key)`` and must return that
  variant's answers (for mistakes only the reference knows how to make, such as letting the
  gradient into a target network).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Inputs = dict[str, Any]


@dataclass(frozen=True)
class Mistake:
    key: str  # "ignores_terminated": reference keys become "<output>@ignores_terminated"
    text: str  # what the learner reads when their output matches
    inputs: Callable[[Inputs], Inputs] | None = None
    outputs: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def answers(self, reference: Callable[..., dict[str, Any]], inputs: Inputs) -> dict[str, Any]:
        if self.inputs is not None:
            return reference(self.inputs(dict(inputs)))
        answers = reference(inputs)
        if self.outputs is not None:
            return self.outputs(answers)
        return reference(inputs, mistake=self.key)


def _falses(inputs: Inputs, *names: str) -> Inputs:
    for name in names:
        if name in inputs:
            inputs[name] = np.zeros_like(np.asarray(inputs[name]))
    return inputs


def _truncation_as_terminal(inputs: Inputs) -> Inputs:
    terminated = np.asarray(inputs["terminated"]).astype(bool)
    truncated = np.asarray(inputs["truncated"]).astype(bool)
    inputs["terminated"] = (terminated | truncated).astype(np.asarray(inputs["terminated"]).dtype)
    return inputs


def _negated(answers: dict[str, Any]) -> dict[str, Any]:
    return {key: -np.asarray(value, dtype=float) for key, value in answers.items()}


IGNORES_TERMINATED = Mistake(
    "ignores_terminated",
    "you bootstrap past terminal transitions (terminated=True): nothing follows a terminal "
    "state, so the value of what comes after it is 0; multiply the bootstrap by (1 - terminated)",
    inputs=lambda inputs: _falses(inputs, "terminated"),
)
TRUNCATION_AS_TERMINAL = Mistake(
    "truncation_as_terminal",
    "you treat a time-limit cut (truncated=True) as terminal: the state after a truncation "
    "still has a future, so keep bootstrapping there; only terminated stops it",
    inputs=_truncation_as_terminal,
)
SUM_CROSSES_EPISODE_END = Mistake(
    "sum_crosses_episode_end",
    "your sum runs across an episode end: rewards (or errors) after terminated/truncated belong "
    "to the next episode; restart the sum at every episode boundary",
    inputs=lambda inputs: _falses(inputs, "terminated", "truncated", "episode_ends"),
)
GRADIENT_INTO_TARGET = Mistake(
    "gradient_into_target",
    "gradient flows into the target: compute the target under torch.no_grad() (or .detach() "
    "it); it is a fixed label, only the prediction is trained",
)
SIGN_FLIPPED = Mistake(
    "sign_flipped",
    "your result has the wrong sign: a loss to minimise is the negative of the objective to "
    "maximise (gradient descent on -J is ascent on J)",
    outputs=_negated,
)
MAX_FOR_MIN = Mistake(
    "max_for_min",
    "you took a max where the method takes a min (e.g. the pessimistic min of the clipped and "
    "unclipped objectives, or of two critics)",
)

CATALOGUE = (
    IGNORES_TERMINATED,
    TRUNCATION_AS_TERMINAL,
    SUM_CROSSES_EPISODE_END,
    GRADIENT_INTO_TARGET,
    SIGN_FLIPPED,
    MAX_FOR_MIN,
)

VARIANT_ATOL = 1e-6


def with_variants(
    reference: Callable[..., dict[str, Any]],
    variants: tuple[Mistake, ...],
    outputs: tuple[str, ...],
) -> Callable[[Inputs], dict[str, Any]]:
    """``reference`` plus ``"<output>@<mistake>"`` entries where a variant differs."""

    def full(inputs: Inputs) -> dict[str, Any]:
        answers = dict(reference(inputs))
        for mistake in variants:
            wrong = mistake.answers(reference, inputs)
            for name in outputs:
                if name not in wrong or name not in answers:
                    continue
                right, value = np.asarray(answers[name]), np.asarray(wrong[name], dtype=float)
                if value.shape == right.shape and np.allclose(
                    value, right, atol=VARIANT_ATOL, rtol=VARIANT_ATOL
                ):
                    continue
                if np.all(np.isfinite(value)):
                    answers[f"{name}@{mistake.key}"] = value
        return answers

    full.__name__ = getattr(reference, "__name__", "reference")
    return full
