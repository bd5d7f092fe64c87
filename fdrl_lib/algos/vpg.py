"""Vanilla policy gradient: the likelihood-ratio gradient with reward-to-go and a baseline.

Lecture 3, Algorithm 4. The gradient estimate is eq. 3.27,
``g = 1/m sum_i sum_t grad log pi(a_t | s_t) (G_t - b(s_t))`` with the reward-to-go
``G_t = sum_{k >= t} gamma^(k-t) r_k``; :func:`policy_gradient_surrogate` is the function whose
gradient it is. Each baseline of section 3.4 is an option: none, the constant average return
(eq. 3.29), the optimal constant (eq. 3.30), the time-dependent average (eq. 3.31) and the
state-dependent value ``V_phi(s)`` (eq. 3.32), fitted by Monte Carlo regression (eq. 3.34) or by
bootstrapping with a pull towards the previous parameters (eq. 3.36). Discrete actions use a
softmax policy (``nn.CategoricalPolicy``), continuous ones a Gaussian (``nn.GaussianPolicy``).

A baseline computed from a batch is used on the *next* batch (Algorithm 4 re-fits it after the
advantages are formed): a baseline that saw the very returns it is subtracted from would bias the
estimate by O(1/m).
"""

from __future__ import annotations

import torch

BASELINES = ("none", "constant", "optimal", "time", "value")
VALUE_FITS = ("monte_carlo", "bootstrap")


# ------------------------------------------------------------------------------ the math
def policy_gradient_surrogate(
    log_prob: torch.Tensor, advantage: torch.Tensor, episodes: int | None = None
) -> torch.Tensor:
    """The scalar whose gradient is the policy-gradient estimate (eq. 3.27 / 3.45).

    ``sum_j log pi(a_j | s_j) A_j / m`` over every sampled step j: ``log_prob`` (any shape) carries
    the gradient, ``advantage`` (same shape; ``G_t - b(s_t)`` or any advantage estimate) is a
    constant weight and never differentiated. ``episodes = m`` gives eq. 3.27 exactly (a sum over
    time, a mean over trajectories); ``None`` divides by the number of steps instead (the same
    direction, a step size that does not grow with episode length). Ascend it, or descend
    ``-policy_gradient_surrogate(...)``: the sign is the most common bug.
    """
    if log_prob.shape != advantage.shape:
        raise ValueError(
            f"log_prob and advantage must have the same shape, got {tuple(log_prob.shape)} "
            f"and {tuple(advantage.shape)}"
        )
    total = (log_prob * advantage.detach()).sum()
    if episodes is None:
        return total / max(1, log_prob.numel())
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    return total / episodes


def constant_baseline(episode_returns: torch.Tensor) -> torch.Tensor:
    """``b = 1/m sum_i R(tau_i)``: the average return of a batch of episodes (eq. 3.29)."""
    if episode_returns.numel() == 0:
        raise ValueError("constant_baseline needs at least one episode return")
    return episode_returns.float().mean()


def optimal_constant_baseline(scores: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """The variance-minimising constant ``b = sum_i |s_i|^2 R_i / sum_i |s_i|^2`` (eq. 3.30).

    ``scores`` (m, D) are the score vectors ``s_i = grad_theta log P(tau_i; theta)`` and
    ``returns`` (m,) the returns they multiply. The estimator ``s (R - b)`` has total variance
    ``E[|s|^2 (R - b)^2] - |g|^2``, a parabola in ``b`` whose minimum is this ratio: returns of
    trajectories with large scores (those the gradient is most sensitive to) count more.
    """
    if scores.ndim != 2 or returns.shape != scores.shape[:1]:
        raise ValueError(
            f"scores must be (m, D) and returns (m,), got {tuple(scores.shape)} and "
            f"{tuple(returns.shape)}"
        )
    weight = scores.pow(2).sum(1)  # (m,) |s_i|^2
    if float(weight.sum()) == 0.0:  # every score zero: any b gives the same (zero) estimate
        return returns.float().mean()
    return (weight * returns).sum() / weight.sum()


def time_baseline(returns: torch.Tensor, timestep: torch.Tensor, horizon: int) -> torch.Tensor:
    """``b_t = average reward-to-go at time t`` over the episodes that reach t (eq. 3.31).

    ``returns`` and ``timestep`` are flat (B,): each sample's reward-to-go ``G_t`` and its time
    index within its episode. Returns (horizon,); a time no sample reached gets the nearest
    earlier time's value (0 when there is none).
    """
    if returns.shape != timestep.shape or returns.ndim != 1:
        raise ValueError(
            f"returns and timestep must both be (B,), got {tuple(returns.shape)}, "
            f"{tuple(timestep.shape)}"
        )
    index = timestep.long().clamp(0, horizon - 1)
    total = torch.zeros(horizon).index_add_(0, index, returns.float())
    count = torch.zeros(horizon).index_add_(0, index, torch.ones_like(returns, dtype=torch.float))
    b = torch.zeros(horizon)
    last = 0.0
    for t in range(horizon):  # fill unseen times forward (long episodes are rare, not absent)
        last = float(total[t] / count[t]) if count[t] > 0 else last
        b[t] = last
    return b


def monte_carlo_value_loss(value: torch.Tensor, reward_to_go: torch.Tensor) -> torch.Tensor:
    """Regression of ``V_phi(s_t)`` on the sampled reward-to-go (eq. 3.34): ``mean (V - G)^2``.

    The notes sum over time and average over episodes; the mean over samples has the same
    minimiser and a step size that does not depend on episode length.
    """
    if value.shape != reward_to_go.shape:
        raise ValueError(
            f"value and reward_to_go must have the same shape, got {tuple(value.shape)} and "
            f"{tuple(reward_to_go.shape)}"
        )
    return (value - reward_to_go.detach()).pow(2).mean()


def bootstrap_target(
    reward: torch.Tensor, next_value: torch.Tensor, terminated: torch.Tensor, gamma: float
) -> torch.Tensor:
    """The one-step target ``r + gamma (1 - terminated) V_phi_i(s')`` of eqs. 3.36 / 3.44.

    ``next_value`` comes from the previous parameters ``phi_i`` (no gradient). A time-limit
    truncation still bootstraps: only ``terminated`` switches the next value off.
    """
    return (reward + gamma * (1.0 - terminated) * next_value).detach()


def bootstrap_value_loss(
    value: torch.Tensor,
    target: torch.Tensor,
    params: list[torch.Tensor] | None = None,
    old_params: list[torch.Tensor] | None = None,
    reg: float = 0.0,
) -> torch.Tensor:
    """Fitted value iteration with a trust term (eq. 3.36):
    ``mean (target - V_phi(s))^2 + reg * |phi - phi_i|^2``.

    ``params`` are ``phi`` (with gradient), ``old_params`` the ``phi_i`` the target was computed
    with; the penalty keeps one fit from moving far from the previous value function, since its
    targets are themselves only estimates.
    """
    if value.shape != target.shape:
        raise ValueError(
            f"value and target must have the same shape, got {tuple(value.shape)} and "
            f"{tuple(target.shape)}"
        )
    loss = (target.detach() - value).pow(2).mean()
    if reg > 0.0:
        if params is None or old_params is None:
            raise ValueError("reg > 0 needs params and old_params (phi and phi_i)")
        pairs = zip(params, old_params, strict=True)
        loss = loss + reg * sum((p - q.detach()).pow(2).sum() for p, q in pairs)
    return loss
