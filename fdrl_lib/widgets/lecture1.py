"""Lecture 1's interactive demos: a gridworld explorer for value iteration and soft value iteration.

The logic lives in pure functions (``solve_gridworld``, ``explorer_state``, ``soft_state``,
``draw_explorer``, ``draw_soft``) that tests drive without a browser. The widget classes only wire
sliders to them:

* changing layout, gamma, noise or living reward re-runs value iteration (cached per setting);
* moving the iteration slider ``k`` only indexes the stored history V_0 .. V_K (no recompute).

Degrading without a kernel (``fdrl_lib.widgets.Demo``): the figure is displayed first as an
ordinary matplotlib picture (so a saved notebook, GitHub and the slides show it), and the sliders
then update that same display in place. With no live kernel the controls render as a one-line
note and the picture stays.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fdrl_lib.plotting import plot_q_values, plot_soft_policy, plot_values
from fdrl_lib.tabular import GridWorld, PlanningResult, soft_value_iteration, value_iteration
from fdrl_lib.widgets import Demo

LAYOUTS = ("book", "bridge", "cliff", "discount", "maze")
K_MAX = 100  # backups stored for the k slider; every layout here converges visibly before this


def check_layout(layout: str) -> None:
    """Raise ValueError unless ``layout`` names one of the classic layouts in LAYOUTS."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}; expected one of {LAYOUTS}")


def make_grid(layout: str, gamma: float, noise: float, living_reward: float) -> GridWorld:
    """One of the classic layouts (``GridWorld.book()``, ``.bridge()``, ...) with these settings."""
    check_layout(layout)
    return getattr(GridWorld, layout)(noise=noise, living_reward=living_reward, gamma=gamma)


def tied_greedy(Q: np.ndarray, atol: float = 1e-12) -> np.ndarray:
    """argmax_a Q (S, A) -> (S,), but -1 where every action ties (no preferred action to draw)."""
    policy = Q.argmax(axis=1)  # ties -> lowest action index, like the library's greedy
    return np.where(np.ptp(Q, axis=1) <= atol, -1, policy)


@lru_cache(maxsize=64)
def _solve(
    layout: str, gamma: float, noise: float, living_reward: float, horizon: int
) -> tuple[GridWorld, PlanningResult]:
    grid = make_grid(layout, gamma, noise, living_reward)
    return grid, value_iteration(grid.mdp, horizon=horizon)


def solve_gridworld(
    layout: str, gamma: float, noise: float, living_reward: float, horizon: int = K_MAX
) -> tuple[GridWorld, PlanningResult]:
    """``horizon`` backups of value iteration (Algorithm 1) from V_0 = 0, cached per setting.

    Returns the grid and its result; ``result.history[k]`` is V_k (k = 0..horizon) and
    ``result.Q_history[k - 1]`` is Q_k = R + gamma P V_{k-1}.
    """
    key = (layout, round(float(gamma), 6), round(float(noise), 6), round(float(living_reward), 6))
    return _solve(*key, int(horizon))


def explorer_state(
    layout: str = "book",
    gamma: float = 0.9,
    noise: float = 0.2,
    living_reward: float = 0.0,
    k: int = K_MAX,
) -> dict[str, Any]:
    """What the explorer shows after ``k`` backups: V_k (S,), Q_k (S, A) and pi_k (S,).

    As in Algorithm 1, ``Q_k(s, a) = sum_s' P (R + gamma V_{k-1}(s'))``, ``V_k = max_a Q_k`` and
    ``pi_k = argmax_a Q_k``. At k = 0 there is no look-ahead yet: Q_0 = 0 and no policy (None).
    Where all actions tie (nothing has reached a cell yet) the policy is -1: no arrow is drawn.
    """
    if not 0 <= int(k) <= K_MAX:
        raise ValueError(f"k={k}; expected an iteration between 0 and {K_MAX}")
    k = int(k)
    grid, result = solve_gridworld(layout, gamma, noise, living_reward)
    V = result.history[k]
    if k == 0:
        Q, policy = np.zeros((grid.mdp.S, grid.mdp.A)), None
    else:
        Q = result.Q_history[k - 1]
        policy = tied_greedy(Q)
    return {"grid": grid, "V": V, "Q": Q, "policy": policy, "k": k, "result": result}


def draw_explorer(
    state: dict[str, Any],
    show_values: bool = True,
    show_q: bool = False,
    show_policy: bool = True,
    fig: Figure | None = None,
) -> Figure:
    """Draw ``explorer_state(...)`` onto ``fig`` (default: a new one): values and/or Q-values."""
    grid = state["grid"]
    fig = fig if fig is not None else Figure()
    fig.clear()
    panels = (["V"] if show_values or not show_q else []) + (["Q"] if show_q else [])
    rows, cols = grid.shape
    fig.set_size_inches(min(12.0, 1.25 * cols * len(panels) + 0.8), 1.25 * rows + 0.7)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels, strict=True):
        if panel == "V":
            policy = state["policy"] if show_policy else None
            plot_values(
                grid,
                state["V"],
                policy,
                ax=ax,
                numbers=show_values,
                title=f"$V_{{{state['k']}}}$"
                + (" and greedy policy" if policy is not None else ""),
            )
        else:
            plot_q_values(grid, state["Q"], ax=ax, title=f"$Q_{{{state['k']}}}(s, a)$")
    fig.tight_layout()
    return fig


@lru_cache(maxsize=64)
def _solve_soft(
    layout: str, gamma: float, noise: float, living_reward: float, beta: float
) -> tuple[GridWorld, PlanningResult]:
    grid = make_grid(layout, gamma, noise, living_reward)
    return grid, soft_value_iteration(grid.mdp, beta=beta, tol=1e-8, keep_history=False)


def soft_state(
    layout: str = "book",
    gamma: float = 0.9,
    noise: float = 0.2,
    living_reward: float = 0.0,
    beta: float = 0.1,
) -> dict[str, Any]:
    """Soft value iteration to convergence: V (S,) and pi(a|s) (S, A) of eq. 1.37."""
    if not beta > 0:
        raise ValueError(f"beta={beta}; expected an entropy weight > 0")
    key = (layout, round(float(gamma), 6), round(float(noise), 6), round(float(living_reward), 6))
    grid, result = _solve_soft(*key, round(float(beta), 6))
    return {"grid": grid, "V": result.V, "probs": result.policy, "beta": beta, "result": result}


def draw_soft(state: dict[str, Any], fig: Figure | None = None) -> Figure:
    """Arrows with length proportional to pi(a|s) over the soft values."""
    grid = state["grid"]
    fig = fig if fig is not None else Figure()
    fig.clear()
    rows, cols = grid.shape
    fig.set_size_inches(1.25 * cols + 0.8, 1.25 * rows + 0.7)
    ax = fig.subplots()
    plot_soft_policy(
        grid,
        state["probs"],
        ax=ax,
        V=state["V"],
        title=rf"soft policy, $\beta$ = {state['beta']:g}",
    )
    fig.tight_layout()
    return fig


class GridworldExplorer(Demo):
    """Value iteration on a classic gridworld, step by step (Algorithm 1, eqs. 1.6-1.7).

    Attributes ``layout``, ``gamma``, ``noise``, ``living_reward``, ``k``, ``show_values``,
    ``show_q``, ``show_policy`` are the ipywidgets; ``state`` is the current ``explorer_state``;
    ``n_solves`` counts value-iteration runs (moving ``k`` must not add to it).
    """

    def __init__(
        self,
        layout: str = "book",
        gamma: float = 0.9,
        noise: float = 0.2,
        living_reward: float = 0.0,
        k: int = K_MAX,
    ) -> None:
        import ipywidgets as w

        super().__init__()
        check_layout(layout)
        style = {"description_width": "110px"}
        self.layout = w.Dropdown(options=LAYOUTS, value=layout, description="layout")
        self.gamma = w.FloatSlider(
            value=gamma, min=0.0, max=1.0, step=0.01, description="gamma", style=style
        )
        self.noise = w.FloatSlider(
            value=noise, min=0.0, max=0.8, step=0.01, description="noise", style=style
        )
        self.living_reward = w.FloatSlider(
            value=living_reward,
            min=-2.0,
            max=1.0,
            step=0.01,
            description="living reward",
            style=style,
        )
        self.k = w.IntSlider(value=k, min=0, max=K_MAX, description="iteration k", style=style)
        self.show_values = w.ToggleButton(value=True, description="V")
        self.show_q = w.ToggleButton(value=False, description="Q-values")
        self.show_policy = w.ToggleButton(value=True, description="policy")
        self.n_solves = 0
        self._key: tuple | None = None
        self.state: dict[str, Any] = {}
        for control in (self.layout, self.gamma, self.noise, self.living_reward):
            control.observe(self._on_setting, names="value")
        for control in (self.k, self.show_values, self.show_q, self.show_policy):
            control.observe(self._on_view, names="value")
        self.controls = w.VBox(
            [
                w.HBox([self.layout, self.k]),
                w.HBox([self.gamma, self.noise]),
                w.HBox([self.living_reward, self.show_values, self.show_q, self.show_policy]),
            ]
        )
        self._on_setting()

    def settings(self) -> tuple[str, float, float, float]:
        return (self.layout.value, self.gamma.value, self.noise.value, self.living_reward.value)

    def _on_setting(self, change: Any = None) -> None:
        key = self.settings()
        if key != self._key:  # a new MDP: run value iteration once (cached), keep its history
            self._key = key
            self.n_solves += 1
            solve_gridworld(*key)
        self._on_view()

    def _on_view(self, change: Any = None) -> None:
        self.state = explorer_state(*self._key, k=self.k.value)  # history lookup only
        draw_explorer(
            self.state,
            self.show_values.value,
            self.show_q.value,
            self.show_policy.value,
            fig=self.figure,
        )
        self._refresh()


class SoftPolicyExplorer(Demo):
    """Soft value iteration (eqs. 1.36-1.37): slide beta to move from greedy to uniform."""

    def __init__(
        self,
        layout: str = "book",
        beta: float = 0.1,
        gamma: float = 0.9,
        noise: float = 0.2,
        living_reward: float = 0.0,
    ) -> None:
        import ipywidgets as w

        super().__init__()
        check_layout(layout)
        self.layout = w.Dropdown(options=LAYOUTS, value=layout, description="layout")
        self.beta = w.FloatLogSlider(
            value=beta, base=10, min=-3, max=1, step=0.05, description="beta"
        )
        self.gamma, self.noise, self.living_reward = gamma, noise, living_reward
        self.state: dict[str, Any] = {}
        for control in (self.layout, self.beta):
            control.observe(self._on_change, names="value")
        self.controls = w.HBox([self.layout, self.beta])
        self._on_change()

    def _on_change(self, change: Any = None) -> None:
        self.state = soft_state(
            self.layout.value, self.gamma, self.noise, self.living_reward, self.beta.value
        )
        draw_soft(self.state, fig=self.figure)
        self._refresh()


def gridworld_explorer(**settings: Any) -> GridworldExplorer:
    """Show the value-iteration explorer: a picture of the defaults first, then live sliders."""
    return GridworldExplorer(**settings).show()


def soft_policy_explorer(**settings: Any) -> SoftPolicyExplorer:
    """Show the soft-policy explorer (beta slider): a picture first, then live controls."""
    return SoftPolicyExplorer(**settings).show()
