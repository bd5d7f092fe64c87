"""``check("1.2", value_iteration)``: the visible checks a learner runs inside the notebook.

This is feedback, not grading: it runs in the learner's own kernel, where anything can be
changed. ``fdrl grade`` runs the same cases (and the hidden ones) from the same exercise
module, but computes inputs and expected answers in its own process (see runner.py).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fdrl_lib.grading.spec import Case, Exercise, Lecture, compare_output


def call(exercise: Exercise, function: Callable[..., Any], inputs: dict[str, Any]) -> Any:
    """Call a learner function the way the grader does: args by position, options by name
    (through the exercise's ``wrapper`` when it has one)."""
    args = [inputs[name] for name in exercise.args]
    kwargs = {name: inputs[name] for name in exercise.kwargs if inputs.get(name) is not None}
    from fdrl_lib.grading.adapters import Adapter

    if isinstance(exercise.wrapper, Adapter):
        wrapper = exercise.wrapper
        return wrapper.call(function, wrapper.options, exercise.args, *args, **kwargs)
    if exercise.wrapper is not None:
        return exercise.wrapper(function, *args, **kwargs)
    return function(*args, **kwargs)


def split(exercise: Exercise, result: Any) -> tuple[list[Any] | None, str]:
    """The returned value(s) as a list with one entry per declared output, or a message."""
    n = len(exercise.outputs)
    if n == 1:
        return [result], ""
    names = ", ".join(output.name for output in exercise.outputs)
    if not isinstance(result, (tuple, list)):
        return None, f"returned one {type(result).__name__}; expected a tuple ({names})"
    if len(result) != n:
        return None, f"returned {len(result)} values; expected {n}: ({names})"
    return list(result), ""


def judge(exercise: Exercise, outputs: list[Any], reference: dict[str, Any]) -> tuple[bool, str]:
    """All outputs right -> (True, ...); else (False, the first wrong output's message)."""
    messages = []
    for output, got in zip(exercise.outputs, outputs, strict=True):
        ok, message = compare_output(output, got, reference)
        if not ok:
            return False, message
        messages.append(message)
    return True, "; ".join(messages)


def _cases(exercise: Exercise, hidden: bool) -> list[Case]:
    return [case for case in exercise.cases if case.hidden == hidden]


def check(
    number: str,
    function: Callable[..., Any],
    *,
    hidden: bool = False,
    lecture: Lecture | None = None,
) -> None:
    """Run exercise ``number``'s visible cases (``hidden=True``: the hidden ones) on ``function``.

    Prints one line per case and raises AssertionError when any case fails (so nbgrader's
    autograder, which restores the hidden tests, scores the cell 0).
    """
    from fdrl_lib.grading.exercises import lecture_of

    lecture = lecture or lecture_of(number)
    exercise = lecture.exercise(number)
    failed = []
    with isolated(exercise, lecture, function):
        failed = _run_cases(exercise, function, hidden)
    kind = "hidden" if hidden else "visible"
    if failed:
        _show_briefly()
        raise CheckFailed(
            f"Exercise {number}: {len(failed)} {kind} case(s) failed; reread {exercise.equations}"
        )
    print(f"Exercise {number}: all {kind} cases pass.")


GREEN, RED, RESET = "\x1b[32m", "\x1b[31m", "\x1b[0m"
TICK, CROSS = f"{GREEN}✓{RESET}", f"{RED}✗{RESET}"


class CheckFailed(AssertionError):
    """Some cases of a check cell failed. In Jupyter the cell shows this one line, not a
    traceback into the grading code; it is still an error, so nbgrader scores the cell 0."""


def _one_line(
    shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None
) -> list[str]:
    """IPython's handler for CheckFailed: shows the message alone, still as an error."""
    stb = [f"{RED}{value}{RESET}"]
    shell._showtraceback(etype, value, stb)  # in a kernel: an "error" output, as nbgrader expects
    return stb


def _show_briefly() -> None:
    """Register the one-line display of ``CheckFailed`` with IPython (once), if running in it."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and not getattr(shell, "custom_exceptions", ()):  # none of theirs
        shell.set_custom_exc((CheckFailed,), _one_line)


@contextmanager
def isolated(exercise: Exercise, lecture: Lecture, function: Callable[..., Any]) -> Iterator[None]:
    """While ``exercise`` is checked, the earlier learner functions it may call (``isolate``)
    are the references, in the learner's namespace, exactly as in ``fdrl grade``'s kernel."""
    scope = getattr(function, "__globals__", None)
    if not exercise.isolate or not isinstance(scope, dict):
        yield
        return
    missing = object()
    saved = {name: scope.get(name, missing) for name in exercise.isolate}
    for name in exercise.isolate:
        namespace: dict[str, Any] = {}
        exec(lecture.kernel_references[name], namespace)
        scope[name] = namespace[name]
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                scope.pop(name, None)
            else:
                scope[name] = value


def _run_cases(exercise: Exercise, function: Callable[..., Any], hidden: bool) -> list[str]:
    failed = []
    for case in _cases(exercise, hidden):
        inputs = case.make_inputs()
        reference = exercise.reference(inputs)
        try:
            result = call(exercise, function, inputs)
        except NotImplementedError:
            print(f"{CROSS} {case.name}: not written yet (NotImplementedError)")
            failed.append(case.name)
            continue
        except Exception as error:
            print(f"{CROSS} {case.name}: raised {type(error).__name__}: {error}")
            print("".join(traceback.format_exception(error)[-3:]).rstrip())
            failed.append(case.name)
            continue
        outputs, message = split(exercise, result)
        ok = outputs is not None
        if ok:
            ok, message = judge(exercise, outputs, reference)
        print(f"{TICK if ok else CROSS} {case.name}" + ("" if ok else f": {message}"))
        if not ok:
            failed.append(case.name)
    return failed
