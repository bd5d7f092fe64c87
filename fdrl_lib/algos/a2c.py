"""A2C: advantage actor-critic, the synchronous form of A3C, with n-step or GAE advantages.

Lecture 3, Algorithm 5 and eqs. 3.37-3.45. N envs run side by side for ``n_steps`` steps; each
step's ``Q_hat(s_t, a_t)`` looks ahead to the end of that short rollout and bootstraps from the
critic there (eqs. 3.41-3.43: the k-step look-ahead, k = ``n_steps`` for the first step of the
rollout, 1 for its last), or is GAE's lambda-weighted mix of all the k-step estimates. The actor
ascends ``grad log pi(a_t | s_t) (Q_hat - V(s_t))`` (eq. 3.45); the critic regresses ``V_phi`` on
``Q_hat``. Algorithm 5's kappa term is left out: one gradient step from ``phi_i`` per rollout
already stays close to it, and the penalty's gradient at ``phi_i`` is zero (``vpg`` has it, for
its multi-step bootstrap fits).
Actor and critic are separate networks, or one body with two heads (``Config.shared``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from fdrl_lib.algos.vpg import (
    make_policy,
    policy_gradient_surrogate,
    policy_kwargs,
)
from fdrl_lib.buffers import RolloutBuffer, collect_rollout
from fdrl_lib.envs import EnvLike, make_vec_env
from fdrl_lib.nn import ValueNetwork, mlp
from fdrl_lib.returns import gae
from fdrl_lib.training import (
    EvalSettings,
    Monitor,
    TrainResult,
    check_config,
    config_from_dict,
    load_checkpoint,
    seeded,
)

ADVANTAGES = ("nstep", "gae")


@dataclass(frozen=True)
class Config:
    total_steps: int = 100_000  # env steps to train for
    num_envs: int = 8  # envs stepped side by side (the synchronous stand-in for A3C's workers)
    n_steps: int = 8  # rollout length per env: the longest look-ahead k before bootstrapping
    advantage: str = "gae"  # "nstep" (eqs. 3.41-3.43) or "gae" (lambda-weighted k-step mix)
    lam: float = 0.95  # GAE's lambda (1: the n-step estimate, 0: the one-step TD error)
    gamma: float = 0.99  # discount (eq. 3.39: a variance-reducing knob, not only economics)
    lr: float = 3e-3  # Adam step size (actor and critic)
    value_coef: float = 0.5  # weight of the critic's loss in the summed loss
    entropy_coef: float = 0.0  # bonus for the policy's entropy (0: the lecture's plain gradient)
    max_grad_norm: float = 0.5  # clip the gradient norm to this (0 = no clipping)
    shared: bool = False  # one body with a policy head and a value head, or two networks
    hidden: tuple[int, ...] = (64, 64)  # hidden widths (of each network, or of the shared body)
    torch_threads: int = 1  # small networks run fastest on one thread
    eval_every: int = 5_000  # env steps between evaluations; the best-evaluated policy is kept
    eval_episodes: int = 10  # episodes per evaluation
    target_return: float | None = 500.0  # stop at a perfect evaluation (None: the env's 475)
    stop_at_target: bool = True  # False: use the whole budget (still keeping the best policy)

    def __post_init__(self) -> None:
        check_config(
            self,
            positive=(
                "total_steps", "num_envs", "n_steps", "lr", "torch_threads", "eval_every",
                "eval_episodes",
            ),
            non_negative=("value_coef", "entropy_coef", "max_grad_norm"),
            unit=("gamma", "lam"),
        )  # fmt: skip
        if self.advantage not in ADVANTAGES:
            raise ValueError(
                f"Config.advantage must be one of {ADVANTAGES}, got {self.advantage!r}"
            )


# ------------------------------------------------------------------------------ the math
def advantage_estimates(
    reward, value, next_value, terminated, truncated, gamma: float, lam: float, kind: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(advantage, Q_hat)``, each (T, N), from a rollout of T steps of N envs.

    ``kind="nstep"``: ``Q_hat_t = r_t + gamma r_{t+1} + ... + gamma^k V(s_{t+k})``, looking ahead
    to the rollout's end (or the episode's end: a terminated episode adds nothing after it, a
    truncated one bootstraps from its real last observation), eqs. 3.41-3.43. ``kind="gae"``:
    ``A_t = sum_l (gamma lam)^l delta_{t+l}``, the lambda-weighted average of those k-step
    advantages. In both ``advantage = Q_hat - V(s_t)``; ``Q_hat`` is the critic's target.
    """
    if kind not in ADVANTAGES:
        raise ValueError(f"kind must be one of {ADVANTAGES}, got {kind!r}")
    lam = 1.0 if kind == "nstep" else lam  # the n-step estimate is GAE with lambda = 1
    advantage = gae(reward, value, next_value, terminated, truncated, gamma, lam)
    return advantage, advantage + value


def actor_critic_loss(
    log_prob: torch.Tensor,
    advantage: torch.Tensor,
    value: torch.Tensor,
    value_target: torch.Tensor,
    entropy: torch.Tensor | None = None,
    value_coef: float = 0.5,
    entropy_coef: float = 0.0,
) -> torch.Tensor:
    """Algorithm 5's two updates as one loss to descend (per-step means, shapes alike):
    ``-surrogate(log pi, A) + value_coef * mean (Q_hat - V)^2 - entropy_coef * mean H[pi]``."""
    loss = -policy_gradient_surrogate(log_prob, advantage)
    loss = loss + value_coef * (value_target.detach() - value).pow(2).mean()
    if entropy is not None and entropy_coef > 0:
        loss = loss - entropy_coef * entropy.mean()
    return loss


# ---------------------------------------------------------------------------- networks
class ActorCritic(nn.Module):
    """``pi_theta(a | s)`` and ``V_phi(s)``: two networks, or one body with two heads.

    ``sample(obs)`` draws actions with their log-probabilities, ``log_prob_entropy(obs, action)``
    scores them, ``value(obs)`` is (B,), ``act(obs)`` the deterministic action of one observation
    (the most likely one, or the Gaussian's mean: the policy :func:`train` returns).
    """

    def __init__(
        self, obs_dim: int, actions: int, discrete: bool, hidden=(64, 64), shared: bool = False
    ) -> None:
        super().__init__()
        self.shared, self.discrete = shared, discrete
        if shared:
            self.body = mlp([obs_dim, *hidden], activation=nn.Tanh, output_activation=nn.Tanh)
            self.policy_head = nn.Linear(hidden[-1], actions)
            self.value_head = nn.Linear(hidden[-1], 1)
            if not discrete:
                self.log_std = nn.Parameter(torch.full((actions,), -0.5))
        else:
            self.actor = make_policy(obs_dim, actions, discrete, hidden)
            self.critic = ValueNetwork(obs_dim, tuple(hidden))

    def _head(self, obs: torch.Tensor) -> torch.Tensor:
        """Logits (discrete) or the Gaussian's mean (continuous), (B, A)."""
        if self.shared:
            return self.policy_head(self.body(obs.flatten(1)))
        return (self.actor.logits if self.discrete else self.actor.mean)(obs.flatten(1))

    def _gaussian(self, mean: torch.Tensor):
        log_std = self.log_std if self.shared else self.actor.log_std
        normal = torch.distributions.Normal(mean, log_std.exp().expand_as(mean))
        return torch.distributions.Independent(normal, 1)  # log_prob sums over dims: (B,)

    def log_prob_entropy(self, obs: torch.Tensor, action: torch.Tensor):
        """``(log pi(a | s), H[pi(. | s)])``, each (B,)."""
        out = self._head(obs)
        if not self.discrete:
            distribution = self._gaussian(out)
            return distribution.log_prob(action), distribution.entropy()
        # the softmax written out: Categorical's numbers without its per-call argument checks
        log_p = out.log_softmax(-1)  # (B, A)
        return log_p.gather(1, action.long()[:, None]).squeeze(1), -(log_p.exp() * log_p).sum(-1)

    def sample(self, obs: torch.Tensor):
        """``(action, log_prob)`` for :func:`fdrl_lib.buffers.collect_rollout`."""
        out = self._head(obs)
        if not self.discrete:
            distribution = self._gaussian(out)
            action = distribution.sample()
            return action, distribution.log_prob(action)
        log_p = out.log_softmax(-1)  # (B, A)
        action = torch.multinomial(log_p.exp(), 1)  # (B, 1)
        return action.squeeze(1), log_p.gather(1, action).squeeze(1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        if not self.shared:
            return self.critic(obs)
        return self.value_head(self.body(obs.flatten(1))).squeeze(-1)  # (B,)

    def act(self, obs):
        with torch.inference_mode():
            out = self._head(torch.as_tensor(obs, dtype=torch.float32)[None])
        return int(out.argmax()) if self.discrete else out[0].numpy()


def rollout_loss(model: ActorCritic, buffer: RolloutBuffer, c) -> torch.Tensor:
    """Algorithm 5 on one rollout: form ``Q_hat`` and advantages, return the summed loss."""
    advantage, q_hat = advantage_estimates(
        buffer.reward, buffer.value, buffer.next_value, buffer.terminated, buffer.truncated,
        c.gamma, c.lam, c.advantage,
    )  # fmt: skip
    obs, action = buffer.obs.flatten(0, 1), buffer.action.flatten(0, 1)
    log_prob, entropy = model.log_prob_entropy(obs, action)
    return actor_critic_loss(
        log_prob, advantage.flatten(), model.value(obs), q_hat.flatten(), entropy,
        c.value_coef, c.entropy_coef,
    )  # fmt: skip


def update(model: ActorCritic, optimizer, buffer: RolloutBuffer, c) -> dict:
    """One gradient step of Algorithm 5 on one rollout; returns diagnostics."""
    loss = rollout_loss(model, buffer, c)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if c.max_grad_norm > 0:
        nn.utils.clip_grad_norm_(model.parameters(), c.max_grad_norm)
    optimizer.step()
    return {"loss": loss.item()}


# ---------------------------------------------------------------------------- training
def train(
    env: EnvLike,
    config: Config | None = None,
    *,
    seed: int = 0,
    total_steps: int | None = None,
    callback=None,
    progress: bool = True,
) -> TrainResult:
    """Train A2C (Algorithm 5, synchronous); see the module docstring.

    Returns the best-evaluated policy (``result.kept_step`` says which step it is from).
    """
    config = config or Config()
    if total_steps is not None:
        config = dataclasses.replace(config, total_steps=int(total_steps))
    venv = make_vec_env(env, num_envs=config.num_envs, seed=seed)
    with seeded(seed, config.torch_threads):
        monitor = Monitor(
            "a2c", env, config.total_steps, EvalSettings.of(config),
            seed=seed, callback=callback, progress=progress,
        )  # fmt: skip
        try:
            return _train(venv, config, seed, monitor)
        finally:
            venv.close()


def _train(venv, c: Config, seed: int, monitor: Monitor) -> TrainResult:
    # Initialize policy network theta_0 and value network phi_0
    net_kwargs = policy_kwargs(venv.single_observation_space, venv.single_action_space)
    model = ActorCritic(**net_kwargs, hidden=c.hidden, shared=c.shared)
    optimizer = torch.optim.Adam(model.parameters(), lr=c.lr, fused=True)  # one kernel per step
    buffer = RolloutBuffer.for_env(venv, c.n_steps)
    obs, _ = venv.reset(seed=seed)
    step = 0
    while step < c.total_steps:
        # Collect roll-outs (s, a, s', r) of n_steps steps in each of N envs
        obs, _ = collect_rollout(venv, model.sample, buffer, obs, model.value)
        for t in range(buffer.T):
            step += buffer.N
            monitor.track(buffer.reward[t], (buffer.terminated[t] + buffer.truncated[t]) > 0, step)
        # Form Q_hat, update the value function and the policy (one summed loss)
        diagnostics = update(model, optimizer, buffer, c)
        if step % 1_000 < buffer.N * buffer.T:  # a loss sample about every 1,000 steps
            monitor.log(step, **diagnostics)
        if monitor.after_update(step, model.act, [model]):
            break
    kept = monitor.finish(step, model.act, [model])
    checkpoint = {
        "algo": "a2c",
        "config": dataclasses.asdict(c),
        "net_kwargs": net_kwargs,
        "state_dict": model.state_dict(),
    }
    return TrainResult(model.act, config=c, algo="a2c", checkpoint=checkpoint, **kept)


def load(path) -> TrainResult:
    """Rebuild the policy saved by ``TrainResult.save``."""
    payload = load_checkpoint(path, "a2c")
    config = config_from_dict(Config, payload["config"])
    model = ActorCritic(**payload["net_kwargs"], hidden=config.hidden, shared=config.shared)
    model.load_state_dict(payload["state_dict"])
    return TrainResult(model.act, payload.get("history", []), config, algo="a2c",
                       checkpoint=payload, kept_step=payload.get("kept_step"))  # fmt: skip
