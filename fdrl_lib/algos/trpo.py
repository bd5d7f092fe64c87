"""TRPO: maximise the importance-sampled surrogate inside a KL trust region.

Lecture 4, Algorithm 6: collect a rollout with ``pi_old``, estimate advantages (GAE, lecture 3),
then solve ``max L(pi) = E_old[pi(a|s) / pi_old(a|s) A(s, a)]`` (eqs. 4.1-4.4) subject to
``E_old[KL] <= epsilon`` (eq. 4.5): the step direction is the natural gradient ``F^-1 g``, found
by conjugate gradient on Fisher-vector products (Hessian-vector products of the mean KL, with
damping), scaled to the edge of the trust region, then shortened by a backtracking line search
until the surrogate improves and the measured KL (eq. 4.10's sample estimate, and the exact mean
KL of the two policies) satisfies the constraint. The value function is fitted separately.

:func:`trpo_update` is the policy step alone, apart from the env loop: it works for any policy
whose forward pass returns a ``torch.distributions`` object (categorical or Gaussian), so
lecture 6's ME-TRPO runs it on imagined rollouts. Observations are normalised by running
statistics for continuous control (``normalize_obs=None`` picks that by action space).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from fdrl_lib.algos.onpolicy import (  # noqa: F401 (also importable from here, as before)
    DeterministicPolicy,
    eval_settings,
    make_actor,
    make_policy,
    modules_of,
    obs_dim_of,
    policy_batch,
    policy_checkpoint,
    policy_parts,
    probe_spaces,
    rebuild,
    rollout_advantages,
    track_rollout,
)
from fdrl_lib.buffers import RolloutBuffer, collect_rollout
from fdrl_lib.envs import EnvLike, make_env, make_vec_env
from fdrl_lib.nn import ValueNetwork
from fdrl_lib.training import (
    Monitor,
    TrainResult,
    check_config,
    config_from_dict,
    load_checkpoint,
    seeded,
)

_checkpoint = policy_checkpoint  # the name PPO and older code import


@dataclass(frozen=True)
class Config:
    total_steps: int = 100_000  # env steps to train for
    num_envs: int = 8  # parallel envs in the rollout (more envs: fewer, cheaper policy calls)
    rollout_steps: int = 128  # T: steps per env per iteration (a batch is T * num_envs)
    hidden: tuple[int, ...] = (64, 64)  # hidden widths of the policy and the value network
    gamma: float = 0.99  # discount
    lam: float = 0.98  # GAE lambda
    max_kl: float = 0.02  # epsilon of eq. 4.5: the trust region's radius in mean KL
    cg_iters: int = 10  # conjugate-gradient iterations for F^-1 g
    damping: float = 0.1  # F + damping * I: keeps CG well-posed where F is nearly singular
    backtrack_iters: int = 10  # line search: at most this many halvings of the step
    backtrack_ratio: float = 0.5  # each failed try shrinks the step by this factor
    value_lr: float = 1e-3  # Adam step size of the value fit
    value_epochs: int = 5  # passes over the batch per value fit (40 Adam steps of 128 samples)
    value_batch: int = 128  # minibatch size of the value fit
    normalize_advantage: bool = True  # zero-mean, unit-std advantages per batch
    normalize_obs: bool | None = None  # running obs normalisation (None: on for Box actions)
    log_std: float = 0.0  # initial log std of a Gaussian policy
    torch_threads: int = 1  # small networks run fastest on one thread
    eval_every: int = 2_000  # env steps between evaluations; the best-evaluated policy is kept
    eval_episodes: int = 10  # episodes per evaluation
    target_return: float | None = None  # stop at this evaluation return (None: see below)
    target_margin: float = 25.0  # None target: stop at the env's threshold + this margin
    stop_at_target: bool = True  # False: use the whole budget (still keeping the best policy)

    def __post_init__(self) -> None:
        check_config(
            self,
            positive=(
                "total_steps", "num_envs", "rollout_steps", "max_kl", "cg_iters",
                "backtrack_iters", "value_lr", "value_epochs", "value_batch", "torch_threads",
                "eval_every", "eval_episodes",
            ),
            non_negative=("damping", "target_margin"),
            unit=("gamma", "lam", "backtrack_ratio"),
        )  # fmt: skip


# ----------------------------------------------------------------------------- the math
def surrogate(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantage: torch.Tensor):
    """Eq. 4.4: ``L = mean(pi(a|s) / pi_old(a|s) * A)`` over samples drawn from ``pi_old``.

    All three are ``(B,)``; the ratio is ``exp(log_prob - old_log_prob)`` (eq. 4.12). At
    ``pi = pi_old`` its gradient is the policy gradient (eq. 4.2 with ``theta = theta_old``).
    """
    ratio = torch.exp(log_prob - old_log_prob)  # (B,) importance weights
    return (ratio * advantage).mean()


def sample_kl(old_log_prob: torch.Tensor, log_prob: torch.Tensor) -> torch.Tensor:
    """Eq. 4.10: ``KL(pi_old || pi) ~= mean(log pi_old(a|s) - log pi(a|s))``, a ~ pi_old.

    The dynamics cancel (eqs. 4.6-4.9), so only the policies' log-probabilities of the sampled
    actions are needed. Unbiased, but noisy (single samples can be negative).
    """
    return (old_log_prob - log_prob).mean()


def conjugate_gradient(
    fvp: Callable[[torch.Tensor], torch.Tensor],
    g: torch.Tensor,
    iters: int = 10,
    tol: float = 1e-10,
) -> torch.Tensor:
    """Solve ``F x = g`` for symmetric positive-definite ``F`` given only ``fvp(v) = F v``.

    Each iteration moves along a direction conjugate to the previous ones and updates the
    residual ``r = g - F x``; in exact arithmetic ``n`` iterations solve an ``n x n`` system.
    Stops early once ``r . r < tol``. ``g`` is flat ``(n,)``; returns ``x`` ``(n,)``.
    """
    x = torch.zeros_like(g)
    residual = g.clone()  # r = g - F x with x = 0
    direction = residual.clone()
    rr = residual @ residual
    for _ in range(iters):
        if rr < tol:
            break
        F_direction = fvp(direction)
        alpha = rr / (direction @ F_direction)  # exact minimiser along the direction
        x = x + alpha * direction
        residual = residual - alpha * F_direction
        rr_new = residual @ residual
        direction = residual + (rr_new / rr) * direction  # conjugate to all earlier directions
        rr = rr_new
    return x


def flat_grad(
    y: torch.Tensor, params, create_graph: bool = False, retain_graph: bool | None = None
) -> torch.Tensor:
    """``d y / d params`` as one flat vector (zeros for parameters ``y`` does not use)."""
    grads = torch.autograd.grad(
        y, params, create_graph=create_graph, retain_graph=retain_graph, allow_unused=True
    )
    return torch.cat([
        (torch.zeros_like(p) if g is None else g).reshape(-1)
        for g, p in zip(grads, params, strict=True)
    ])  # fmt: skip


def fisher_vector_product(
    kl: torch.Tensor, params, v: torch.Tensor, damping: float = 0.0
) -> torch.Tensor:
    """``(F + damping I) v`` with ``F`` the Hessian of the mean KL at ``pi = pi_old``.

    ``kl`` is the mean ``KL(pi_old || pi_theta)`` as a function of ``params`` (a graph, still
    differentiable); its Hessian at ``theta = theta_old`` is the Fisher information matrix. Two
    backward passes: ``grad(grad(kl) . v)``, never the n x n matrix itself.
    """
    grad_kl = flat_grad(kl, params, create_graph=True)
    return flat_grad(grad_kl @ v, params, create_graph=False) + damping * v


def fisher_product(kl: torch.Tensor, params, damping: float = 0.0):
    """``v -> (F + damping I) v`` like :func:`fisher_vector_product`, for many ``v`` at one
    ``theta``: ``grad(kl)`` (with its graph) is built once, so each product costs one backward
    pass instead of a forward and two (conjugate gradient asks for ~10 products per step)."""
    grad_kl = flat_grad(kl, params, create_graph=True)

    def fvp(v: torch.Tensor) -> torch.Tensor:
        return flat_grad(grad_kl @ v, params, retain_graph=True) + damping * v

    return fvp


def mean_kl(old_dist, dist) -> torch.Tensor:
    """Exact ``E_s[KL(pi_old(.|s) || pi(.|s))]`` over the batch's states (categorical or
    Gaussian, via ``torch.distributions.kl_divergence``)."""
    return torch.distributions.kl_divergence(old_dist, dist).mean()


def detached(dist):
    """A copy of distribution ``dist`` with no gradient (pi_old, frozen for the update)."""
    if isinstance(dist, torch.distributions.Categorical):
        return torch.distributions.Categorical(logits=dist.logits.detach())
    if isinstance(dist, torch.distributions.Independent):
        base = dist.base_dist
        normal = torch.distributions.Normal(base.loc.detach(), base.scale.detach())
        return torch.distributions.Independent(normal, dist.reinterpreted_batch_ndims)
    raise ValueError(f"need a Categorical or Independent(Normal) policy, got {type(dist)}")


def get_flat(params) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


def set_flat(params, flat: torch.Tensor) -> None:
    start = 0
    with torch.no_grad():
        for p in params:
            p.copy_(flat[start : start + p.numel()].view_as(p))
            start += p.numel()


def trpo_update(policy: torch.nn.Module, batch: dict, config: Config | None = None) -> dict:
    """One TRPO policy step (the last three lines of Algorithm 6), in place on ``policy``.

    ``batch``: ``obs`` (B, ...), ``action`` (B, ...), ``advantage`` (B,), from the policy as it
    is now (``pi_old``: its log-probabilities are recomputed here, so a batch of imagined
    rollouts needs no ``log_prob``). ``policy(obs)`` must return a torch distribution.
    Returns diagnostics: ``kl`` (exact mean KL after the step), ``sample_kl`` (eq. 4.10),
    ``surrogate_gain``, ``backtracks`` (line-search halvings; -1 if no step was accepted),
    ``step_fraction`` and ``entropy``.
    """
    c = config or Config()
    params = [p for p in policy.parameters() if p.requires_grad]
    obs, action, advantage = batch["obs"], batch["action"], batch["advantage"]
    with torch.no_grad():
        old_dist = detached(policy(obs))  # pi_old, frozen
        old_log_prob = old_dist.log_prob(action)  # (B,)

    def surrogate_and_kl():
        dist = policy(obs)
        log_prob = dist.log_prob(action)
        return surrogate(log_prob, old_log_prob, advantage), mean_kl(old_dist, dist), log_prob

    dist = policy(obs)  # = pi_old, but a function of the parameters
    loss = surrogate(dist.log_prob(action), old_log_prob, advantage)
    g = flat_grad(loss, params, retain_graph=True)  # policy gradient (eq. 4.2 at theta_old)
    fvp = fisher_product(mean_kl(old_dist, dist), params, c.damping)  # F v, by backprop
    direction = conjugate_gradient(fvp, g, c.cg_iters)  # ~ F^-1 g
    # the quadratic model of the KL, direction^T F direction / 2, reaches max_kl at this scale
    quadratic = 0.5 * (direction @ fvp(direction))
    scale = torch.sqrt(c.max_kl / quadratic.clamp_min(1e-12))
    full_step = scale * direction
    old_params, old_loss = get_flat(params), float(loss.detach())
    fraction, backtracks = 1.0, -1
    with torch.no_grad():
        for i in range(c.backtrack_iters):
            set_flat(params, old_params + fraction * full_step)
            new_loss, kl, log_prob = surrogate_and_kl()
            if float(kl) <= c.max_kl and float(new_loss) > old_loss:  # eq. 4.5 and improvement
                backtracks = i
                break
            fraction *= c.backtrack_ratio
        else:
            set_flat(params, old_params)  # no acceptable step: keep pi_old
            new_loss, kl, log_prob = surrogate_and_kl()
            fraction = 0.0
        entropy = policy(obs).entropy().mean()
    return {
        "kl": float(kl),
        "sample_kl": float(sample_kl(old_log_prob, log_prob)),
        "surrogate_gain": float(new_loss) - old_loss,
        "backtracks": backtracks,
        "step_fraction": fraction,
        "entropy": float(entropy),
    }


def fit_value(value_net, optimizer, obs, returns, epochs: int, batch_size: int, rng) -> float:
    """Regress ``V(s)`` on the lambda-returns by minibatch Adam; returns the last loss."""
    loss = torch.zeros(())
    for _ in range(epochs):
        for index in np.array_split(rng.permutation(len(obs)), max(1, len(obs) // batch_size)):
            index = torch.from_numpy(index)
            loss = (value_net(obs[index]) - returns[index]).pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return float(loss.detach())


# ----------------------------------------------------------------------------- the loop
def train(
    env: EnvLike,
    config: Config | None = None,
    *,
    seed: int = 0,
    total_steps: int | None = None,
    callback=None,
    progress: bool = True,
) -> TrainResult:
    """Train TRPO (Algorithm 6); returns the best-evaluated policy."""
    config = config or Config()
    if total_steps is not None:
        config = dataclasses.replace(config, total_steps=int(total_steps))
    c = config
    with seeded(seed, c.torch_threads) as streams:
        probe = make_env(env)
        net, normalizer, policy = policy_parts(probe, c)
        probe.close()
        value_net = ValueNetwork(obs_dim_of(net), c.hidden)
        value_optimizer = torch.optim.Adam(value_net.parameters(), lr=c.value_lr, fused=True)
        rng = streams.generator()
        venv = make_vec_env(env, num_envs=c.num_envs, seed=seed)
        buffer = RolloutBuffer.for_env(venv, c.rollout_steps)
        monitor = Monitor(
            "trpo", env, c.total_steps, eval_settings(c, env),
            seed=seed, callback=callback, progress=progress,
        )  # fmt: skip
        modules = modules_of(net, normalizer)
        obs, _ = venv.reset(seed=seed)
        step = 0
        try:
            while step < c.total_steps:
                # Run the policy for T timesteps (N envs in parallel)
                obs, _ = collect_rollout(
                    venv, make_actor(net, normalizer), buffer, obs,
                    value_fn=lambda o: value_net(o if normalizer is None else normalizer(o)),
                )  # fmt: skip
                step = track_rollout(monitor, buffer, step)
                # Estimate the advantage function at all timesteps
                advantage, returns = rollout_advantages(
                    buffer, c.gamma, c.lam, c.normalize_advantage
                )
                batch = policy_batch(buffer, normalizer, advantage)
                # Policy gradient g, CG for F^-1 g, line search on surrogate and KL
                stats = trpo_update(net, batch, c)
                value_loss = fit_value(
                    value_net, value_optimizer, batch["obs"], returns.reshape(-1),
                    c.value_epochs, c.value_batch, rng,
                )  # fmt: skip
                if normalizer is not None:  # new statistics only after the update used the old
                    normalizer.update(batch["raw_obs"])
                monitor.log(step, value_loss=value_loss, **stats)
                if monitor.after_update(step, policy, modules):
                    break
        finally:
            venv.close()
        kept = monitor.finish(step, policy, modules)
    checkpoint = policy_checkpoint("trpo", c, net, normalizer, probe_spaces(env))
    return TrainResult(policy, config=c, algo="trpo", checkpoint=checkpoint, **kept)


def load(path) -> TrainResult:
    """Rebuild the policy saved by ``TrainResult.save``."""
    payload = load_checkpoint(path, "trpo")
    config = config_from_dict(Config, payload["config"])
    policy = rebuild(payload, config)
    return TrainResult(
        policy, payload.get("history", []), config, algo="trpo", checkpoint=payload,
        kept_step=payload.get("kept_step"),
    )  # fmt: skip
