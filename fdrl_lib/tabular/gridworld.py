"""Grid world, the running example of Lecture 1 (section 1.2), with CS188's classic layouts.

A layout is a list of rows; each cell is ``" "`` (empty), ``"#"`` (wall), ``"S"`` (start) or a
number (an exit). Semantics, as in the lecture and CS188's gridworld:

* From an exit cell every action ends the episode and collects the exit's number, so
  ``V*(exit) = number``. The episode ends in one hidden absorbing terminal state (last index).
* Elsewhere the intended move happens with probability ``1 - noise`` and each perpendicular
  move with ``noise / 2``; a move into a wall or off the grid stays put; each move pays
  ``living_reward``.

States are the non-wall cells in row-major order, then the terminal state (``S = cells + 1``).
Actions: 0 = up, 1 = right, 2 = down, 3 = left.

:meth:`GridWorld.env` gives a real Gymnasium environment (``GridWorldEnv``, registered as
``"fdrl/GridWorld-v0"``) for the sampling-based methods of later lectures. Gymnasium is imported
only when an env is asked for, so planning on a grid stays numpy + scipy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from fdrl_lib.tabular.mdp import SPARSE_THRESHOLD, TabularMDP

# (row, col) step of each action: up, right, down, left
MOVES = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)])


def _parse_cell(cell: Any, r: int, c: int) -> tuple[str, float]:
    """-> (kind, exit value) with kind in {"empty", "wall", "start", "exit"}."""
    if isinstance(cell, (int, float, np.integer, np.floating)) and not isinstance(cell, bool):
        return "exit", float(cell)
    if isinstance(cell, str):
        text = cell.strip()
        if text == "":
            return "empty", 0.0
        if text == "#":
            return "wall", 0.0
        if text.upper() == "S":
            return "start", 0.0
        try:
            return "exit", float(text)
        except ValueError:
            pass
    raise ValueError(
        f"layout cell ({r}, {c}) is {cell!r}: expected ' ' (empty), '#' (wall), 'S' (start) "
        f"or a number (exit reward)"
    )


class GridWorld:
    """A grid-world MDP (Lecture 1) built from a layout; ``grid.mdp`` is its :class:`TabularMDP`.

    Attributes:
        shape: (rows, cols). cells: (row, col) of each state (terminal excluded).
        S, A: number of states (cells + 1) and actions (4). terminal_state: S - 1.
        start: state of the "S" cell (0 if none). exits: {state: exit reward}.
        walls: (rows, cols) bool. noise, living_reward, gamma: as passed.
    """

    ACTIONS = ("up", "right", "down", "left")
    ARROWS = ("↑", "→", "↓", "←")

    def __init__(
        self,
        layout: Sequence[Sequence[Any]],
        noise: float = 0.2,
        living_reward: float = 0.0,
        gamma: float = 0.9,
    ) -> None:
        rows = [list(row) for row in layout]
        if len(rows) == 0 or any(len(row) != len(rows[0]) for row in rows) or len(rows[0]) == 0:
            lengths = [len(row) for row in rows]
            raise ValueError(
                f"layout must be a non-empty rectangle of rows, got row lengths {lengths}"
            )
        noise = float(noise)
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got noise={noise}")
        self.layout = [list(row) for row in rows]
        self.noise = noise
        self.living_reward = float(living_reward)
        self.gamma = float(gamma)
        n_rows, n_cols = len(rows), len(rows[0])
        self.shape = (n_rows, n_cols)
        codes = {"empty": 0, "wall": 1, "start": 2, "exit": 3}
        kind_code = np.zeros(self.shape, dtype=np.int8)
        exit_values = np.zeros(self.shape)
        parsed: dict[Any, tuple[int, float]] = {}  # big grids repeat a few cell values
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                key = (type(cell), cell)
                if key not in parsed:
                    kind, value = _parse_cell(cell, r, c)
                    parsed[key] = (codes[kind], value)
                kind_code[r, c], exit_values[r, c] = parsed[key]
        self.walls = kind_code == 1  # (rows, cols)
        if self.walls.all():
            raise ValueError("layout has only walls: at least one open cell is needed")
        self._state_index = np.full(self.shape, -1, dtype=np.int64)
        open_rc = np.argwhere(~self.walls)  # row-major order
        self._state_index[~self.walls] = np.arange(len(open_rc))
        self.cells = [(int(r), int(c)) for r, c in open_rc]
        n_cells = len(self.cells)
        self.S = n_cells + 1
        self.A = 4
        self.terminal_state = n_cells
        starts = np.argwhere(kind_code == codes["start"])
        if len(starts) > 1:
            raise ValueError(f"layout has {len(starts)} start cells 'S', expected at most one")
        self.start = int(self._state_index[tuple(starts[0])]) if len(starts) else 0
        is_exit_cell = kind_code[~self.walls] == codes["exit"]  # (n_cells,)
        self._is_exit = np.append(is_exit_cell, False)  # (S,)
        self._exit_reward = np.append(np.where(is_exit_cell, exit_values[~self.walls], 0.0), 0.0)
        self.exits = {int(s): float(self._exit_reward[s]) for s in np.flatnonzero(self._is_exit)}

        # neighbour[d, s]: state reached by moving in direction d from cell s (stay if blocked)
        target = open_rc[None, :, :] + MOVES[:, None, :]  # (4, n_cells, 2)
        inside = (
            (target[..., 0] >= 0)
            & (target[..., 0] < n_rows)
            & (target[..., 1] >= 0)
            & (target[..., 1] < n_cols)
        )
        tr = np.clip(target[..., 0], 0, n_rows - 1)
        tc = np.clip(target[..., 1], 0, n_cols - 1)
        target_state = self._state_index[tr, tc]
        blocked = ~inside | (target_state < 0)
        self.neighbour = np.where(blocked, np.arange(n_cells)[None, :], target_state)  # (4, n)
        # cells next to an inner wall: the padded stencil of _GridMDP cannot see those walls
        self._near_inner_wall = np.flatnonzero((inside & (target_state < 0)).any(axis=0))
        self._mdp: TabularMDP | None = None

    # ------------------------------------------------------------------ model
    def action_probs(self) -> np.ndarray:
        """(A, 4) probability of each actual move d given action a (intended / perpendicular)."""
        mix = np.zeros((4, 4))
        for a in range(4):
            mix[a, a] += 1.0 - self.noise
            mix[a, (a + 1) % 4] += self.noise / 2
            mix[a, (a + 3) % 4] += self.noise / 2
        return mix

    @property
    def mdp(self) -> TabularMDP:
        """The grid as a :class:`TabularMDP` (dense below ~2,000 states, sparse CSR above)."""
        if self._mdp is None:
            self._mdp = self._build_mdp()
        return self._mdp

    def _build_mdp(self) -> TabularMDP:
        S, n = self.S, self.S - 1
        mix = self.action_probs()
        walker = ~self._is_exit[:n]
        cells = np.arange(n)
        P_list = []
        for a in range(4):
            rows = [cells[walker]] * 4 + [cells[~walker], np.array([S - 1])]
            cols = [self.neighbour[d][walker] for d in range(4)]
            cols += [np.full((~walker).sum(), S - 1), np.array([S - 1])]
            data = [np.full(walker.sum(), mix[a, d]) for d in range(4)]
            data += [np.ones((~walker).sum()), np.ones(1)]
            r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(data)
            nz = v > 0
            P_list.append(sp.csr_matrix((v[nz], (r[nz], c[nz])), shape=(S, S)))  # sums dups
        R_s = np.where(self._is_exit, self._exit_reward, self.living_reward)
        R_s[S - 1] = 0.0
        R_sa = np.repeat(R_s[:, None], 4, axis=1)  # (S, A): reward does not depend on a
        terminal = np.zeros(S, dtype=bool)
        terminal[S - 1] = True
        mdp = _GridMDP(
            P_list,
            R_sa,
            gamma=self.gamma,
            terminal=terminal,
            start=self.start,
            sparse=S > SPARSE_THRESHOLD,
        )
        mdp.grid = self
        return mdp

    def state_of(self, row: int, col: int) -> int:
        """State index of cell (row, col); ValueError for walls or cells off the grid."""
        if not (0 <= row < self.shape[0] and 0 <= col < self.shape[1]):
            raise ValueError(f"cell ({row}, {col}) is off the {self.shape} grid")
        s = int(self._state_index[row, col])
        if s < 0:
            raise ValueError(f"cell ({row}, {col}) is a wall and has no state")
        return s

    def to_grid(self, values: np.ndarray) -> np.ndarray:
        """Per-state values (S,) or (S-1,) -> (rows, cols) float array, NaN on walls."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape not in ((self.S,), (self.S - 1,)):
            raise ValueError(
                f"values has shape {values.shape}, expected (S,) = ({self.S},) "
                f"or (S-1,) = ({self.S - 1},)"
            )
        out = np.full(self.shape, np.nan)
        out[~self.walls] = values[: self.S - 1]
        return out

    def policy_arrows(self, policy: np.ndarray) -> list[list[str]]:
        """(S,) actions -> rows of strings: an arrow per cell, '#' walls, exit values on exits."""
        out = [["#" if w else "" for w in row] for row in self.walls]
        for s, (r, c) in enumerate(self.cells):
            out[r][c] = f"{self.exits[s]:g}" if s in self.exits else self.ARROWS[int(policy[s])]
        return out

    def __repr__(self) -> str:
        return (
            f"GridWorld(shape={self.shape}, noise={self.noise}, "
            f"living_reward={self.living_reward}, gamma={self.gamma})"
        )

    def render_text(self, state: int | None = None) -> str:
        """A text picture of the grid; ``state`` marked with 'A'."""
        lines = []
        for r in range(self.shape[0]):
            cells = []
            for c in range(self.shape[1]):
                s = int(self._state_index[r, c])
                if s < 0:
                    txt = "#"
                elif s == state:
                    txt = "A"
                elif s in self.exits:
                    txt = f"{self.exits[s]:+g}"
                elif s == self.start:
                    txt = "S"
                else:
                    txt = "."
                cells.append(f"{txt:>5}")
            lines.append("".join(cells))
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ Gymnasium
    def env(self, render_mode: str | None = None, max_episode_steps: int | None = 100) -> Any:
        """A Gymnasium env of this grid (``GridWorldEnv``; ``max_episode_steps=None``: no limit)."""
        import dataclasses

        import gymnasium

        _register()
        spec = dataclasses.replace(
            gymnasium.spec("fdrl/GridWorld-v0"), max_episode_steps=max_episode_steps
        )
        return gymnasium.make(
            spec,
            layout=self.layout,
            noise=self.noise,
            living_reward=self.living_reward,
            render_mode=render_mode,
        )

    # ------------------------------------------------------------------ CS188 layouts
    @classmethod
    def book(cls, **kwargs: Any) -> GridWorld:
        """The lecture's 3x4 grid: +1 top right, -1 below it, wall at (1, 1), start bottom left."""
        return cls([[" ", " ", " ", +1], [" ", "#", " ", -1], ["S", " ", " ", " "]], **kwargs)

    @classmethod
    def bridge(cls, **kwargs: Any) -> GridWorld:
        """CS188 bridge: a narrow bridge between -100 chasms from a +1 exit to a +10 exit."""
        return cls(
            [
                ["#", -100, -100, -100, -100, -100, "#"],
                [1, "S", " ", " ", " ", " ", 10],
                ["#", -100, -100, -100, -100, -100, "#"],
            ],
            **kwargs,
        )

    @classmethod
    def cliff(cls, **kwargs: Any) -> GridWorld:
        """CS188 cliff: +10 at the end of a row that runs along a -100 cliff."""
        return cls(
            [
                [" ", " ", " ", " ", " "],
                ["S", " ", " ", " ", 10],
                [-100, -100, -100, -100, -100],
            ],
            **kwargs,
        )

    @classmethod
    def discount(cls, **kwargs: Any) -> GridWorld:
        """CS188 discount grid: a close +1 and a distant +10, near a -10 cliff."""
        return cls(
            [
                [" ", " ", " ", " ", " "],
                [" ", "#", " ", " ", " "],
                [" ", "#", 1, "#", 10],
                ["S", " ", " ", " ", " "],
                [-10, -10, -10, -10, -10],
            ],
            **kwargs,
        )

    @classmethod
    def maze(cls, **kwargs: Any) -> GridWorld:
        """CS188 maze grid: a winding corridor to +1."""
        return cls(
            [
                [" ", " ", " ", +1],
                ["#", "#", " ", "#"],
                [" ", "#", " ", " "],
                [" ", "#", "#", " "],
                ["S", " ", " ", " "],
            ],
            **kwargs,
        )

    @classmethod
    def open_grid(cls, n: int, goal: float = 1.0, **kwargs: Any) -> GridWorld:
        """An n x n open grid, start top left, one exit ``goal`` bottom right (benchmarks)."""
        layout = [[" "] * n for _ in range(n)]
        layout[0][0] = "S"
        layout[n - 1][n - 1] = goal
        return cls(layout, **kwargs)


class _GridMDP(TabularMDP):
    """A GridWorld's TabularMDP whose ``max_backup`` uses the grid's structure (a stencil).

    Every non-exit cell has the same four possible landing cells (its neighbours, or itself
    when blocked) and the same reward for every action. With ``keep = 1 - noise`` and
    ``slip = noise / 2``, the best of "up" and "down" is
    ``keep * max(V_up, V_down) + slip * (V_left + V_right)`` (both slip sideways alike), and
    likewise for "left"/"right". So ``max_a Q(s, a)`` is a dozen elementwise operations on the
    (rows, cols) picture of V, read through shifted views of a padded copy whose border
    repeats the edge (moving off the grid stays put). Cells next to an inner wall are redone
    with an explicit gather. The result equals ``backup(V).max(axis=1)`` (tested). Not
    thread-safe (it reuses scratch buffers).
    """

    grid: GridWorld

    def max_backup(self, V: np.ndarray) -> np.ndarray:
        grid = self.grid
        n = self.S - 1
        rows, cols = grid.shape
        if not hasattr(self, "_pad"):
            self._pad = np.zeros((rows + 2, cols + 2))  # (rows+2, cols+2) padded picture of V
            self._tmp = np.empty((3, rows, cols))
            self._open_flat = np.flatnonzero(~grid.walls)  # in the (rows, cols) picture
            r_open, c_open = np.nonzero(~grid.walls)
            self._open_pad = (r_open + 1) * (cols + 2) + c_open + 1  # in the padded one
        G, (vert, horiz, tmp) = self._pad, self._tmp
        inner = G[1:-1, 1:-1]
        if n == rows * cols:
            inner[...] = V[:n].reshape(rows, cols)
        else:
            G.reshape(-1)[self._open_pad] = V[:n]  # wall cells keep stale values
        G[0], G[-1] = G[1], G[-2]  # off the top/bottom edge: stay put
        G[:, 0], G[:, -1] = G[:, 1], G[:, -2]  # off the left/right edge: stay put
        up, down, left, right = G[:-2, 1:-1], G[2:, 1:-1], G[1:-1, :-2], G[1:-1, 2:]
        keep, slip = self.gamma * (1.0 - grid.noise), self.gamma * grid.noise / 2
        np.maximum(up, down, out=vert)
        vert *= keep
        np.add(left, right, out=tmp)
        tmp *= slip
        vert += tmp  # best of up/down, (rows, cols)
        np.maximum(left, right, out=horiz)
        horiz *= keep
        np.add(up, down, out=tmp)
        tmp *= slip
        horiz += tmp  # best of left/right
        out = np.empty(self.S)
        if n == rows * cols:
            np.maximum(vert, horiz, out=out[:n].reshape(rows, cols))
        else:
            np.maximum(vert, horiz, out=vert)
            out[:n] = vert.reshape(-1)[self._open_flat]
        if grid.living_reward != 0.0:
            out[:n] += grid.living_reward
        fix = grid._near_inner_wall
        if fix.size:  # same formula through an explicit gather of the true neighbours
            Vn = V[grid.neighbour[:, fix]]  # (4, len(fix))
            out[fix] = grid.living_reward + np.maximum(
                keep * np.maximum(Vn[0], Vn[2]) + slip * (Vn[1] + Vn[3]),
                keep * np.maximum(Vn[1], Vn[3]) + slip * (Vn[0] + Vn[2]),
            )
        exits = grid._is_exit
        out[exits] = grid._exit_reward[exits] + self.gamma * V[n]  # every action -> terminal
        out[n] = self.gamma * V[n]  # absorbing, reward 0
        return out


# ---------------------------------------------------------------------- Gymnasium env (lazy)
_ENV_CLASS: Any = None


def _make_env_class() -> Any:
    """Define GridWorldEnv on first use so importing the planners never imports gymnasium."""
    import gymnasium
    from gymnasium import spaces

    class GridWorldEnv(gymnasium.Env):
        """Gymnasium env of a :class:`GridWorld`: Discrete(S) states, Discrete(4) actions.

        Exposes the toy-text table ``unwrapped.P = {s: {a: [(prob, next_s, reward,
        terminated)]}}`` (so ``TabularMDP.from_env`` works) and renders "ansi" / "rgb_array".
        """

        metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}
        CELL = 24  # pixels per cell in rgb_array

        def __init__(
            self,
            layout: Sequence[Sequence[Any]] | None = None,
            noise: float = 0.2,
            living_reward: float = 0.0,
            render_mode: str | None = None,
        ) -> None:
            if render_mode is not None and render_mode not in self.metadata["render_modes"]:
                raise ValueError(
                    f"render_mode={render_mode!r}, expected None or one of "
                    f"{self.metadata['render_modes']}"
                )
            grid = (
                GridWorld.book(noise=noise, living_reward=living_reward)
                if layout is None
                else GridWorld(layout, noise=noise, living_reward=living_reward)
            )
            self.grid = grid
            self.render_mode = render_mode
            self.observation_space = spaces.Discrete(grid.S)
            self.action_space = spaces.Discrete(4)
            self.P = self._toy_text_table()
            self.s = grid.start
            self.lastaction: int | None = None

        def _toy_text_table(self) -> dict[int, dict[int, list[tuple[float, int, float, bool]]]]:
            grid, mix = self.grid, self.grid.action_probs()
            term = grid.terminal_state
            table: dict[int, dict[int, list[tuple[float, int, float, bool]]]] = {}
            for s in range(grid.S):
                table[s] = {}
                for a in range(4):
                    if s == term:
                        table[s][a] = [(1.0, term, 0.0, True)]
                    elif s in grid.exits:
                        table[s][a] = [(1.0, term, grid.exits[s], True)]
                    else:
                        outcomes: dict[int, float] = {}
                        for d in range(4):
                            if mix[a, d] > 0:
                                nxt = int(grid.neighbour[d, s])
                                outcomes[nxt] = outcomes.get(nxt, 0.0) + float(mix[a, d])
                        table[s][a] = [
                            (p, nxt, grid.living_reward, False) for nxt, p in outcomes.items()
                        ]
            return table

        def reset(
            self, *, seed: int | None = None, options: dict[str, Any] | None = None
        ) -> tuple[int, dict[str, Any]]:
            super().reset(seed=seed)
            self.s = self.grid.start
            self.lastaction = None
            return int(self.s), {"prob": 1.0}

        def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
            if not self.action_space.contains(action):
                raise ValueError(f"action {action!r} is not in Discrete(4)")
            outcomes = self.P[self.s][int(action)]
            probs = np.array([o[0] for o in outcomes])
            i = int(self.np_random.choice(len(outcomes), p=probs / probs.sum()))
            prob, next_s, reward, terminated = outcomes[i]
            self.s = next_s
            self.lastaction = int(action)
            return int(next_s), float(reward), bool(terminated), False, {"prob": prob}

        def render(self) -> str | np.ndarray | None:
            if self.render_mode == "ansi":
                return self.grid.render_text(self.s)
            if self.render_mode == "rgb_array":
                return self._draw()
            return None

        def _draw(self) -> np.ndarray:
            grid, k = self.grid, self.CELL
            rows, cols = grid.shape
            img = np.full((rows * k, cols * k, 3), 235, dtype=np.uint8)
            for r in range(rows):
                for c in range(cols):
                    s = int(grid._state_index[r, c])
                    if s < 0:
                        color = (60, 60, 60)
                    elif s in grid.exits:
                        color = (80, 170, 80) if grid.exits[s] > 0 else (200, 70, 70)
                    elif s == grid.start:
                        color = (200, 200, 240)
                    else:
                        color = (235, 235, 235)
                    img[r * k + 1 : (r + 1) * k - 1, c * k + 1 : (c + 1) * k - 1] = color
            if self.s != grid.terminal_state:  # the agent: a filled circle
                r, c = grid.cells[self.s]
                yy, xx = np.mgrid[0:k, 0:k]
                disc = (yy - k / 2 + 0.5) ** 2 + (xx - k / 2 + 0.5) ** 2 <= (k / 3) ** 2
                img[r * k : (r + 1) * k, c * k : (c + 1) * k][disc] = (30, 60, 200)
            return img

    return GridWorldEnv


def _register() -> None:
    """Register "fdrl/GridWorld-v0" with gymnasium (idempotent; the table lives in envs.py)."""
    from fdrl_lib.envs import register_envs

    register_envs()


def __getattr__(name: str) -> Any:
    if name == "GridWorldEnv":
        global _ENV_CLASS
        if _ENV_CLASS is None:
            _ENV_CLASS = _make_env_class()
        return _ENV_CLASS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
