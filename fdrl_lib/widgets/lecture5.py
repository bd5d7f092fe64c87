"""Lecture 5's demos and measurements: DDPG, TD3, SAC on Pendulum-v1.

- :func:`temperature_state` / :func:`temperature_demo`: how SAC's temperature alpha shapes the
  tanh-squashed Gaussian that best matches ``exp(Q / alpha) / Z`` (eq. 5.6) for a 1-D action.
- :func:`noise_state` / :func:`noise_demo`: Gaussian exploration noise on a 1-D deterministic
  action, clipped to the action range (DDPG, TD3).
- :func:`learning_curves`: evaluation return against env steps for several seeds;
  :func:`reference_curves` loads the shipped full-mode ones.
- :func:`q_overestimation`: a trained critic's ``Q(s, pi(s))`` against the true discounted return
  of the same states (Monte Carlo, the deterministic policy played out).
- :func:`swing_up_frames`: rgb frames of the Pendulum agent (no X server needed).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fdrl_lib.widgets import Demo

DATA = Path(__file__).resolve().parent / "data"
CURVES = DATA / "lecture5_curves.json"


# ------------------------------------------------------------------- temperature (SAC)
def example_q(actions):
    """A two-peaked action value on ``[-1, 1]``: a tall peak at 0.5, a lower one at -0.6."""
    exp = np.exp if isinstance(actions, np.ndarray) else type(actions).exp  # numpy or torch
    return 2.0 * exp(-((actions - 0.5) ** 2) / 0.08) + 1.4 * exp(-((actions + 0.6) ** 2) / 0.1)


def fit_squashed_gaussian(
    alpha: float, samples: int = 512, steps: int = 400, lr: float = 0.1, seed: int = 0
) -> tuple[float, float]:
    """``(mean, log_std)`` of the tanh-Gaussian minimising eq. 5.6's loss for :func:`example_q`.

    ``E_{a ~ pi}[alpha log pi(a) - Q(a)]`` (``sac_actor_loss`` with one state) by gradient descent
    on fixed reparameterisation noise: the same inputs always give the same fit.
    """
    import torch

    from fdrl_lib.algos.sac import sac_actor_loss, squashed_gaussian_log_prob

    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn(samples, 1, generator=generator, dtype=torch.float64)
    mean = torch.zeros(1, 1, dtype=torch.float64, requires_grad=True)
    log_std = torch.full((1, 1), -0.5, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([mean, log_std], lr=lr)
    for _ in range(steps):
        pre_tanh = mean + log_std.exp() * eps  # (samples, 1)
        log_prob = squashed_gaussian_log_prob(
            mean.expand_as(pre_tanh), log_std.expand_as(pre_tanh), pre_tanh
        )
        a = pre_tanh.tanh()[:, 0]
        q = example_q(a)  # numpy's exp and torch's agree on the same expression
        loss = sac_actor_loss(q, q, log_prob, alpha)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            log_std.clamp_(-5.0, 2.0)
    return float(mean.detach()), float(log_std.detach())


def squashed_density(mean: float, log_std: float, actions: np.ndarray) -> np.ndarray:
    """Density of ``a = tanh(u)``, ``u ~ N(mean, exp(log_std)^2)``, at ``actions`` in (-1, 1)."""
    import torch

    from fdrl_lib.algos.sac import squashed_gaussian_log_prob

    pre_tanh = torch.atanh(torch.as_tensor(actions, dtype=torch.float64))[:, None]
    log_prob = squashed_gaussian_log_prob(
        torch.full_like(pre_tanh, mean), torch.full_like(pre_tanh, log_std), pre_tanh
    )
    return log_prob.exp().numpy()


def temperature_state(alpha: float, points: int = 400) -> dict[str, Any]:
    """What the temperature demo draws for one alpha: Q, the Boltzmann target ``exp(Q/alpha)/Z``
    (lecture 1, eq. 1.37, on a continuum) and the best tanh-Gaussian with its entropy."""
    actions = np.linspace(-0.999, 0.999, points)
    q = example_q(actions)
    logits = q / alpha
    boltzmann = np.exp(logits - logits.max())
    boltzmann /= np.trapezoid(boltzmann, actions)
    mean, log_std = fit_squashed_gaussian(alpha)
    density = squashed_density(mean, log_std, actions)
    safe = np.clip(density, 1e-300, None)
    entropy = float(-np.trapezoid(density * np.log(safe), actions))
    return dict(
        alpha=alpha, actions=actions, q=q, boltzmann=boltzmann, density=density,
        mean=mean, log_std=log_std, entropy=entropy,
    )  # fmt: skip


def draw_temperature(state: dict[str, Any], fig: Figure | None = None) -> Figure:
    fig = fig or Figure(figsize=(7, 3.2))
    fig.clear()
    ax = fig.add_subplot(1, 1, 1)
    a = state["actions"]
    ax.plot(a, state["q"] / state["q"].max() * state["boltzmann"].max(), "k:", lw=1,
            label="Q(s, a) (rescaled)")  # fmt: skip
    ax.plot(a, state["boltzmann"], label=r"$\exp(Q/\alpha)/Z$ (eq. 5.6's target)")
    ax.plot(a, state["density"], lw=2, label=r"best $\tanh$-Gaussian $\pi(a|s)$")
    ax.set_xlabel("action a")
    ax.set_ylabel("density")
    ax.set_title(f"alpha = {state['alpha']:.3g}: policy entropy {state['entropy']:.2f} nats")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


class TemperatureDemo(Demo):
    """Slide SAC's temperature: the fitted squashed Gaussian and the Boltzmann target move."""

    def __init__(self, alpha: float = 0.1) -> None:
        import ipywidgets as w

        super().__init__()
        self.figure.set_size_inches(7, 3.2)
        self.alpha = w.FloatLogSlider(value=alpha, base=10, min=-2.5, max=0.5, step=0.1,
                                      description="alpha")  # fmt: skip
        self.alpha.observe(self._on_change, names="value")
        self.controls = w.HBox([self.alpha])
        self._on_change()

    def _on_change(self, change: Any = None) -> None:
        self.state = temperature_state(self.alpha.value)
        draw_temperature(self.state, fig=self.figure)
        self._refresh()


def temperature_demo(**settings: Any) -> TemperatureDemo:
    return TemperatureDemo(**settings).show()


# -------------------------------------------------------------- exploration noise (DDPG)
def noisy_actions(action: float, std: float, n: int = 20_000, seed: int = 0) -> np.ndarray:
    """``clip(action + std * N(0, 1), -1, 1)``: what DDPG executes around its actor's ``action``."""
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    rng = np.random.default_rng(seed)
    return np.clip(action + std * rng.standard_normal(n), -1.0, 1.0)


def noise_state(action: float, std: float, n: int = 20_000) -> dict[str, Any]:
    executed = noisy_actions(action, std, n)
    at_bounds = float(np.mean(np.abs(executed) >= 1.0))
    return dict(action=action, std=std, executed=executed, at_bounds=at_bounds)


def draw_noise(state: dict[str, Any], fig: Figure | None = None) -> Figure:
    fig = fig or Figure(figsize=(7, 3.0))
    fig.clear()
    ax = fig.add_subplot(1, 1, 1)
    ax.hist(state["executed"], bins=np.linspace(-1, 1, 81), density=True, alpha=0.7)
    ax.axvline(state["action"], color="k", ls="--", label=r"actor's action $\pi_\theta(s)$")
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel("executed action (normalised to [-1, 1])")
    ax.set_title(
        f"noise std {state['std']:.2f}: {100 * state['at_bounds']:.0f}% clipped to a bound"
    )
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


class NoiseDemo(Demo):
    """Slide the exploration noise scale and the actor's action on a 1-D action."""

    def __init__(self, action: float = 0.6, std: float = 0.1) -> None:
        import ipywidgets as w

        super().__init__()
        self.figure.set_size_inches(7, 3.0)
        self.action = w.FloatSlider(value=action, min=-1, max=1, step=0.05, description="pi(s)")
        self.std = w.FloatSlider(value=std, min=0, max=1.5, step=0.05, description="noise std")
        for control in (self.action, self.std):
            control.observe(self._on_change, names="value")
        self.controls = w.HBox([self.action, self.std])
        self._on_change()

    def _on_change(self, change: Any = None) -> None:
        self.state = noise_state(self.action.value, self.std.value)
        draw_noise(self.state, fig=self.figure)
        self._refresh()


def noise_demo(**settings: Any) -> NoiseDemo:
    return NoiseDemo(**settings).show()


# -------------------------------------------------------------------- learning curves
def learning_curves(
    algos: Sequence[str] = ("ddpg", "td3", "sac"),
    seeds: Sequence[int] = (0, 1, 2),
    total_steps: int = 6_000,
    every: int = 1_000,
    episodes: int = 5,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Train each algorithm's default Config on every seed for the whole budget (no early stop),
    evaluating every ``every`` steps. Returns ``{algo: {"steps": [...], "returns": [[...] per
    seed], "seconds": [...]}}``, the shape of the shipped reference file."""
    import dataclasses
    import importlib

    out: dict[str, dict[str, Any]] = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(algos) * len(seeds), desc="learning curves", unit="run")
    for algo in algos:
        module = importlib.import_module(f"fdrl_lib.algos.{algo}")
        config = dataclasses.replace(
            module.Config(), eval_every=every, eval_episodes=episodes, stop_at_target=False
        )
        row: dict[str, Any] = {"returns": [], "seconds": []}
        for seed in seeds:
            result = module.train("Pendulum-v1", config, seed=seed, total_steps=total_steps,
                                  progress=False)  # fmt: skip
            steps, returns = zip(*result.logs["eval_return"], strict=True)
            row["steps"] = [int(s) for s in steps]
            row["returns"].append([float(r) for r in returns])
            row["seconds"].append(float(result.logs["train_seconds"][-1][1]))
            if bar is not None:
                bar.update(1)
        out[algo] = row
    if bar is not None:
        bar.close()
    return out


def reference_curves() -> dict[str, dict[str, Any]]:
    """The shipped full-mode learning curves (written by ``save_reference_curves``)."""
    if not CURVES.exists():
        raise FileNotFoundError(f"{CURVES} is missing; run lecture 5's notebook in full mode")
    return json.loads(CURVES.read_text())


def save_reference_curves(curves: dict[str, dict[str, Any]]) -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    CURVES.write_text(json.dumps(curves, indent=0))
    return CURVES


def draw_curves(curves, reference=None, fig: Figure | None = None, threshold: float = -200.0):
    """One panel per algorithm: this run's seeds (mean, min-max) over the reference's."""
    fig = fig or Figure(figsize=(10, 3.2))
    fig.clear()
    names = list(curves)
    for i, algo in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        for label, source, color in (("reference", reference, "0.6"), ("this run", curves, None)):
            if source is None or algo not in source:
                continue
            steps, runs = np.array(source[algo]["steps"]), np.array(source[algo]["returns"])
            n = min(len(steps), runs.shape[1])
            steps, runs = steps[:n], runs[:, :n]
            (line,) = ax.plot(steps, runs.mean(0), color=color,
                              label=f"{label} ({len(runs)} seeds)")  # fmt: skip
            ax.fill_between(steps, runs.min(0), runs.max(0), color=line.get_color(), alpha=0.2)
        ax.axhline(threshold, color="k", ls="--", lw=1)
        ax.set_title(algo.upper())
        ax.set_xlabel("env steps")
        if i == 0:
            ax.set_ylabel("evaluation return")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- Q overestimation
def critic_of(result) -> Any:
    """The critic kept with ``result.policy`` (DDPG: one ``QCritic``; TD3, SAC: ``TwinQCritic``)."""
    from fdrl_lib.nn import QCritic, TwinQCritic

    obs_dim, action_dim = result.checkpoint["dims"]
    kind = QCritic if result.algo == "ddpg" else TwinQCritic
    critic = kind(obs_dim, action_dim, result.config.hidden)
    critic.load_state_dict(result.checkpoint["critic_state_dict"])
    return critic


def q_overestimation(
    result, gamma: float | None = None, episodes: int = 5, every: int = 10, seed: int = 500
) -> dict[str, np.ndarray]:
    """``Q(s, pi(s))`` of the kept critic (first head; the min of two for TD3/SAC, as their
    targets use) against the true discounted return from ``s`` under the same deterministic
    policy, for states visited every ``every`` steps of ``episodes`` fresh episodes.

    Pendulum is deterministic given its state, so the true return from ``s`` is one play-out:
    the episode's remaining rewards, discounted, plus the tail the time limit cuts (the policy
    keeps playing ``200`` more steps from there, a gamma^200 ~ 2% correction at 0.98).
    """
    import gymnasium as gym
    import torch

    gamma = result.config.gamma if gamma is None else gamma
    critic = critic_of(result)
    policy = result.policy
    env = gym.make("Pendulum-v1", max_episode_steps=400)  # play on past the cut for the tail
    estimates, truths = [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        observations, rewards, actions = [], [], []
        for _ in range(400):
            action = policy(obs)
            observations.append(obs)
            actions.append(policy.normalized(obs) if hasattr(policy, "normalized") else action)
            obs, reward, terminated, truncated, _ = env.step(action)
            rewards.append(reward)
            if terminated or truncated:
                break
        rewards = np.array(rewards)
        returns = np.zeros(len(rewards) + 1)
        for t in range(len(rewards) - 1, -1, -1):
            returns[t] = rewards[t] + gamma * returns[t + 1]
        for t in range(0, 200, every):
            obs_t = torch.as_tensor(np.array(observations[t]), dtype=torch.float32)[None]
            action_t = torch.as_tensor(np.array(actions[t]), dtype=torch.float32)[None]
            with torch.no_grad():
                q = critic(obs_t, action_t)  # (1,), or a pair for twin critics
            estimates.append(float(torch.minimum(*q) if isinstance(q, tuple) else q[0]))
            truths.append(returns[t])
    env.close()
    estimates, truths = np.array(estimates), np.array(truths)
    return dict(estimate=estimates, truth=truths, bias=float(np.mean(estimates - truths)))


# ---------------------------------------------------------------------- animation
def swing_up_frames(policy, seed: int = 0, max_steps: int = 200, every: int = 2) -> list:
    """rgb frames of one Pendulum-v1 episode under ``policy`` (every ``every``-th frame)."""
    import os

    import gymnasium as gym

    from fdrl_lib.plotting import rollout_frames

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # renders off-screen: no X server
    env = gym.make("Pendulum-v1", render_mode="rgb_array")
    try:
        frames = rollout_frames(env, policy, max_steps=max_steps, seed=seed)
    finally:
        env.close()
    return frames[::every]


def soft_value_link(q: Sequence[float], beta: float) -> dict[str, np.ndarray]:
    """Lecture 1 meets eq. 5.6 on one state with discrete actions: soft value iteration's policy
    ``exp(Q / beta) / Z`` (eq. 1.37) and its value ``beta log sum exp(Q / beta)`` (eq. 1.36)."""
    from fdrl_lib.tabular import TabularMDP, soft_value_iteration

    q = np.asarray(q, dtype=float)
    mdp = TabularMDP(np.ones((1, len(q), 1)), q[None, :], gamma=0.0)
    res = soft_value_iteration(mdp, beta=beta)
    return dict(policy=res.policy[0], value=float(res.V[0]),
                logsumexp=beta * math.log(np.exp(q / beta).sum()))  # fmt: skip
