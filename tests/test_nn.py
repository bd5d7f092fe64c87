"""Networks (fdrl_lib.nn): shapes, dueling/distributional heads, noisy layers, policy heads."""

import math

import pytest
import torch

from fdrl_lib.nn import CategoricalPolicy, GaussianPolicy, NoisyLinear, QNetwork, mlp


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
