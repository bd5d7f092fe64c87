"""Lecture 2 widgets and experiment helpers, driven without a browser."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from fdrl_lib.tabular import GridWorld, q_value_iteration  # noqa: E402
from fdrl_lib.tabular.qlearning import q_learning  # noqa: E402
from fdrl_lib.widgets import STATIC_NOTE, lecture2  # noqa: E402

# ---------------------------------------------------------------- prioritized replay


def test_priority_probs_alpha_zero_is_uniform_and_alpha_one_is_proportional() -> None:
    td_errors = np.array([4.0, -2.0, 1.0, 1.0])
    np.testing.assert_allclose(lecture2.priority_probs(td_errors, 0.0), np.full(4, 0.25))
    np.testing.assert_allclose(
        lecture2.priority_probs(td_errors, 1.0, eps=0.0), [0.5, 0.25, 0.125, 0.125]
    )
    # alpha = 1/2: square roots, by hand: [2, sqrt 2, 1, 1] / (4 + sqrt 2)
    expected = np.array([2.0, np.sqrt(2), 1.0, 1.0]) / (4 + np.sqrt(2))
    np.testing.assert_allclose(lecture2.priority_probs(td_errors, 0.5, eps=0.0), expected)


def test_larger_alpha_puts_more_mass_on_the_largest_td_error() -> None:
    td_errors = lecture2.example_td_errors()
    top = [lecture2.priority_probs(td_errors, a)[np.argmax(td_errors)] for a in (0, 0.3, 0.6, 1)]
    assert np.all(np.diff(top) > 0)


def test_importance_weights_with_beta_one_undo_the_skew_exactly() -> None:
    probs = lecture2.priority_probs(lecture2.example_td_errors(), 0.8)
    weights = lecture2.importance_weights(probs, beta=1.0)
    corrected = probs * weights  # sampling probability x weight: constant = uniform
    np.testing.assert_allclose(corrected, np.full_like(probs, corrected[0]))
    assert weights.max() == pytest.approx(1.0)
    np.testing.assert_allclose(lecture2.importance_weights(probs, beta=0.0), 1.0)


def test_replay_state_agrees_with_the_libraries_sum_tree_and_its_draws() -> None:
    state = lecture2.replay_state(alpha=0.7, beta=0.5, samples=50_000)
    np.testing.assert_allclose(state["tree_probs"], state["probs"], rtol=1e-9)
    counts = np.round(state["frequency"] * state["samples"])
    _, p_value = stats.chisquare(counts, state["probs"] * state["samples"])
    assert p_value > 0.01
    np.testing.assert_allclose(state["frequency"].sum(), 1.0)


def test_replay_demo_redraws_with_the_new_alpha() -> None:
    demo = lecture2.ReplayDemo(alpha=0.0)
    bars = demo.figure.axes[0].patches
    np.testing.assert_allclose([b.get_height() for b in bars], 1 / len(bars))
    draws = demo.n_draws
    demo.alpha.value = 1.0
    assert demo.n_draws == draws + 1
    heights = [b.get_height() for b in demo.figure.axes[0].patches]
    expected = lecture2.priority_probs(demo.td_errors, 1.0)
    np.testing.assert_allclose(heights, expected)


def test_bad_replay_settings_raise_value_error() -> None:
    with pytest.raises(ValueError, match="alpha"):
        lecture2.priority_probs([1.0, 2.0], -0.1)
    with pytest.raises(ValueError, match="beta"):
        lecture2.importance_weights(np.array([0.5, 0.5]), 1.5)
    with pytest.raises(ValueError, match="td_errors"):
        lecture2.priority_probs([], 0.5)


# ---------------------------------------------------------------- tabular Q-learning


def test_qlearning_state_is_the_librarys_q_learning_run() -> None:
    state = lecture2.qlearning_state("book", epsilon=0.3, alpha=0.2, step=lecture2.STEPS_MAX)
    direct = q_learning(
        GridWorld.book(), steps=lecture2.STEPS_MAX, alpha=0.2, epsilon=0.3, gamma=0.9, seed=0
    )
    np.testing.assert_array_equal(state["Q"], direct.Q)
    np.testing.assert_allclose(state["Q_star"], q_value_iteration(GridWorld.book().mdp).Q)
    assert state["episodes"] == len(direct.history)
    start = lecture2.qlearning_state("book", epsilon=0.3, alpha=0.2, step=0)
    assert not start["Q"].any() and start["episodes"] == 0


def test_q_learning_on_the_book_grid_approaches_q_star() -> None:
    state = lecture2.qlearning_state("book", epsilon=0.3, alpha=0.2, step=lecture2.STEPS_MAX)
    assert state["errors"][0] > 0.5  # Q_0 = 0 against values up to 1
    assert state["error"] < 0.2
    assert state["policy_agrees"] >= 7  # of the 9 non-exit cells
    exits = list(GridWorld.book().exits.items())
    for s, reward in exits:  # exits are seen often: their Q is (nearly) the exit's number
        np.testing.assert_allclose(state["Q"][s], reward, atol=0.05)


def test_moving_the_step_slider_indexes_snapshots_without_rerunning() -> None:
    demo = lecture2.QLearningDemo(layout="book", epsilon=0.3, alpha=0.2, step=1_000)
    runs, draws = demo.n_runs, demo.n_draws
    demo.step.value = 4_000
    assert demo.n_runs == runs and demo.n_draws == draws + 1
    _, result, _ = lecture2.learn_gridworld("book", 0.3, 0.2)
    np.testing.assert_array_equal(demo.state["Q"], result.Q_history[4_000 // lecture2.CHUNK - 1])
    assert "4,000 steps" in demo.figure.axes[0].get_title()


def test_changing_epsilon_or_alpha_reruns_q_learning() -> None:
    demo = lecture2.QLearningDemo(epsilon=0.3, alpha=0.2)
    runs = demo.n_runs
    before = demo.state["Q"].copy()
    demo.epsilon.value = 0.9
    assert demo.n_runs == runs + 1
    assert demo.state["epsilon"] == pytest.approx(0.9)
    assert not np.array_equal(before, demo.state["Q"])
    demo.alpha.value = 0.5
    assert demo.n_runs == runs + 2 and demo.state["alpha"] == pytest.approx(0.5)


def test_next_button_advances_one_chunk_and_stops_at_the_end() -> None:
    demo = lecture2.QLearningDemo(step=0)
    demo.next_button.click()
    assert demo.step.value == lecture2.CHUNK == demo.state["step"]
    demo.step.value = lecture2.STEPS_MAX
    demo.advance()
    assert demo.step.value == lecture2.STEPS_MAX


def test_show_displays_a_static_picture_before_the_controls(displayed) -> None:
    shown = displayed
    demo = lecture2.replay_demo(alpha=0.5)
    assert shown[0] == ("display", demo.figure)  # the picture first: saved notebooks show it
    assert shown[1][1]["text/plain"] == STATIC_NOTE
    demo.beta.value = 1.0
    assert shown[-1] == ("update", demo.figure)
    shown.clear()
    q_demo = lecture2.qlearning_demo(step=0)
    assert shown[0] == ("display", q_demo.figure)
    assert "application/vnd.jupyter.widget-view+json" in shown[1][1]


def test_bad_qlearning_settings_raise_value_error() -> None:
    with pytest.raises(ValueError, match="step="):
        lecture2.qlearning_state(step=lecture2.CHUNK + 1)
    with pytest.raises(ValueError, match="epsilon"):
        lecture2.learn_gridworld(epsilon=1.5)
    with pytest.raises(ValueError, match="layout"):
        lecture2.QLearningDemo(layout="mountain")


# ---------------------------------------------------------------- DQN experiment helpers


def _constant_env(reward: float):
    import gymnasium as gym

    class OneStep(gym.Env):
        observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return np.zeros(1, np.float32), {}

        def step(self, action):
            return np.zeros(1, np.float32), reward, True, False, {}

    return OneStep


def test_carry_forward_repeats_the_last_score_to_the_budget() -> None:
    records = [{"step": 100.0, "eval_return": 50.0}, {"step": 200.0, "eval_return": 480.0}]
    out = lecture2.carry_forward(records, total_steps=500, every=100)
    assert [r["step"] for r in out] == [100, 200, 300, 400, 500]
    assert [r["eval_return"] for r in out][2:] == [480.0] * 3
    assert lecture2.carry_forward(out, 500, 100) == out  # a full run is unchanged


def test_ablation_collects_one_carried_forward_history_per_seed() -> None:
    from dataclasses import dataclass

    @dataclass
    class FakeConfig:  # "solves" (scores 500) from step solve_at on
        solve_at: int
        eval_every: int = 0
        eval_episodes: int = 0
        target_return: float | None = None
        stop_at_target: bool = True

    calls = []

    def fake_train(env, config, *, seed, total_steps, progress):
        calls.append((config.solve_at, seed, config.eval_every, config.eval_episodes))
        evals = []
        for step in range(config.eval_every, total_steps + 1, config.eval_every):
            evals.append((step, 500.0 if step >= config.solve_at else 9.0))
            if config.stop_at_target and evals[-1][1] >= config.target_return:
                break
        return SimpleNamespace(logs={"eval_return": evals})

    results = lecture2.ablation(
        {"fast": FakeConfig(200), "slow": FakeConfig(900)},
        seeds=[0, 1],
        total_steps=600,
        every=100,
        episodes=3,
        threshold=475,
        progress=False,
        train=fake_train,
    )
    assert calls == [(200, 0, 100, 3), (200, 1, 100, 3), (900, 0, 100, 3), (900, 1, 100, 3)]
    assert results["fast"]["solved_at"] == [200, 200]
    assert results["slow"]["solved_at"] == [None, None]
    assert results["fast"]["final"] == [500.0, 500.0] and results["slow"]["final"] == [9.0, 9.0]
    for row in results.values():
        assert all(len(r) == 6 for r in row["records"])  # 100 .. 600 for every seed
    table = lecture2.ablation_table(results, total_steps=600)
    assert "| fast | 2/2 | 200 |" in table and "| slow | 0/2 | 600 |" in table


def test_ablation_reads_the_real_dqns_own_evaluations() -> None:
    from fdrl_lib.algos import dqn

    config = dqn.Config(learning_starts=200, hidden=(16,))
    results = lecture2.ablation(
        {"DQN": config}, seeds=[0], total_steps=1_000, every=500, episodes=1, progress=False
    )
    records = results["DQN"]["records"][0]
    assert [r["step"] for r in records] == [500, 1_000]
    assert all(r["eval_return"] >= 8 for r in records)  # CartPole: at least 8 steps per episode


def test_greedy_agreement_counts_no_cell_of_an_all_zero_table() -> None:
    Q_star = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]])
    assert lecture2.greedy_agreement(np.zeros((3, 2)), Q_star, [0, 1, 2]) == 0
    learned = np.array([[0.5, 0.1], [0.3, 0.3], [0.0, 0.2]])  # right, tied, wrong
    assert lecture2.greedy_agreement(learned, Q_star, [0, 1, 2]) == 1
    assert lecture2.greedy_agreement(learned, Q_star, [1, 2]) == 0
