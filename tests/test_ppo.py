"""PPO (lecture 4, section 4.3): the ratio, the clipped objective, the KL-penalty objective, the
adaptive beta of Algorithm 7, and training of both variants."""

import numpy as np
import pytest
import torch

from fdrl_lib import evaluate
from fdrl_lib.algos import ppo, trpo
from fdrl_lib.algos.ppo import (
    adaptive_beta,
    clip_fraction,
    clipped_surrogate,
    kl_penalty_objective,
    ratio,
)


def test_ratio_is_the_probability_ratio():
    new, old = torch.log(torch.tensor([0.6, 0.1])), torch.log(torch.tensor([0.3, 0.4]))
    np.testing.assert_allclose(ratio(new, old).numpy(), [2.0, 0.25], rtol=1e-6)


def test_clipped_surrogate_matches_hand_computed_values_for_a_positive_advantage():
    r = torch.tensor([0.5, 0.9, 1.0, 1.1, 1.5])
    A = torch.full((5,), 2.0)
    # min(r A, clip(r, 0.8, 1.2) A): below the range r A is smaller (kept); above, 1.2 A is
    expected = [0.5 * 2, 0.9 * 2, 2.0, 1.1 * 2, 1.2 * 2]
    np.testing.assert_allclose(clipped_surrogate(r, A, 0.2).numpy(), expected, rtol=1e-6)


def test_clipped_surrogate_matches_hand_computed_values_for_a_negative_advantage():
    r = torch.tensor([0.5, 0.9, 1.0, 1.1, 1.5])
    A = torch.full((5,), -1.0)
    # below the range clip gives -0.8 (more pessimistic than -0.5); above, r A = -1.5 is kept
    expected = [-0.8, -0.9, -1.0, -1.1, -1.5]
    np.testing.assert_allclose(clipped_surrogate(r, A, 0.2).numpy(), expected, rtol=1e-6)


def test_clipped_surrogate_default_clip_is_0_2_and_keeps_the_batch_shape():
    r, A = torch.tensor([1.5, 0.5]), torch.tensor([1.0, -1.0])
    out = clipped_surrogate(r, A)
    assert out.shape == (2,)
    np.testing.assert_allclose(out.numpy(), [1.2, -0.8], rtol=1e-6)


def test_clipped_surrogate_has_no_gradient_past_the_clip_in_the_advantage_direction():
    r = torch.tensor([1.5, 0.5, 1.5, 0.5], requires_grad=True)
    A = torch.tensor([1.0, -1.0, -1.0, 1.0])
    clipped_surrogate(r, A, 0.2).sum().backward()
    # pushed past the range in the advantage's direction: flat; the other way: slope A
    np.testing.assert_allclose(r.grad.numpy(), [0.0, 0.0, -1.0, 1.0])


def test_kl_penalty_objective_is_surrogate_minus_beta_kl():
    r, A = torch.tensor([2.0, 0.5]), torch.tensor([3.0, -2.0])
    assert float(kl_penalty_objective(r, A, torch.tensor(0.1), beta=3.0)) == pytest.approx(2.2)


@pytest.mark.parametrize(
    "kl, expected",
    [(0.05, 2.0), (0.016, 2.0), (0.01, 1.0), (0.007, 1.0), (0.006, 0.5), (0.0, 0.5)],
)
def test_adaptive_beta_rises_above_target_and_falls_below(kl, expected):
    assert adaptive_beta(1.0, kl, kl_target=0.01, factor=2.0, tolerance=1.5) == expected


def test_clip_fraction_counts_ratios_outside_the_range():
    assert clip_fraction(torch.tensor([0.7, 0.9, 1.0, 1.25]), 0.2) == 0.5


def test_config_rejects_bad_values_and_fills_defaults_by_action_space():
    with pytest.raises(ValueError, match="variant"):
        ppo.Config(variant="trust")
    with pytest.raises(ValueError, match="clip"):
        ppo.Config(clip=0.0)
    with pytest.raises(ValueError, match="lr"):
        ppo.Config(lr=-1.0)
    discrete, continuous = ppo.Config().resolved(False), ppo.Config().resolved(True)
    assert discrete.num_envs == ppo.DISCRETE["num_envs"] and discrete.normalize_obs is False
    assert continuous.gamma == ppo.CONTINUOUS["gamma"] and continuous.normalize_obs is True
    assert ppo.Config(lr=5e-4).resolved(True).lr == 5e-4  # a given value wins


TINY = dict(
    total_steps=512, num_envs=2, rollout_steps=64, minibatch_size=32, epochs=2, hidden=(16,),
    eval_every=256, eval_episodes=2,
)  # fmt: skip


@pytest.mark.parametrize("variant", ["clip", "kl"])
@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"])
def test_train_smoke_logs_diagnostics_and_round_trips(env, variant, tmp_path):
    config = ppo.Config(variant=variant, **TINY)
    result = ppo.train(env, config, seed=0, progress=False)
    names = ("kl", "clip_fraction", "entropy", "value_loss") + (
        ("beta",) if variant == "kl" else ()
    )
    for name in names:
        assert name in result.logs
    assert result.config.gamma is not None  # resolved
    obs = np.zeros(4 if env == "CartPole-v1" else 3, dtype=np.float32)
    loaded = ppo.load(result.save(tmp_path / "p.pt"))
    assert np.all(np.asarray(loaded.policy(obs)) == np.asarray(result.policy(obs)))
    again = ppo.train(env, config, seed=0, progress=False)
    assert again.logs["kl"] == result.logs["kl"]  # same seed, same result


def test_kl_variant_moves_beta_by_the_factor():
    result = ppo.train("CartPole-v1", ppo.Config(variant="kl", **TINY), seed=0, progress=False)
    betas = [1.0] + [b for _, b in result.logs["beta"]]
    for before, after in zip(betas, betas[1:], strict=False):
        assert after in (before * 2.0, before, before / 2.0)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["clip", "kl"])
def test_ppo_defaults_learn_cartpole(variant):
    result = ppo.train("CartPole-v1", ppo.Config(variant=variant), seed=0, progress=False)
    assert evaluate(result.policy, "CartPole-v1", episodes=10, seed=123) >= 475


# ---------------------------------------------------- the policy heads (algos.onpolicy)
def _policies():
    torch.manual_seed(0)
    from fdrl_lib.nn import CategoricalPolicy, GaussianPolicy

    cat, gauss = CategoricalPolicy(3, 4, (8,)), GaussianPolicy(3, 2, (8,), log_std=-0.3)
    return [(cat, lambda: torch.randint(0, 4, (6,))), (gauss, lambda: torch.randn(6, 2))]


@pytest.mark.parametrize("which", [0, 1], ids=["categorical", "gaussian"])
def test_policy_head_matches_torch_distributions(which):
    from fdrl_lib.algos.onpolicy import frozen_head, policy_head

    net, actions = _policies()[which]
    obs, action = torch.randn(6, 3), actions()
    head, dist = policy_head(net, obs), net(obs)
    torch.testing.assert_close(head.log_prob(action), dist.log_prob(action))
    torch.testing.assert_close(head.entropy(), dist.entropy())
    # KL(pi_old || pi) after the parameters move, against kl_divergence of the two distributions
    old, old_dist = frozen_head(net, obs), trpo.detached(dist)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    new, new_dist = policy_head(net, obs), net(obs)
    expected = torch.distributions.kl_divergence(old_dist, new_dist)
    torch.testing.assert_close(old.kl(new), expected)
    assert float(old.kl(new).detach().min()) > 0 and float(old.kl(old).abs().max()) < 1e-6
    # indexing a head picks the same states as indexing the batch
    torch.testing.assert_close(new[2:4].log_prob(action[2:4]), new_dist.log_prob(action)[2:4])


@pytest.mark.parametrize("which", [0, 1], ids=["categorical", "gaussian"])
def test_make_actor_samples_what_the_distribution_samples(which):
    from fdrl_lib.algos.onpolicy import make_actor

    net, _ = _policies()[which]
    obs = torch.randn(5, 3)
    torch.manual_seed(7)
    action, log_prob = make_actor(net, None)(obs)
    torch.manual_seed(7)
    dist = net(obs)
    expected = dist.sample()
    torch.testing.assert_close(action, expected)
    torch.testing.assert_close(log_prob, dist.log_prob(expected))


def test_names_lecture_6_and_the_notebook_import_are_still_in_trpo_and_ppo():
    for name in (
        "trpo_update", "eval_settings", "conjugate_gradient", "make_actor", "rollout_advantages",
        "policy_batch", "fit_value", "DeterministicPolicy", "policy_parts", "make_policy",
        "modules_of", "obs_dim_of", "track_rollout", "probe_spaces", "rebuild", "_checkpoint",
        "detached", "mean_kl", "flat_grad", "fisher_vector_product", "get_flat", "set_flat",
    ):  # fmt: skip
        assert hasattr(trpo, name), name
    for name in ("clipped_surrogate", "adaptive_beta", "ratio", "kl_penalty_objective",
                 "clip_fraction", "sgd_epochs", "DISCRETE", "CONTINUOUS", "mean_kl"):  # fmt: skip
        assert hasattr(ppo, name), name
