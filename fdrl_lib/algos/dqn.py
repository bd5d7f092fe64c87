"""DQN: Q-learning with a neural network, replay memory and a target network.

Lecture 2: Algorithm 3 (replay memory, target network reset every C steps, Huber loss,
preprocessing phi) and the improvements of section 2.2.2, each a Config flag: double DQN
(eq. 2.12), prioritized replay, dueling heads, n-step returns, noisy nets and distributional
C51. ``rainbow()`` turns them all on.

The defaults are Algorithm 3 with double DQN and 3-step returns switched on (both section
2.2.2): on CartPole-v1 they need far fewer env steps than plain DQN. One gradient step on 256
transitions every 4 env steps replays as many transitions as one step on 64 every env step, at
a third of the cost: a small network's step costs mostly fixed overhead, not arithmetic.
``vanilla()`` is the plain 2013 algorithm (one-step targets, max over the target network) with
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
    History,
    ProgressBar,
    TrainResult,
    config_from_dict,
    load_checkpoint,
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
    huber_kappa: float = 1.0  # Huber loss: quadratic for |error| <= kappa, linear beyond
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


def vanilla(**overrides) -> Config:
    """Algorithm 3 as in the 2013 Atari paper: one-step targets, no double DQN.

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


def huber(error: torch.Tensor, kappa: float = 1.0) -> torch.Tensor:
    """Elementwise Huber loss: ``error^2 / 2`` for ``|error| <= kappa``, else
    ``kappa (|error| - kappa / 2)``: squared near zero, linear (gradient capped at kappa) beyond.

    torch's fused ``huber_loss`` computes exactly this, with a cheaper backward pass than the
    formula written out (tests/test_dqn.py checks it against the definition).
    """
    return torch.nn.functional.huber_loss(
        error, torch.zeros_like(error), reduction="none", delta=kappa
    )


def td_target(online, target, reward, next_obs, terminated, discount, double: bool) -> torch.Tensor:
    """``y = r + discount * (1 - terminated) * Q_target(s', a*)``, shape ``(B,)``.

    ``a* = argmax_a' Q_target(s', a')`` (Algorithm 3), or with ``double`` ``argmax_a' Q_online``
    (eq. 2.12: choose with the online net, evaluate with the target net).
    ``online``/``target`` map ``(B, obs)`` to ``(B, A)`` Q-values.
    """
    next_q = target(next_obs)  # (B, A)
    chooser = online(next_obs) if double else next_q
    next_action = chooser.argmax(dim=1, keepdim=True)  # (B, 1)
    bootstrap = 1.0 - terminated  # a time-limit truncation still bootstraps
    return reward + discount * bootstrap * next_q.gather(1, next_action).squeeze(1)


def categorical_projection(next_probs, reward, discount, terminated, support) -> torch.Tensor:
    """C51: project the shifted distribution ``r + discount * (1 - terminated) * z`` onto ``z``.

    ``next_probs`` (B, K) are probabilities on ``support`` (K,) evenly spaced; each shifted atom
    (clipped to the support's range) splits its mass between the two nearest atoms in proportion
    to closeness. Returns (B, K) probabilities; each row sums to 1 like its input.
    """
    K = support.shape[0]
    v_min, v_max = float(support[0]), float(support[-1])
    delta_z = (v_max - v_min) / (K - 1)
    scale = (discount * (1.0 - terminated))[:, None]  # (B, 1)
    shifted = (reward[:, None] + scale * support[None, :]).clamp(v_min, v_max)  # (B, K)
    position = ((shifted - v_min) / delta_z).clamp(0, K - 1)  # fractional atom index
    lower = position.floor().long()
    upper = position.ceil().long()
    upper_weight = position - lower  # 0 when the atom lands exactly on a support point
    projected = torch.zeros_like(next_probs)
    projected.scatter_add_(1, lower, next_probs * (1.0 - upper_weight))
    projected.scatter_add_(1, upper, next_probs * upper_weight)
    return projected


def distributional_target(online, target, reward, next_obs, terminated, discount, double: bool):
    """C51's target distribution ``(B, atoms)``: the next state's return distribution under
    the greedy action (chosen as in :func:`td_target`), shifted and projected onto the support.
    """
    next_q = target.q_values(next_obs)  # (B, A) expected values
    chooser = online.q_values(next_obs) if double else next_q
    next_action = chooser.argmax(dim=1)[:, None, None].expand(-1, 1, target.atoms)  # (B, 1, K)
    next_probs = target(next_obs).softmax(-1).gather(1, next_action).squeeze(1)  # (B, K)
    return categorical_projection(next_probs, reward, discount, terminated, target.support)


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
    """Train DQN (Algorithm 3 plus the flags in ``config``); see the module docstring."""
    config = config or Config()
    threads = torch.get_num_threads()
    torch.set_num_threads(config.torch_threads)
    try:
        with torch.random.fork_rng(devices=[]):  # seed torch without touching global state
            torch.manual_seed(seed)
            return _train(env, config, seed, total_steps or config.total_steps, callback, progress)
    finally:
        torch.set_num_threads(threads)


def _train(env, config: Config, seed: int, total_steps: int, callback, progress) -> TrainResult:
    c = config
    env = make_env(env, frame_stack=c.frame_stack)
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ValueError(f"DQN needs a Discrete action space, got {env.action_space}")
    if not isinstance(env.observation_space, gym.spaces.Box):
        raise ValueError(f"DQN needs a Box observation space, got {env.observation_space}")
    rng = np.random.default_rng(seed)
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
    # Initialise replay memory D with capacity N
    memory_kwargs = dict(n_step=c.n_step, gamma=c.gamma, seed=seed)
    if c.prioritized:
        memory = PrioritizedReplayBuffer(
            c.buffer_size, obs_shape, c.priority_alpha, **memory_kwargs
        )
    else:
        memory = ReplayBuffer(c.buffer_size, obs_shape, **memory_kwargs)
    policy = GreedyPolicy(online, c.frame_stack)
    history, bar = History(), ProgressBar(total_steps, progress, desc="dqn")
    gradient_steps = 0

    def update() -> None:
        """One gradient step on a sampled minibatch (the inner lines of Algorithm 3)."""
        beta = c.priority_beta + (1.0 - c.priority_beta) * min(1.0, step / total_steps)
        batch = memory.sample(c.batch_size, beta=beta)
        obs_b, next_obs_b = torch.from_numpy(batch["obs"]), torch.from_numpy(batch["next_obs"])
        action_b = torch.from_numpy(batch["action"])[:, None]  # (B, 1)
        reward_b = torch.from_numpy(batch["reward"])
        terminated_b = torch.from_numpy(batch["terminated"])
        discount_b = torch.from_numpy(batch["discount"])  # gamma^k for a k-step transition
        if c.noisy:
            online.reset_noise()
            target.reset_noise()
        with torch.no_grad():  # y_j: (B,) values, or (B, atoms) probabilities for C51
            make_target = distributional_target if c.distributional else td_target
            y = make_target(
                online, target, reward_b, next_obs_b, terminated_b, discount_b, c.double
            )
        if c.distributional:
            index = action_b[:, :, None].expand(-1, 1, c.atoms)
            log_probs = online(obs_b).log_softmax(-1).gather(1, index).squeeze(1)  # (B, atoms)
            losses = -(y * log_probs).sum(-1)  # cross-entropy to the projected target
            priority = losses.detach()
        else:
            q = online(obs_b).gather(1, action_b).squeeze(1)  # Q(phi_j, a_j; theta), (B,)
            error = y - q  # TD error, (B,)
            losses = huber(error, c.huber_kappa)
            priority = error.detach()
        if c.prioritized:  # importance weights undo the bias of prioritized sampling
            losses = torch.from_numpy(batch["weights"]) * losses
        loss = losses.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(online.parameters(), c.max_grad_norm)
        optimizer.step()
        if c.prioritized:
            memory.update_priorities(batch["indices"], priority.numpy())

    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    for step in range(1, total_steps + 1):
        # epsilon-greedy: random action with probability epsilon, else argmax_a Q(phi_t, a)
        fraction = min(1.0, step / max(1, c.epsilon_decay_steps))
        epsilon = c.epsilon_start + fraction * (c.epsilon_end - c.epsilon_start)
        if rng.random() < epsilon:
            action = int(rng.integers(n_actions))
        else:  # obs is already phi(s_t)
            if c.noisy:  # a fresh noise sample for every action (Fortunato et al.): one sample
                online.reset_noise()  # held fixed is one fixed policy, and D fills with one action
            action = greedy_action(online, obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        memory.add(obs, action, reward, next_obs, terminated, truncated)
        history.step(reward, terminated or truncated, step)
        obs = next_obs  # easy to forget: else the agent acts on a stale state
        if terminated or truncated:
            obs, _ = env.reset()

        trained = step >= c.learning_starts and step % c.train_every == 0
        if trained:
            for _ in range(c.gradient_steps):
                update()
                gradient_steps += 1
                if gradient_steps % c.target_update == 0:
                    target.load_state_dict(online.state_dict())  # every C steps: Q^ = Q
        bar.update(step, history.episodes)
        if (trained or step % 1000 == 0) and history.callback(callback, step, policy):
            break
    bar.close()
    env.close()
    checkpoint = {
        "algo": "dqn",
        "config": dataclasses.asdict(c),
        "net_kwargs": net_kwargs,
        "state_dict": online.state_dict(),
    }
    return TrainResult(policy, history.episodes, c, algo="dqn", checkpoint=checkpoint)


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
    return TrainResult(policy, payload.get("history", []), config, algo="dqn", checkpoint=payload)
