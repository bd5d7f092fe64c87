"""ME-TRPO: TRPO on fictitious samples from an ensemble of learned dynamics models.

Lecture 6, section 6.2, Algorithm 8. A single learned model has errors the policy optimisation
finds and exploits (model bias): the policy heads for states where the model promises reward the
real system does not give. ME-TRPO fits K models (different initialisations, bootstrap samples
of ``D``), collects fictitious samples where every step draws one of them at random, so no single
model's errors can be tuned to, and after each TRPO step estimates the policy's return
``eta(theta; phi_k)`` in each model separately. Policy updates stop when the policy no longer
improves on most models (:func:`keep_improving`): it has then left the region the data supports,
and the next real data should come first.

The model pieces (:class:`~fdrl_lib.dynamics.DynamicsEnsemble`, ``fit_dynamics``,
``imagine``) and the TRPO step (lecture 4's ``trpo_update``) are shared; the loop is here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from fdrl_lib import dynamics
from fdrl_lib.algos import mbrl, trpo
from fdrl_lib.envs import EnvLike, env_id, make_env
from fdrl_lib.training import Monitor, TrainResult, check_config, seeded


@dataclass(frozen=True)
class Config(mbrl.Config):
    K: int = 5  # dynamics models in the ensemble
    policy_iterations: int = 50  # N_sim: the most TRPO steps per real iteration
    validate_every: int = 5  # TRPO steps between two estimates of eta(theta; phi_k)
    improve_fraction: float = 0.7  # keep updating while the policy improves on this share of models
    validation_episodes: int = 10  # imagined episodes per model for eta(theta; phi_k)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_config(
            self, positive=("validate_every", "validation_episodes"), unit=("improve_fraction",)
        )


# ----------------------------------------------------------------------------------- the math
def keep_improving(previous: torch.Tensor, current: torch.Tensor, fraction: float = 0.7) -> bool:
    """ME-TRPO's validation rule: go on with policy updates while the policy's estimated
    return improved on at least ``fraction`` of the K models.

    ``previous``, ``current``: ``(K,)`` returns ``eta(theta; phi_k)`` before and after the last
    updates. Counting models, not averaging returns, is the point: one model that the policy
    exploits can promise a huge gain while every other model says the policy got worse.
    """
    previous, current = torch.as_tensor(previous), torch.as_tensor(current)
    if previous.shape != current.shape or previous.dim() != 1:
        raise ValueError(
            f"need two (K,) returns, got {tuple(previous.shape)}, {tuple(current.shape)}"
        )
    improved = (current > previous).float().mean()  # share of models that say "better"
    return bool(improved >= fraction)


def model_returns(model, net, task, starts, horizon: int, spaces) -> torch.Tensor:
    """``eta(theta; phi_k)`` for every member k: the mean return of the policy's mean action
    over imagined episodes from ``starts`` run in member k alone, ``(K,)``. ``spaces``: the real
    env's ``(action_space, observation_space)``."""
    n, K = len(starts), model.K
    members = np.repeat(np.arange(K), n)  # episode k * n + i runs in member k from starts[i]

    def act(obs):
        return net(obs).mean, torch.zeros(len(obs))

    buffer = dynamics.imagine(
        dynamics.member_dynamics(model, members), task.reward, act, np.tile(starts, (K, 1)),
        horizon, spaces[0], observation_space=spaces[1],
    )  # fmt: skip
    return buffer.reward.sum(0).reshape(K, n).mean(1)  # (K,)


# ----------------------------------------------------------------------------------- the loop
def train(
    env: EnvLike = "Pendulum-v1",
    config: Config | None = None,
    *,
    seed: int = 0,
    total_steps: int | None = None,
    callback=None,
    progress: bool = True,
) -> TrainResult:
    """Algorithm 8, in order; returns the best-evaluated policy."""
    c = config or Config()
    if total_steps is not None:
        c = dataclasses.replace(c, total_steps=int(total_steps))
    task = dynamics.task_of(env_id(env))
    with seeded(seed, c.torch_threads) as streams:
        real_env = make_env(env)
        rng, model_rng, env_rng = streams.generator(), streams.generator(), streams.generator()
        # Initialise a policy pi_theta and models f_phi_1 .. f_phi_K; an empty dataset D
        parts, policy = mbrl.policy_parts(real_env, c)
        net = parts[0]
        model = mbrl.make_model(real_env, task, c)
        spaces = mbrl.spaces_of(real_env)
        monitor = Monitor(
            "me_trpo", env, c.total_steps, trpo.eval_settings(c, env),
            seed=seed, callback=callback, progress=progress,
        )  # fmt: skip
        data, step = mbrl.Dataset(), 0
        try:
            while step < c.total_steps:
                # Collect samples from the real system f using pi_theta and add them to D
                step = mbrl.collect_episodes(
                    real_env, mbrl.sampling_act(net), c.episodes_per_iteration, data, monitor,
                    step, env_rng,
                )  # fmt: skip
                # Train all models using D (each on its own bootstrap sample)
                fit = dynamics.fit_dynamics(model, *data.arrays(), model_rng, c.fit_settings())
                monitor.log(step, model_loss=float(np.mean(fit["holdout_loss"])))
                # Fictitious samples: every imagined step draws one of the K models
                fictitious = dynamics.random_member_dynamics(model, rng)
                validation_starts = mbrl.start_states(
                    data, c.validation_episodes, rng, c.reset_share
                )
                eta = model_returns(model, net, task, validation_starts, c.horizon, spaces)
                updates = 0
                for updates in range(1, c.policy_iterations + 1):
                    starts = mbrl.start_states(data, c.imagined_episodes, rng, c.reset_share)
                    # Update the policy using TRPO on the fictitious samples
                    stats = mbrl.policy_step_in_model(
                        parts, fictitious, task, starts, spaces, c, rng
                    )
                    if updates % c.validate_every == 0:
                        # Estimate the performances eta(theta; phi_k); stop when most say worse
                        new_eta = model_returns(
                            model, net, task, validation_starts, c.horizon, spaces
                        )
                        if not keep_improving(eta, new_eta, c.improve_fraction):
                            break
                        eta = new_eta
                monitor.log(step, policy_updates=updates, **stats)
                if monitor.after_update(step, policy, [net]):
                    break
        finally:
            real_env.close()
        kept = monitor.finish(step, policy, [net])
    checkpoint = mbrl.checkpoint_of("me_trpo", c, net, env)
    return TrainResult(policy, config=c, algo="me_trpo", checkpoint=checkpoint, **kept)


def load(path) -> TrainResult:
    """Rebuild the policy saved by ``TrainResult.save``."""
    return mbrl.load(path, "me_trpo", Config)
