"""The policy plumbing that TRPO and PPO (lecture 4) share, and lecture 6 reuses.

Not an algorithm: the policy for an action space and the deterministic policy that is evaluated,
sampling ``pi_old`` in a rollout, a rollout's GAE advantages and value targets flattened to a
batch, evaluation settings, feeding a rollout to the monitor, and the checkpoint of a policy (and
its observation normaliser) with the rebuild that ``load`` uses.

:func:`policy_head` is the policy's output without ``torch.distributions`` (whose argument checks
cost more than the small networks here): log-probabilities, entropy and KL of a categorical or
diagonal-Gaussian policy, in closed form; tests check each against ``torch.distributions``.
"""

from __future__ import annotations

import dataclasses
import math

import gymnasium as gym
import numpy as np
import torch

from fdrl_lib.buffers import RolloutBuffer
from fdrl_lib.envs import EnvLike, make_env
from fdrl_lib.nn import CategoricalPolicy, GaussianPolicy, ObsNormalizer
from fdrl_lib.returns import gae
from fdrl_lib.training import EvalSettings, Monitor, reward_threshold

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


# ------------------------------------------------------------------ policies and their outputs
def make_policy(env: gym.Env, hidden, log_std: float = 0.0) -> torch.nn.Module:
    """A categorical policy for Discrete actions, a Gaussian one for Box actions."""
    obs_dim = int(np.prod(env.observation_space.shape))
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        return CategoricalPolicy(obs_dim, int(space.n), tuple(hidden))
    if isinstance(space, gym.spaces.Box):
        return GaussianPolicy(obs_dim, int(np.prod(space.shape)), tuple(hidden), log_std=log_std)
    raise ValueError(f"need a Discrete or Box action space, got {space}")


class CategoricalHead:
    """``pi(.|s)`` over discrete actions from normalised log-probabilities ``(B, A)``."""

    def __init__(self, log_probs: torch.Tensor) -> None:
        self.log_probs = log_probs

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:  # (B,)
        return self.log_probs.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:  # (B,)
        return -(self.log_probs.exp() * self.log_probs).sum(-1)

    def kl(self, other: CategoricalHead) -> torch.Tensor:
        """``KL(self || other)`` per state, ``(B,)``."""
        return (self.log_probs.exp() * (self.log_probs - other.log_probs)).sum(-1)

    def sample(self) -> torch.Tensor:  # as torch.distributions.Categorical samples
        return torch.multinomial(self.log_probs.exp(), 1, True).squeeze(-1)

    def __getitem__(self, index) -> CategoricalHead:
        return CategoricalHead(self.log_probs[index])


class GaussianHead:
    """``N(mean, diag(exp(log_std)^2))``; ``mean`` ``(B, D)``, a state-free ``log_std`` ``(D,)``."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor) -> None:
        self.mean, self.log_std = mean, log_std

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:  # summed over action dims: (B,)
        z = (action - self.mean) * torch.exp(-self.log_std)
        return (-0.5 * z.pow(2) - self.log_std - LOG_SQRT_2PI).sum(-1)

    def entropy(self) -> torch.Tensor:  # (B,)
        return (0.5 + LOG_SQRT_2PI + self.log_std).sum(-1).expand(len(self.mean))

    def kl(self, other: GaussianHead) -> torch.Tensor:
        """``KL(self || other)`` per state, ``(B,)``."""
        var, other_var = torch.exp(2 * self.log_std), torch.exp(2 * other.log_std)
        terms = (
            other.log_std - self.log_std + (var + (self.mean - other.mean).pow(2)) / (2 * other_var)
        )
        return (terms - 0.5).sum(-1)

    def sample(self) -> torch.Tensor:  # as torch.distributions.Normal samples
        return torch.normal(self.mean, self.log_std.exp().expand_as(self.mean))

    def __getitem__(self, index) -> GaussianHead:
        return GaussianHead(self.mean[index], self.log_std)


def policy_head(net: torch.nn.Module, obs: torch.Tensor) -> CategoricalHead | GaussianHead:
    """The output of a :func:`make_policy` network on ``obs`` ``(B, obs_dim)``."""
    if isinstance(net, CategoricalPolicy):
        return CategoricalHead(torch.log_softmax(net.logits(obs.flatten(1)), -1))
    if isinstance(net, GaussianPolicy):
        return GaussianHead(net.mean(obs.flatten(1)), net.log_std)
    raise TypeError(f"need a CategoricalPolicy or GaussianPolicy, got {type(net).__name__}")


def frozen_head(net: torch.nn.Module, obs: torch.Tensor) -> CategoricalHead | GaussianHead:
    """:func:`policy_head` without gradients: ``pi_old``, fixed for one update."""
    with torch.no_grad():
        head = policy_head(net, obs)
    if isinstance(head, GaussianHead):
        return GaussianHead(head.mean, head.log_std.detach().clone())
    return head


class DeterministicPolicy:
    """``obs -> action``: the most likely (discrete) or mean (Gaussian) action of the policy net,
    on normalised observations when a normaliser is given; Box actions clipped to the bounds."""

    def __init__(self, net, normalizer=None, low=None, high=None) -> None:
        self.net, self.normalizer, self.low, self.high = net, normalizer, low, high

    def __call__(self, obs):
        obs = torch.as_tensor(np.asarray(obs), dtype=torch.float32).reshape(1, -1)
        if self.normalizer is not None:
            obs = self.normalizer(obs)
        action = self.net.act(obs)
        return action if self.low is None else np.clip(action, self.low, self.high)


def policy_parts(env: gym.Env, config) -> tuple:
    """The policy net, an observation normaliser (or None) and the deterministic policy."""
    continuous = isinstance(env.action_space, gym.spaces.Box)
    net = make_policy(env, config.hidden, config.log_std)
    use_norm = continuous if config.normalize_obs is None else config.normalize_obs
    normalizer = ObsNormalizer(env.observation_space.shape) if use_norm else None
    bounds = (env.action_space.low, env.action_space.high) if continuous else (None, None)
    return net, normalizer, DeterministicPolicy(net, normalizer, *bounds)


def modules_of(net, normalizer) -> list:
    return [net] if normalizer is None else [net, normalizer]


def obs_dim_of(net) -> int:
    """The input width of a policy network (its first linear layer's)."""
    return next(m for m in net.modules() if isinstance(m, torch.nn.Linear)).in_features


def make_actor(net, normalizer):
    """``act(obs) -> (action, log_prob)`` sampling ``pi_old`` for :func:`collect_rollout`; obs
    are normalised by the current statistics (raw obs are stored and normalised again later)."""

    def act(obs):
        obs = obs if normalizer is None else normalizer(obs)
        if isinstance(net, CategoricalPolicy | GaussianPolicy):
            head = policy_head(net, obs)  # the same samples as net(obs), without its checks
        else:
            head = net(obs)
        action = head.sample()
        return action, head.log_prob(action)

    return act


# ------------------------------------------------------------------------ rollouts to batches
def rollout_advantages(
    buffer: RolloutBuffer, gamma: float, lam: float, normalize: bool, reward_scale: float = 1.0
):
    """GAE advantages (T, N) and lambda-return value targets (T, N) of one rollout; with a
    ``reward_scale`` the rewards (and so the value function's targets) are multiplied by it."""
    reward = buffer.reward if reward_scale == 1.0 else buffer.reward * reward_scale
    advantage = gae(
        reward, buffer.value, buffer.next_value, buffer.terminated, buffer.truncated,
        gamma, lam,
    ).float()  # fmt: skip
    returns = advantage + buffer.value  # lambda-returns: the value function's targets
    if normalize:
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    return advantage, returns


def policy_batch(buffer: RolloutBuffer, normalizer, advantage: torch.Tensor) -> dict:
    """A rollout flattened to (T * N, ...) samples, observations normalised as when acting."""
    flat = buffer.flatten()
    flat["raw_obs"] = flat["obs"]
    if normalizer is not None:
        flat["obs"] = normalizer(flat["obs"])
    flat["advantage"] = advantage.reshape(-1)
    return flat


def track_rollout(monitor: Monitor, buffer: RolloutBuffer, step: int) -> int:
    """Feed a rollout's rewards and episode ends to the monitor step by step; new step count."""
    done = (buffer.terminated + buffer.truncated) > 0  # (T, N)
    for t in range(buffer.T):
        step += buffer.N
        monitor.track(buffer.reward[t].numpy(), done[t].numpy(), step)
    return step


def eval_settings(c, env: EnvLike) -> EvalSettings:
    """The Config's evaluation settings; with no ``target_return`` the run stops at the env's
    threshold plus ``target_margin``: stopping at the first evaluation that just touches the
    threshold keeps a policy that a fresh evaluation often puts below it (10 episodes are a
    noisy score; the first lucky one is the one that stops the run)."""
    settings = EvalSettings.of(c)
    threshold = reward_threshold(env)
    if c.target_return is None and threshold is not None:
        settings = dataclasses.replace(settings, target_return=threshold + c.target_margin)
    return settings


# ------------------------------------------------------------------------ checkpoints
def probe_spaces(env: EnvLike) -> dict:
    made = make_env(env)
    spaces = {"observation_space": made.observation_space, "action_space": made.action_space}
    made.close()
    return spaces


def policy_checkpoint(algo: str, c, net, normalizer, spaces: dict) -> dict:
    """What ``TrainResult.save`` writes for a :func:`policy_parts` policy."""
    space = spaces["action_space"]
    continuous = isinstance(space, gym.spaces.Box)
    return {
        "algo": algo,
        "config": dataclasses.asdict(c),
        "obs_dim": int(np.prod(spaces["observation_space"].shape)),
        "action": (
            {
                "kind": "box",
                "dim": int(np.prod(space.shape)),
                "low": space.low.tolist(),
                "high": space.high.tolist(),
            }
            if continuous
            else {"kind": "discrete", "n": int(space.n)}
        ),  # fmt: skip
        "state_dict": net.state_dict(),
        "normalizer": None if normalizer is None else normalizer.state_dict(),
    }


def rebuild(payload: dict, config) -> DeterministicPolicy:
    """The deterministic policy of a checkpoint written by :func:`policy_checkpoint`."""
    action = payload["action"]
    if action["kind"] == "discrete":
        net = CategoricalPolicy(payload["obs_dim"], action["n"], tuple(config.hidden))
        low = high = None
    else:
        net = GaussianPolicy(payload["obs_dim"], action["dim"], tuple(config.hidden))
        low, high = np.array(action["low"], np.float32), np.array(action["high"], np.float32)
    net.load_state_dict(payload["state_dict"])
    normalizer = None
    if payload["normalizer"] is not None:
        normalizer = ObsNormalizer(payload["obs_dim"])
        normalizer.load_state_dict(payload["normalizer"])
    return DeterministicPolicy(net, normalizer, low, high)
