"""Calling learner functions that are not arrays in, arrays out: one generic adapter.

``adapter(...)`` declares, in one line of an ``Exercise``, how the learner's function is called:

- ``torch=True``: every float array input becomes a ``torch.float64`` tensor (integers int64,
  booleans bool; scalars stay Python numbers), and tensors the function returns come back as
  numbers;
- ``grad=("logits", ...)``: those inputs get ``requires_grad=True``; the adapter returns the
  function's value(s) and then the gradient of the first (scalar) value with respect to each
  of them, in order (zeros where no gradient flows), so a "gradient into the target" or a
  detached loss is visible as numbers;
- ``callables={"fvp": "matvec"}``: the input ``fvp`` holds a matrix ``F`` and the learner gets
  the function ``v -> F v`` (e.g. a Fisher-vector product for conjugate gradient); with
  ``count_calls=True`` the number of calls is returned last, one per callable.

The exercise's outputs list what comes back, in that order: ``("loss", "grad_logits")``.
The same adapter runs in the notebook's ``check`` and, sent as source, in the grader's sealed
kernel: ``call_adapted`` below is self-contained (imports inside) for that reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Adapter:
    """An ``Exercise.wrapper`` with options: ``call_adapted(learner, options, names, ...)``."""

    options: dict[str, Any] = field(default_factory=dict)
    function: Callable[..., Any] | None = None  # default: call_adapted

    @property
    def call(self) -> Callable[..., Any]:
        return self.function or call_adapted


def adapter(
    *,
    torch: bool = True,
    grad: tuple[str, ...] = (),
    callables: dict[str, str] | None = None,
    count_calls: bool = False,
    dtype: str = "float64",
) -> Adapter:
    """How to call a learner function (see the module docstring)."""
    for kind in (callables or {}).values():
        if kind != "matvec":
            raise ValueError(f"unknown callable kind {kind!r}; expected 'matvec'")
    options = {
        "torch": bool(torch or grad),
        "grad": list(grad),
        "callables": dict(callables or {}),
        "count_calls": bool(count_calls),
        "dtype": dtype,
    }
    return Adapter(options)


def call_adapted(learner, options, names, *args, **kwargs):  # noqa: ANN001, ANN201, C901
    """Call ``learner`` as ``options`` say; return its outputs (and gradients) as numbers.

    ``names`` are the names of ``args`` (the exercise's ``args``), so options can name inputs.
    Self-contained: its source is sent into the grader's kernel.
    """
    import numpy as np

    use_torch = options.get("torch", False)
    grad = list(options.get("grad", []))
    callables = options.get("callables", {})
    if use_torch:
        import torch

        dtype = getattr(torch, options.get("dtype", "float64"))

    def convert(name, value):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        array = np.asarray(value)
        if array.ndim == 0 and name not in grad and name not in callables:
            return array.item()
        if not use_torch:
            return array.copy()
        if array.dtype.kind == "f":
            return torch.tensor(array, dtype=dtype, requires_grad=name in grad)
        if array.dtype.kind in "iu":
            return torch.tensor(array, dtype=torch.int64)
        return torch.tensor(array)

    counters = {}

    def matvec(name, matrix):
        counters[name] = 0

        def product(v):
            counters[name] += 1
            if use_torch:
                return matrix @ torch.as_tensor(v, dtype=matrix.dtype)
            return matrix @ np.asarray(v, dtype=float)

        return product

    values = dict(zip(names, args, strict=True))
    values.update(kwargs)
    ready = {}
    for name, value in values.items():
        ready[name] = convert(name, value)
        if name in callables:
            ready[name] = matvec(name, ready[name])
    result = learner(*[ready[n] for n in names], **{k: ready[k] for k in kwargs})
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]

    def number(value, what):
        if use_torch and isinstance(value, torch.Tensor):
            return value.detach().cpu().numpy().astype(float)
        return value

    grads = []
    if grad:
        first = outputs[0] if outputs else None
        if not (use_torch and isinstance(first, torch.Tensor) and first.numel() == 1):
            raise ValueError(
                f"expected a scalar tensor first, got {type(first).__name__}: the grader "
                f"differentiates it with respect to {', '.join(grad)}"
            )
        if not first.requires_grad:
            raise ValueError(
                "your result has no gradient with respect to "
                + ", ".join(grad)
                + ": build it from the input tensors with torch operations (no .item(), "
                ".numpy(), .detach() or torch.no_grad() on the part that must be trained)"
            )
        leaves = [ready[name] for name in grad]
        found = torch.autograd.grad(first.reshape(()), leaves, allow_unused=True)
        grads = [
            np.zeros(tuple(leaf.shape)) if g is None else g.detach().cpu().numpy().astype(float)
            for leaf, g in zip(leaves, found, strict=True)
        ]
    counts = [float(counters[name]) for name in callables] if options.get("count_calls") else []
    out = [number(v, i) for i, v in enumerate(outputs)] + grads + counts
    return out[0] if len(out) == 1 else tuple(out)


def torch_reference(
    function: Callable[..., Any],
    inputs: dict[str, Any],
    names: tuple[str, ...],
    outputs: tuple[str, ...],
    grad: tuple[str, ...] = (),
    callables: dict[str, str] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """The reference answers of a torch exercise, from a plain torch implementation: the same
    adapter call as the learner's, run in the grader's process, outputs named ``outputs``."""
    call = adapter(grad=grad, callables=callables)
    args = [inputs[name] for name in names]
    got = call_adapted(function, {**call.options, **options}, names, *args)
    got = got if isinstance(got, tuple) else (got,)
    return dict(zip(outputs, got, strict=True))
