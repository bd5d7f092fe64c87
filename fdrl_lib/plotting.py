"""Figures shared by every lecture: gridworld values, Q-values and policies, learning curves,
convergence plots, and short animations of an agent as GIFs (no ffmpeg, no X server, no JavaScript).

Gridworld pictures follow CS188's conventions: walls dark, exit cells framed with their reward,
values as a red-to-green heatmap, Q-values as four triangles per cell (one per action).
Actions are indexed as in ``fdrl_lib.tabular.GridWorld``: 0=up, 1=right, 2=down, 3=left.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.colors import Normalize
from matplotlib.patches import Rectangle

if TYPE_CHECKING:
    from IPython.display import Image

# (d_col, d_row) of each action on screen; rows grow downward.
ACTION_DELTAS = ((0, -1), (1, 0), (0, 1), (-1, 0))
WALL_COLOR = "#2b2b2b"
VALUE_CMAP = "RdYlGn"


def number(value: float, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals, never "-0.00" (a tiny negative shows as 0.00)."""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _cell_values(grid: Any, values: np.ndarray) -> np.ndarray:
    """Per-state ``values`` (S,) or (S-1,) -> (rows, cols) array, NaN on walls."""
    values = np.asarray(values, dtype=float)
    n_cells = len(grid.cells)
    if values.ndim != 1 or values.shape[0] not in (n_cells, n_cells + 1):
        raise ValueError(
            f"values has shape {values.shape}; expected ({n_cells + 1},) or ({n_cells},) "
            f"for a grid with {n_cells} cells"
        )
    out = np.full(grid.shape, np.nan)
    for state, (row, col) in enumerate(grid.cells):
        out[row, col] = values[state]
    return out


def _new_ax(ax: Axes | None, grid: Any, scale: float = 1.1) -> Axes:
    if ax is None:
        rows, cols = grid.shape
        _, ax = plt.subplots(figsize=(scale * cols + 0.6, scale * rows + 0.4))
    return ax


def _frame(ax: Axes, grid: Any, title: str | None) -> None:
    """Walls, exit frames, grid lines and the start marker common to all gridworld pictures."""
    rows, cols = grid.shape
    open_cells = set(map(tuple, grid.cells))
    for row in range(rows):
        for col in range(cols):
            if (row, col) not in open_cells:
                ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, color=WALL_COLOR, zorder=3))
    for state in grid.exits:
        row, col = grid.cells[state]
        ax.add_patch(
            Rectangle((col - 0.42, row - 0.42), 0.84, 0.84, fill=False, lw=2, ec="k", zorder=4)
        )
    start = getattr(grid, "start", None)
    if start is not None and start < len(grid.cells) and start not in grid.exits:
        row, col = grid.cells[start]
        ax.text(col - 0.44, row + 0.44, "S", fontsize=8, ha="left", va="bottom", zorder=5)
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xticks(np.arange(-0.5, cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
    ax.grid(which="minor", color="white", lw=1.5)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=10)


def _norm(values: np.ndarray, vmax: float | None) -> Normalize:
    finite = values[np.isfinite(values)]
    bound = vmax if vmax is not None else max(1e-9, float(np.abs(finite).max(initial=0.0)))
    return Normalize(-bound, bound)


def _draw_arrow(ax: Axes, row: float, col: float, action: int, length: float) -> None:
    """An arrow from the cell centre in the direction of ``action``; its head scales with it."""
    if length <= 1e-3:
        return
    d_col, d_row = ACTION_DELTAS[action]
    ax.arrow(
        col,
        row,
        d_col * length,
        d_row * length,
        width=0.012,
        head_width=0.02 + 0.3 * length,
        head_length=0.02 + 0.25 * length,
        length_includes_head=True,
        color="k",
        alpha=0.8,
        zorder=6,
    )


def plot_values(
    grid: Any,
    V: np.ndarray,
    policy: np.ndarray | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    *,
    numbers: bool = True,
    vmax: float | None = None,
) -> Axes:
    """Heatmap of state values ``V`` (S,) on ``grid`` with numbers and greedy-policy arrows.

    ``policy`` is (S,) action indices or (S, A) probabilities (arrow for the most likely action);
    a negative action draws no arrow (e.g. where all actions tie). Exit cells get a frame and no
    arrow (every action there ends the episode).
    """
    ax = _new_ax(ax, grid)
    image = _cell_values(grid, V)
    ax.imshow(np.ma.masked_invalid(image), cmap=VALUE_CMAP, norm=_norm(image, vmax))
    n_cells = len(grid.cells)
    actions = None
    if policy is not None:
        policy = np.asarray(policy)
        actions = policy.argmax(axis=1) if policy.ndim == 2 else policy.astype(int)
        if actions.shape[0] < n_cells:
            raise ValueError(f"policy has {actions.shape[0]} states; expected at least {n_cells}")
    for state, (row, col) in enumerate(grid.cells):
        if numbers:
            offset = 0.28 if actions is not None and state not in grid.exits else 0.0
            ax.text(
                col,
                row + offset,
                number(image[row, col]),
                ha="center",
                va="center",
                fontsize=8,
                zorder=7,
            )
        if actions is not None and state not in grid.exits and actions[state] >= 0:
            _draw_arrow(ax, row - 0.12, col, int(actions[state]), 0.26)  # above the number
    _frame(ax, grid, title)
    return ax


def plot_q_values(
    grid: Any,
    Q: np.ndarray,
    ax: Axes | None = None,
    title: str | None = None,
    *,
    numbers: bool = True,
    vmax: float | None = None,
) -> Axes:
    """CS188's Q-value picture: each cell split into four triangles, one per action (S, A=4).

    The triangle pointing up holds Q(s, up), and so on; the best action's number is bold.
    Exit cells show their single value (every action there is the same).
    """
    Q = np.asarray(Q, dtype=float)
    n_cells = len(grid.cells)
    if Q.ndim != 2 or Q.shape[1] != 4 or Q.shape[0] < n_cells:
        raise ValueError(f"Q has shape {Q.shape}; expected ({n_cells + 1}, 4) or ({n_cells}, 4)")
    ax = _new_ax(ax, grid, scale=1.5)
    norm = _norm(Q[:n_cells], vmax)
    cmap = plt.get_cmap(VALUE_CMAP)
    polys, colors = [], []
    for state, (row, col) in enumerate(grid.cells):
        corners = {  # screen corners of the cell: top-left, top-right, bottom-right, bottom-left
            "tl": (col - 0.5, row - 0.5),
            "tr": (col + 0.5, row - 0.5),
            "br": (col + 0.5, row + 0.5),
            "bl": (col - 0.5, row + 0.5),
        }
        center = (col, row)
        if state in grid.exits:
            polys.append([corners["tl"], corners["tr"], corners["br"], corners["bl"]])
            colors.append(cmap(norm(Q[state].max())))
            if numbers:
                ax.text(col, row, number(Q[state].max()), ha="center", va="center", fontsize=8)
            continue
        sides = (("tl", "tr"), ("tr", "br"), ("br", "bl"), ("bl", "tl"))  # up, right, down, left
        best = int(np.argmax(Q[state]))
        for action, (a, b) in enumerate(sides):
            polys.append([corners[a], corners[b], center])
            colors.append(cmap(norm(Q[state, action])))
            if numbers:
                d_col, d_row = ACTION_DELTAS[action]
                ax.text(
                    col + 0.3 * d_col,
                    row + 0.3 * d_row,
                    number(Q[state, action]),
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    fontweight="bold" if action == best else "normal",
                )
    ax.add_collection(PolyCollection(polys, facecolors=colors, edgecolors="white", lw=0.6))
    _frame(ax, grid, title)
    return ax


def plot_soft_policy(
    grid: Any,
    probs: np.ndarray,
    ax: Axes | None = None,
    title: str | None = None,
    *,
    V: np.ndarray | None = None,
) -> Axes:
    """A stochastic policy (S, A) drawn as four arrows per cell, length proportional to pi(a|s).

    With ``V`` the cells are shaded by value as in ``plot_values``. Used for soft value iteration
    (eq. 1.37), where probabilities come from a softmax of Q / beta.
    """
    probs = np.asarray(probs, dtype=float)
    n_cells = len(grid.cells)
    if probs.ndim != 2 or probs.shape[1] != 4 or probs.shape[0] < n_cells:
        raise ValueError(f"probs has shape {probs.shape}; expected ({n_cells + 1}, 4)")
    ax = _new_ax(ax, grid)
    if V is not None:
        image = _cell_values(grid, V)
        ax.imshow(np.ma.masked_invalid(image), cmap=VALUE_CMAP, norm=_norm(image, None))
    else:
        ax.imshow(
            np.ma.masked_invalid(_cell_values(grid, np.zeros(n_cells))),
            cmap="Greys",
            vmin=0,
            vmax=1,
        )
    for state, (row, col) in enumerate(grid.cells):
        if state in grid.exits:
            ax.text(col, row, f"{grid.exits[state]:+g}", ha="center", va="center", fontsize=9)
            continue
        for action in range(4):
            if probs[state, action] >= 0.03:  # skip arrowheads too small to read
                d_col, d_row = ACTION_DELTAS[action]  # start off-centre so the four don't collide
                _draw_arrow(
                    ax, row + 0.05 * d_row, col + 0.05 * d_col, action, 0.4 * probs[state, action]
                )
    _frame(ax, grid, title)
    return ax


def _stack(histories: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Histories of possibly different lengths -> (n_runs, T) array, cut to the shortest run."""
    runs = [np.asarray(h, dtype=float).ravel() for h in histories]
    if not runs or min(len(r) for r in runs) == 0:
        raise ValueError("histories is empty; expected one non-empty array per seed")
    length = min(len(r) for r in runs)
    return np.stack([r[:length] for r in runs])  # (n_runs, T)


def _resample(
    histories: Sequence[Sequence[Mapping[str, float]]], key: str, points: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Training histories (lists of dicts with "step" and ``key``) -> common steps, (n_runs, T).

    Seeds log at different steps, so each run is linearly interpolated onto one grid spanning
    the steps that every run covers.
    """
    xs, ys = [], []
    for run in histories:
        rows = [row for row in run if key in row and "step" in row]
        if not rows:
            raise ValueError(f"a history has no entries with 'step' and {key!r}")
        xs.append(np.array([row["step"] for row in rows], dtype=float))
        ys.append(np.array([row[key] for row in rows], dtype=float))
    lo, hi = max(x.min() for x in xs), min(x.max() for x in xs)
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([lo])
    return grid, np.stack([np.interp(grid, x, y) for x, y in zip(xs, ys, strict=True)])


def learning_curve(
    histories: Sequence[Sequence[float]] | Sequence[Sequence[Mapping[str, float]]] | np.ndarray,
    ax: Axes | None = None,
    label: str | None = None,
    *,
    steps: Sequence[float] | np.ndarray | None = None,
    band: str = "minmax",
    smooth: int = 1,
    color: str | None = None,
    key: str = "episode_return",
) -> Axes:
    """Mean over seeds with a shaded spread, against ``steps`` (default 0..T-1).

    ``histories``: one 1-D array per seed (cut to the shortest), an (n_seeds, T) array, or one
    training history per seed (``result.history``: a list of dicts with "step" and ``key``),
    which is interpolated onto common steps.
    ``band``: "minmax" (range over seeds), "std" (mean +- one standard deviation) or "none".
    ``smooth``: moving-average window applied to each run first.
    """
    if band not in ("minmax", "std", "none"):
        raise ValueError(f"band={band!r}; expected 'minmax', 'std' or 'none'")
    if smooth < 1:
        raise ValueError(f"smooth={smooth}; expected a window of at least 1")
    first = histories[0] if len(histories) else None
    if first is not None and len(first) and isinstance(first[0], Mapping):
        x, runs = _resample(histories, key)  # (T,), (n_runs, T)
    else:
        runs = _stack(histories)  # (n_runs, T)
        x = np.arange(runs.shape[1]) if steps is None else np.asarray(steps, dtype=float)
        if x.shape[0] < runs.shape[1]:
            raise ValueError(f"steps has {len(x)} entries; expected at least {runs.shape[1]}")
        x = x[: runs.shape[1]]
    if smooth > 1:
        kernel = np.ones(smooth) / smooth
        runs = np.stack([np.convolve(r, kernel, mode="valid") for r in runs])
        x = x[smooth - 1 :]  # each average is plotted at the last step of its window
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    mean = runs.mean(axis=0)
    (line,) = ax.plot(x, mean, label=label, color=color)
    if band == "minmax":
        ax.fill_between(x, runs.min(axis=0), runs.max(axis=0), color=line.get_color(), alpha=0.2)
    elif band == "std":
        std = runs.std(axis=0)
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("steps")
    if label:
        ax.legend()
    return ax


def plot_convergence(
    errors: Sequence[float] | np.ndarray,
    bound: Sequence[float] | np.ndarray | None = None,
    ax: Axes | None = None,
    *,
    label: str = "error",
    bound_label: str = "bound",
    xlabel: str = "iteration",
    log: bool = True,
    floor: float = 0.0,
) -> Axes:
    """An error per iteration (and optionally a theoretical bound) on a log scale.

    Errors ``<= floor`` are not drawn (on a log plot zeros have no logarithm, and values at
    machine precision, ~1e-15, are rounding noise rather than convergence).
    """
    errors = np.asarray(errors, dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    x = np.arange(len(errors))
    shown = errors > floor if log or floor > 0 else np.ones_like(errors, dtype=bool)
    ax.plot(x[shown], errors[shown], "o-", ms=3, label=label)
    if bound is not None:
        bound = np.asarray(bound, dtype=float)
        ax.plot(np.arange(len(bound)), bound, "--", label=bound_label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.legend(loc="upper right")
    return ax


def rollout_frames(
    env: Any,
    policy: Callable[[Any], int] | np.ndarray,
    max_steps: int = 200,
    seed: int | None = 0,
) -> list[np.ndarray]:
    """Run one episode of ``policy`` in ``env`` (made with render_mode="rgb_array").

    ``policy`` is a callable obs -> action or a table of actions indexed by a discrete obs.
    Returns the rendered frames (H, W, 3), the reset state first, at most ``max_steps + 1``.
    """
    if getattr(env, "render_mode", None) != "rgb_array":
        raise ValueError(
            f"env.render_mode is {getattr(env, 'render_mode', None)!r}; expected 'rgb_array'"
        )
    if callable(policy):
        act = policy
    else:
        table = np.asarray(policy)

        def act(obs: Any) -> int:
            return int(table[obs])

    obs, _ = env.reset(seed=seed)
    frames = [env.render()]
    for _ in range(max_steps):
        obs, _, terminated, truncated, _ = env.step(act(obs))
        frames.append(env.render())
        if terminated or truncated:
            break
    return frames


def animate(
    frames: Sequence[np.ndarray],
    fps: int = 30,
    width: int | None = None,
    hold: float = 1.5,
) -> Image:
    """A list of rgb frames (H, W, 3) -> an animated GIF that loops, shown as a plain image.

    A GIF needs no JavaScript, so a saved notebook, the slides and GitHub all play it (a
    JavaScript player shows a broken image with dead buttons until its cell runs again).
    ``width`` resizes the frames: shrinking averages pixels (box filter), so thin lines such as
    CartPole's track stay visible; by default small renders are enlarged to at least 320 pixels
    on their longer side (nearest neighbour, so pixels stay sharp). The last frame is held for
    ``hold`` seconds before the loop restarts.
    """
    from IPython.display import Image
    from PIL import Image as PILImage

    if len(frames) == 0:
        raise ValueError("frames is empty; expected at least one (H, W, 3) image")
    if fps <= 0:
        raise ValueError(f"fps={fps}; expected a positive frame rate")
    first = np.asarray(frames[0])
    if first.ndim != 3 or first.shape[2] not in (3, 4):
        raise ValueError(f"frames[0] has shape {first.shape}; expected (H, W, 3) rgb")
    height, width_px = first.shape[:2]
    scale = width / width_px if width else max(1.0, 320 / max(height, width_px))
    size = (max(1, round(width_px * scale)), max(1, round(height * scale)))
    resample = PILImage.Resampling.NEAREST if scale >= 1 else PILImage.Resampling.BOX
    images = [
        PILImage.fromarray(np.asarray(f, dtype=np.uint8)[..., :3]).resize(size, resample)
        for f in frames
    ]
    step_ms = max(20, round(1000 / fps))  # GIF delays are in 10 ms units; browsers floor at 20
    durations = [step_ms] * (len(images) - 1) + [max(step_ms, round(1000 * hold))]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=durations,
        loop=0,
    )
    return Image(data=buffer.getvalue(), format="gif")
