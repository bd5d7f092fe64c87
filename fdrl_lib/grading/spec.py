"""How an exercise's checks are written down: cases, reference answers and comparisons.

An exercise module (e.g. ``fdrl_lib/grading/exercises/mdps.py``) lists, for every learner
function, the cases it is called on (seeded inputs), how the right answer is computed (with
``fdrl_lib.tabular``, which is tested on its own) and how an answer is compared with it. The same
description serves twice:

- in the notebook, ``check("1.2", value_iteration)`` runs the visible cases in the learner's
  kernel and prints feedback (convenient, but nothing there is trusted);
- ``fdrl grade`` computes inputs and expected answers in its own process, lets the learner's
  kernel only *produce* outputs on those inputs, and compares them back in its own process.

Everything here is pure numpy: a comparison returns ``(ok, message)`` and never raises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

Inputs = dict[str, Any]  # argument name -> np.ndarray | float | int
Expected = tuple[Any, ...]  # one entry per output of the learner's function


@dataclass(frozen=True)
class Case:
    """One call of a learner function on fixed inputs, worth ``points`` if every output is right."""

    name: str  # what a learner reads: "book grid, gamma=0.9, V = 0"
    # Deterministic (fixed seeds, no global state). A hidden case takes ``seed`` with a public
    # default: ``lambda seed=21: random_inputs(seed)``; ``fdrl grade`` passes a seed derived
    # from the instructor's secret, so hidden inputs cannot be known before grading.
    make_inputs: Callable[..., Inputs]
    points: float = 1.0
    hidden: bool = False  # not run by the notebook's check cell; always run by the grader
    grid: str | None = None  # GridWorld classmethod name when the states are grid cells

    @property
    def seeded(self) -> bool:
        """Whether ``make_inputs`` takes a seed (every hidden case must)."""
        import inspect

        return bool(inspect.signature(self.make_inputs).parameters)


def case(
    name: str,
    make: Callable[..., Inputs],
    *args: Any,
    hidden: bool = False,
    points: float = 1.0,
    grid: str | None = None,
    seed: int | None = None,
    **kwargs: Any,
) -> Case:
    """A case in one line: ``case("B=16, with terminals", loss_inputs, seed=1, B=16)``.

    ``make(*args, seed=..., **kwargs)`` builds the inputs; a hidden case passes its seed on
    (the grader replaces it with one derived from the instructor's secret).
    """
    if seed is None:
        return Case(name, lambda: make(*args, **kwargs), points, hidden, grid)
    if hidden:
        return Case(name, lambda seed=seed: make(*args, seed=seed, **kwargs), points, hidden, grid)
    return Case(name, lambda: make(*args, seed=seed, **kwargs), points, hidden, grid)


@dataclass(frozen=True)
class Output:
    """How one returned value is checked against the reference."""

    name: str  # "V", "policy", "Q", "pi"
    kind: str  # "values" | "greedy" | "probs" | "frequencies"
    atol: float = 1e-6
    # Known wrong answers: (key of the reference dict holding the wrong variant, what the
    # mistake is). When a wrong output matches a variant, the feedback names the mistake.
    mistakes: tuple[tuple[str, str], ...] = ()
    hint: str = ""  # leads the feedback whenever this output is wrong and no mistake matched
    shape: str = ""  # what the shape means, for shape messages: "(S,)", "(S, A)"
    nonfinite: str = ""  # leads the feedback when the output holds NaN/inf (e.g. an overflow)


@dataclass(frozen=True)
class Exercise:
    """A learner function, its cases and the lecture equations its feedback points to."""

    number: str  # "1.2"
    title: str  # "Value iteration"
    function: str  # name of the learner's function in the notebook
    args: tuple[str, ...]  # passed positionally, in this order
    kwargs: tuple[str, ...]  # passed by keyword when a case provides them
    outputs: tuple[Output, ...]
    reference: Callable[[Inputs], dict[str, Any]]  # -> {output name: array, "Q": (S, A) ...}
    cases: tuple[Case, ...]
    equations: str  # "eq. 1.7 and Algorithm 1"
    isolate: tuple[str, ...] = ()  # other learner functions swapped for the reference while checked
    notes: str = ""  # which bug costs what, for docs and feedback
    # Optional adapter for functions that do not map arrays to arrays (a torch loss, a function
    # taking a numpy Generator, a one-step update replayed over a stream): called as
    # ``wrapper(learner_function, *args, **kwargs)`` instead of ``learner_function(...)`` and
    # returns the outputs as numbers. Self-contained (imports inside, module level): its source
    # is sent into the learner's kernel, like the ``isolate`` references.
    # (or an ``adapters.Adapter``: the generic torch / callable-input adapter with options)
    wrapper: Any = None
    # Mistakes from the shared catalogue (``fdrl_lib.grading.mistakes``): their answers are
    # computed as variants of the reference and named in the feedback when an output matches.
    variants: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if not self.variants:
            return
        from fdrl_lib.grading.mistakes import with_variants

        names = tuple(output.name for output in self.outputs)
        object.__setattr__(self, "reference", with_variants(self.reference, self.variants, names))
        outputs = tuple(
            replace(
                output,
                mistakes=output.mistakes
                + tuple((f"{output.name}@{m.key}", m.text) for m in self.variants),
            )
            for output in self.outputs
        )
        object.__setattr__(self, "outputs", outputs)

    @property
    def grade_id(self) -> str:
        return self.function

    @property
    def check_id(self) -> str:
        return f"check_{self.function}"

    @property
    def points(self) -> float:
        return float(sum(case.points for case in self.cases))


@dataclass(frozen=True)
class Lecture:
    """All exercises of one notebook, e.g. ``01_mdps``."""

    name: str
    title: str
    exercises: tuple[Exercise, ...]
    reference_source: str = ""  # numpy source of the functions named in ``isolate``
    kernel_references: dict[str, str] = field(default_factory=dict)  # function -> source
    # The library's implementations of these exercises, "module:qualname"; while a learner
    # function is checked they raise "not available while exercise N is graded" in the kernel.
    library: tuple[str, ...] = ()

    def exercise(self, number: str) -> Exercise:
        for exercise in self.exercises:
            if exercise.number == number:
                return exercise
        known = ", ".join(e.number for e in self.exercises)
        raise ValueError(f"no exercise {number!r} in {self.name}; expected one of {known}")


# ----------------------------------------------------------------------------------------------
# Comparisons. Each returns (ok, message); the message says what is wrong and where.


def as_numeric(got: Any, name: str) -> tuple[np.ndarray | None, str]:
    """``got`` as a float/int array, or None with a message when it is not numbers."""
    try:
        array = np.asarray(got)
    except Exception as error:  # a learner can return anything
        return None, f"{name} could not be read as an array ({type(error).__name__}: {error})"
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        return None, f"{name} should be an array of numbers, got {type(got).__name__} "
    return array, ""


def _shape_message(
    name: str, got: np.ndarray, expected_shape: tuple[int, ...], meaning: str = ""
) -> str:
    return (
        f"{name} has shape {tuple(got.shape)}, expected {tuple(expected_shape)} {meaning}".rstrip()
    )


def compare_values(
    got: Any, expected: np.ndarray, name: str, atol: float, meaning: str = ""
) -> tuple[bool, str]:
    """Arrays equal up to ``atol`` (absolute and relative), with the worst entry named."""
    expected = np.asarray(expected, dtype=float)
    array, message = as_numeric(got, name)
    if array is None:
        return False, message
    if array.shape != expected.shape:
        return False, _shape_message(name, array, expected.shape, meaning)
    array = array.astype(float)
    if not np.all(np.isfinite(array)):
        bad = int(np.sum(~np.isfinite(array)))
        return False, f"{name} has {bad} NaN/inf entries (first at index {_first_bad(array)})"
    error = np.abs(array - expected)
    wrong = error > atol + atol * np.abs(expected)
    if not wrong.any():
        return True, f"{name} correct"
    worst = np.unravel_index(int(np.argmax(error)), error.shape)
    index = worst[0] if len(worst) == 1 else tuple(int(i) for i in worst)
    return False, (
        f"{name} wrong in {int(wrong.sum())} of {wrong.size} entries; largest error "
        f"{float(error[worst]):.4g} at {index}: expected {float(expected[worst]):.6g}, "
        f"got {float(array[worst]):.6g}"
    )


def _first_bad(array: np.ndarray) -> Any:
    index = np.argwhere(~np.isfinite(array))[0]
    return int(index[0]) if len(index) == 1 else tuple(int(i) for i in index)


def compare_greedy(
    got: Any, Q: np.ndarray, name: str, atol: float, meaning: str = ""
) -> tuple[bool, str]:
    """A deterministic policy (S,) that picks a best action of ``Q`` (S, A) in every state.

    Any maximiser is accepted, so ties (exit cells, the terminal state) never cost points.
    """
    array, message = as_numeric(got, name)
    if array is None:
        return False, message
    S, A = Q.shape
    if array.shape != (S,):
        return False, _shape_message(name, array, (S,), meaning)
    if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
        return False, f"{name} should hold integer actions 0..{A - 1}, got {array[:5]}..."
    actions = array.astype(int)
    if actions.min() < 0 or actions.max() >= A:
        return False, f"{name} has actions outside 0..{A - 1}: {sorted(set(actions.tolist()))}"
    chosen = Q[np.arange(S), actions]
    best = Q.max(axis=1)
    bad = np.flatnonzero(chosen < best - atol * (1 + np.abs(best)))
    if bad.size == 0:
        return True, f"{name} greedy"
    s = int(bad[0])
    return False, (
        f"{name} is not greedy in {bad.size} of {S} states; in state {s} it picks action "
        f"{int(actions[s])} (Q = {chosen[s]:.4g}) but action {int(Q[s].argmax())} has Q = "
        f"{best[s]:.4g}"
    )


def compare_probs(
    got: Any, expected: np.ndarray, name: str, atol: float, meaning: str = ""
) -> tuple[bool, str]:
    """A stochastic policy (S, A): rows are distributions equal to the expected ones."""
    array, message = as_numeric(got, name)
    if array is None:
        return False, message
    if array.shape == expected.shape and np.all(np.isfinite(array)):
        sums = array.sum(axis=1)
        if np.any(np.abs(sums - 1) > 1e-6):
            s = int(np.argmax(np.abs(sums - 1)))
            return False, f"{name} rows should sum to 1; row {s} sums to {sums[s]:.6g}"
    return compare_values(array, expected, name, atol, meaning)


FREQUENCY_Z = 5.0  # "frequencies": allowed deviation in standard errors of a count's frequency


def compare_frequencies(got: Any, probs: np.ndarray, name: str) -> tuple[bool, str]:
    """Counts of n seeded draws (A,) against exact probabilities (A,).

    Entry a passes when ``|count_a / n - p_a| <= FREQUENCY_Z * sqrt(p_a (1 - p_a) / n)``: five
    standard errors of a binomial frequency, so a right sampler fails with probability < 1e-6
    per entry, and with the grader's fixed seed never (same draws every run). Probabilities 0
    and 1 must be met exactly.
    """
    array, message = as_numeric(got, name)
    if array is None:
        return False, message
    if array.shape != probs.shape:
        return False, _shape_message(name, array, probs.shape)
    n = float(array.sum())
    if n <= 0 or np.any(array < 0):
        return False, f"{name} should be non-negative counts of draws, got {array}"
    freq = array / n
    allowed = FREQUENCY_Z * np.sqrt(probs * (1 - probs) / n) + 1e-12
    wrong = np.abs(freq - probs) > allowed
    if not wrong.any():
        return True, f"{name} frequencies match"
    a = int(np.argmax(np.abs(freq - probs) - allowed))
    return False, (
        f"{name}: action {a} was drawn {freq[a]:.4f} of the time in {int(n)} seeded draws; "
        f"expected probability {probs[a]:.4f} (allowed deviation {allowed[a]:.4f}); all "
        f"frequencies {np.round(freq, 4).tolist()} vs {np.round(probs, 4).tolist()}"
    )


def _compare(output: Output, got: Any, reference: dict[str, Any]) -> tuple[bool, str]:
    if output.kind == "values":
        return compare_values(got, reference[output.name], output.name, output.atol, output.shape)
    if output.kind == "greedy":
        return compare_greedy(got, reference["Q"], output.name, output.atol, output.shape)
    if output.kind == "probs":
        return compare_probs(got, reference[output.name], output.name, output.atol, output.shape)
    return compare_frequencies(got, reference[output.name], output.name)


KINDS = ("values", "greedy", "probs", "frequencies")


def compare_output(output: Output, got: Any, reference: dict[str, Any]) -> tuple[bool, str]:
    """Dispatch on ``output.kind``; a wrong output that matches a known mistake is named."""
    if output.kind not in KINDS:
        raise ValueError(f"unknown output kind {output.kind!r}; expected one of {KINDS}")
    try:
        ok, message = _compare(output, got, reference)
        if ok:
            return ok, message
        for key, mistake in output.mistakes:
            if key in reference and _compare(replace(output, name=key), got, reference)[0]:
                return False, f"{mistake} [{message}]"
        if output.nonfinite and "NaN/inf" in message:
            return False, f"{output.nonfinite} [{message}]"
        return False, f"{output.hint} [{message}]" if output.hint else message
    except Exception as error:  # defensive: a comparison must not crash the grader
        return False, f"{output.name} could not be compared ({type(error).__name__}: {error})"
