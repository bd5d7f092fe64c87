"""Lecture 1 widgets, driven without a browser: set slider values, check the data and figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fdrl_lib.tabular import GridWorld, soft_value_iteration, value_iteration  # noqa: E402
from fdrl_lib.widgets import STATIC_NOTE, lecture1  # noqa: E402


def _image(fig) -> np.ndarray:
    return fig.axes[0].images[0].get_array().filled(np.nan)


@pytest.mark.parametrize("k", [0, 1, 3, 10])
def test_explorer_state_k_is_exactly_k_backups_of_value_iteration(k: int) -> None:
    state = lecture1.explorer_state("book", 0.9, 0.2, 0.0, k=k)
    expected = value_iteration(GridWorld.book().mdp, horizon=k)
    assert np.allclose(state["V"], expected.V)
    if k > 0:
        assert np.allclose(state["Q"].max(axis=1), state["V"])  # V_k = max_a Q_k (eq. 1.7)


def test_explorer_state_draws_no_arrow_where_all_actions_tie() -> None:
    grid = GridWorld.book()
    # Q_2: only the exits' neighbours have seen a reward; every other cell ties at 0
    state = lecture1.explorer_state("book", k=2)
    assert state["policy"][grid.state_of(2, 0)] == -1
    assert state["policy"][grid.state_of(0, 2)] == GridWorld.ACTIONS.index("right")
    assert lecture1.explorer_state("book", k=0)["policy"] is None


def test_solve_gridworld_is_cached_per_setting() -> None:
    first = lecture1.solve_gridworld("cliff", 0.9, 0.2, 0.0)
    assert lecture1.solve_gridworld("cliff", 0.9, 0.2, 0.0) is first
    assert lecture1.solve_gridworld("cliff", 0.8, 0.2, 0.0) is not first


def test_moving_k_indexes_history_without_rerunning_value_iteration() -> None:
    explorer = lecture1.GridworldExplorer(layout="book", k=50)
    solves, draws = explorer.n_solves, explorer.n_draws
    before = _image(explorer.figure).copy()
    explorer.k.value = 2
    assert explorer.n_solves == solves
    assert explorer.n_draws == draws + 1
    assert explorer.state["k"] == 2
    after = _image(explorer.figure)
    expected = GridWorld.book().to_grid(value_iteration(GridWorld.book().mdp, horizon=2).V)
    assert np.allclose(after, expected, equal_nan=True)
    assert not np.allclose(before, after, equal_nan=True)


def test_changing_gamma_reruns_value_iteration_and_redraws() -> None:
    explorer = lecture1.GridworldExplorer(layout="book")
    solves = explorer.n_solves
    explorer.gamma.value = 0.5
    assert explorer.n_solves == solves + 1
    expected = value_iteration(GridWorld.book(gamma=0.5).mdp, horizon=explorer.k.value).V
    assert np.allclose(explorer.state["V"], expected)
    assert np.allclose(_image(explorer.figure), GridWorld.book().to_grid(expected), equal_nan=True)


def test_changing_layout_noise_and_living_reward_update_the_mdp() -> None:
    explorer = lecture1.GridworldExplorer()
    explorer.layout.value = "bridge"
    explorer.noise.value = 0.0
    explorer.living_reward.value = -0.5
    grid = explorer.state["grid"]
    assert grid.shape == GridWorld.bridge().shape
    assert (grid.noise, grid.living_reward) == (0.0, -0.5)
    expected = value_iteration(grid.mdp, horizon=explorer.k.value).V
    assert np.allclose(explorer.state["V"], expected)


def test_q_toggle_adds_the_q_value_panel() -> None:
    explorer = lecture1.GridworldExplorer()
    assert len(explorer.figure.axes) == 1
    explorer.show_q.value = True
    assert len(explorer.figure.axes) == 2
    explorer.show_values.value = False
    assert len(explorer.figure.axes) == 1  # Q-values only
    assert not explorer.figure.axes[0].images  # triangles, not a heatmap


def test_soft_explorer_beta_slider_shows_soft_value_iteration_policy() -> None:
    explorer = lecture1.SoftPolicyExplorer(layout="book", beta=0.5)
    explorer.beta.value = 0.01
    expected = soft_value_iteration(GridWorld.book().mdp, beta=0.01, tol=1e-8).policy
    assert np.allclose(explorer.state["probs"], expected, atol=1e-6)
    # small beta: (nearly) greedy, so the soft policy picks value iteration's action
    greedy = value_iteration(GridWorld.book().mdp).policy
    n = len(GridWorld.book().cells)
    assert np.array_equal(explorer.state["probs"][:n].argmax(axis=1), greedy[:n])


def test_show_displays_a_static_picture_before_the_controls(displayed) -> None:
    shown = displayed
    explorer = lecture1.gridworld_explorer(layout="maze")
    assert shown[0] == ("display", explorer.figure)  # the picture first: saved notebooks show it
    bundle = shown[1][1]
    assert bundle["text/plain"] == STATIC_NOTE  # readable where widgets cannot render
    assert "application/vnd.jupyter.widget-view+json" in bundle
    explorer.k.value = 1
    assert shown[-1] == ("update", explorer.figure)  # the sliders redraw that same picture


def test_unknown_layout_and_bad_values_raise_value_error() -> None:
    with pytest.raises(ValueError, match="layout"):
        lecture1.GridworldExplorer(layout="mountain")
    with pytest.raises(ValueError, match="k="):
        lecture1.explorer_state("book", k=lecture1.K_MAX + 1)
    with pytest.raises(ValueError, match="beta"):
        lecture1.soft_state("book", beta=0.0)


def test_show_source_drops_the_docstring_and_cuts_to_the_marked_lines() -> None:
    from fdrl_lib.tabular import planning
    from fdrl_lib.widgets import show_source

    full = show_source(planning.value_iteration).data
    assert full.startswith("def value_iteration(") and '"""' not in full
    loop = show_source(planning.value_iteration, start="while k < n_max", end="break").data
    assert loop.splitlines()[0].strip() == "while k < n_max:"
    assert loop.splitlines()[-1].strip() == "break"
    with pytest.raises(ValueError, match="not in the source"):
        show_source(planning.value_iteration, start="no such line")
