"""Lecture 3's interactive demos: policy-gradient variance, GAE's bias and variance, curves.

* ``GradientSpreadDemo``: on a two-step chain whose exact policy gradient is enumerated, the
  spread of the estimate (eq. 3.27) over many batches as the baseline changes, against the exact
  gradient; a batch-size slider shows the 1/m fall of the variance.
* ``GAEDemo``: lambda and gamma sliders on a random-walk chain: GAE's bias and variance against
  the true (undiscounted) advantage, with a deliberately imperfect critic.
* ``learning_curves``: evaluation return against env steps over seeds, VPG (with and without a
  baseline) and A2C; shipped full-mode reference curves are drawn under a fast run's.

The logic lives in pure functions (``chain_gradients``, ``gae_bias_variance``, ...) that tests
drive without a browser; the widget classes only wire sliders to them and redraw.
"""

from __future__ import annotations

import itertools
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fdrl_lib.widgets import Demo

DATA = Path(__file__).parent / "data"
REFERENCE_CURVES = DATA / "lecture3_curves.json"

# ------------------------------------------------------------- the two-step chain (sec. 3.4)
# t = 0: state 0, two actions; t = 1: state 1 or 2 (action 0 leads mostly to 1, action 1 mostly
# to 2), two actions each; then the episode ends. Every reward carries a +5 offset, so an
# estimate without a baseline pushes every action up and is noisy.
CHAIN_P1 = np.array([[0.8, 0.2], [0.3, 0.7]])  # P(s_1 = 1 + j | s_0 = 0, a_0)
CHAIN_R = np.array([[1.0, 0.0], [0.0, 2.0], [8.0, 6.0]]) + 5.0  # R(s, a)
CHAIN_THETA = np.array([[0.3, -0.2], [0.5, 0.1], [-0.4, 0.6]])  # softmax logits (S, A)
BASELINE_NAMES = {  # label -> kind; the first three weigh each step by the whole return
    "none (whole return, 3.11)": "whole",
    "constant (whole return, 3.29)": "constant",
    "optimal constant (whole return, 3.30)": "optimal",
    "none (reward-to-go, 3.27)": "none",
    "time-dependent (reward-to-go, 3.31)": "time",
    "state value (reward-to-go, 3.32)": "value",
}


def _chain_exact() -> dict[str, Any]:
    """Trajectory list, probabilities, exact gradient and the exact baselines of the chain."""
    import torch

    theta = torch.tensor(CHAIN_THETA, requires_grad=True)
    pi = theta.softmax(-1)
    trajectories = list(itertools.product(range(2), range(2), range(2)))  # (a_0, j, a_1)
    P1, R = torch.tensor(CHAIN_P1), torch.tensor(CHAIN_R)
    probs = torch.stack([pi[0, a0] * P1[a0, j] * pi[1 + j, a1] for a0, j, a1 in trajectories])
    returns = torch.tensor([float(R[0, a0] + R[1 + j, a1]) for a0, j, a1 in trajectories])
    (probs * returns.double()).sum().backward()  # U(theta) by enumeration (eq. 3.4)
    p = probs.detach().numpy()
    pi = pi.detach().numpy()
    v1, v2 = (pi[1] * CHAIN_R[1]).sum(), (pi[2] * CHAIN_R[2]).sum()
    v0 = (pi[0] * (CHAIN_R[0] + CHAIN_P1 @ np.array([v1, v2]))).sum()
    p_s1 = pi[0] @ CHAIN_P1
    return {
        "trajectories": np.array(trajectories),
        "probs": p,
        "gradient": theta.grad.numpy().ravel(),  # (6,)
        "values": np.array([v0, v1, v2]),
        "time": np.array([v0, p_s1 @ np.array([v1, v2])]),  # E[G_t], t = 0, 1
    }


def _chain_batches(m: int, batches: int, seed: int):
    """Sampled trajectories as (batches, m, 2) states, actions, rewards (torch)."""
    import torch

    exact = _chain_exact()
    rng = np.random.default_rng(seed)
    index = rng.choice(len(exact["probs"]), size=(batches, m), p=exact["probs"])
    a0, j, a1 = np.moveaxis(exact["trajectories"][index], -1, 0)
    states = torch.from_numpy(np.stack([np.zeros_like(a0), 1 + j], -1))
    actions = torch.from_numpy(np.stack([a0, a1], -1))
    return states, actions, torch.from_numpy(CHAIN_R[states.numpy(), actions.numpy()])


def chain_gradients(baseline: str, m: int = 8, batches: int = 2000, seed: int = 0) -> dict:
    """Gradient estimates of ``batches`` batches of ``m`` trajectories, one per batch (B, 6).

    The library's :func:`~fdrl_lib.algos.vpg.policy_gradient_surrogate` is differentiated for
    each batch. ``whole``, ``constant`` and ``optimal`` weigh every step by the whole return
    ``R(tau) - b`` (eqs. 3.11, 3.19); ``none``, ``time`` and ``value`` by the reward-to-go
    ``G_t - b`` (eq. 3.27). The baselines are the library's functions fitted on an independent
    sample of 20,000 trajectories (``value`` is the exact ``V^pi(s_t)``). Returns the estimates,
    the exact gradient, and the total variance (trace of the covariance).
    """
    import torch
    from torch.func import grad, vmap

    from fdrl_lib.algos import vpg

    kinds = set(BASELINE_NAMES.values())
    if baseline not in kinds:
        raise ValueError(f"baseline={baseline!r}; expected one of {sorted(kinds)}")
    if m < 1 or batches < 2:
        raise ValueError(f"need m >= 1 and batches >= 2, got m={m}, batches={batches}")
    exact = _chain_exact()
    theta = torch.tensor(CHAIN_THETA)

    def surrogate(th, s, a, w):
        return vpg.policy_gradient_surrogate(th.log_softmax(-1)[s, a], w, episodes=s.shape[0])

    batch_grad = vmap(grad(surrogate), in_dims=(None, 0, 0, 0))
    b = _fitted_baseline(baseline, batch_grad, theta)
    states, actions, rewards = _chain_batches(m, batches, seed)
    reward_to_go = rewards.flip(-1).cumsum(-1).flip(-1)  # (B, m, 2)
    whole = rewards.sum(-1, keepdim=True).expand_as(rewards)
    if baseline in ("whole", "constant", "optimal"):
        weights = whole - b
    elif baseline == "value":
        weights = reward_to_go - torch.from_numpy(exact["values"])[states]
    else:
        weights = reward_to_go - b
    estimates = batch_grad(theta, states, actions, weights).flatten(1).numpy()
    return {
        "estimates": estimates,  # (batches, 6)
        "exact": exact["gradient"],  # (6,)
        "variance": float(((estimates - estimates.mean(0)) ** 2).sum(1).mean()),
        "baseline": b if isinstance(b, float) else np.asarray(b).tolist(),
        "m": m,
    }


def _fitted_baseline(kind: str, batch_grad, theta):
    """The library's baseline fitted on 20,000 independent trajectories (0.0 for none)."""
    import torch

    from fdrl_lib.algos import vpg

    if kind in ("whole", "none", "value"):
        return 0.0
    states, actions, rewards = _chain_batches(20_000, 1, seed=12_345)
    states, actions, rewards = states[0], actions[0], rewards[0]  # (M, 2)
    if kind == "constant":
        return float(vpg.constant_baseline(rewards.sum(-1)))
    if kind == "optimal":
        ones = torch.ones(len(states), 1, 2, dtype=rewards.dtype)
        scores = batch_grad(theta, states[:, None], actions[:, None], ones).flatten(1)  # (M, 6)
        return float(vpg.optimal_constant_baseline(scores, rewards.sum(-1)))
    reward_to_go = rewards.flip(-1).cumsum(-1).flip(-1)
    times = torch.arange(2).expand_as(reward_to_go).flatten()
    return vpg.time_baseline(reward_to_go.flatten(), times, horizon=2).double()


def constant_baseline_variance(bs) -> dict:
    """Exact total variance of the one-trajectory estimate ``s(tau) (R(tau) - b)`` for each
    constant in ``bs``, by enumerating the chain, with the average return (3.29) and the optimal
    constant (3.30, computed by the library from the enumerated scores) for reference."""
    import torch

    from fdrl_lib.algos import vpg

    exact = _chain_exact()
    pi = torch.tensor(CHAIN_THETA, requires_grad=True)
    scores = []
    for a0, j, a1 in exact["trajectories"]:
        pi.grad = None
        log_p = pi.log_softmax(-1)
        (log_p[0, a0] + log_p[1 + j, a1]).backward()  # grad log P(tau) (eq. 3.14)
        scores.append(pi.grad.flatten().clone())
    scores = torch.stack(scores).numpy()  # (8, 6)
    returns = np.array([CHAIN_R[0, a0] + CHAIN_R[1 + j, a1] for a0, j, a1 in exact["trajectories"]])
    p, g = exact["probs"], exact["gradient"]
    norms = (scores**2).sum(1)
    bs = np.asarray(bs, dtype=float)
    variance = (p * norms * (returns[None] - bs[:, None]) ** 2).sum(1) - g @ g
    weighted = torch.from_numpy(scores * np.sqrt(p)[:, None])  # expectation = probability weights
    return {
        "b": bs,
        "variance": variance,
        "mean_return": float(p @ returns),
        "optimal": float(vpg.optimal_constant_baseline(weighted, torch.from_numpy(returns))),
    }


@lru_cache(maxsize=64)
def _cached_gradients(baseline: str, m: int, batches: int) -> dict:
    return chain_gradients(baseline, m, batches)


def draw_gradient_spread(baseline: str = "none", m: int = 8, batches: int = 2000, fig=None):
    """Left: histogram of the estimate's component along the exact gradient, for ``baseline``
    over the whole-return estimate. Right: total variance of every baseline (log scale)."""
    fig = fig or Figure(figsize=(10, 3.6))
    fig.clear()
    ax_h, ax_v = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    exact = _chain_exact()["gradient"]
    direction = exact / np.linalg.norm(exact)
    reference = _cached_gradients("whole", m, batches)["estimates"] @ direction
    chosen = _cached_gradients(baseline, m, batches)["estimates"] @ direction
    bins = np.linspace(*np.percentile(reference, [0.5, 99.5]), 60)
    ax_h.hist(reference, bins=bins, color="0.75", label="no baseline, whole return")
    label = next(k for k, v in BASELINE_NAMES.items() if v == baseline)
    ax_h.hist(chosen, bins=bins, color="tab:blue", alpha=0.7, label=label)
    ax_h.axvline(np.linalg.norm(exact), color="k", lw=2, label="exact gradient")
    ax_h.set_xlabel("estimate along the exact gradient's direction")
    ax_h.set_ylabel(f"batches of m = {m}")
    ax_h.legend(fontsize=7)
    names = list(BASELINE_NAMES)
    variances = [_cached_gradients(BASELINE_NAMES[n], m, batches)["variance"] for n in names]
    colors = ["tab:blue" if BASELINE_NAMES[n] == baseline else "0.6" for n in names]
    ax_v.barh(range(len(names)), variances, color=colors)
    short = [n.replace("reward-to-go", "G_t").replace("whole return", "R(tau)") for n in names]
    ax_v.set_yticks(range(len(names)), short, fontsize=7)
    ax_v.invert_yaxis()
    ax_v.set_xscale("log")
    ax_v.set_xlabel("total variance of the estimate")
    fig.tight_layout()
    return fig


class GradientSpreadDemo(Demo):
    """Pick a baseline and a batch size; the histogram of gradient estimates redraws."""

    def __init__(self, baseline: str = "none", m: int = 8, batches: int = 2000) -> None:
        import ipywidgets as w

        super().__init__()
        self.batches = batches
        options = [(name, kind) for name, kind in BASELINE_NAMES.items()]
        self.baseline = w.Dropdown(options=options, value=baseline, description="baseline")
        self.m = w.IntSlider(value=m, min=1, max=32, description="m")
        for control in (self.baseline, self.m):
            control.observe(self._on_change, names="value")
        self.controls = w.HBox([self.baseline, self.m])
        self._on_change()

    def _on_change(self, change: Any = None) -> None:
        draw_gradient_spread(self.baseline.value, self.m.value, self.batches, fig=self.figure)
        self._refresh()


def gradient_spread_demo(**settings: Any) -> GradientSpreadDemo:
    """Show the baseline demo: a picture first, then live controls."""
    return GradientSpreadDemo(**settings).show()


# ------------------------------------------------------------ GAE on a random walk (sec. 3.7)
WALK_STATES = 7  # 0 and 6 are exits: -1 at the left end, +1 at the right end
WALK_START = 3
WALK_RIGHT = 0.6  # the policy: right with this probability
WALK_SLIP = 0.2  # the move goes the other way with this probability


def walk_values(gamma: float) -> np.ndarray:
    """``V^{pi, gamma}(s)`` of the random walk (exits 0), by solving ``(I - gamma P) V = r``."""
    n = WALK_STATES
    right = WALK_RIGHT * (1 - WALK_SLIP) + (1 - WALK_RIGHT) * WALK_SLIP  # P(move right)
    P, r = np.zeros((n, n)), np.zeros(n)
    for s in range(1, n - 1):
        P[s, s + 1], P[s, s - 1] = right, 1 - right
        r[s] = right * (s + 1 == n - 1) - (1 - right) * (s - 1 == 0)
    return np.linalg.solve(np.eye(n) - gamma * P, r)


def walk_advantages(gamma: float = 1.0) -> np.ndarray:
    """``A^{pi, gamma}(start, a)`` for a = left, right: (2,)."""
    V = walk_values(gamma)
    s = WALK_START
    q = []
    for a in (0, 1):
        right = 1 - WALK_SLIP if a == 1 else WALK_SLIP
        q.append(right * gamma * V[s + 1] + (1 - right) * gamma * V[s - 1])  # no exit next to s
    return np.array(q) - V[s]


@lru_cache(maxsize=4)
def walk_episodes(episodes: int = 4000, seed: int = 0, horizon: int = 200) -> dict:
    """Sampled episodes from the start state, time first: (T, M) states, actions, rewards,
    terminated; padded after the end (those steps are never reached by a sum)."""
    rng = np.random.default_rng(seed)
    states = np.full((horizon, episodes), -1)
    actions = np.zeros((horizon, episodes), dtype=int)
    rewards, terminated = np.zeros((horizon, episodes)), np.ones((horizon, episodes))
    s = np.full(episodes, WALK_START)
    alive = np.ones(episodes, dtype=bool)
    for t in range(horizon):
        a = (rng.random(episodes) < WALK_RIGHT).astype(int)
        move = np.where(rng.random(episodes) < WALK_SLIP, -(2 * a - 1), 2 * a - 1)
        nxt = s + move
        states[t] = np.where(alive, s, -1)
        actions[t] = a
        rewards[t] = np.where(alive, (nxt == WALK_STATES - 1) * 1.0 - (nxt == 0) * 1.0, 0.0)
        done = (nxt == 0) | (nxt == WALK_STATES - 1)
        terminated[t] = np.where(alive, done, 1.0)
        alive &= ~done
        s = np.where(alive, nxt, s)
        if not alive.any():
            break
    T = t + 1  # the longest episode's length: nothing after it
    states, actions, rewards, terminated = states[:T], actions[:T], rewards[:T], terminated[:T]
    return {"states": states, "actions": actions, "rewards": rewards, "terminated": terminated,
            "next_states": np.vstack([states[1:], np.full((1, episodes), -1)])}  # fmt: skip


def gae_bias_variance(
    gamma: float, lam: float, critic_error: float = 0.3, episodes: int = 4000
) -> dict:
    """GAE at the start state against the true undiscounted advantage ``A^pi(start, a)``.

    The critic is ``V^{pi, gamma}`` plus a fixed error pattern of size ``critic_error`` (a real
    critic is never exact: that is what makes lambda < 1 biased). Returns the per-action
    estimates, bias^2 and variance averaged over the two actions, and the true advantages.
    """
    from fdrl_lib.returns import gae

    if not (0 <= gamma <= 1 and 0 <= lam <= 1):
        raise ValueError(f"gamma and lam must be in [0, 1], got {gamma}, {lam}")
    data = walk_episodes(episodes)
    # exact at the exits and at the start (so lambda = 1 is unbiased), wrong in between
    pattern = critic_error * np.array([0.0, 1.0, -1.0, 0.0, -1.0, 1.0, 0.0])
    critic = walk_values(gamma) + pattern
    critic = np.append(critic, 0.0)  # index -1 (padding) -> 0
    values = critic[data["states"]]
    next_values = critic[data["next_states"]] * (1 - data["terminated"])
    zeros = np.zeros_like(values)
    advantage = gae(data["rewards"], values, next_values, data["terminated"], zeros, gamma, lam)
    first, action = advantage[0], data["actions"][0]
    true = walk_advantages(1.0)
    bias2, var, per_action = 0.0, 0.0, []
    for a in (0, 1):
        x = first[action == a]
        per_action.append(x)
        bias2 += 0.5 * (x.mean() - true[a]) ** 2
        var += 0.5 * x.var()
    return {"estimates": per_action, "true": true, "bias2": bias2, "variance": var}


def draw_gae(gamma: float = 0.99, lam: float = 0.95, critic_error: float = 0.3, fig=None):
    """Left: the estimates of A(start, right) for (gamma, lam) against the truth. Right: bias^2,
    variance and their sum (the mean squared error) against lambda at this gamma."""
    fig = fig or Figure(figsize=(10, 3.6))
    fig.clear()
    ax_h, ax_c = fig.subplots(1, 2)
    state = gae_bias_variance(gamma, lam, critic_error)
    for a, color, name in ((1, "tab:blue", "right"), (0, "tab:orange", "left")):
        ax_h.hist(state["estimates"][a], bins=40, color=color, alpha=0.6, label=f"a = {name}")
        ax_h.axvline(state["true"][a], color=color, lw=2, ls="--")
    ax_h.set_xlabel(r"GAE estimate of $A(s_{start}, a)$ (dashed: true advantage)")
    ax_h.set_title(rf"$\gamma$ = {gamma:.2f}, $\lambda$ = {lam:.2f}", fontsize=10)
    ax_h.legend(fontsize=7)
    lams = np.linspace(0, 1, 11)
    rows = [gae_bias_variance(gamma, x, critic_error) for x in lams]
    bias2 = np.array([r["bias2"] for r in rows])
    var = np.array([r["variance"] for r in rows])
    ax_c.plot(lams, bias2, label="bias$^2$")
    ax_c.plot(lams, var, label="variance")
    ax_c.plot(lams, bias2 + var, "k", lw=2, label="mean squared error")
    ax_c.axvline(lam, color="0.5", ls=":")
    ax_c.set_xlabel(r"$\lambda$")
    ax_c.set_title(rf"critic error {critic_error:.2f}, $\gamma$ = {gamma:.2f}", fontsize=10)
    ax_c.legend(fontsize=7)
    fig.tight_layout()
    return fig


class GAEDemo(Demo):
    """Sliders for gamma, lambda and the critic's error; GAE's spread and bias redraw."""

    def __init__(self, gamma: float = 0.99, lam: float = 0.95, critic_error: float = 0.3) -> None:
        import ipywidgets as w

        super().__init__()
        self.gamma = w.FloatSlider(value=gamma, min=0.5, max=1.0, step=0.01, description="gamma")
        self.lam = w.FloatSlider(value=lam, min=0.0, max=1.0, step=0.05, description="lambda")
        self.error = w.FloatSlider(value=critic_error, min=0.0, max=1.0, step=0.05,
                                   description="critic error")  # fmt: skip
        for control in (self.gamma, self.lam, self.error):
            control.observe(self._on_change, names="value")
        self.controls = w.HBox([self.gamma, self.lam, self.error])
        self._on_change()

    def _on_change(self, change: Any = None) -> None:
        draw_gae(self.gamma.value, self.lam.value, self.error.value, fig=self.figure)
        self._refresh()


def gae_demo(**settings: Any) -> GAEDemo:
    """Show the GAE explorer: a picture first, then live sliders."""
    return GAEDemo(**settings).show()


# ------------------------------------------------------------------------ learning curves
CURVES = {  # label -> (algorithm, Config overrides): the lecture's comparison
    "VPG, no baseline": ("vpg", {"baseline": "none"}),
    "VPG, value baseline": ("vpg", {"baseline": "value"}),
    "A2C (GAE)": ("a2c", {}),
}


def run_curves(
    seeds=(0, 1, 2), steps: int = 60_000, eval_every: int = 5_000, episodes: int = 10
) -> dict:
    """Train each of :data:`CURVES` for ``steps`` env steps per seed (no early stop) and return
    ``{label: [{"steps": [...], "returns": [...]}, ...]}`` of the periodic evaluations."""
    from fdrl_lib import algos

    out = {}
    for label, (algo, overrides) in CURVES.items():
        module = getattr(algos, algo)
        config = module.Config(**overrides, eval_every=eval_every, eval_episodes=episodes,
                               stop_at_target=False)  # fmt: skip
        out[label] = []
        for seed in seeds:
            result = module.train("CartPole-v1", config, seed=seed, total_steps=steps,
                                  progress=False)  # fmt: skip
            evals = result.logs.get("eval_return", [])
            out[label].append({"steps": [s for s, _ in evals], "returns": [v for _, v in evals]})
    return out


def plot_run(result, label: str, ax=None):
    """One training run: each finished episode's return (dots) and the periodic evaluations."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 2.8))
    episodes = result.history
    ax.plot([h["step"] for h in episodes], [h["episode_return"] for h in episodes], ".",
            color="0.7", ms=3, label="training episodes (stochastic policy)")  # fmt: skip
    evals = result.logs.get("eval_return", [])
    ax.plot([s for s, _ in evals], [v for _, v in evals], "o-", label="evaluation (deterministic)")
    if result.kept_step is not None:
        ax.axvline(result.kept_step, color="k", ls=":", label="kept policy")
    ax.set_xlabel("env steps")
    ax.set_ylabel("return")
    ax.set_title(label, fontsize=10)
    ax.legend(fontsize=7)
    return ax


def load_reference(path: Path = REFERENCE_CURVES) -> dict:
    """The shipped full-mode curves: ``{label: [{"steps": [...], "returns": [...]}, ...]}``."""
    return json.loads(Path(path).read_text())


def _mean_curve(runs: list[dict], grid: np.ndarray) -> np.ndarray:
    """Each run held at its last value past its end, on ``grid``: (runs, len(grid))."""
    rows = []
    for run in runs:
        steps, returns = np.asarray(run["steps"]), np.asarray(run["returns"])
        index = np.searchsorted(steps, grid, side="right") - 1
        rows.append(np.where(index >= 0, returns[np.clip(index, 0, None)], np.nan))
    return np.array(rows)


def learning_curves(reference: dict | None = None, fast: dict | None = None, fig=None) -> Figure:
    """Evaluation return against env steps: mean and min-max over seeds per label.

    ``reference`` (full mode, shipped) is drawn thick and faint; ``fast`` (this run) thin on top.
    """
    fig = fig or Figure(figsize=(8, 4))
    fig.clear()
    ax = fig.subplots()
    colors = {}
    for source, style in ((reference, dict(lw=3, alpha=0.35)), (fast, dict(lw=1.5, alpha=1.0))):
        for label, runs in (source or {}).items():
            if label.startswith("_") or not runs:  # "_about": how the file was made
                continue
            top = max(max(r["steps"]) for r in runs if r["steps"])
            start = min(r["steps"][0] for r in runs if r["steps"])  # the first evaluation
            grid = np.linspace(start, top, 200)
            curves = _mean_curve(runs, grid)
            color = colors.setdefault(label, f"C{len(colors)}")
            tag = "reference" if source is reference else "this run"
            ax.plot(grid, np.nanmean(curves, 0), color=color, label=f"{label} ({tag})", **style)
            if source is reference:
                ax.fill_between(grid, np.nanmin(curves, 0), np.nanmax(curves, 0), color=color,
                                alpha=0.1)  # fmt: skip
    ax.axhline(475, color="k", ls="--", lw=1, label="solved (475)")
    ax.set_xlabel("env steps")
    ax.set_ylabel("evaluation return (10 episodes)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
