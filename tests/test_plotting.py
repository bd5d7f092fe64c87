"""fdrl_lib.plotting: the pictures show the numbers they are given (checked on the artists)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.patches import FancyArrow, Rectangle  # noqa: E402

from fdrl_lib import plotting  # noqa: E402
from fdrl_lib.tabular import GridWorld, value_iteration  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def book() -> GridWorld:
    return GridWorld.book()


def _arrows(ax) -> list[FancyArrow]:
    return [p for p in ax.patches if isinstance(p, FancyArrow)]


def _arrow_extent(arrow: FancyArrow) -> float:
    xy = arrow.get_xy()
    return float(max(np.ptp(xy[:, 0]), np.ptp(xy[:, 1])))


def test_plot_values_heatmap_holds_values_with_nan_walls(book: GridWorld) -> None:
    V = value_iteration(book.mdp).V
    ax = plotting.plot_values(book, V)
    image = ax.images[0].get_array()
    expected = book.to_grid(V)
    assert np.ma.getmaskarray(image)[1, 1]  # the wall
    assert np.allclose(image.filled(np.nan)[~np.isnan(expected)], expected[~np.isnan(expected)])
    texts = {t.get_text() for t in ax.texts}
    assert f"{V[book.state_of(0, 2)]:.2f}" in texts


def test_plot_values_draws_one_arrow_per_non_exit_cell(book: GridWorld) -> None:
    res = value_iteration(book.mdp)
    ax = plotting.plot_values(book, res.V, res.policy)
    assert len(_arrows(ax)) == len(book.cells) - len(book.exits)
    walls = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_fill()]
    assert len(walls) == int(book.walls.sum())


def test_plot_values_arrow_points_the_way_of_the_action(book: GridWorld) -> None:
    policy = np.full(book.S, GridWorld.ACTIONS.index("right"))
    ax = plotting.plot_values(book, np.zeros(book.S), policy)
    arrows = _arrows(ax)
    assert arrows
    for arrow in arrows:
        xy = arrow.get_xy()
        assert np.ptp(xy[:, 0]) > np.ptp(xy[:, 1])  # horizontal
        start = xy[:, 0].min()  # the tail sits on the cell centre (an integer column) ...
        assert np.isclose(start, round(start))
        assert np.isclose(xy[:, 0].max(), start + 0.26)  # ... and the head 0.26 to its right


def test_plot_values_skips_negative_actions_and_rejects_bad_shapes(book: GridWorld) -> None:
    ax = plotting.plot_values(book, np.zeros(book.S), np.full(book.S, -1))
    assert _arrows(ax) == []
    with pytest.raises(ValueError, match="expected"):
        plotting.plot_values(book, np.zeros(5))


def test_plot_q_values_draws_four_triangles_per_cell_coloured_by_q(book: GridWorld) -> None:
    Q = value_iteration(book.mdp).Q
    ax = plotting.plot_q_values(book, Q)
    (collection,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    n_moving = len(book.cells) - len(book.exits)
    assert len(collection.get_paths()) == 4 * n_moving + len(book.exits)
    s = book.state_of(0, 2)  # next to +1: "right" is best and drawn bold
    bold = [t.get_text() for t in ax.texts if t.get_fontweight() == "bold"]
    assert f"{Q[s].max():.2f}" in bold
    with pytest.raises(ValueError, match="Q has shape"):
        plotting.plot_q_values(book, Q[:, :3])


def test_plot_soft_policy_arrow_lengths_are_proportional_to_probabilities() -> None:
    grid = GridWorld([[" ", " ", 1.0]])
    probs = np.zeros((grid.S, 4))
    probs[0] = [0.1, 0.6, 0.2, 0.1]
    probs[1] = [0.25, 0.25, 0.25, 0.25]
    ax = plotting.plot_soft_policy(grid, probs)
    lengths = sorted(_arrow_extent(a) for a in _arrows(ax))
    expected = sorted(0.4 * p for p in [*probs[0], *probs[1]])
    assert np.allclose(lengths, expected, atol=1e-2)


def test_learning_curve_plots_mean_and_minmax_band_cut_to_shortest_run() -> None:
    runs = [np.array([0.0, 1, 2, 3]), np.array([2.0, 3, 4]), np.array([1.0, 2, 6, 9, 9])]
    ax = plotting.learning_curve(runs, label="agent")
    x, y = ax.lines[0].get_data()
    assert np.allclose(x, [0, 1, 2]) and np.allclose(y, [1, 2, 4])
    band = ax.collections[0].get_paths()[0].vertices
    assert np.isclose(band[:, 1].min(), 0.0) and np.isclose(band[:, 1].max(), 6.0)


def test_learning_curve_std_band_and_steps_axis() -> None:
    runs = np.array([[0.0, 2.0], [2.0, 6.0]])
    ax = plotting.learning_curve(runs, steps=[100, 200], band="std")
    x, y = ax.lines[0].get_data()
    assert np.allclose(x, [100, 200]) and np.allclose(y, [1, 4])
    band = ax.collections[0].get_paths()[0].vertices
    assert np.isclose(band[:, 1].max(), 6.0) and np.isclose(band[:, 1].min(), 0.0)


def test_learning_curve_rejects_unknown_band_and_empty_input() -> None:
    with pytest.raises(ValueError, match="band"):
        plotting.learning_curve([[1.0, 2.0]], band="iqr")
    with pytest.raises(ValueError, match="empty"):
        plotting.learning_curve([])


def test_plot_convergence_uses_log_scale_and_drops_values_below_floor() -> None:
    errors = np.array([1.0, 0.1, 0.01, 1e-16, 0.0])
    ax = plotting.plot_convergence(errors, bound=np.ones(5), floor=1e-13)
    assert ax.get_yscale() == "log"
    x, y = ax.lines[0].get_data()
    assert list(x) == [0, 1, 2] and np.allclose(y, errors[:3])


def test_rollout_frames_and_animate_make_a_gif_that_needs_no_javascript(book: GridWorld) -> None:
    pytest.importorskip("pygame")
    from PIL import Image as PILImage

    res = value_iteration(GridWorld.book(noise=0.0).mdp)
    env = book.__class__.book(noise=0.0).env(render_mode="rgb_array")
    frames = plotting.rollout_frames(env, res.policy, max_steps=20, seed=0)
    env.close()
    # noise 0 from the start: 5 moves to the +1 cell and one exit action = 6 steps, 7 frames
    assert len(frames) == 7
    assert frames[0].ndim == 3 and frames[0].shape[2] == 3
    shown = plotting.animate(frames, fps=5)
    gif = PILImage.open(io.BytesIO(shown.data))
    assert shown.format == "gif" and gif.format == "GIF" and gif.n_frames == 7
    assert gif.info["loop"] == 0 and gif.info["duration"] == 200


def test_animate_shrinks_by_averaging_so_a_one_pixel_line_survives() -> None:
    from PIL import Image as PILImage

    frame = np.full((40, 60, 3), 255, dtype=np.uint8)
    frame[21, :, :] = 0  # a 1-pixel black track on an odd row: [::2, ::2] would drop it
    assert frame[::2, ::2].min() == 255
    gif = PILImage.open(io.BytesIO(plotting.animate([frame, frame], width=30).data))
    small = np.asarray(gif.convert("RGB"))
    assert small.shape == (20, 30, 3)
    assert small[10].mean() < 200  # the track is still there, greyed by the average


def test_animate_rejects_no_frames_and_bad_fps() -> None:
    with pytest.raises(ValueError, match="empty"):
        plotting.animate([])
    with pytest.raises(ValueError, match="fps"):
        plotting.animate([np.zeros((4, 4, 3))], fps=0)


def test_rollout_frames_needs_rgb_array_env(book: GridWorld) -> None:
    env = book.env()
    with pytest.raises(ValueError, match="rgb_array"):
        plotting.rollout_frames(env, np.zeros(book.S, dtype=int))
    env.close()


def test_learning_curve_interpolates_training_histories_onto_common_steps() -> None:
    # two seeds logging at different steps; returns grow linearly with the step in both
    seed0 = [{"step": s, "episode_return": 2.0 * s, "wall_time": 0.0} for s in (0, 10, 20, 30)]
    seed1 = [{"step": s, "episode_return": 2.0 * s + 4.0} for s in (5, 15, 25, 35)]
    ax = plotting.learning_curve([seed0, seed1])
    x, y = ax.lines[0].get_data()
    assert np.isclose(x[0], 5) and np.isclose(x[-1], 30)  # only steps both seeds cover
    assert np.allclose(y, 2.0 * x + 2.0)  # the mean of the two lines


def test_learning_curve_smoothing_keeps_steps_aligned_to_window_ends() -> None:
    ax = plotting.learning_curve([[0.0, 0.0, 3.0, 3.0]], steps=[10, 20, 30, 40, 50], smooth=2)
    x, y = ax.lines[0].get_data()
    assert np.allclose(x, [20, 30, 40]) and np.allclose(y, [0.0, 1.5, 3.0])


def test_number_never_prints_minus_zero() -> None:
    assert plotting.number(-1e-9) == "0.00" and plotting.number(-0.004) == "0.00"
    assert plotting.number(-0.006) == "-0.01" and plotting.number(0.5) == "0.50"
