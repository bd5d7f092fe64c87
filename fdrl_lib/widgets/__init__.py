"""Interactive demos, one module per lecture (``fdrl_lib.widgets.lecture1``, ...).

Every demo has the same shape (copy it for a new lecture): pure functions compute what to show
for given slider values (tested without a browser), and a ``Demo`` subclass wires ipywidgets to
them. ``Demo.show()`` first displays a static matplotlib picture (what a saved notebook, GitHub
and the slides display) and then the live controls, which redraw that same picture in place while
a kernel runs. Importing this package loads nothing heavy.
"""

from __future__ import annotations

from typing import Any

# What a saved notebook, GitHub and the slides show in place of the live controls.
STATIC_NOTE = "\u25b6 Run this cell to use the controls (the picture above is a static copy)."


def display_controls(box: Any) -> None:
    """Display the ipywidget ``box`` live, with a readable note as its text fallback."""
    from IPython.display import display

    bundle = box._repr_mimebundle_()
    if isinstance(bundle, tuple):
        bundle = bundle[0]
    bundle = dict(bundle or {})
    bundle["text/plain"] = STATIC_NOTE  # instead of "VBox(children=...)" where widgets can't run
    display(bundle, raw=True)


class Demo:
    """A figure shown once as a picture, then updated in place by live controls.

    Subclasses set ``self.controls`` (an ipywidget), draw into ``self.figure`` and call
    ``self._refresh()`` after each redraw. ``n_draws`` counts redraws (for tests).
    """

    controls: Any = None

    def __init__(self) -> None:
        from matplotlib.figure import Figure  # not pyplot: no stray inline copies of the figure

        self.figure = Figure()
        self.n_draws = 0
        self._handle: Any = None

    def _refresh(self) -> None:
        self.n_draws += 1
        if self._handle is not None:
            self._handle.update(self.figure)

    def show(self) -> Demo:
        """Display the static picture (current settings), then the live controls under it."""
        from IPython.display import display

        self._handle = display(self.figure, display_id=True)
        display_controls(self.controls)
        return self


def show_source(obj: Any, start: str | None = None, end: str | None = None) -> Any:
    """``obj``'s source as highlighted code, without its docstring (the notebook says it).

    ``start``/``end`` cut the listing to the lines from the first containing ``start`` up to the
    first containing ``end`` (inclusive): the loop of an algorithm, without its bookkeeping.
    """
    import ast
    import inspect
    import textwrap

    from IPython.display import Code

    source = textwrap.dedent(inspect.getsource(obj))
    lines = source.splitlines()
    first = ast.parse(source).body[0]  # a module's docstring, or the def/class statement
    doc = first if isinstance(first, ast.Expr) else getattr(first, "body", [None])[0]
    if isinstance(doc, ast.Expr) and isinstance(getattr(doc, "value", None), ast.Constant):
        del lines[doc.lineno - 1 : doc.end_lineno]
    if start is not None:
        first = next((i for i, line in enumerate(lines) if start in line), None)
        if first is None:
            raise ValueError(f"{start!r} is not in the source of {obj.__name__}")
        lines = lines[first:]
    if end is not None:
        last = next((i for i, line in enumerate(lines) if end in line), None)
        if last is None:
            raise ValueError(f"{end!r} is not in the source of {obj.__name__}")
        lines = lines[: last + 1]
    return Code(textwrap.dedent("\n".join(lines)), language="python")
