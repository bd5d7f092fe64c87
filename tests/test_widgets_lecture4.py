"""Lecture 4 widgets, driven without a browser."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fdrl_lib.widgets import lecture4  # noqa: E402


def test_clip_curves_go_flat_past_the_range_in_the_advantage_direction():
    pos = lecture4.clip_curves(0.2, 2.0, ratios=np.array([0.5, 1.0, 1.5]))
    np.testing.assert_allclose(pos["objective"], [1.0, 2.0, 2.4])
    assert pos["flat"].tolist() == [False, False, True]
    neg = lecture4.clip_curves(0.2, -1.0, ratios=np.array([0.5, 1.0, 1.5]))
    np.testing.assert_allclose(neg["objective"], [-0.8, -1.0, -1.5])
    assert neg["flat"].tolist() == [True, False, False]
    # the objective is never above the unclipped surrogate: a pessimistic bound
    full = lecture4.clip_curves(0.3, 1.0)
    assert np.all(full["objective"] <= full["unclipped"] + 1e-12)


def test_clip_curves_reject_bad_settings():
    with pytest.raises(ValueError, match="epsilon"):
        lecture4.clip_curves(0.0, 1.0)
    with pytest.raises(ValueError, match="advantage"):
        lecture4.clip_curves(0.2, 0.0)


def test_gaussian_kl_matches_torch_for_equal_covariances():
    Sigma = lecture4.covariance(1.2, 0.5, 0.3)
    mu_old, mu = np.array([0.1, -0.2]), np.array([0.7, 0.4])
    old = torch.distributions.MultivariateNormal(torch.tensor(mu_old), torch.tensor(Sigma))
    new = torch.distributions.MultivariateNormal(torch.tensor(mu), torch.tensor(Sigma))
    expected = float(torch.distributions.kl_divergence(old, new))
    assert lecture4.gaussian_kl(mu_old, mu, Sigma) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("sigmas", [(1.5, 0.4, 0.0), (0.5, 1.0, 0.6), (1.0, 1.0, 0.0)])
def test_both_steps_end_on_the_kl_edge_and_the_natural_step_gains_at_least_as_much(sigmas):
    state = lecture4.trust_region_state(0.3, *sigmas)
    for name in ("plain", "natural"):
        assert state["kl"][name] == pytest.approx(0.3, rel=1e-9)
    np.testing.assert_allclose(state["natural_direction"], state["Sigma"] @ state["g"], rtol=1e-8)
    # the natural step maximises the linear gain g . step on the KL ellipse
    g = state["g"]
    assert g @ state["steps"]["natural"] >= g @ state["steps"]["plain"] - 1e-12
    if sigmas[0] == sigmas[1] and sigmas[2] == 0:  # isotropic: the two steps coincide
        np.testing.assert_allclose(state["steps"]["natural"], state["steps"]["plain"])


def test_demos_draw_and_redraw_on_slider_changes():
    clip = lecture4.ClipDemo()
    clip.epsilon.value = 0.4
    clip.sign.value = -1.0
    assert clip.n_draws == 3 and clip.state["advantage"] == -1.0
    region = lecture4.TrustRegionDemo()
    region.sigma_y.value = 1.0
    assert region.n_draws == 2 and len(region.figure.axes) == 2


def test_shipped_reference_has_every_algorithm_with_its_diagnostics():
    reference = lecture4.load_reference()
    assert set(reference) == {"TRPO", "PPO-KL", "PPO-clip"}
    for runs in reference.values():
        assert len(runs) >= 2
        for run in runs:
            assert run["eval_return"] and run["kl"]
    assert all("beta" in run for run in reference["PPO-KL"])
    assert all("clip_fraction" in run for run in reference["PPO-clip"])


def test_draw_comparison_draws_four_panels_from_synthetic_runs():
    run = {"eval_return": [[1000, 10.0], [2000, 20.0]], "kl": [[i, 0.01] for i in range(1, 30)]}
    fig = lecture4.draw_comparison({"TRPO": [run, run]}, current={"TRPO": [run]})
    assert len(fig.axes) == 4
    assert fig.axes[0].lines and fig.axes[1].lines
