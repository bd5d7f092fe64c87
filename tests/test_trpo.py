"""TRPO (lecture 4, Algorithm 6): conjugate gradient, Fisher-vector products, the surrogate,
the sample KL, the trust-region step, and training."""

import math

import numpy as np
import pytest
import torch

from fdrl_lib import evaluate
from fdrl_lib.algos import trpo
from fdrl_lib.algos.trpo import (
    conjugate_gradient,
    fisher_vector_product,
    flat_grad,
    mean_kl,
    sample_kl,
    surrogate,
    trpo_update,
)
from fdrl_lib.nn import CategoricalPolicy, GaussianPolicy


def random_spd(n: int, seed: int) -> torch.Tensor:
    """A random SPD matrix with condition number ~10 (n steps solve it to float64 round-off;
    badly conditioned ones lose conjugacy to round-off, in exact arithmetic they would not)."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    eigenvalues = torch.linspace(0.5, 5.0, n, dtype=torch.float64)
    return Q @ torch.diag(eigenvalues) @ Q.T


@pytest.mark.parametrize("n", [1, 3, 8, 20])
def test_conjugate_gradient_solves_spd_systems_in_at_most_n_steps(n):
    A = random_spd(n, seed=n)
    b = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    calls = []

    def fvp(v):
        calls.append(1)
        return A @ v

    x = conjugate_gradient(fvp, b, iters=n, tol=1e-20)
    assert len(calls) <= n
    np.testing.assert_allclose(x.numpy(), torch.linalg.solve(A, b).numpy(), rtol=1e-6, atol=1e-8)


def test_conjugate_gradient_stops_once_the_residual_is_below_tol():
    A = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    b = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)  # an eigenvector: one step
    calls = []
    x = conjugate_gradient(lambda v: calls.append(1) or A @ v, b, iters=10, tol=1e-10)
    assert len(calls) == 1
    np.testing.assert_allclose(x.numpy(), [1.0, 0.0, 0.0, 0.0])


def test_conjugate_gradient_of_zero_is_zero():
    x = conjugate_gradient(lambda v: 2 * v, torch.zeros(5))
    assert torch.equal(x, torch.zeros(5))


def _params(net):
    return [p for p in net.parameters()]


def _explicit_fisher(net, obs, head):
    """F = mean_s J(s)^T G(s) J(s): J the Jacobian of the distribution's parameters w.r.t.
    theta, G the Fisher matrix of the distribution in those parameters (closed form)."""
    params = _params(net)
    n = sum(p.numel() for p in params)
    F = torch.zeros(n, n, dtype=torch.float64)
    for s in obs:
        outputs, G = head(net, s[None])
        J = torch.stack(
            [flat_grad(o, params, retain_graph=True) for o in outputs]
        ).double()  # (k, n)
        F += J.T @ G @ J
    return F / len(obs)


def _categorical_head(net, s):
    logits = net.logits(s)[0]  # (A,)
    p = logits.softmax(-1).detach().double()
    return list(logits), torch.diag(p) - torch.outer(p, p)  # Fisher of softmax in its logits


def _gaussian_head(net, s):
    mean = net.mean(s)[0]  # (d,)
    std = net.log_std.exp().detach().double()
    d = len(mean)
    # N(mu, sigma^2) in (mu, log sigma): Fisher diag(1 / sigma^2, 2) per dimension
    G = torch.diag(torch.cat([1.0 / std**2, torch.full((d,), 2.0, dtype=torch.float64)]))
    return [*mean, *net.log_std], G


@pytest.mark.parametrize(
    "make, head",
    [
        (lambda: CategoricalPolicy(2, 3, hidden=(4,)), _categorical_head),
        (lambda: GaussianPolicy(2, 2, hidden=(4,), log_std=-0.3), _gaussian_head),
    ],
    ids=["categorical", "gaussian"],
)
def test_fisher_vector_product_equals_explicit_fisher_times_vector(make, head):
    torch.manual_seed(0)
    net = make()
    obs = torch.randn(6, 2)
    F = _explicit_fisher(net, obs, head)
    old = trpo.detached(net(obs))
    params = _params(net)
    v = torch.randn(F.shape[0])
    for damping in (0.0, 0.1):
        Fv = fisher_vector_product(mean_kl(old, net(obs)), params, v, damping)
        expected = F @ v.double() + damping * v.double()
        np.testing.assert_allclose(Fv.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)


def test_surrogate_at_the_old_policy_is_mean_advantage_with_the_policy_gradient():
    torch.manual_seed(0)
    net = CategoricalPolicy(3, 2, hidden=(8,))
    obs, advantage = torch.randn(10, 3), torch.randn(10)
    action = net(obs).sample()
    log_prob = net(obs).log_prob(action)
    L = surrogate(log_prob, log_prob.detach(), advantage)
    assert float(L.detach()) == pytest.approx(float(advantage.mean()))
    grad_L = flat_grad(L, _params(net))
    pg = flat_grad((net(obs).log_prob(action) * advantage).mean(), _params(net))
    np.testing.assert_allclose(grad_L.numpy(), pg.numpy(), rtol=1e-5, atol=1e-7)


def test_surrogate_weights_advantages_by_the_probability_ratio():
    new, old = torch.log(torch.tensor([0.5, 0.2])), torch.log(torch.tensor([0.25, 0.4]))
    # ratios 2 and 0.5: (2 * 3 + 0.5 * -2) / 2 = 2.5
    assert float(surrogate(new, old, torch.tensor([3.0, -2.0]))) == pytest.approx(2.5)


def test_sample_kl_estimates_the_analytic_kl_of_two_gaussians():
    m1, s1, m2, s2 = 0.3, 0.8, -0.2, 1.3
    old = torch.distributions.Normal(m1, s1)
    new = torch.distributions.Normal(m2, s2)
    gen = torch.Generator().manual_seed(0)
    a = m1 + s1 * torch.randn(400_000, generator=gen, dtype=torch.float64)
    estimate = float(sample_kl(old.log_prob(a), new.log_prob(a)))
    exact = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    spread = float((old.log_prob(a) - new.log_prob(a)).std()) / math.sqrt(len(a))
    assert abs(estimate - exact) < 4 * spread
    assert float(torch.distributions.kl_divergence(old, new)) == pytest.approx(exact, rel=1e-6)


def _batch(net, obs_dim, B, seed):
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(B, obs_dim, generator=gen)
    with torch.no_grad():
        action = net(obs).sample()
    return {"obs": obs, "action": action, "advantage": torch.randn(B, generator=gen)}


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_trpo_step_stays_in_the_trust_region_and_improves_the_surrogate(kind):
    torch.manual_seed(0)
    net = CategoricalPolicy(4, 3, hidden=(16,)) if kind == "categorical" else GaussianPolicy(4, 2)
    batch = _batch(net, 4, 256, seed=1)
    with torch.no_grad():
        old = trpo.detached(net(batch["obs"]))
    config = trpo.Config(max_kl=0.01)
    stats = trpo_update(net, batch, config)
    with torch.no_grad():
        new = net(batch["obs"])
        kl = float(mean_kl(old, new))
        gain = float(
            surrogate(new.log_prob(batch["action"]), old.log_prob(batch["action"]),
                      batch["advantage"]) - batch["advantage"].mean()
        )  # fmt: skip
    assert stats["backtracks"] >= 0, "no step accepted"
    assert 0.0 < kl <= config.max_kl
    assert gain > 0.0
    assert stats["kl"] == pytest.approx(kl, rel=1e-5)
    assert stats["surrogate_gain"] == pytest.approx(gain, rel=1e-4, abs=1e-7)


def test_trpo_line_search_rejects_every_step_when_no_direction_improves():
    torch.manual_seed(0)
    net = CategoricalPolicy(4, 2, hidden=(8,))
    batch = _batch(net, 4, 64, seed=2)
    batch["advantage"] = torch.zeros(64)  # the surrogate is flat: nothing can improve it
    before = [p.detach().clone() for p in net.parameters()]
    stats = trpo_update(net, batch, trpo.Config())
    assert stats["backtracks"] == -1 and stats["step_fraction"] == 0.0
    for p, q in zip(net.parameters(), before, strict=True):
        assert torch.equal(p, q)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="max_kl"):
        trpo.Config(max_kl=0.0)
    with pytest.raises(ValueError, match="lam"):
        trpo.Config(lam=1.5)


TINY = dict(
    total_steps=1_024, rollout_steps=64, num_envs=2, hidden=(16,), value_epochs=1,
    eval_every=512, eval_episodes=2,
)  # fmt: skip


@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"])
def test_train_smoke_logs_diagnostics_and_round_trips(env, tmp_path):
    result = trpo.train(env, trpo.Config(**TINY), seed=0, progress=False)
    for name in ("kl", "backtracks", "entropy", "value_loss", "eval_return"):
        assert name in result.logs
    assert all(kl <= 0.02 + 1e-9 for _, kl in result.logs["kl"])
    obs = np.zeros(4 if env == "CartPole-v1" else 3, dtype=np.float32)
    loaded = trpo.load(result.save(tmp_path / "p.pt"))
    assert np.all(np.asarray(loaded.policy(obs)) == np.asarray(result.policy(obs)))
    again = trpo.train(env, trpo.Config(**TINY), seed=0, progress=False)
    assert again.logs["kl"] == result.logs["kl"]  # same seed, same result


@pytest.mark.slow
def test_trpo_defaults_learn_cartpole():
    result = trpo.train("CartPole-v1", seed=0, progress=False)
    assert evaluate(result.policy, "CartPole-v1", episodes=10, seed=123) >= 475


def test_fisher_product_reuses_one_graph_for_many_vectors():
    torch.manual_seed(3)
    net = CategoricalPolicy(3, 4, (8,))
    obs = torch.randn(32, 3)
    params = list(net.parameters())
    old = trpo.detached(net(obs))
    fvp = trpo.fisher_product(mean_kl(old, net(obs)), params, damping=0.1)
    for _ in range(3):  # the same graph, asked again and again
        v = torch.randn(sum(p.numel() for p in params))
        expected = fisher_vector_product(mean_kl(old, net(obs)), params, v, 0.1)
        torch.testing.assert_close(fvp(v), expected)
