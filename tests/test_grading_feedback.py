"""Feedback that names the mistake (issue 14 defect 8, issue 15): each typical slip below is
named in the notebook's check and by the grader (same comparison code), a check cell that fails
shows one readable line, and the lecture 1 solution's claims hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import solution_functions

from fdrl_lib.grading.checking import CheckFailed, check
from fdrl_lib.grading.exercises import lecture_of
from fdrl_lib.grading.exercises import mdps as ex1

ROOT = Path(__file__).resolve().parents[1]
SOLUTION1 = ROOT / "solutions" / "01_mdps.ipynb"
SOLUTION2 = ROOT / "solutions" / "02_dqn.ipynb"


def _messages(number: str, function, hidden: bool = False, capsys=None) -> str:
    with pytest.raises(AssertionError):
        check(number, function, hidden=hidden)
    return capsys.readouterr().out


def test_backup_slips_are_named_and_the_hint_no_longer_says_no_max(capsys):
    def gamma_on_reward(P, R, gamma, V):
        return np.sum(P * (gamma * R + V[None, None, :]), axis=2)

    def reward_not_weighted(P, R, gamma, V):
        return R.sum(axis=2) + gamma * P @ V

    def wrong_axis(P, R, gamma, V):
        return np.sum(P * (R + gamma * V[:, None, None]), axis=2)

    assert "you discounted the reward" in _messages("1.1", gamma_on_reward, capsys=capsys)
    out = _messages("1.1", reward_not_weighted, capsys=capsys)
    assert "without weighting it by P(s'|s, a)" in out  # a visible case has R(s, a, s')
    assert "V of the current state s instead of the next state s'" in _messages(
        "1.1", wrong_axis, capsys=capsys
    )
    hint = ex1.LECTURE.exercise("1.1").outputs[0].hint
    assert "no max" not in hint and "for every s and a" in hint


def test_transposed_policy_matrix_is_not_called_one_sweep(capsys):
    def transposed(P, R, gamma, policy, tol=1e-10):
        policy = np.asarray(policy)
        probs = np.eye(P.shape[1])[policy] if policy.ndim == 1 else policy
        P_pi, R_pi = np.einsum("sa,sat->st", probs, P), np.einsum("sa,sat,sat->s", probs, P, R)
        V = np.zeros(len(R_pi))
        for _ in range(10_000):
            V = R_pi + gamma * P_pi.T @ V
        return V

    visible = _messages("1.3", transposed, capsys=capsys)
    assert "either you stopped after one sweep" in visible and "P_pi.T" in visible
    hidden = _messages("1.3", transposed, hidden=True, capsys=capsys)
    assert "you multiplied V by the transposed transition matrix" in hidden
    assert "you stopped after one sweep (V" not in hidden


def test_naive_soft_max_overflows_on_the_small_beta_case_and_is_told_why(capsys):
    functions = solution_functions(SOLUTION1)

    def naive(P, R, gamma, beta, horizon=None, tol=1e-10):
        S = P.shape[0]
        terminal = np.all(np.isclose(P[np.arange(S), :, np.arange(S)], 1.0), axis=1)
        V = np.zeros(S)
        for _ in range(horizon if horizon is not None else 100_000):
            Q = functions["bellman_backup"](P, R, gamma, V)
            with np.errstate(all="ignore"):
                V_new = np.where(terminal, 0.0, beta * np.log(np.exp(Q / beta).sum(axis=1)))
            done = np.max(np.abs(V_new - V)) < tol
            V = V_new
            if horizon is None and done:
                break
        with np.errstate(all="ignore"):
            pi = np.exp(Q / beta) / np.exp(Q / beta).sum(axis=1, keepdims=True)
        return V, pi

    check("1.5", naive)  # the visible cases are fine
    out = _messages("1.5", naive, hidden=True, capsys=capsys)
    assert "exp(Q / beta) overflows for a small beta: subtract the max first" in out


def test_soft_values_of_a_terminal_state_stay_zero_as_in_the_library(capsys):
    functions = solution_functions(SOLUTION1)
    check("1.5", functions["soft_value_iteration"])
    check("1.5", functions["soft_value_iteration"], hidden=True)
    capsys.readouterr()

    def bonus_forever(P, R, gamma, beta, horizon=None, tol=1e-10):  # the old solution
        V = np.zeros(P.shape[0])
        for _ in range(horizon if horizon is not None else 100_000):
            Q = functions["bellman_backup"](P, R, gamma, V)
            m = Q.max(axis=1, keepdims=True)
            V_new = m[:, 0] + beta * np.log(np.exp((Q - m) / beta).sum(axis=1))
            done = np.max(np.abs(V_new - V)) < tol
            V = V_new
            if horizon is None and done:
                break
        pi = np.exp((Q - m) / beta)
        return V, pi / pi.sum(axis=1, keepdims=True)

    out = _messages("1.5", bonus_forever, capsys=capsys)
    assert "a terminal state (every action stays, reward 0) keeps V = 0" in out


def test_the_solutions_value_iteration_meets_the_bound_its_notebook_states():
    # one state, reward 1, gamma = 0.9: V* = 10. The old text's gamma^(H+1) bound fails at H=1.
    value_iteration = solution_functions(SOLUTION1)["value_iteration"]
    P, R, gamma = np.ones((1, 1, 1)), np.ones((1, 1, 1)), 0.9
    for H in range(1, 8):
        V, _ = value_iteration(P, R, gamma, horizon=H)
        error = abs(10.0 - V[0])
        assert error <= gamma**H * 1.0 / (1 - gamma) + 1e-12
        assert error > gamma ** (H + 1) / (1 - gamma)  # so the old statement was wrong
    text = SOLUTION1.read_text()
    assert "gamma^H R_max / (1 - gamma)" in text and "gamma^(H+1)" not in text


def test_dqn_slips_are_named(capsys):
    import torch

    functions = solution_functions(SOLUTION2)
    loss_source = functions["dqn_loss"]

    def summed(*args, **kwargs):
        return loss_source(*args, **kwargs) * len(args[2])

    out = _messages("2.6", summed, capsys=capsys)
    assert "your loss sums over the batch (B times too large)" in out

    def gamma_on_reward(reward, terminated, gamma, next_q_target, next_q_online=None):
        return gamma * functions["dqn_target"](
            reward, terminated, 1.0, next_q_target, next_q_online
        )

    assert "you discounted the reward" in _messages("2.3", gamma_on_reward, capsys=capsys)
    assert torch.is_tensor(torch.zeros(1))
    shape = lecture_of("2.3").exercise("2.3")
    assert all(output.shape == "" for output in shape.outputs)  # no "(S,)" in lecture 2


def test_a_failing_check_cell_shows_one_coloured_line_not_a_traceback(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.user_ns["check"] = check
        shell.run_cell("def stub(P, R, gamma, V):\n    raise NotImplementedError('Exercise 1.1')")
        result = shell.run_cell("check('1.1', stub)")
        out = capsys.readouterr().out
        assert isinstance(result.error_in_exec, CheckFailed)
        assert isinstance(result.error_in_exec, AssertionError)  # nbgrader still scores 0
        assert "\x1b[31m✗\x1b[0m book grid, gamma=0.9, V = 0: not written yet" in out
        assert "Exercise 1.1: 2 visible case(s) failed; reread" in out
        assert "Traceback" not in out and "checking.py" not in out
    finally:
        InteractiveShell.clear_instance()
