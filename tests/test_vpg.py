"""Vanilla policy gradient (lecture 3, eqs. 3.1-3.36): the estimator against an enumerated
exact gradient, the baselines' variances, the value losses; smoke runs and a learning check."""

import itertools

import numpy as np
import pytest
import torch
from torch.func import grad, vmap

from fdrl_lib import evaluate
from fdrl_lib.algos import vpg

# ------------------------------------------------------------------ a two-step chain MDP
# t = 0: always state 0; two actions. t = 1: state 1 or 2 (action 0 leads mostly to 1, action 1
# mostly to 2); two actions each; then the episode ends (H = 2). Every reward carries a +5
# offset, so an estimator without a baseline pushes every action up and is noisy.
P1 = torch.tensor([[0.8, 0.2], [0.3, 0.7]])  # P(s_1 = 1 + j | s_0 = 0, a_0)
R = torch.tensor([[1.0, 0.0], [0.0, 2.0], [8.0, 6.0]]) + 5.0  # R(s, a)
THETA = torch.tensor([[0.3, -0.2], [0.5, 0.1], [-0.4, 0.6]])  # tabular softmax logits (S, A)
TRAJECTORIES = list(itertools.product(range(2), range(2), range(2)))  # (a_0, j, a_1), s_1 = 1 + j


def _exact_objective(theta):
    """U(theta) = sum_tau P(tau; theta) R(tau) (eq. 3.4), by enumerating all 8 trajectories."""
    pi = theta.softmax(-1)
    total = 0.0
    for a0, j, a1 in TRAJECTORIES:
        s1 = 1 + j
        total = total + pi[0, a0] * P1[a0, j] * pi[s1, a1] * (R[0, a0] + R[s1, a1])
    return total


def _exact_gradient():
    theta = THETA.clone().requires_grad_(True)
    _exact_objective(theta).backward()
    return theta.grad.flatten()  # (6,)


def _trajectory_probabilities():
    pi = THETA.softmax(-1)
    return torch.tensor(
        [float(pi[0, a0] * P1[a0, j] * pi[1 + j, a1]) for a0, j, a1 in TRAJECTORIES]
    )


def _exact_values():
    """V^pi(s) for s = 0, 1, 2 (reward-to-go from there), by the Bellman equation (eq. 3.35)."""
    pi = THETA.softmax(-1)
    v1, v2 = float((pi[1] * R[1]).sum()), float((pi[2] * R[2]).sum())
    v0 = float((pi[0] * (R[0] + P1 @ torch.tensor([v1, v2]))).sum())
    return torch.tensor([v0, v1, v2])


def _arrays(trajectories):
    """(K, m, ...) index arrays -> states (K, m, 2), actions (K, m, 2), rewards (K, m, 2)."""
    a0, j, a1 = trajectories.unbind(-1)
    states = torch.stack([torch.zeros_like(a0), 1 + j], -1)
    actions = torch.stack([a0, a1], -1)
    return states, actions, R[states, actions]


def _sample(K, m, seed):
    g = torch.Generator().manual_seed(seed)
    index = torch.multinomial(_trajectory_probabilities(), K * m, replacement=True, generator=g)
    return torch.tensor(TRAJECTORIES)[index].view(K, m, 3)


def _weights(rewards, states, kind, baseline):
    """The weight multiplying each grad log pi(a_t | s_t): (..., 2)."""
    reward_to_go = rewards.flip(-1).cumsum(-1).flip(-1)  # G_t, gamma = 1
    whole = rewards.sum(-1, keepdim=True).expand_as(rewards)  # R(tau) at every t (eq. 3.18)
    if kind == "whole":
        return whole - baseline
    if kind == "time":
        return reward_to_go - baseline  # baseline (2,): b_t
    if kind == "value":
        return reward_to_go - baseline[states]  # baseline (3,): V(s)
    return reward_to_go - baseline  # a constant


def _batch_gradient(states, actions, weights):
    """The library's surrogate, differentiated: one gradient estimate per batch (K, 6)."""

    def surrogate(theta, s, a, w):
        log_prob = theta.log_softmax(-1)[s, a]  # (m, 2)
        return vpg.policy_gradient_surrogate(log_prob, w, episodes=s.shape[0])

    return vmap(grad(surrogate), in_dims=(None, 0, 0, 0))(THETA, states, actions, weights).flatten(
        1
    )


def _exact_variance(kind, baseline):
    """Total variance (trace of the covariance) of the one-trajectory estimate, enumerated."""
    states, actions, rewards = _arrays(torch.tensor(TRAJECTORIES)[:, None])  # (8, 1, 2)
    estimates = _batch_gradient(states, actions, _weights(rewards, states, kind, baseline))
    p = _trajectory_probabilities()[:, None]
    mean = (p * estimates).sum(0)
    return float((p * (estimates - mean).pow(2)).sum()), mean


def _exact_optimal_constant(kind):
    """argmin_b Var(b), found without eq. 3.30: Var is a parabola in b; fit it through 3 points."""
    b = torch.tensor([0.0, 10.0, 20.0], dtype=torch.float64)
    v = torch.tensor([_exact_variance(kind, float(x))[0] for x in b], dtype=torch.float64)
    a2, a1, _ = torch.linalg.solve(torch.stack([b**2, b, torch.ones(3, dtype=b.dtype)], 1), v)
    return float(-a1 / (2 * a2))


def _baseline_from(kind, previous):
    """Each baseline, computed by the library from an independent (previous) batch."""
    s_prev, a_prev, r_prev, scores_prev = previous
    reward_to_go = r_prev.flip(-1).cumsum(-1).flip(-1)
    if kind == "none":
        return 0.0
    if kind == "constant":
        return vpg.constant_baseline(r_prev.sum(-1))
    if kind == "time":
        timestep = torch.arange(2).expand_as(reward_to_go)
        return vpg.time_baseline(reward_to_go.flatten(), timestep.flatten(), horizon=2)
    if kind == "optimal":
        return vpg.optimal_constant_baseline(scores_prev, r_prev.sum(-1))
    raise AssertionError(kind)


# --------------------------------------------------------------------------- the tests
def test_exact_gradient_of_the_enumerated_objective_is_the_expected_score_times_return():
    # eq. 3.9 by enumeration: sum_tau P(tau) grad log P(tau) R(tau), against autograd of U
    variance, mean = _exact_variance("whole", 0.0)
    torch.testing.assert_close(mean, _exact_gradient())


@pytest.mark.parametrize("kind", ["none", "constant", "optimal", "time"])
def test_estimator_mean_matches_exact_gradient_for_every_baseline(kind):
    K, m = 4000, 8
    trajectories = _sample(K + 1, m, seed=1)
    states, actions, rewards = _arrays(trajectories)
    ones = torch.ones((K + 1) * m, 1, 2)  # weight 1: the score grad log P(tau) of each trajectory
    scores = _batch_gradient(states.flatten(0, 1)[:, None], actions.flatten(0, 1)[:, None], ones)
    scores = scores.view(K + 1, m, -1)
    weights = []
    for i in range(1, K + 1):  # baselines from the previous batch (as Algorithm 4 re-fits)
        previous = (states[i - 1], actions[i - 1], rewards[i - 1], scores[i - 1])
        baseline = _baseline_from(kind, previous)
        weights.append(_weights(rewards[i], states[i], "time" if kind == "time" else "c", baseline))
    estimates = [_batch_gradient(states[1:], actions[1:], torch.stack(weights))]
    estimates = torch.cat(estimates)
    mean, se = estimates.mean(0), estimates.std(0) / K**0.5
    z = (mean - _exact_gradient()) / se
    assert z.abs().max() < 4.5, f"{kind}: z-scores {z}"


def test_state_value_baseline_keeps_the_estimate_unbiased():
    K, m = 4000, 8
    states, actions, rewards = _arrays(_sample(K, m, seed=2))
    estimates = _batch_gradient(
        states, actions, _weights(rewards, states, "value", _exact_values())
    )
    z = (estimates.mean(0) - _exact_gradient()) / (estimates.std(0) / K**0.5)
    assert z.abs().max() < 4.5


def test_a_baseline_that_depends_on_the_action_biases_the_estimate():
    # the proof of eq. 3.23 needs b independent of a_t: b = R(s_t, a_t) breaks it
    K, m = 4000, 8
    states, actions, rewards = _arrays(_sample(K, m, seed=3))
    reward_to_go = rewards.flip(-1).cumsum(-1).flip(-1)
    estimates = _batch_gradient(states, actions, reward_to_go - rewards)
    z = (estimates.mean(0) - _exact_gradient()) / (estimates.std(0) / K**0.5)
    assert z.abs().max() > 10


def test_variance_falls_in_the_lecture_order():
    values = _exact_values()
    mean_return = float(values[0])  # E[R(tau)] = V(s_0)
    p_s1 = THETA.softmax(-1)[0] @ P1  # P(s_1 = 1), P(s_1 = 2)
    expected_to_go = torch.tensor([mean_return, float(p_s1 @ values[1:])])  # E[G_t], t = 0, 1
    exact = {
        "whole, no baseline (3.11)": _exact_variance("whole", 0.0)[0],
        "reward-to-go, no baseline (3.27)": _exact_variance("c", 0.0)[0],
        "constant (3.29)": _exact_variance("c", mean_return)[0],
        "time-dependent (3.31)": _exact_variance("time", expected_to_go)[0],
        "state value (3.32)": _exact_variance("value", values)[0],
    }
    ordered = list(exact.values())
    assert all(a > b for a, b in zip(ordered, ordered[1:], strict=False)), exact
    # the same order measured over batches of sampled trajectories, 5 standard errors apart
    K, m = 3000, 4
    states, actions, rewards = _arrays(_sample(K, m, seed=4))
    measured = []
    for kind, baseline in [
        ("whole", 0.0), ("c", 0.0), ("c", mean_return), ("time", expected_to_go), ("value", values)
    ]:  # fmt: skip
        g = _batch_gradient(states, actions, _weights(rewards, states, kind, baseline))
        per_batch = (g - g.mean(0)).pow(2).sum(1)  # squared distance to the mean, (K,)
        measured.append((float(per_batch.mean()), float(per_batch.std() / K**0.5)))
    for (v_hi, se_hi), (v_lo, se_lo) in zip(measured, measured[1:], strict=False):
        assert v_hi - v_lo > 3 * (se_hi**2 + se_lo**2) ** 0.5, measured
    # and a batch of m trajectories has 1/m of one trajectory's variance
    assert measured[0][0] == pytest.approx(exact["whole, no baseline (3.11)"] / m, rel=0.1)


def test_optimal_constant_baseline_has_the_lowest_variance_among_constants():
    best_by_search = _exact_optimal_constant("whole")
    states, actions, rewards = _arrays(torch.tensor(TRAJECTORIES)[:, None])
    scores = _batch_gradient(states, actions, torch.ones(8, 1, 2))  # grad log P(tau), (8, 6)
    # eq. 3.30 in expectation: weight each enumerated trajectory by its probability
    p = _trajectory_probabilities()
    b_star = vpg.optimal_constant_baseline(scores * p.sqrt()[:, None], rewards.sum((1, 2)))
    assert float(b_star) == pytest.approx(best_by_search, abs=2e-3)
    mean_return = float((p * rewards.sum((1, 2))).sum())
    v_star = _exact_variance("whole", float(b_star))[0]
    for b in [0.0, mean_return, mean_return - 1, mean_return + 1, 15.0, 20.0]:
        assert v_star <= _exact_variance("whole", b)[0] + 1e-6
    assert v_star < _exact_variance("whole", mean_return)[0]  # strictly better than the mean here


def test_optimal_constant_baseline_from_samples_matches_its_formula():
    scores = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    returns = torch.tensor([3.0, 1.0, 5.0])
    expected = (1 * 3.0 + 4 * 1.0 + 2 * 5.0) / (1 + 4 + 2)
    assert float(vpg.optimal_constant_baseline(scores, returns)) == pytest.approx(expected)


def test_time_baseline_averages_reward_to_go_over_episodes_that_reach_each_time():
    returns = torch.tensor([3.0, 2.0, 1.0, 5.0, 4.0])  # episode A: t = 0, 1, 2; B: t = 0, 1
    timestep = torch.tensor([0, 1, 2, 0, 1])
    b = vpg.time_baseline(returns, timestep, horizon=5)
    torch.testing.assert_close(b, torch.tensor([4.0, 3.0, 1.0, 1.0, 1.0]))


def test_constant_baseline_is_the_average_return():
    assert float(vpg.constant_baseline(torch.tensor([1.0, 2.0, 6.0]))) == pytest.approx(3.0)


def test_surrogate_divides_by_episodes_or_steps_and_never_differentiates_the_advantage():
    log_prob = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    advantage = torch.tensor([1.0, 2.0, -1.0], requires_grad=True)
    out = vpg.policy_gradient_surrogate(log_prob, advantage, episodes=2)
    assert float(out) == pytest.approx((0.5 - 2.0 - 2.0) / 2)
    out.backward()
    torch.testing.assert_close(log_prob.grad, torch.tensor([0.5, 1.0, -0.5]))
    assert advantage.grad is None
    per_step = vpg.policy_gradient_surrogate(log_prob, advantage.detach())
    assert float(per_step) == pytest.approx((0.5 - 2.0 - 2.0) / 3)
    with pytest.raises(ValueError, match="same shape"):
        vpg.policy_gradient_surrogate(log_prob, advantage[:2])


def test_monte_carlo_value_regression_recovers_v_pi():
    # eq. 3.34 with a tabular V_phi: its minimiser is each state's average reward-to-go
    states, actions, rewards = _arrays(_sample(1, 20_000, seed=5))
    reward_to_go = rewards.flip(-1).cumsum(-1).flip(-1)
    phi = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.LBFGS([phi], max_iter=50)

    def closure():
        optimizer.zero_grad()
        loss = vpg.monte_carlo_value_loss(phi[states], reward_to_go)
        loss.backward()
        return loss

    optimizer.step(closure)
    torch.testing.assert_close(phi.detach(), _exact_values(), atol=0.1, rtol=0)


def test_bootstrap_regulariser_has_its_closed_form_minimiser():
    # tabular V_phi, one state: argmin mean (y - phi)^2 + reg (phi - phi_i)^2
    # = (mean y + reg phi_i) / (1 + reg)
    target = torch.tensor([2.0, 4.0])  # mean 3
    old = torch.tensor([1.0])
    for reg in (0.0, 0.5, 3.0):
        phi = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.SGD([phi], lr=0.1)
        for _ in range(500):
            optimizer.zero_grad()
            vpg.bootstrap_value_loss(phi.expand(2), target, [phi], [old], reg).backward()
            optimizer.step()
        assert float(phi.detach()) == pytest.approx((3.0 + reg * 1.0) / (1.0 + reg), abs=1e-4)


def test_repeated_bootstrap_fits_converge_to_v_pi():
    # eq. 3.36 iterated (fitted value iteration) on sampled transitions of the chain
    states, actions, rewards = _arrays(_sample(1, 20_000, seed=6))
    s, r = states[0], rewards[0]
    obs = s.flatten()  # (2m,)
    reward = r.flatten()
    next_state = torch.stack([s[:, 1], torch.zeros_like(s[:, 1])], -1).flatten()
    terminated = torch.tensor([0.0, 1.0]).repeat(len(s))
    phi = torch.zeros(3)
    for _ in range(4):
        target = vpg.bootstrap_target(reward, phi[next_state], terminated, gamma=1.0)
        new = torch.zeros(3).index_add_(0, obs, target) / torch.bincount(obs, minlength=3)
        phi = new  # the unregularised minimiser is each state's mean target
    torch.testing.assert_close(phi, _exact_values(), atol=0.1, rtol=0)


def test_bootstrap_target_truncation_still_bootstraps():
    y = vpg.bootstrap_target(torch.tensor([1.0, 1.0]), torch.tensor([10.0, 10.0]),
                             torch.tensor([0.0, 1.0]), gamma=0.5)  # fmt: skip
    torch.testing.assert_close(y, torch.tensor([6.0, 1.0]))


def test_bad_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match="scores must be"):
        vpg.optimal_constant_baseline(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="same shape"):
        vpg.monte_carlo_value_loss(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="old_params"):
        vpg.bootstrap_value_loss(torch.zeros(2), torch.zeros(2), reg=1.0)
    with pytest.raises(ValueError, match="timestep"):
        vpg.time_baseline(torch.zeros(3), torch.zeros(2), horizon=4)
    with pytest.raises(ValueError, match="episodes"):
        vpg.policy_gradient_surrogate(torch.zeros(2), torch.zeros(2), episodes=0)


# ------------------------------------------------------------------ training (Algorithm 4)
def _tiny(**overrides) -> vpg.Config:
    values = dict(total_steps=256, num_envs=2, rollout_steps=32, hidden=(8,), value_steps=2)
    return vpg.Config(**{**values, **overrides})


@pytest.mark.parametrize("baseline", vpg.BASELINES)
def test_every_baseline_trains_and_returns_a_deterministic_policy(baseline):
    result = vpg.train("CartPole-v1", _tiny(baseline=baseline), seed=1, progress=False)
    obs = np.zeros(4, dtype=np.float32)
    assert result.policy(obs) in (0, 1) and result.policy(obs) == result.policy(obs)
    assert result.config.total_steps == 256 and result.history


def test_bootstrap_value_fit_with_regulariser_trains():
    config = _tiny(value_fit="bootstrap", value_reg=0.1)
    result = vpg.train("CartPole-v1", config, seed=0, progress=False)
    assert all(np.isfinite(v) for _, v in result.logs["value_loss"])


def test_gaussian_policy_for_box_actions(tmp_path):
    result = vpg.train("Pendulum-v1", _tiny(), seed=0, progress=False)
    action = result.policy(np.zeros(3, dtype=np.float32))
    assert action.shape == (1,)
    loaded = vpg.load(result.save(tmp_path / "vpg.pt"))
    np.testing.assert_allclose(loaded.policy(np.ones(3, dtype=np.float32)),
                               result.policy(np.ones(3, dtype=np.float32)))  # fmt: skip


def test_same_seed_same_result():
    a = vpg.train("CartPole-v1", _tiny(), seed=3, progress=False)
    b = vpg.train("CartPole-v1", _tiny(), seed=3, progress=False)
    assert [h["episode_return"] for h in a.history] == [h["episode_return"] for h in b.history]
    assert a.logs["policy_loss"] == b.logs["policy_loss"]


def test_optimal_baseline_weights_are_squared_score_norms():
    # |grad log pi(a|s)|^2 from torch.func equals a plain backward per sample
    torch.manual_seed(0)
    actor = vpg.make_policy(obs_dim=3, actions=2, discrete=True, hidden=(5,))
    obs, action = torch.randn(4, 3), torch.tensor([0, 1, 1, 0])
    norms = vpg.score_norms(actor, obs, action)
    for j in range(4):
        actor.zero_grad()
        actor(obs[j : j + 1]).log_prob(action[j : j + 1]).sum().backward()
        expected = sum(float(p.grad.pow(2).sum()) for p in actor.parameters())
        assert float(norms[j]) == pytest.approx(expected, rel=1e-5)


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="baseline"):
        vpg.Config(baseline="mean")
    with pytest.raises(ValueError, match="value_fit"):
        vpg.Config(value_fit="td")
    with pytest.raises(ValueError, match="rollout_steps"):
        vpg.Config(rollout_steps=0)


@pytest.mark.slow
def test_default_config_solves_cartpole():
    result = vpg.train("CartPole-v1", seed=0, progress=False)
    assert evaluate(result.policy, "CartPole-v1", episodes=10, seed=123) >= 475
