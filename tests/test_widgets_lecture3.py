"""Lecture 3 widgets, driven without a browser: the numbers they draw are checked against the
exact gradient, the exact values of the random walk, and the bias/variance story of GAE."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fdrl_lib.widgets import STATIC_NOTE, lecture3  # noqa: E402


@pytest.mark.parametrize("kind", sorted(set(lecture3.BASELINE_NAMES.values())))
def test_every_baseline_in_the_demo_is_unbiased(kind):
    out = lecture3.chain_gradients(kind, m=4, batches=3000, seed=1)
    se = out["estimates"].std(0) / np.sqrt(3000)
    z = (out["estimates"].mean(0) - out["exact"]) / se
    assert np.abs(z).max() < 4.5, z


def test_baselines_cut_the_variance_and_the_optimal_constant_beats_the_mean():
    v = {k: lecture3.chain_gradients(k, m=8, batches=1500)["variance"]
         for k in set(lecture3.BASELINE_NAMES.values())}  # fmt: skip
    assert v["whole"] > v["none"] > v["time"] > v["value"]  # eq. 3.11 -> 3.27 -> 3.31 -> 3.32
    assert v["whole"] > 5 * v["constant"] and v["optimal"] <= v["constant"] * 1.02


def test_variance_falls_as_one_over_the_batch_size():
    v1 = lecture3.chain_gradients("value", m=2, batches=3000)["variance"]
    v8 = lecture3.chain_gradients("value", m=8, batches=3000)["variance"]
    assert v1 / v8 == pytest.approx(4.0, rel=0.15)


def test_walk_values_match_monte_carlo_returns_from_the_start():
    data = lecture3.walk_episodes()
    returns = data["rewards"].sum(0)  # undiscounted
    se = returns.std() / np.sqrt(len(returns))
    assert abs(returns.mean() - lecture3.walk_values(1.0)[lecture3.WALK_START]) < 4 * se
    advantages = lecture3.walk_advantages(1.0)
    pi = np.array([1 - lecture3.WALK_RIGHT, lecture3.WALK_RIGHT])
    assert pi @ advantages == pytest.approx(0.0, abs=1e-12)  # E_a[A(s, a)] = 0


def test_gae_with_lambda_one_is_unbiased_and_lambda_zero_is_biased_by_the_critic():
    exact_start = lecture3.gae_bias_variance(gamma=1.0, lam=1.0, critic_error=0.5)
    one_step = lecture3.gae_bias_variance(gamma=1.0, lam=0.0, critic_error=0.5)
    perfect_critic = lecture3.gae_bias_variance(gamma=1.0, lam=0.0, critic_error=0.0)
    assert exact_start["bias2"] < 1e-3 and perfect_critic["bias2"] < 1e-3
    assert one_step["bias2"] > 50 * exact_start["bias2"]
    assert one_step["variance"] < exact_start["variance"] / 3  # ... but much less noisy


def test_gae_variance_grows_with_lambda_and_shrinks_with_gamma():
    variances = [lecture3.gae_bias_variance(0.99, lam)["variance"] for lam in (0, 0.5, 0.9, 1)]
    assert np.all(np.diff(variances) > 0)
    assert (lecture3.gae_bias_variance(0.7, 1.0)["variance"]
            < lecture3.gae_bias_variance(1.0, 1.0)["variance"])  # fmt: skip


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="baseline"):
        lecture3.chain_gradients("mean")
    with pytest.raises(ValueError, match="gamma and lam"):
        lecture3.gae_bias_variance(1.2, 0.5)


def test_show_displays_pictures_before_controls_and_sliders_redraw(displayed):
    demo = lecture3.gae_demo(lam=0.5)
    assert displayed[0] == ("display", demo.figure)
    assert displayed[1][1]["text/plain"] == STATIC_NOTE
    draws = demo.n_draws
    demo.lam.value = 0.9
    assert demo.n_draws == draws + 1 and displayed[-1] == ("update", demo.figure)
    displayed.clear()
    spread = lecture3.gradient_spread_demo(baseline="time", batches=200)
    assert displayed[0] == ("display", spread.figure)
    spread.baseline.value = "value"
    assert displayed[-1] == ("update", spread.figure)


def test_learning_curves_draw_reference_under_a_fast_run():
    reference = {"_about": "x", "A2C (GAE)": [{"steps": [0, 10, 20], "returns": [10, 200, 500]}]}
    fast = {"A2C (GAE)": [{"steps": [0, 5], "returns": [9, 50]}]}
    fig = lecture3.learning_curves(reference, fast)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "A2C (GAE) (reference)" in labels and "A2C (GAE) (this run)" in labels


def test_the_shipped_reference_curves_show_learning():
    reference = lecture3.load_reference()
    assert set(lecture3.CURVES) <= set(reference)
    a2c_final = [run["returns"][-1] for run in reference["A2C (GAE)"]]
    assert max(a2c_final) >= 475
