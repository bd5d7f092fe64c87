"""Networks shared by the deep algorithms: MLPs, Q-networks (lecture 2), noisy layers.

Lecture 2, eq. 2.11: a multi-layer perceptron stacks linear maps and non-linearities,
``f(x) = W_1 max(0, W_0 x)``. Everything here is a plain ``torch.nn.Module``; the training loops
that use them live in ``fdrl_lib/algos/``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def mlp(
    sizes: Sequence[int],
    activation: type[nn.Module] = nn.ReLU,
    output_activation: type[nn.Module] | None = None,
    linear: type[nn.Module] = nn.Linear,
) -> nn.Sequential:
    """A multi-layer perceptron ``sizes[0] -> ... -> sizes[-1]`` (eq. 2.11 with more layers).

    ``linear`` picks the layer type (``nn.Linear`` or :class:`NoisyLinear`).
    """
    if len(sizes) < 2 or any(int(s) <= 0 for s in sizes):
        raise ValueError(f"sizes must list at least two positive layer widths, got {list(sizes)}")
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(linear(int(sizes[i]), int(sizes[i + 1])))
        if i < len(sizes) - 2:
            layers.append(activation())
        elif output_activation is not None:
            layers.append(output_activation())
    return nn.Sequential(*layers)


class NoisyLinear(nn.Module):
    """Linear layer with learned, factorised Gaussian noise on its weights (noisy nets).

    ``y = (mu_W + sigma_W * eps_W) x + (mu_b + sigma_b * eps_b)`` (Fortunato et al. 2018). The
    noise explores in place of epsilon-greedy; it is resampled by :meth:`reset_noise`, which the
    caller does before every acting step and every training batch. ``sigma`` starts at
    ``sigma0 / sqrt(in_features)`` (the paper's ``sigma_0 = 0.5``) and is learned: the network
    can turn its own exploration down. In ``eval()`` mode the layer uses the mean weights only, so
    a policy built on it is deterministic.
    """

    def __init__(self, in_features: int, out_features: int, sigma0: float = 0.5) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight_mu = nn.Parameter(
            torch.empty(out_features, in_features).uniform_(-bound, bound)
        )
        self.weight_sigma = nn.Parameter(torch.full((out_features, in_features), sigma0 * bound))
        self.bias_mu = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        self.bias_sigma = nn.Parameter(torch.full((out_features,), sigma0 * bound))
        self.register_buffer("weight_eps", torch.zeros(out_features, in_features))
        self.register_buffer("bias_eps", torch.zeros(out_features))
        self.reset_noise()

    @staticmethod
    def _scaled_noise(n: int) -> torch.Tensor:
        x = torch.randn(n)
        return x.sign() * x.abs().sqrt()

    def reset_noise(self) -> None:
        """New factorised noise: ``eps_W = f(eps_out) f(eps_in)^T``, ``f(x) = sgn(x) |x|^0.5``."""
        eps_in = self._scaled_noise(self.in_features)
        eps_out = self._scaled_noise(self.out_features)
        self.weight_eps.copy_(torch.outer(eps_out, eps_in))
        self.bias_eps.copy_(eps_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return nn.functional.linear(x, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + self.weight_sigma * self.weight_eps
        bias = self.bias_mu + self.bias_sigma * self.bias_eps
        return nn.functional.linear(x, weight, bias)


class QNetwork(nn.Module):
    """``Q_theta(s, .)`` for discrete actions: one forward pass gives every action's value.

    - ``dueling``: separate value and advantage streams, ``Q = V + A - mean_a A``.
    - ``noisy``: :class:`NoisyLinear` layers (exploration by parameter noise).
    - ``atoms > 1``: distributional (C51); :meth:`forward` returns logits ``(B, A, atoms)`` over a
      fixed support, and :meth:`q_values` their expectation ``(B, A)``.
    """

    def __init__(
        self,
        obs_dim: int,  # size of one flattened observation
        n_actions: int,
        hidden: Sequence[int] = (64, 64),
        dueling: bool = False,
        noisy: bool = False,
        atoms: int = 1,
        v_min: float = -10.0,
        v_max: float = 10.0,
    ) -> None:
        super().__init__()
        if atoms < 1 or (atoms > 1 and not v_min < v_max):
            raise ValueError(f"need atoms >= 1 and v_min < v_max, got {atoms}, {v_min}, {v_max}")
        self.n_actions, self.atoms, self.dueling = n_actions, atoms, dueling
        head = NoisyLinear if noisy else nn.Linear
        self.body = mlp([obs_dim, *hidden], output_activation=nn.ReLU)
        width = hidden[-1]
        self.advantage = head(width, n_actions * atoms)
        self.value = head(width, atoms) if dueling else None
        self.register_buffer("support", torch.linspace(v_min, v_max, atoms))  # (atoms,)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Q-values ``(B, A)`` (``atoms == 1``) or per-action logits ``(B, A, atoms)``."""
        features = self.body(obs.flatten(1))  # (B, *obs_shape) -> (B, hidden)
        if self.atoms == 1 and self.value is None:
            return self.advantage(features)  # (B, A): the plain DQN head, the common case
        out = self.advantage(features).view(-1, self.n_actions, self.atoms)  # (B, A, atoms)
        if self.value is not None:
            value = self.value(features).view(-1, 1, self.atoms)  # (B, 1, atoms)
            out = value + out - out.mean(dim=1, keepdim=True)  # dueling: Q = V + A - mean A
        return out.squeeze(-1) if self.atoms == 1 else out

    def q_values(self, obs: torch.Tensor) -> torch.Tensor:
        """Expected action values ``(B, A)``, for either head type."""
        out = self(obs)
        if self.atoms == 1:
            return out
        return (out.softmax(dim=-1) * self.support).sum(dim=-1)  # E[Z] = sum_i p_i z_i

    def reset_noise(self) -> None:
        """Resample the noise of every noisy layer (no-op without noisy layers)."""
        for module in self.modules():
            if isinstance(module, NoisyLinear):
                module.reset_noise()


class CategoricalPolicy(nn.Module):
    """``pi_theta(a | s)`` over discrete actions: an MLP gives logits, ``(B, A)``.

    :meth:`forward` returns a ``torch.distributions.Categorical`` (sample, ``log_prob``,
    ``entropy``); :meth:`act` is the deterministic (most likely) action of one observation.
    """

    def __init__(
        self, obs_dim: int, n_actions: int, hidden: Sequence[int] = (64, 64), activation=nn.Tanh
    ) -> None:
        super().__init__()
        self.logits = mlp([obs_dim, *hidden, n_actions], activation=activation)

    def forward(self, obs: torch.Tensor) -> torch.distributions.Categorical:
        return torch.distributions.Categorical(logits=self.logits(obs.flatten(1)))

    def act(self, obs) -> int:
        with torch.inference_mode():
            logits = self.logits(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))
        return int(logits.argmax())


class GaussianPolicy(nn.Module):
    """``pi_theta(a | s) = N(mu_theta(s), diag(sigma^2))`` with a learned, state-free log std.

    :meth:`forward` returns a distribution whose ``log_prob`` sums over action dimensions,
    ``(B,)``; :meth:`act` returns the mean action of one observation (deterministic).
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: Sequence[int] = (64, 64),
        activation=nn.Tanh,
        log_std: float = -0.5,
    ) -> None:
        super().__init__()
        self.mean = mlp([obs_dim, *hidden, action_dim], activation=activation)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std)))

    def forward(self, obs: torch.Tensor) -> torch.distributions.Independent:
        mean = self.mean(obs.flatten(1))  # (B, action_dim)
        normal = torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean))
        return torch.distributions.Independent(normal, 1)  # log_prob sums over dims: (B,)

    def act(self, obs):
        with torch.inference_mode():
            mean = self.mean(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))
        return mean[0].numpy()
