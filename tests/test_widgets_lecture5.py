"""Lecture 5 widgets and measurements, driven without a browser."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fdrl_lib.algos import ddpg  # noqa: E402
from fdrl_lib.widgets import lecture5  # noqa: E402


def test_squashed_density_integrates_to_one() -> None:
    grid = np.linspace(-0.99999, 0.99999, 100_001)
    density = lecture5.squashed_density(0.3, np.log(0.7), grid)
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-3)


def test_a_higher_temperature_gives_a_wider_policy() -> None:
    cold, hot = lecture5.temperature_state(0.02), lecture5.temperature_state(3.0)
    assert cold["entropy"] < hot["entropy"]
    assert abs(cold["mean"] - 0.5) < 0.15  # a cold policy commits to the tallest peak of Q


def test_noise_clipping_piles_mass_at_the_bounds_as_the_noise_grows() -> None:
    small, large = lecture5.noise_state(0.6, 0.05), lecture5.noise_state(0.6, 1.5)
    assert small["at_bounds"] == 0.0 and large["at_bounds"] > 0.3
    assert np.all(np.abs(large["executed"]) <= 1.0)
    with pytest.raises(ValueError, match="std"):
        lecture5.noisy_actions(0.0, -1.0)


def test_soft_value_link_is_the_boltzmann_policy_and_log_sum_exp() -> None:
    link = lecture5.soft_value_link([1.0, 0.0], beta=1.0)
    np.testing.assert_allclose(link["policy"], np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum())
    assert link["value"] == pytest.approx(np.log(np.e + 1.0))


def test_demos_draw_and_redraw() -> None:
    demo = lecture5.NoiseDemo()
    demo.std.value = 0.8
    assert demo.n_draws == 2 and demo.figure.axes


def test_q_overestimation_compares_the_critic_with_monte_carlo_returns() -> None:
    config = ddpg.Config(total_steps=300, learning_starts=200, eval_every=300, eval_episodes=1)
    result = ddpg.train("Pendulum-v1", config, progress=False)
    m = lecture5.q_overestimation(result, episodes=1, every=50)
    assert m["estimate"].shape == m["truth"].shape == (4,)
    assert np.all(m["truth"] <= 0)  # Pendulum's rewards are never positive
    assert m["bias"] == pytest.approx(np.mean(m["estimate"] - m["truth"]))


def test_swing_up_frames_render_without_a_display() -> None:
    frames = lecture5.swing_up_frames(lambda obs: np.zeros(1, dtype=np.float32), max_steps=6)
    assert len(frames) == 4 and frames[0].ndim == 3
