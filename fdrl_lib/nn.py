"""Networks shared by the deep algorithms: MLPs, Q-networks, policies, critics, ensembles.

Lecture 2, eq. 2.11: a multi-layer perceptron stacks linear maps and non-linearities,
``f(x) = W_1 max(0, W_0 x)``. Everything here is a plain ``torch.nn.Module``; the training loops
that use them live in ``fdrl_lib/algos/``. Scalar outputs (values, Q-values) are shaped ``(B,)``,
never ``(B, 1)``.

- lecture 2: :func:`mlp`, :class:`QNetwork` (dueling, noisy, C51 heads), :class:`NoisyLinear`
- lectures 3-4: :class:`CategoricalPolicy`, :class:`GaussianPolicy`, :class:`ValueNetwork`,
  :class:`ObsNormalizer`, :func:`orthogonal_init`
- lecture 5: :class:`QCritic`, :class:`TwinQCritic`, :class:`DeterministicActor`,
  :class:`GaussianActorBody` (the tanh squash and its log-prob correction live in ``sac.py``)
- lecture 6: :class:`EnsembleMLP` (K models evaluated in one batched pass)
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
    init: str | None = None,
) -> nn.Sequential:
    """A multi-layer perceptron ``sizes[0] -> ... -> sizes[-1]`` (eq. 2.11 with more layers).

    ``linear`` picks the layer type (``nn.Linear`` or :class:`NoisyLinear`). ``init=
    "orthogonal"`` applies :func:`orthogonal_init` (gain sqrt 2, biases 0); ``None`` keeps
    PyTorch's default initialisation.
    """
    if init not in (None, "orthogonal"):
        raise ValueError(f"init must be None or 'orthogonal', got {init!r}")
    if len(sizes) < 2 or any(int(s) <= 0 for s in sizes):
        raise ValueError(f"sizes must list at least two positive layer widths, got {list(sizes)}")
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(linear(int(sizes[i]), int(sizes[i + 1])))
        if i < len(sizes) - 2:
            layers.append(activation())
        elif output_activation is not None:
            layers.append(output_activation())
    net = nn.Sequential(*layers)
    return orthogonal_init(net) if init == "orthogonal" else net


def orthogonal_init(
    module: nn.Module, gain: float = math.sqrt(2), last_gain: float | None = None
) -> nn.Module:
    """Orthogonal weights scaled by ``gain`` and zero biases for every linear layer of ``module``.

    ``last_gain`` (if given) is used for the last linear layer instead: the usual policy-gradient
    choice is ``gain=sqrt(2)`` in the body, 0.01 for a policy's output, 1 for a value output
    (Engstrom et al. 2020, "Implementation matters"). Ensemble layers get one orthogonal matrix
    per member. Returns ``module`` (initialised in place).
    """
    layers = [m for m in module.modules() if isinstance(m, nn.Linear | EnsembleLinear)]
    with torch.no_grad():
        for i, layer in enumerate(layers):
            g = last_gain if last_gain is not None and i == len(layers) - 1 else gain
            if isinstance(layer, EnsembleLinear):  # weight (K, in, out): one matrix per member
                for weight in layer.weight:
                    nn.init.orthogonal_(weight.T, gain=g)
            else:
                nn.init.orthogonal_(layer.weight, gain=g)
            layer.bias.zero_()
    return module


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


class ValueNetwork(nn.Module):
    """``V_phi(s)``: an MLP from an observation to one number, ``(B, *obs_shape) -> (B,)``."""

    def __init__(
        self, obs_dim: int, hidden: Sequence[int] = (64, 64), activation=nn.Tanh, init=None
    ) -> None:
        super().__init__()
        self.net = mlp([obs_dim, *hidden, 1], activation=activation, init=init)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs.flatten(1)).squeeze(-1)  # (B, 1) -> (B,)


class QCritic(nn.Module):
    """``Q_phi(s, a)`` for continuous actions: ``(B, obs_dim), (B, action_dim) -> (B,)``.

    The action enters with the observation: the input is ``[s, a]`` concatenated.
    """

    def __init__(
        self, obs_dim: int, action_dim: int, hidden: Sequence[int] = (256, 256), activation=nn.ReLU
    ) -> None:
        super().__init__()
        self.net = mlp([obs_dim + action_dim, *hidden, 1], activation=activation)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs.flatten(1), action], dim=-1)).squeeze(-1)  # (B,)


class EnsembleLinear(nn.Module):
    """K independent linear layers applied in one batched matrix product.

    ``weight`` is ``(K, in, out)``, ``bias`` ``(K, 1, out)``; input ``(K, B, in)`` or ``(B, in)``
    (the same batch for every member) gives ``(K, B, out)``. Member k is initialised as a fresh
    ``nn.Linear(in, out)`` would be, independently of the others.
    """

    def __init__(self, K: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.K, self.in_features, self.out_features = K, in_features, out_features
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default range, per member
        self.weight = nn.Parameter(
            torch.empty(K, in_features, out_features).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(K, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.expand(self.K, *x.shape)  # (B, in) -> (K, B, in), no copy
        return torch.baddbmm(self.bias, x, self.weight)  # (K, B, out) = b + x @ W, per member


class EnsembleMLP(nn.Module):
    """K MLPs ``in_dim -> hidden -> out_dim`` evaluated together: ``(K, B, in) -> (K, B, out)``.

    A ``(B, in)`` input is given to every member. Member k computes exactly what a standalone
    :func:`mlp` with member k's weights computes (``weight[k]`` is that layer's weight
    transposed), in one batched pass instead of K: lecture 6's model ensembles.
    """

    def __init__(
        self,
        K: int,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (200, 200),
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        if K < 1:
            raise ValueError(f"K must be a positive integer, got {K}")
        sizes = [in_dim, *hidden, out_dim]
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            layers.append(EnsembleLinear(K, sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(activation())
        self.K, self.net = K, nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3 and x.shape[0] != self.K:
            raise ValueError(f"input must be (B, in) or ({self.K}, B, in), got {tuple(x.shape)}")
        return self.net(x)


class TwinQCritic(nn.Module):
    """Two independent critics ``Q_phi1(s, a), Q_phi2(s, a)`` in one module (TD3, SAC).

    Returns ``(q1, q2)``, each ``(B,)``. Both are computed in one batched pass of a two-member
    :class:`EnsembleMLP`; their weights are separate and separately initialised, so the two
    estimates err independently (what taking their minimum relies on).
    """

    def __init__(
        self, obs_dim: int, action_dim: int, hidden: Sequence[int] = (256, 256), activation=nn.ReLU
    ) -> None:
        super().__init__()
        self.net = EnsembleMLP(2, obs_dim + action_dim, 1, hidden, activation)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.net(torch.cat([obs.flatten(1), action], dim=-1)).squeeze(-1)  # (2, B)
        return q[0], q[1]


class DeterministicActor(nn.Module):
    """``mu_theta(s)`` inside the action box: ``low + (high - low) (tanh(x) + 1) / 2``, ``(B, A)``.

    ``action_low`` / ``action_high`` are floats or ``(A,)`` arrays (e.g. ``env.action_space.low``).
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: Sequence[int] = (256, 256),
        action_low=-1.0,
        action_high=1.0,
        activation=nn.ReLU,
    ) -> None:
        super().__init__()
        low = torch.as_tensor(action_low, dtype=torch.float32).expand(action_dim).clone()
        high = torch.as_tensor(action_high, dtype=torch.float32).expand(action_dim).clone()
        if not (torch.isfinite(low).all() and torch.isfinite(high).all() and (low < high).all()):
            raise ValueError(f"need finite action bounds with low < high, got {low}, {high}")
        self.net = mlp([obs_dim, *hidden, action_dim], activation=activation)
        self.register_buffer("center", (high + low) / 2)  # (A,)
        self.register_buffer("scale", (high - low) / 2)  # (A,)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.center + self.scale * torch.tanh(self.net(obs.flatten(1)))  # (B, A)

    def act(self, obs):
        """The action for one observation, as a numpy array ``(A,)``."""
        with torch.no_grad():
            return self(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))[0].numpy()


class GaussianActorBody(nn.Module):
    """SAC's actor body: ``s -> (mean, log_std)``, each ``(B, A)``, before any squashing.

    One shared MLP trunk, two linear heads; ``log_std`` is clamped to ``[log_std_min,
    log_std_max]`` (the SAC authors' -20 and 2) so the Gaussian neither collapses nor explodes.
    Sampling ``u ~ N(mean, std)``, squashing ``a = tanh(u)`` and the log-density correction are
    lecture 5's and live in ``sac.py``.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: Sequence[int] = (256, 256),
        activation=nn.ReLU,
        log_std_min: float = -20.0,
        log_std_max: float = 2.0,
    ) -> None:
        super().__init__()
        if not log_std_min < log_std_max:
            raise ValueError(f"need log_std_min < log_std_max, got {log_std_min}, {log_std_max}")
        self.trunk = mlp([obs_dim, *hidden], activation=activation, output_activation=activation)
        self.mean = nn.Linear(hidden[-1], action_dim)
        self.log_std = nn.Linear(hidden[-1], action_dim)
        self.log_std_min, self.log_std_max = float(log_std_min), float(log_std_max)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(obs.flatten(1))  # (B, hidden)
        log_std = self.log_std(features).clamp(self.log_std_min, self.log_std_max)
        return self.mean(features), log_std  # (B, A), (B, A)


class ObsNormalizer(nn.Module):
    """``(s - mean) / sqrt(var + eps)``, clipped to ``[-clip, clip]``, from running statistics.

    ``mean``, ``var`` and ``count`` are module buffers: a policy holding a normaliser saves and
    loads them with its ``state_dict``. :meth:`update` folds in a batch with Chan et al.'s
    parallel formula, so after any sequence of batches the statistics equal ``np.mean`` and
    ``np.var`` of everything seen; ``forward`` never changes them (evaluation stays fixed).
    """

    def __init__(self, shape: int | tuple[int, ...], clip: float = 10.0, eps: float = 1e-8):
        super().__init__()
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.shape, self.clip, self.eps = shape, float(clip), float(eps)
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, batch) -> None:
        """Fold a batch ``(B, *shape)`` of observations into the running mean and variance."""
        batch = torch.as_tensor(batch, dtype=torch.float64).to(self.mean.device)
        if tuple(batch.shape[1:]) != self.shape or len(batch) == 0:
            raise ValueError(f"batch must be (B, *{self.shape}) with B >= 1, got {batch.shape}")
        n = batch.shape[0]
        batch_mean, batch_var = batch.mean(0), batch.var(0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean
        # Chan et al.: M2 = M2_a + M2_b + delta^2 n_a n_b / (n_a + n_b)
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        self.mean += delta * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        normalized = (obs - self.mean) / torch.sqrt(self.var + self.eps)
        return normalized.clamp(-self.clip, self.clip).to(obs.dtype)
