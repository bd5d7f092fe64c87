"""MB-MPO: meta-learn a policy that adapts to any model of the ensemble in one gradient step.

Lecture 6, section 6.3, Algorithm 9. Each of the K learned models is treated as its own task.
For model k the policy takes one policy-gradient step on trajectories imagined in that model,
``theta'_k = theta + alpha grad J_k(theta)`` (:func:`adapt`); the adapted policy imagines new
trajectories in the same model, and the pre-adaptation parameters ``theta`` move to raise the
adapted policies' returns averaged over models (:func:`meta_objective`, differentiated through
the adaptation step: a second-order gradient) by a TRPO step (:func:`meta_trpo_step`; the
MB-MPO paper's meta-optimizer too: plain gradient steps on the meta-objective had not solved
Pendulum-v1 in 10,000 real steps). Real data is collected with the adapted
policies, so ``D`` covers what the adapted policies will do. Where ME-TRPO asks for a policy
that is robust on every model, MB-MPO asks for one that adapts fast to whichever is right.

``result.policy`` is the mean action of the pre-adaptation policy ``pi_theta``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import functional_call

from fdrl_lib import dynamics
from fdrl_lib.algos import mbrl, trpo
from fdrl_lib.envs import EnvLike, env_id, make_env
from fdrl_lib.training import Monitor, TrainResult, check_config, seeded


@dataclass(frozen=True)
class Config(mbrl.Config):
    K: int = 5  # dynamics models, each one task of the meta-learning
    alpha: float = 0.01  # inner (adaptation) step size of the policy-gradient step (at 0.05 the
    # adapted policies did well in the models while the kept pre-adaptation one lagged far behind)
    policy_iterations: int = 20  # meta-updates per real iteration
    imagined_episodes: int = 10  # imagined episodes per model, before and after adaptation
    value_epochs: int = 2  # passes over the imagined batches per value fit (2K batches a step)
    eval_episodes: int = 50  # 20 let a policy that fails from a few start states stop the run
    # The meta-update (Algorithm 9's step beta) is a TRPO step on the meta-objective, as in the
    # MB-MPO paper: the natural direction of its gradient, scaled to mbrl.Config.max_kl between
    # the pre-adaptation policies before and after, with lecture 4's backtracking line search.

    def __post_init__(self) -> None:
        super().__post_init__()
        check_config(self, positive=("alpha",))


# ----------------------------------------------------------------------------------- the math
def policy_gradient_objective(dist, batch: dict) -> torch.Tensor:
    """``J(theta) ~ mean(pi_theta(a|s) / pi_old(a|s) * A)`` on a batch sampled from ``pi_old``
    (lecture 4, eq. 4.4); its gradient at ``theta = theta_old`` is the policy gradient."""
    ratio = torch.exp(dist.log_prob(batch["action"]) - batch["log_prob"])
    return (ratio * batch["advantage"]).mean()


def adapt(net, params: dict, batch: dict, alpha: float) -> dict:
    """``theta' = theta + alpha grad_theta J(theta)`` on ``batch`` (one policy-gradient step).

    ``params``: name -> tensor, the parameters ``theta`` (``net``'s own or a copy). The step is
    kept in the graph (``create_graph``), so a loss of ``theta'`` differentiates back to
    ``theta`` through the step, second-order terms included.
    """
    objective = policy_gradient_objective(functional_call(net, params, (batch["obs"],)), batch)
    grads = torch.autograd.grad(objective, list(params.values()), create_graph=True)
    return {name: p + alpha * g for (name, p), g in zip(params.items(), grads, strict=True)}


def meta_objective(net, params: dict, inner: list[dict], outer: list[dict], alpha: float):
    """``(1 / K) sum_k J_k(theta'_k)``: each adapted policy scored on the batch ``outer[k]`` it
    sampled itself in model k, with ``theta'_k = adapt(theta, inner[k])``. Differentiable in
    ``params``: its gradient is the meta-gradient of Algorithm 9's last line."""
    if len(inner) != len(outer) or not inner:
        raise ValueError(
            f"need one inner and one outer batch per model, got {len(inner)}, {len(outer)}"
        )
    total = 0.0
    for inner_k, outer_k in zip(inner, outer, strict=True):
        adapted = adapt(net, params, inner_k, alpha)
        total = total + policy_gradient_objective(
            functional_call(net, adapted, (outer_k["obs"],)), outer_k
        )
    return total / len(inner)


def meta_trpo_step(net, inner: list[dict], outer: list[dict], alpha: float, config) -> dict:
    """Algorithm 9's meta-update ``theta <- theta + beta grad (1/K) sum_k J_k(theta'_k)`` as a
    TRPO step (lecture 4, Algorithm 6), in place on ``net``'s parameters ``theta``.

    The direction is ``F^-1 g``: ``g`` the meta-gradient (second order, through :func:`adapt`),
    ``F`` the Fisher matrix of ``KL(pi_theta_old || pi_theta)`` on the states of the inner
    batches (the pre-adaptation policy's). ``beta`` is chosen so that the quadratic model of that
    KL reaches ``config.max_kl``, then halved until the exact KL is within it and the
    meta-objective (adaptation redone at the new ``theta``) improved. Returns ``kl``,
    ``meta_gain`` and ``backtracks`` (-1: no step was accepted and ``theta`` is unchanged).
    """
    theta = dict(net.named_parameters())
    params = list(theta.values())
    obs = torch.cat([batch["obs"] for batch in inner])
    objective = meta_objective(net, theta, inner, outer, alpha)
    g = trpo.flat_grad(objective, params)
    with torch.no_grad():
        old_dist = trpo.detached(net(obs))  # pi_theta_old on the pre-adaptation states
    fvp = trpo.fisher_product(trpo.mean_kl(old_dist, net(obs)), params, config.damping)
    direction = trpo.conjugate_gradient(fvp, g, config.cg_iters)
    quadratic = 0.5 * (direction @ fvp(direction))
    full_step = torch.sqrt(config.max_kl / quadratic.clamp_min(1e-12)) * direction
    old_params, old_objective = trpo.get_flat(params), float(objective.detach())
    fraction = 1.0
    for i in range(config.backtrack_iters):
        trpo.set_flat(params, old_params + fraction * full_step)
        with torch.no_grad():
            kl = float(trpo.mean_kl(old_dist, net(obs)))
        if kl <= config.max_kl:  # adapt() needs gradients: the objective is scored outside
            new_objective = float(meta_objective(net, theta, inner, outer, alpha).detach())
            if new_objective > old_objective:
                return {"kl": kl, "meta_gain": new_objective - old_objective, "backtracks": i}
        fraction *= config.backtrack_ratio
    trpo.set_flat(params, old_params)  # no acceptable step: keep theta_old
    return {"kl": 0.0, "meta_gain": 0.0, "backtracks": -1}


# ----------------------------------------------------------------------------------- the loop
def imagined_batch(net, params, model, k: int, task, starts, c, value_net, spaces) -> dict:
    """Episodes imagined in model k alone under the policy with parameters ``params``, as a
    flat batch with GAE advantages (normalised) and value targets."""

    def act(obs):
        dist = functional_call(net, params, (obs,))
        action = dist.sample()
        return action, dist.log_prob(action)

    model_k = dynamics.member_dynamics(model, np.full(len(starts), k))  # model k all the way
    buffer = dynamics.imagine(
        model_k, task.reward, act, starts, c.horizon, spaces[0], value_net, spaces[1]
    )
    advantage, returns = trpo.rollout_advantages(buffer, c.gamma, c.lam, normalize=True)
    batch = trpo.policy_batch(buffer, None, advantage)
    batch["returns"] = returns.reshape(-1)
    batch["episode_return"] = float(buffer.reward.sum(0).mean())
    return batch


def detached_params(params: dict) -> dict:
    return {name: p.detach() for name, p in params.items()}


def train(
    env: EnvLike = "Pendulum-v1",
    config: Config | None = None,
    *,
    seed: int = 0,
    total_steps: int | None = None,
    callback=None,
    progress: bool = True,
) -> TrainResult:
    """Algorithm 9, in order; returns the best-evaluated (pre-adaptation) policy."""
    c = config or Config()
    if total_steps is not None:
        c = dataclasses.replace(c, total_steps=int(total_steps))
    task = dynamics.task_of(env_id(env))
    with seeded(seed, c.torch_threads) as streams:
        real_env = make_env(env)
        space = mbrl.spaces_of(real_env)
        rng, model_rng, env_rng = streams.generator(), streams.generator(), streams.generator()
        # Initialise a policy pi_theta and models f_phi_1 .. f_phi_K; an empty dataset D
        (net, value_net, value_optimizer, trpo_config), policy = mbrl.policy_parts(real_env, c)
        theta = dict(net.named_parameters())
        model = mbrl.make_model(real_env, task, c)
        monitor = Monitor(
            "mb_mpo", env, c.total_steps, trpo.eval_settings(c, env),
            seed=seed, callback=callback, progress=progress,
        )  # fmt: skip
        data, step, adapted = mbrl.Dataset(), 0, [detached_params(theta)] * c.K
        try:
            while step < c.total_steps:
                # Collect samples from the real system with the adapted policies pi_theta'_k
                for k in range(c.K):
                    act = adapted_act(net, adapted[k])
                    step = mbrl.collect_episodes(real_env, act, 1, data, monitor, step, env_rng)
                # Train all models using D
                fit = dynamics.fit_dynamics(model, *data.arrays(), model_rng, c.fit_settings())
                monitor.log(step, model_loss=float(np.mean(fit["holdout_loss"])))
                meta_steps = []  # the TRPO meta-steps' diagnostics, this iteration
                for _ in range(c.policy_iterations):
                    inner, outer = [], []
                    for k in range(c.K):
                        starts = mbrl.start_states(data, c.imagined_episodes, rng, c.reset_share)
                        # T_k: trajectories from model k under pi_theta
                        inner.append(
                            imagined_batch(
                                net,
                                detached_params(theta),
                                model,
                                k,
                                task,
                                starts,
                                c,
                                value_net,
                                space,
                            )
                        )
                        # theta'_k = theta + alpha grad J_k(theta), using T_k
                        adapted[k] = detached_params(adapt(net, theta, inner[-1], c.alpha))
                        # T'_k: imaginary trajectories from model k under pi_theta'_k
                        outer.append(
                            imagined_batch(
                                net, adapted[k], model, k, task, starts, c, value_net, space
                            )
                        )
                    # theta <- theta + beta grad (1/K) sum_k J_k(theta'_k), using the T'_k
                    meta_steps.append(meta_trpo_step(net, inner, outer, c.alpha, trpo_config))
                    obs = torch.cat([b["obs"] for b in inner + outer])
                    returns = torch.cat([b["returns"] for b in inner + outer])
                    value_loss = trpo.fit_value(
                        value_net, value_optimizer, obs, returns, c.value_epochs, c.value_batch, rng
                    )
                monitor.log(
                    step, value_loss=value_loss,
                    imagined_return=float(np.mean([b["episode_return"] for b in inner])),
                    adapted_return=float(np.mean([b["episode_return"] for b in outer])),
                    meta_kl=float(np.mean([m["kl"] for m in meta_steps])),
                    meta_accepted=float(np.mean([m["backtracks"] >= 0 for m in meta_steps])),
                )  # fmt: skip
                if monitor.after_update(step, policy, [net]):
                    break
        finally:
            real_env.close()
        kept = monitor.finish(step, policy, [net])
    checkpoint = mbrl.checkpoint_of("mb_mpo", c, net, env)
    return TrainResult(policy, config=c, algo="mb_mpo", checkpoint=checkpoint, **kept)


def adapted_act(net, params: dict):
    """``obs -> action``: a draw from the adapted policy ``pi_theta'`` for the real env."""

    def act(obs):
        with torch.no_grad():
            obs = torch.as_tensor(obs, dtype=torch.float32)[None]
            return functional_call(net, params, (obs,)).sample()[0].numpy()

    return act


def load(path) -> TrainResult:
    """Rebuild the policy saved by ``TrainResult.save``."""
    return mbrl.load(path, "mb_mpo", Config)
