"""Lecture 6 widgets and experiment helpers, driven without a browser."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fdrl_lib.widgets import lecture6  # noqa: E402


def test_ensemble_disagreement_is_small_on_the_data_and_grows_away_from_it() -> None:
    state = lecture6.ensemble_state(40)
    grid, spread = state["grid"], state["spread"]
    covered = (grid > state["s"].min()) & (grid < state["s"].max())
    assert spread[covered].mean() * 5 < spread[np.abs(grid) > 3.5].mean()
    assert state["members"].shape == (5, len(grid))


def test_more_data_shrinks_the_disagreement_where_it_lands() -> None:
    few, many = lecture6.ensemble_state(10), lecture6.ensemble_state(160)
    middle = np.abs(few["grid"]) < 1.5  # where the added data lands
    assert many["spread"][middle].mean() < few["spread"][middle].mean()


def test_ensemble_state_rejects_a_single_model_or_point() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        lecture6.ensemble_state(1)


def test_ensemble_demo_redraws_when_data_is_added(displayed) -> None:
    demo = lecture6.ensemble_demo(n=10)
    draws = demo.n_draws
    demo.n.value = 40
    assert demo.n_draws == draws + 1 and demo.state["s"].shape == (40,)
    assert [kind for kind, _ in displayed][:2] == ["display", "display"]  # picture, then controls


def test_exploitation_run_scores_the_same_policy_in_the_model_and_in_the_env() -> None:
    run = lecture6.exploitation_run(iterations=2, eval_episodes=2)
    assert run["imagined"].shape == run["real"].shape == (2,)
    assert np.isfinite(run["imagined"]).all() and (run["real"] <= 0).all()
    again = lecture6.exploitation_run(iterations=2, eval_episodes=2)
    np.testing.assert_array_equal(again["imagined"], run["imagined"])  # same seed, same run
    fig = lecture6.draw_exploitation(run, upto=1)
    assert len(fig.axes[0].lines[0].get_xdata()) == 1


def test_learning_curves_draw_live_runs_over_the_reference() -> None:
    live = {"mbrl": [([200, 400], [-900.0, -150.0])]}
    reference = {
        "curves": {"mbrl": [([200, 400], [-800.0, -160.0])], "trpo": [([5000], [-1000.0])]}
    }
    fig = lecture6.draw_learning_curves(live, reference)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert "mbrl" in labels and "trpo" in labels
    assert len(fig.axes[0].lines) == 4  # two reference runs, one live run, the -200 line
    many = {f"algo{i}": [([1], [-1.0])] for i in range(7)}  # more algorithms than colours
    assert len(lecture6.draw_learning_curves(many, many).axes[0].lines) == 15
