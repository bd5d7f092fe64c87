"""MB-MPO (lecture 6, Algorithm 9): the adaptation step and the meta-gradient through it."""

import numpy as np
import pytest
import torch

from fdrl_lib.algos import mb_mpo
from fdrl_lib.algos.mb_mpo import adapt, meta_objective, policy_gradient_objective
from fdrl_lib.nn import GaussianPolicy

torch.set_num_threads(1)


def tiny_problem(K=2, B=6, seed=0):
    """A 2-input Gaussian policy and fixed inner/outer batches per model, in float64."""
    torch.manual_seed(seed)
    net = GaussianPolicy(2, 1, (3,)).double()
    batches = []
    for _ in range(2 * K):
        obs = torch.randn(B, 2, dtype=torch.float64)
        with torch.no_grad():
            dist = net(obs)
            action = dist.sample()
            log_prob = dist.log_prob(action)
        batches.append(
            {
                "obs": obs,
                "action": action,
                "log_prob": log_prob,
                "advantage": torch.randn(B, dtype=torch.float64),
            }
        )
    return net, batches[:K], batches[K:]


def test_adapt_is_one_gradient_ascent_step_on_the_inner_objective():
    net, inner, _ = tiny_problem()
    params = dict(net.named_parameters())
    adapted = adapt(net, params, inner[0], alpha=0.1)
    grads = torch.autograd.grad(
        policy_gradient_objective(net(inner[0]["obs"]), inner[0]), list(params.values())
    )
    for (name, p), g in zip(params.items(), grads, strict=True):
        torch.testing.assert_close(adapted[name], p + 0.1 * g)


def test_meta_gradient_matches_finite_differences_through_the_adaptation_step():
    net, inner, outer = tiny_problem()
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    theta = torch.cat([p.detach().reshape(-1) for _, p in net.named_parameters()])

    def objective(flat):
        params, start = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            params[name] = flat[start : start + shape.numel()].view(shape)
            start += shape.numel()
        return meta_objective(net, params, inner, outer, alpha=0.5)

    flat = theta.clone().requires_grad_(True)
    (meta_gradient,) = torch.autograd.grad(objective(flat), flat)
    eps = 1e-6
    numeric = torch.zeros_like(theta)
    for i in range(len(theta)):
        step = torch.zeros_like(theta)
        step[i] = eps
        plus = objective((theta + step).requires_grad_(True)).detach()  # adapt() differentiates
        minus = objective((theta - step).requires_grad_(True)).detach()
        numeric[i] = (plus - minus) / (2 * eps)
    torch.testing.assert_close(meta_gradient, numeric, atol=1e-6, rtol=1e-5)
    # and the second-order term matters: cutting the graph at theta' (first-order MAML) differs
    first_order = torch.zeros_like(theta)
    for inner_k, outer_k in zip(inner, outer, strict=True):
        adapted = adapt(net, dict(net.named_parameters()), inner_k, 0.5)
        adapted = {k: v.detach().requires_grad_(True) for k, v in adapted.items()}
        dist = torch.func.functional_call(net, adapted, (outer_k["obs"],))
        grads = torch.autograd.grad(
            policy_gradient_objective(dist, outer_k), list(adapted.values())
        )
        first_order += torch.cat([g.reshape(-1) for g in grads]) / len(inner)
    assert not torch.allclose(first_order, numeric, atol=1e-4)


def test_meta_objective_needs_one_inner_and_outer_batch_per_model():
    net, inner, outer = tiny_problem()
    with pytest.raises(ValueError, match="one inner and one outer"):
        meta_objective(net, dict(net.named_parameters()), inner, outer[:1], 0.1)


def test_mb_mpo_train_smoke_collects_with_adapted_policies_and_keeps_a_policy(tmp_path):
    config = mb_mpo.Config(
        K=2, total_steps=800, policy_iterations=2, imagined_episodes=3, horizon=10,
        model_hidden=(16,), model_max_epochs=3, eval_every=400, eval_episodes=1, value_epochs=1,
    )  # fmt: skip
    result = mb_mpo.train("Pendulum-v1", config, seed=0, progress=False)
    assert result.kept_step in (400, 800)
    assert {"adapted_return", "imagined_return", "model_loss"} <= set(result.logs)
    # per real iteration: the share of meta-steps the line search accepted, and their mean KL
    assert result.logs["meta_accepted"] and result.logs["meta_kl"]
    assert all(0.0 <= share <= 1.0 for _, share in result.logs["meta_accepted"])
    assert all(0.0 <= kl <= config.max_kl for _, kl in result.logs["meta_kl"])
    assert np.isfinite(result.policy(np.zeros(3, dtype=np.float32))).all()
    loaded = mb_mpo.load(result.save(tmp_path / "mb_mpo.pt"))
    np.testing.assert_array_equal(loaded.policy(np.ones(3)), result.policy(np.ones(3)))


def test_meta_trpo_step_raises_the_meta_objective_within_the_trust_region():
    from fdrl_lib.algos import trpo

    net, inner, outer = tiny_problem(B=64)
    theta = dict(net.named_parameters())
    obs = torch.cat([b["obs"] for b in inner])
    before = float(meta_objective(net, theta, inner, outer, 0.1).detach())  # adapt() needs grads
    with torch.no_grad():
        old_dist = trpo.detached(net(obs))
    config = trpo.Config(max_kl=0.01)
    stats = mb_mpo.meta_trpo_step(net, inner, outer, 0.1, config)
    after = float(meta_objective(net, dict(net.named_parameters()), inner, outer, 0.1).detach())
    with torch.no_grad():
        kl = float(trpo.mean_kl(old_dist, net(obs)))
    assert stats["backtracks"] >= 0
    assert after > before and stats["meta_gain"] == pytest.approx(after - before, rel=1e-6)
    assert 0 < kl <= 0.01 and stats["kl"] == pytest.approx(kl)


def test_meta_trpo_step_keeps_theta_when_no_step_improves():
    from fdrl_lib.algos import trpo

    net, inner, outer = tiny_problem()
    for batch in inner + outer:  # zero advantages: every step leaves the objective at 0
        batch["advantage"] = torch.zeros_like(batch["advantage"])
    before = [p.detach().clone() for p in net.parameters()]
    stats = mb_mpo.meta_trpo_step(net, inner, outer, 0.1, trpo.Config())
    assert stats["backtracks"] == -1
    for p, q in zip(net.parameters(), before, strict=True):
        torch.testing.assert_close(p.detach(), q)


@pytest.mark.slow
def test_mb_mpo_defaults_solve_pendulum_in_a_thousand_real_steps():
    # Config() defaults, seed 3: the first evaluation (five real episodes, one per adapted policy)
    # reaches the stop, about 40 CPU seconds (benchmarks/results/model_based.solves.md); judged
    # on fresh episodes, not the kept evaluation
    from fdrl_lib.training import evaluate

    result = mb_mpo.train("Pendulum-v1", seed=3, progress=False)
    assert result.kept_step <= 1_000
    assert evaluate(result.policy, "Pendulum-v1", episodes=10, seed=123) >= -200
