"""DQN: Q-learning with a neural network, replay memory and a target network.

Lecture 2: Algorithm 3 (replay memory, target network reset every C steps, Huber loss,
preprocessing phi) and the improvements of section 2.2.2, each a Config flag: double DQN
(eq. 2.12), prioritized replay, dueling heads, n-step returns, noisy nets and distributional
C51. ``rainbow()`` turns them all on.

The defaults are Algorithm 3 with double DQN and 3-step returns switched on (both section
2.2.2): on CartPole-v1 they need far fewer env steps than plain DQN. One gradient step on 256
transitions every 4 env steps replays as many transitions as one step on 64 every env step, at
a third of the cost: a small network's step costs mostly fixed overhead, not arithmetic.
``vanilla()`` is plain Algorithm 3 as in the 2015 Nature paper (one-step targets, max over the
target network; the 2013 workshop paper had no target network and bootstrapped from the online
weights: the lecture notes credit the target network to 2013, which is a slip) with
conservative settings of its own (one gradient step on 64 transitions per env step).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from fdrl_lib.buffers import PrioritizedReplayBuffer, ReplayBuffer
from fdrl_lib.envs import EnvLike, StackFrames, make_env
from fdrl_lib.nn import NoisyLinear, QNetwork
from fdrl_lib.training import (
    EvalSettings,
    Monitor,
    TrainResult,
    check_config,
    config_from_dict,
    load_checkpoint,
    seeded,
)


@dataclass(frozen=True)
class Config:
    total_steps: int = 50_000  # env steps to train for
    hidden: tuple[int, ...] = (64, 64)  # hidden layer widths of the Q-network
    lr: float = 1e-2  # Adam step size (large: few, large-batch steps; Huber bounds the gradient)
    gamma: float = 0.99  # discount
    buffer_size: int = 50_000  # replay memory capacity N
    batch_size: int = 256  # transitions per gradient step
    learning_starts: int = 500  # env steps before the first update (the memory fills first)
    train_every: int = 4  # env steps between training rounds
    gradient_steps: int = 1  # gradient steps per training round (one per 4 env steps)
    target_update: int = 32  # C: gradient steps between resets of the target network
    epsilon_start: float = 1.0  # epsilon-greedy: chance of a random action at step 0 ...
    epsilon_end: float = 0.04  # ... annealed linearly to this ...
    epsilon_decay_steps: int = 8_000  # ... over this many env steps
    huber_delta: float = 1.0  # Huber loss: quadratic for |error| <= delta, linear beyond
    max_grad_norm: float = 0.0  # clip the gradient norm to this (0 = no clipping: Huber bounds it)
    double: bool = True  # eq. 2.12: pick a' with the online net, evaluate it with the target
    dueling: bool = False  # Q = V + A - mean(A): separate value and advantage heads
    prioritized: bool = False  # replay in proportion to |TD error|^alpha (sum tree)
    priority_alpha: float = 0.5  # how strongly priorities skew replay (0 = uniform)
    priority_beta: float = 0.4  # importance-weight exponent at step 0, annealed to 1
    n_step: int = 3  # bootstrap after n rewards instead of one
    noisy: bool = False  # noisy linear heads explore (set both epsilons to 0 for noise only)
    distributional: bool = False  # C51: learn a categorical return distribution
    atoms: int = 51  # C51: number of support points
    v_min: float = 0.0  # C51: smallest return on the support (CartPole's returns are >= 0)
    v_max: float = 100.0  # C51: largest (1 / (1 - gamma) = 100 for CartPole)
    frame_stack: int = 1  # phi: stack this many observations as the state (Algorithm 3)
    torch_threads: int = 1  # small networks run fastest on one thread
    eval_every: int = 2_000  # env steps between evaluations; the best-evaluated policy is kept
    eval_episodes: int = 10  # episodes per evaluation
    target_return: float | None = None  # stop at this evaluation return (None: the env's own)
    stop_at_target: bool = True  # False: use the whole budget (still keeping the best policy)

    def __post_init__(self) -> None:
        check_config(
            self,
            positive=(
                "total_steps",
                "lr",
                "buffer_size",
                "batch_size",
                "train_every",
                "gradient_steps",
                "target_update",
                "n_step",
                "atoms",
                "frame_stack",
                "torch_threads",
                "eval_every",
                "eval_episodes",
                "huber_delta",
            ),
            non_negative=("learning_starts", "epsilon_decay_steps", "max_grad_norm"),
            unit=("gamma", "epsilon_start", "epsilon_end", "priority_beta"),
        )
        if self.distributional and not self.v_min < self.v_max:
            raise ValueError(f"Config.v_min must be < v_max, got {self.v_min}, {self.v_max}")


def vanilla(**overrides) -> Config:
    """Algorithm 3 as in the 2015 Nature paper: target network, one-step targets, no double DQN.

    It keeps conservative, textbook optimiser settings of its own instead of the speed-tuned
    ``Config()`` ones: one gradient step on 64 transitions per env step, Adam step 2.3e-3, the
    target network reset every 128 gradient steps. Lecture 2's ablation turns the improvements on
    one at a time on top of it; on the large-step defaults (lr 1e-2, batch 256) some of them, the
    dueling heads most, stopped learning CartPole on most seeds, which measured the step size, not
    the improvement.
    """
    values = dict(
        double=False,
        n_step=1,
        lr=2.3e-3,
        batch_size=64,
        train_every=4,
        gradient_steps=4,  # one gradient step per env step, in rounds of 4
        target_update=128,
    )
    return Config(**{**values, **overrides})


def rainbow(**overrides) -> Config:
    """Every improvement on at once (Hessel et al. 2018), tuned for CartPole-v1."""
    values = dict(
        double=True,
        dueling=True,
        prioritized=True,
        n_step=3,
        noisy=True,
        distributional=True,
        epsilon_start=0.0,  # noisy nets do the exploring
        epsilon_end=0.0,
        hidden=(128, 128),  # room for the distributional head's atoms per action
        train_every=16,  # half as many gradient steps as env steps, in bursts of 8
        gradient_steps=8,
        batch_size=64,
        lr=2.3e-3,
        target_update=64,
        learning_starts=1_000,
    )
    return Config(**{**values, **overrides})


def huber(error: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Elementwise Huber loss: ``error^2 / 2`` for ``|error| <= delta``, else
    ``delta (|error| - delta / 2)``: squared near zero, linear (gradient capped at delta) beyond.

    torch's fused ``huber_loss`` computes exactly this, with a cheaper backward pass than the
    formula written out (tests/test_dqn.py checks it against the definition).
    """
    return torch.nn.functional.huber_loss(
        error, torch.zeros_like(error), reduction="none", delta=delta
    )


def dqn_target(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    gamma: float | torch.Tensor,
    next_q_target: torch.Tensor,
    next_q_online: torch.Tensor | None = None,
) -> torch.Tensor:
    """The regression target ``y = r + gamma (1 - terminated) Q_target(s', a*)``, shape ``(B,)``.

    ``next_q_target`` (B, A) are the target network's values of s'. Without ``next_q_online``
    ``a* = argmax_a' Q_target(s', a')`` (Algorithm 3); with it (B, A), double DQN chooses with the
    online net and evaluates with the target net (eq. 2.12). ``gamma`` may be a (B,) tensor of
    ``gamma^k`` for k-step transitions. A time-limit truncation still bootstraps: only
    ``terminated`` switches the bootstrap off.
    """
    chooser = next_q_target if next_q_online is None else next_q_online
    next_action = chooser.argmax(dim=1, keepdim=True)  # (B, 1)
    next_value = next_q_target.gather(1, next_action).squeeze(1)  # (B,)
    return reward + gamma * (1.0 - terminated) * next_value


def td_loss(
    q_taken: torch.Tensor, y: torch.Tensor, delta: float = 1.0, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 3's loss: the batch mean of ``huber(y - Q(s, a))``, optionally importance-weighted.

    ``q_taken`` (B,) is ``Q(s_j, a_j; theta)``; ``y`` (B,) the target (no gradient). Returns the
    scalar loss and the (B,) TD errors ``y - Q`` (prioritized replay's new priorities).
    """
    error = y - q_taken  # (B,) TD errors
    losses = huber(error, delta)
    if weights is not None:  # importance weights undo the bias of prioritized sampling
        losses = weights * losses
    return losses.mean(), error.detach()


def categorical_projection(next_probs, reward, gamma, terminated, support) -> torch.Tensor:
    """C51: project the shifted distribution ``r + gamma * (1 - terminated) * z`` onto ``z``.

    ``next_probs`` (B, K) are probabilities on ``support`` (K,) evenly spaced; each shifted atom
    (clipped to the support's range) splits its mass between the two nearest atoms in proportion
    to closeness. Returns (B, K) probabilities; each row sums to 1 like its input.
    """
    K = support.shape[0]
    v_min, v_max = float(support[0]), float(support[-1])
    delta_z = (v_max - v_min) / (K - 1)
    scale = (gamma * (1.0 - terminated))[:, None]  # (B, 1)
    shifted = (reward[:, None] + scale * support[None, :]).clamp(v_min, v_max)  # (B, K)
    position = ((shifted - v_min) / delta_z).clamp(0, K - 1)  # fractional atom index
    lower = position.floor().long()
    upper = position.ceil().long()
    upper_weight = position - lower  # 0 when the atom lands exactly on a support point
    projected = torch.zeros_like(next_probs)
    projected.scatter_add_(1, lower, next_probs * (1.0 - upper_weight))
    projected.scatter_add_(1, upper, next_probs * upper_weight)
    return projected


def distributional_target(
    reward, terminated, gamma, next_logits_target, support, next_q_online=None
) -> torch.Tensor:
    """C51's target distribution ``(B, atoms)``: the next state's return distribution under
    the greedy action (chosen as in :func:`dqn_target`), shifted and projected onto ``support``.

    ``next_logits_target`` (B, A, atoms) are the target network's logits for s'.
    """
    next_probs = next_logits_target.softmax(-1)  # (B, A, atoms)
    next_q = (next_probs * support).sum(-1)  # (B, A) expected values
    chooser = next_q if next_q_online is None else next_q_online
    index = chooser.argmax(dim=1)[:, None, None].expand(-1, 1, support.shape[0])  # (B, 1, K)
    chosen = next_probs.gather(1, index).squeeze(1)  # (B, K)
    return categorical_projection(chosen, reward, gamma, terminated, support)


def greedy_action(net: QNetwork, state: np.ndarray) -> int:
    """``argmax_a Q(state, a)`` for one state (noisy layers use their current noise)."""
    with torch.inference_mode():
        return int(net.q_values(torch.as_tensor(state, dtype=torch.float32)[None]).argmax())


class GreedyPolicy:
    """The deterministic policy ``a = argmax_a Q(phi(obs), a)`` (noisy layers at their mean)."""

    def __init__(self, net: QNetwork, frame_stack: int = 1) -> None:
        self.net = net
        self.noisy = any(isinstance(m, NoisyLinear) for m in net.modules())
        self.stack = StackFrames(frame_stack) if frame_stack > 1 else None

    def reset(self) -> None:
        if self.stack is not None:
            self.stack.reset()

    def __call__(self, obs: np.ndarray) -> int:
        if self.stack is not None:
            obs = self.stack(obs)
        if not self.noisy:
            return greedy_action(self.net, obs)
        training = self.net.training
        self.net.eval()  # noisy layers at their mean weights: deterministic
        action = greedy_action(self.net, obs)
        self.net.train(training)
        return action


def train(
    env: EnvLike,
    config: Config | None = None,
    *,
    seed: int = 0,
    total_steps: int | None = None,
    callback=None,
    progress: bool = True,
) -> TrainResult:
    """Train DQN (Algorithm 3 plus the flags in ``config``); see the module docstring.

    Returns the best-evaluated policy (``result.kept_step`` says which step it is from).
    """
    config = config or Config()
    if total_steps is not None:
        config = dataclasses.replace(config, total_steps=int(total_steps))
    env_arg, env = env, make_env(env, frame_stack=config.frame_stack)
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ValueError(f"DQN needs a Discrete action space, got {env.action_space}")
    if not isinstance(env.observation_space, gym.spaces.Box):
        raise ValueError(f"DQN needs a Box observation space, got {env.observation_space}")
    with seeded(seed, config.torch_threads) as streams:
        monitor = Monitor(
            "dqn", env_arg, config.total_steps, EvalSettings.of(config),
            seed=seed, callback=callback, progress=progress,
        )  # fmt: skip
        try:
            return _train(env, config, seed, streams, monitor)
        finally:
            env.close()


def _train(env, c: Config, seed: int, streams, monitor: Monitor) -> TrainResult:
    obs_shape, n_actions = env.observation_space.shape, int(env.action_space.n)
    net_kwargs = dict(
        obs_dim=int(np.prod(obs_shape)),
        n_actions=n_actions,
        hidden=tuple(c.hidden),
        dueling=c.dueling,
        noisy=c.noisy,
        atoms=c.atoms if c.distributional else 1,
        v_min=c.v_min,
        v_max=c.v_max,
    )
    # Initialise Q with random weights theta, and the target network with theta^- = theta
    online = QNetwork(**net_kwargs)
    target = QNetwork(**net_kwargs)
    target.load_state_dict(online.state_dict())
    optimizer = torch.optim.Adam(online.parameters(), lr=c.lr, fused=True)
    # Initialise replay memory D with capacity N (its own random stream for sampling)
    memory_kwargs = dict(n_step=c.n_step, gamma=c.gamma, seed=streams.integer())
    if c.prioritized:
        memory = PrioritizedReplayBuffer(
            c.buffer_size, obs_shape, c.priority_alpha, **memory_kwargs
        )
    else:
        memory = ReplayBuffer(c.buffer_size, obs_shape, **memory_kwargs)
    acting_rng = streams.generator()  # epsilon-greedy draws: a stream apart from replay's
    policy = GreedyPolicy(online, c.frame_stack)
    gradient_steps = 0

    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    for step in range(1, c.total_steps + 1):
        # epsilon-greedy: random action with probability epsilon, else argmax_a Q(phi_t, a)
        fraction = min(1.0, step / max(1, c.epsilon_decay_steps))
        epsilon = c.epsilon_start + fraction * (c.epsilon_end - c.epsilon_start)
        if acting_rng.random() < epsilon:
            action = int(acting_rng.integers(n_actions))
        else:  # obs is already phi(s_t)
            if c.noisy:  # a fresh noise sample for every action (Fortunato et al.): one sample
                online.reset_noise()  # held fixed is one fixed policy, and D fills with one action
            action = greedy_action(online, obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        memory.add(obs, action, reward, next_obs, terminated, truncated)
        monitor.track(reward, terminated or truncated, step)
        obs = next_obs  # easy to forget: else the agent acts on a stale state
        if terminated or truncated:
            obs, _ = env.reset()

        trained = step >= c.learning_starts and step % c.train_every == 0
        if trained:
            beta = c.priority_beta + (1.0 - c.priority_beta) * min(1.0, step / c.total_steps)
            for _ in range(c.gradient_steps):
                loss = update(online, target, optimizer, memory, c, beta)
                gradient_steps += 1
                if gradient_steps % c.target_update == 0:
                    target.load_state_dict(online.state_dict())  # every C steps: Q^ = Q
            if gradient_steps % 100 < c.gradient_steps:  # a loss sample every ~100 steps
                monitor.log(step, loss=loss, epsilon=epsilon)
        if (trained or step % 1000 == 0) and monitor.after_update(step, policy, [online]):
            break
    kept = monitor.finish(step, policy, [online])
    checkpoint = {
        "algo": "dqn",
        "config": dataclasses.asdict(c),
        "net_kwargs": net_kwargs,
        "state_dict": online.state_dict(),
    }
    return TrainResult(policy, config=c, algo="dqn", checkpoint=checkpoint, **kept)


def update(online, target, optimizer, memory, c: Config, beta: float) -> float:
    """One gradient step on a sampled minibatch (the inner lines of Algorithm 3)."""
    batch = {k: torch.from_numpy(v) for k, v in memory.sample(c.batch_size, beta=beta).items()}
    action = batch["action"][:, None]  # (B, 1)
    gamma_k = batch["discount"]  # (B,) gamma^k for a k-step transition
    if c.noisy:
        online.reset_noise()
        target.reset_noise()
    with torch.no_grad():  # y_j: no gradient flows into the target (it is a regression label)
        next_q_online = online.q_values(batch["next_obs"]) if c.double else None
        if c.distributional:
            y = distributional_target(
                batch["reward"], batch["terminated"], gamma_k,
                target(batch["next_obs"]), target.support, next_q_online,
            )  # fmt: skip
        else:
            next_q_target = target(batch["next_obs"])  # (B, A)
            y = dqn_target(
                batch["reward"], batch["terminated"], gamma_k, next_q_target, next_q_online
            )
    weights = batch["weights"] if c.prioritized else None
    if c.distributional:  # cross-entropy between the projected target and Z(s, a)
        index = action[:, :, None].expand(-1, 1, c.atoms)
        log_probs = online(batch["obs"]).log_softmax(-1).gather(1, index).squeeze(1)  # (B, K)
        losses = -(y * log_probs).sum(-1)
        priority = losses.detach()
        loss = (losses if weights is None else weights * losses).mean()
    else:
        q_taken = online(batch["obs"]).gather(1, action).squeeze(1)  # Q(phi_j, a_j; theta), (B,)
        loss, priority = td_loss(q_taken, y, c.huber_delta, weights)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if c.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(online.parameters(), c.max_grad_norm)
    optimizer.step()
    if c.prioritized:
        memory.update_priorities(batch["indices"].numpy(), priority.numpy())
    return float(loss.detach())


def load(path) -> TrainResult:
    """Rebuild the policy saved by ``TrainResult.save``."""
    payload = load_checkpoint(path, "dqn")
    config = config_from_dict(Config, payload["config"])
    net = QNetwork(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in payload["net_kwargs"].items()}
    )
    net.load_state_dict(payload["state_dict"])
    net.eval()
    policy = GreedyPolicy(net, config.frame_stack)
    return TrainResult(
        policy,
        payload.get("history", []),
        config,
        algo="dqn",
        checkpoint=payload,
        kept_step=payload.get("kept_step"),
    )
