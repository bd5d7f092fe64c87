"""Networks (fdrl_lib.nn): shapes, dueling/distributional heads, noisy layers, policy heads."""

import math

import numpy as np
import pytest
import torch

from fdrl_lib.nn import (
    CategoricalPolicy,
    DeterministicActor,
    EnsembleMLP,
    GaussianActorBody,
    GaussianPolicy,
    NoisyLinear,
    ObsNormalizer,
    QCritic,
    QNetwork,
    TwinQCritic,
    ValueNetwork,
    mlp,
    orthogonal_init,
)


def test_mlp_has_the_requested_widths_and_rejects_bad_sizes():
    net = mlp([4, 32, 16, 2])
    assert net(torch.zeros(5, 4)).shape == (5, 2)
    assert [m.out_features for m in net if isinstance(m, torch.nn.Linear)] == [32, 16, 2]
    with pytest.raises(ValueError, match="sizes"):
        mlp([4])


def test_q_network_output_shapes_for_every_head():
    obs = torch.zeros(7, 3)
    assert QNetwork(3, 2)(obs).shape == (7, 2)
    assert QNetwork(3, 2, dueling=True)(obs).shape == (7, 2)
    c51 = QNetwork(3, 2, atoms=11, v_min=0.0, v_max=10.0)
    assert c51(obs).shape == (7, 2, 11) and c51.q_values(obs).shape == (7, 2)


def test_dueling_advantages_average_to_zero_so_mean_q_is_the_value():
    torch.manual_seed(0)
    net = QNetwork(3, 4, dueling=True)
    obs = torch.randn(5, 3)
    value = net.value(net.body(obs)).squeeze(-1)  # (B,)
    torch.testing.assert_close(net(obs).mean(dim=1), value)


def test_distributional_q_values_are_the_expectation_over_the_support():
    net = QNetwork(2, 3, atoms=5, v_min=-2.0, v_max=2.0)
    obs = torch.randn(4, 2)
    probs = net(obs).softmax(-1)
    torch.testing.assert_close(net.q_values(obs), (probs * torch.linspace(-2, 2, 5)).sum(-1))


def test_noisy_linear_is_deterministic_in_eval_and_noisy_in_train():
    torch.manual_seed(0)
    layer = NoisyLinear(3, 2)
    x = torch.randn(4, 3)
    layer.eval()
    torch.testing.assert_close(layer(x), x @ layer.weight_mu.T + layer.bias_mu)
    layer.train()
    before = layer(x)
    layer.reset_noise()
    assert not torch.allclose(before, layer(x))


def test_categorical_policy_log_prob_matches_log_softmax():
    torch.manual_seed(0)
    policy = CategoricalPolicy(4, 3)
    obs, action = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    expected = policy.logits(obs).log_softmax(-1)[torch.arange(6), action]
    torch.testing.assert_close(policy(obs).log_prob(action), expected)
    assert policy.act(obs[0].numpy()) == int(policy.logits(obs[:1]).argmax())


def test_gaussian_policy_log_prob_is_the_diagonal_normal_density():
    torch.manual_seed(0)
    policy = GaussianPolicy(3, 2, log_std=math.log(0.5))
    obs, action = torch.randn(4, 3), torch.randn(4, 2)
    mean = policy.mean(obs)
    expected = -0.5 * ((action - mean) / 0.5) ** 2 - math.log(0.5) - 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(policy(obs).log_prob(action), expected.sum(-1))
    torch.testing.assert_close(torch.as_tensor(policy.act(obs[0].numpy())), mean[0].detach())


def test_noisy_linear_sigma_starts_at_half_over_sqrt_fan_in():
    layer = NoisyLinear(16, 3)  # Fortunato et al.: sigma_0 = 0.5, scaled by 1 / sqrt(fan_in)
    torch.testing.assert_close(layer.weight_sigma, torch.full((3, 16), 0.5 / 4))
    torch.testing.assert_close(layer.bias_sigma, torch.full((3,), 0.5 / 4))


def test_noisy_linear_noise_is_factorised_with_signed_square_roots():
    layer = NoisyLinear(5, 3)
    torch.manual_seed(1)
    layer.reset_noise()
    torch.manual_seed(1)
    eps_in, eps_out = torch.randn(5), torch.randn(3)  # drawn in this order by reset_noise

    def f(x):
        return x.sign() * x.abs().sqrt()

    torch.testing.assert_close(layer.weight_eps, torch.outer(f(eps_out), f(eps_in)))  # (3, 5)
    torch.testing.assert_close(layer.bias_eps, f(eps_out))


def test_dueling_head_aggregates_known_weights_as_value_plus_centred_advantage():
    # body output pinned to features (1, 2) for every input; V = 3 + f1 + f2 = 6,
    # A = (f1, 2 f2, 0) = (1, 4, 0), mean A = 5/3, so Q = 6 + A - 5/3
    net = QNetwork(2, 3, hidden=(2,), dueling=True)
    with torch.no_grad():
        body = net.body[0]
        body.weight.zero_()
        body.bias.copy_(torch.tensor([1.0, 2.0]))
        net.value.weight.copy_(torch.tensor([[1.0, 1.0]]))
        net.value.bias.fill_(3.0)
        net.advantage.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]))
        net.advantage.bias.zero_()
    q = net(torch.randn(4, 2))
    expected = 6.0 + torch.tensor([1.0, 4.0, 0.0]) - 5.0 / 3.0
    torch.testing.assert_close(q, expected.expand(4, 3))
    # adding a constant to every advantage leaves Q unchanged: only differences matter
    with torch.no_grad():
        net.advantage.bias.fill_(10.0)
    torch.testing.assert_close(net(torch.randn(4, 2)), expected.expand(4, 3))


def test_dueling_value_and_advantage_streams_both_receive_gradients():
    torch.manual_seed(0)
    net = QNetwork(3, 2, dueling=True)
    obs = torch.randn(8, 3)
    action = torch.tensor([0, 0, 1, 0, 0, 1, 0, 0])[
        :, None
    ]  # unbalanced: mean-A grads can't cancel
    net(obs).gather(1, action).sum().backward()  # the DQN loss touches only Q(s, a_taken)
    for name in ("value", "advantage"):
        grads = [p.grad for p in getattr(net, name).parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), name
    assert all(p.grad.abs().sum() > 0 for p in net.body.parameters())


# --- networks for lectures 3-6 -----------------------------------------------------------------


def test_value_and_q_critics_output_one_number_per_sample_shaped_b():
    obs, action = torch.randn(7, 3), torch.randn(7, 2)
    assert ValueNetwork(3)(obs).shape == (7,)
    assert QCritic(3, 2)(obs, action).shape == (7,)
    q1, q2 = TwinQCritic(3, 2)(obs, action)
    assert q1.shape == (7,) and q2.shape == (7,)


def test_q_critic_reads_the_action():
    torch.manual_seed(0)
    critic, obs = QCritic(3, 2, hidden=(16,)), torch.randn(5, 3)
    assert not torch.allclose(critic(obs, torch.zeros(5, 2)), critic(obs, torch.ones(5, 2)))


def test_twin_critics_are_independent_in_weights_outputs_and_gradients():
    torch.manual_seed(0)
    twin = TwinQCritic(3, 1, hidden=(32, 32))
    obs, action = torch.randn(16, 3), torch.randn(16, 1)
    q1, q2 = twin(obs, action)
    assert not torch.allclose(q1, q2)  # separately initialised
    q1.sum().backward()  # a loss on q1 alone leaves critic 2's weights untouched
    for layer in (m for m in twin.modules() if hasattr(m, "weight")):
        assert layer.weight.grad[0].abs().sum() > 0
        assert layer.weight.grad[1].abs().sum() == 0


def test_twin_critic_members_equal_standalone_q_critics_with_their_weights():
    torch.manual_seed(0)
    twin = TwinQCritic(3, 2, hidden=(8, 8))
    obs, action = torch.randn(4, 3), torch.randn(4, 2)
    layers = [m for m in twin.modules() if hasattr(m, "weight")]
    for k, q in enumerate(twin(obs, action)):
        single = QCritic(3, 2, hidden=(8, 8))
        linears = [m for m in single.modules() if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for linear, layer in zip(linears, layers, strict=True):
                linear.weight.copy_(layer.weight[k].T)
                linear.bias.copy_(layer.bias[k, 0])
        torch.testing.assert_close(q, single(obs, action))


@pytest.mark.parametrize("low, high", [(-2.0, 2.0), ([-1.0, 0.0], [3.0, 0.5])])
def test_deterministic_actor_respects_the_action_bounds(low, high):
    torch.manual_seed(0)
    actor = DeterministicActor(3, 2, hidden=(16,), action_low=low, action_high=high)
    with torch.no_grad():
        actor.net[-1].weight.mul_(100.0)  # saturate tanh: actions pile up at the bounds
    actions = actor(torch.randn(1000, 3))
    low_t, high_t = torch.tensor(low).expand(2), torch.tensor(high).expand(2)
    assert actions.shape == (1000, 2)
    assert torch.all(actions >= low_t) and torch.all(actions <= high_t)
    torch.testing.assert_close(actions.min(0).values, low_t, atol=1e-3, rtol=0)
    torch.testing.assert_close(actions.max(0).values, high_t, atol=1e-3, rtol=0)
    assert actor.act(np.zeros(3)).shape == (2,)


def test_deterministic_actor_zero_preactivation_is_the_middle_of_the_box():
    actor = DeterministicActor(3, 2, action_low=[-1.0, 0.0], action_high=[3.0, 0.5])
    with torch.no_grad():
        actor.net[-1].weight.zero_()
        actor.net[-1].bias.zero_()
    torch.testing.assert_close(actor(torch.randn(4, 3)), torch.tensor([[1.0, 0.25]] * 4))
    with pytest.raises(ValueError, match="bounds"):
        DeterministicActor(3, 1, action_low=1.0, action_high=-1.0)


def test_gaussian_actor_body_clamps_log_std_and_keeps_mean_free():
    torch.manual_seed(0)
    body = GaussianActorBody(3, 2, hidden=(16,), log_std_min=-5.0, log_std_max=2.0)
    with torch.no_grad():
        body.log_std.weight.mul_(1000.0)
        body.mean.weight.mul_(1000.0)
    mean, log_std = body(torch.randn(500, 3))
    assert mean.shape == log_std.shape == (500, 2)
    assert log_std.min() == -5.0 and log_std.max() == 2.0  # both limits reached, never passed
    assert mean.abs().max() > 10.0  # the mean is not squashed here: sac.py applies tanh


def test_obs_normalizer_matches_numpy_mean_and_var_over_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)) * [1, 10, 0.1, 1] for n in (1, 7, 50, 3)]
    normalizer = ObsNormalizer(4, clip=100.0)
    for batch in batches:
        normalizer.update(batch)
    everything = np.concatenate(batches)
    np.testing.assert_allclose(normalizer.mean.numpy(), everything.mean(0), rtol=1e-12)
    np.testing.assert_allclose(normalizer.var.numpy(), everything.var(0), rtol=1e-12)
    assert normalizer.count == len(everything)
    out = normalizer(torch.as_tensor(everything, dtype=torch.float32))
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(0, unbiased=False), 1.0, atol=1e-5)


def test_obs_normalizer_clips_and_is_saved_with_the_state_dict():
    normalizer = ObsNormalizer(2, clip=5.0)
    normalizer.update(np.array([[0.0, 0.0], [2.0, 2.0]]))  # mean 1, var 1
    assert normalizer(torch.tensor([[100.0, -100.0]])).tolist() == [[5.0, -5.0]]
    policy = torch.nn.Sequential(normalizer, torch.nn.Linear(2, 1))
    restored = torch.nn.Sequential(ObsNormalizer(2, clip=5.0), torch.nn.Linear(2, 1))
    restored.load_state_dict(policy.state_dict())
    torch.testing.assert_close(restored[0].mean, normalizer.mean)
    assert restored[0].count == 2
    with pytest.raises(ValueError, match="batch"):
        normalizer.update(np.zeros((3, 5)))


def test_ensemble_member_k_equals_a_standalone_mlp_with_its_weights():
    torch.manual_seed(0)
    K = 3
    ensemble = EnsembleMLP(K, 4, 2, hidden=(8, 6), activation=torch.nn.Tanh)
    x = torch.randn(K, 5, 4)
    out = ensemble(x)
    shared = ensemble(x[0])  # (B, in): every member sees the same batch
    assert out.shape == shared.shape == (K, 5, 2)
    layers = [m for m in ensemble.modules() if hasattr(m, "weight")]
    for k in range(K):
        single = mlp([4, 8, 6, 2], activation=torch.nn.Tanh)
        linears = [m for m in single if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for linear, layer in zip(linears, layers, strict=True):
                linear.weight.copy_(layer.weight[k].T)  # (in, out) stored, nn.Linear is (out, in)
                linear.bias.copy_(layer.bias[k, 0])
        torch.testing.assert_close(out[k], single(x[k]))
        torch.testing.assert_close(shared[k], single(x[0]))
    assert not torch.allclose(shared[0], shared[1])  # members differ
    with pytest.raises(ValueError, match="input"):
        ensemble(torch.randn(2, 5, 4))


def _assert_orthogonal(weight, gain):
    """Rows (or columns, whichever are fewer) orthonormal up to ``gain``."""
    w = weight if weight.shape[0] <= weight.shape[1] else weight.T
    torch.testing.assert_close(w @ w.T, gain**2 * torch.eye(len(w)), atol=1e-5, rtol=0)


def test_orthogonal_init_gives_orthogonal_weights_zero_biases_and_its_last_gain():
    torch.manual_seed(0)
    net = mlp([5, 64, 32, 3], init="orthogonal")
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for linear in linears:
        _assert_orthogonal(linear.weight, math.sqrt(2))
        assert torch.all(linear.bias == 0)
    policy = CategoricalPolicy(5, 3)
    orthogonal_init(policy, gain=math.sqrt(2), last_gain=0.01)
    *body, last = [m for m in policy.modules() if isinstance(m, torch.nn.Linear)]
    _assert_orthogonal(last.weight, 0.01)
    for linear in body:
        _assert_orthogonal(linear.weight, math.sqrt(2))
    ensemble = orthogonal_init(EnsembleMLP(2, 5, 3, hidden=(16,)), gain=1.0)
    for layer in (m for m in ensemble.modules() if hasattr(m, "weight")):
        for weight in layer.weight:
            _assert_orthogonal(weight.T, 1.0)
    with pytest.raises(ValueError, match="init"):
        mlp([2, 2], init="xavier")
