"""Lecture 4's interactive demos.

* ``ClipDemo``: PPO's clipped objective (eq. 4.14) for one sample as a function of the ratio
  ``r`` (eq. 4.12), for a positive or a negative advantage, with an epsilon slider: where the
  objective goes flat, the sample stops pulling the policy.
* ``TrustRegionDemo``: a 2-D Gaussian policy ``N(mu, Sigma)`` over actions with parameters
  ``theta = mu``. The trust region ``KL(pi_old || pi) <= epsilon`` (eq. 4.5) is an ellipse shaped
  by ``Sigma``; the plain gradient step and the natural gradient step ``F^-1 g`` (Algorithm 6,
  found here by the library's conjugate gradient), each scaled to the region's edge, and the
  objective each one gains.

The logic lives in pure functions (``clip_curves``, ``trust_region_state`` and their ``draw_*``)
that tests drive without a browser; the widget classes only wire controls to them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fdrl_lib.widgets import Demo

# ---------------------------------------------------------------------- the clipped objective


def clip_curves(epsilon: float, advantage: float, ratios: np.ndarray | None = None) -> dict:
    """The three curves of eq. 4.14 over ``ratios``: ``r A``, ``clip(r, 1-eps, 1+eps) A`` and
    their minimum (computed by the library's :func:`fdrl_lib.algos.ppo.clipped_surrogate`), plus
    the ratios where the objective's slope is zero (no gradient)."""
    import torch

    from fdrl_lib.algos.ppo import clipped_surrogate

    if not 0 < epsilon < 1:
        raise ValueError(f"epsilon={epsilon}; expected a clip range in (0, 1)")
    if advantage == 0:
        raise ValueError("advantage=0 gives a flat objective; pick a positive or negative one")
    r = np.linspace(0.0, 2.0, 401) if ratios is None else np.asarray(ratios, dtype=float)
    rt = torch.as_tensor(r, dtype=torch.float64)
    A = torch.full_like(rt, float(advantage))
    objective = clipped_surrogate(rt, A, epsilon).numpy()
    flat = r > 1 + epsilon if advantage > 0 else r < 1 - epsilon
    return {
        "ratio": r,
        "unclipped": r * advantage,
        "clipped": np.clip(r, 1 - epsilon, 1 + epsilon) * advantage,
        "objective": objective,
        "flat": flat,
        "epsilon": float(epsilon),
        "advantage": float(advantage),
    }


def draw_clip(state: dict, fig: Figure | None = None) -> Figure:
    fig = fig or Figure(figsize=(6.5, 3.4))
    fig.clear()
    ax = fig.add_subplot(1, 1, 1)
    r, eps, A = state["ratio"], state["epsilon"], state["advantage"]
    ax.plot(r, state["unclipped"], "--", color="0.5", label=r"$r\,\hat A$")
    ax.plot(r, state["clipped"], ":", color="tab:orange", label=r"clip$(r, 1\pm\epsilon)\,\hat A$")
    ax.plot(r, state["objective"], color="tab:blue", lw=2.5, label=r"$L^{clip}$ (4.14)")
    ax.axvspan(1 - eps, 1 + eps, color="tab:green", alpha=0.1, label="clip range")
    flat = state["flat"]
    if flat.any():
        ax.plot(r[flat], state["objective"][flat], color="tab:red", lw=4, alpha=0.5,
                label="flat: no gradient")  # fmt: skip
    ax.axvline(1.0, color="k", lw=0.5)
    ax.set_xlabel(r"ratio $r = \pi_\theta(a|s) / \pi_{old}(a|s)$")
    ax.set_title(f"advantage {A:+g}, epsilon = {eps:g}")
    ax.legend(fontsize=8, loc="upper left" if A > 0 else "lower left")
    fig.tight_layout()
    return fig


class ClipDemo(Demo):
    """Slide epsilon; switch the advantage's sign."""

    def __init__(self, epsilon: float = 0.2, advantage: float = 1.0) -> None:
        import ipywidgets as w

        super().__init__()
        self.figure.set_size_inches(6.5, 3.4)
        self.epsilon = w.FloatSlider(value=epsilon, min=0.05, max=0.6, step=0.05,
                                     description="epsilon")  # fmt: skip
        self.sign = w.ToggleButtons(options=[("A > 0", 1.0), ("A < 0", -1.0)],
                                    value=1.0 if advantage > 0 else -1.0)  # fmt: skip
        self.magnitude = abs(advantage)
        for control in (self.epsilon, self.sign):
            control.observe(self._on_change, names="value")
        self.controls = w.HBox([self.epsilon, self.sign])
        self._on_change()

    def _on_change(self, change: Any = None) -> None:
        self.state = clip_curves(self.epsilon.value, self.sign.value * self.magnitude)
        draw_clip(self.state, fig=self.figure)
        self._refresh()


def clip_demo(**settings: Any) -> ClipDemo:
    """Show the clipped-objective demo: a picture of the defaults first, then the controls."""
    return ClipDemo(**settings).show()


# ---------------------------------------------------------------------- the trust region

GOAL = np.array([2.0, 1.0])  # the action with the highest reward: r(a) = -|a - GOAL|^2


def covariance(sigma_x: float, sigma_y: float, rho: float) -> np.ndarray:
    """``Sigma`` (2, 2) from two standard deviations and a correlation in (-1, 1)."""
    if sigma_x <= 0 or sigma_y <= 0 or not -1 < rho < 1:
        raise ValueError(f"need sigmas > 0 and |rho| < 1, got {sigma_x}, {sigma_y}, {rho}")
    off = rho * sigma_x * sigma_y
    return np.array([[sigma_x**2, off], [off, sigma_y**2]])


def gaussian_kl(mu_old: np.ndarray, mu: np.ndarray, Sigma: np.ndarray) -> np.ndarray:
    """``KL(N(mu_old, Sigma) || N(mu, Sigma)) = (mu - mu_old)^T Sigma^-1 (mu - mu_old) / 2``.

    ``mu`` may be (..., 2); with equal covariances the KL is exactly this quadratic, so the Fisher
    matrix in ``mu`` is ``Sigma^-1`` and the KL ball is an ellipse."""
    d = np.asarray(mu, dtype=float) - mu_old
    return 0.5 * np.einsum("...i,ij,...j->...", d, np.linalg.inv(Sigma), d)


def expected_reward(mu: np.ndarray, Sigma: np.ndarray) -> np.ndarray:
    """``E_{a ~ N(mu, Sigma)}[-|a - GOAL|^2] = -|mu - GOAL|^2 - tr Sigma``."""
    d = np.asarray(mu, dtype=float) - GOAL
    return -np.sum(d**2, axis=-1) - np.trace(Sigma)


def trust_region_state(
    epsilon: float, sigma_x: float, sigma_y: float, rho: float = 0.0, mu_old=(0.0, 0.0)
) -> dict:
    """Both steps from ``mu_old`` to the edge of ``KL <= epsilon``: plain ``g`` and natural
    ``F^-1 g`` (conjugate gradient with ``F v = Sigma^-1 v``), each scaled so that the quadratic
    model ``step^T F step / 2`` equals ``epsilon``; their KLs and reward gains."""
    import torch

    from fdrl_lib.algos.trpo import conjugate_gradient

    if not epsilon > 0:
        raise ValueError(f"epsilon={epsilon}; expected a trust-region radius > 0")
    Sigma = covariance(sigma_x, sigma_y, rho)
    F = np.linalg.inv(Sigma)  # the Fisher matrix of the mean
    mu_old = np.asarray(mu_old, dtype=float)
    g = -2.0 * (mu_old - GOAL)  # gradient of the expected reward
    F_t = torch.as_tensor(F)
    natural = conjugate_gradient(lambda v: F_t @ v, torch.as_tensor(g), iters=2).numpy()

    def to_edge(direction):
        return direction * np.sqrt(2 * epsilon / (direction @ F @ direction))

    steps = {"plain": to_edge(g), "natural": to_edge(natural)}
    return {
        "epsilon": float(epsilon),
        "Sigma": Sigma,
        "mu_old": mu_old,
        "g": g,
        "natural_direction": natural,
        "steps": steps,
        "kl": {k: float(gaussian_kl(mu_old, mu_old + s, Sigma)) for k, s in steps.items()},
        "gain": {
            k: float(expected_reward(mu_old + s, Sigma) - expected_reward(mu_old, Sigma))
            for k, s in steps.items()
        },
    }


def draw_trust_region(state: dict, fig: Figure | None = None) -> Figure:
    fig = fig or Figure(figsize=(8.5, 4))
    fig.clear()
    Sigma, mu_old, eps = state["Sigma"], state["mu_old"], state["epsilon"]
    ax_a, ax_m = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    # left: the policy itself, its density over 2-D actions, and the best action
    x, y = np.meshgrid(np.linspace(-3, 4, 120), np.linspace(-3, 4, 120))
    pts = np.stack([x, y], axis=-1)
    d = pts - mu_old
    density = np.exp(-0.5 * np.einsum("...i,ij,...j->...", d, np.linalg.inv(Sigma), d))
    ax_a.contourf(x, y, density, levels=8, cmap="Blues")
    ax_a.plot(*GOAL, "r*", ms=12, label="best action")
    ax_a.set_title(r"$\pi_{old}(a) = N(\mu_{old}, \Sigma)$ over actions", fontsize=10)
    ax_a.set_aspect("equal")
    ax_a.legend(fontsize=8, loc="lower right")
    # right: parameter space (mu), reward contours, the KL ball, the two steps
    reward = expected_reward(pts, Sigma)
    ax_m.contour(x, y, reward, levels=12, colors="0.7", linewidths=0.7)
    kl = gaussian_kl(mu_old, pts, Sigma)
    ax_m.contour(x, y, kl, levels=[eps], colors="tab:green", linewidths=2)
    ax_m.plot([], [], color="tab:green", label=rf"KL $\leq$ {eps:g} (4.5)")
    for name, color in (("plain", "tab:orange"), ("natural", "tab:blue")):
        step = state["steps"][name]
        ax_m.annotate("", mu_old + step, mu_old,
                      arrowprops=dict(arrowstyle="->", color=color, lw=2))  # fmt: skip
        ax_m.plot([], [], color=color, label=f"{name}: reward +{state['gain'][name]:.3f}")
    ax_m.plot(*GOAL, "r*", ms=12)
    ax_m.plot(*mu_old, "ko", ms=4)
    ax_m.set_title(r"parameters $\theta = \mu$: steps to the KL edge", fontsize=10)
    ax_m.set_aspect("equal")
    ax_m.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


class TrustRegionDemo(Demo):
    """Slide epsilon and the policy's covariance; compare the two steps."""

    def __init__(self, epsilon: float = 0.5, sigma_x: float = 1.5, sigma_y: float = 0.4,
                 rho: float = 0.0) -> None:  # fmt: skip
        import ipywidgets as w

        super().__init__()
        self.figure.set_size_inches(8.5, 4)

        def slider(value, lo, hi, step, name):
            return w.FloatSlider(value=value, min=lo, max=hi, step=step, description=name)

        self.epsilon = slider(epsilon, 0.05, 2.0, 0.05, "epsilon")
        self.sigma_x = slider(sigma_x, 0.2, 2.0, 0.1, "sigma_x")
        self.sigma_y = slider(sigma_y, 0.2, 2.0, 0.1, "sigma_y")
        self.rho = slider(rho, -0.9, 0.9, 0.1, "rho")
        sliders = (self.epsilon, self.sigma_x, self.sigma_y, self.rho)
        for control in sliders:
            control.observe(self._on_change, names="value")
        self.controls = w.HBox(list(sliders))
        self._on_change()

    def _on_change(self, change: Any = None) -> None:
        self.state = trust_region_state(
            self.epsilon.value, self.sigma_x.value, self.sigma_y.value, self.rho.value
        )
        draw_trust_region(self.state, fig=self.figure)
        self._refresh()


def trust_region_demo(**settings: Any) -> TrustRegionDemo:
    """Show the trust-region demo: a picture of the defaults first, then the controls."""
    return TrustRegionDemo(**settings).show()


# ---------------------------------------------------------------------- learning curves

REFERENCE = "lecture4_curves.json"  # shipped full-mode runs, in fdrl_lib/widgets/data/
DIAGNOSTICS = ("eval_return", "kl", "clip_fraction", "beta", "backtracks", "entropy")


def lecture_configs() -> dict:
    """The three algorithms compared in the lecture, each at its ``Config()`` defaults."""
    from fdrl_lib.algos import ppo, trpo

    return {
        "TRPO": (trpo, trpo.Config()),
        "PPO-KL": (ppo, ppo.Config(variant="kl")),
        "PPO-clip": (ppo, ppo.Config(variant="clip")),
    }


def compare(env: str, seeds, steps: int, eval_every: int = 2_000, progress: bool = False) -> dict:
    """Train each of :func:`lecture_configs` for ``steps`` env steps per seed (no early stop) and
    keep each run's diagnostics: ``{name: [{"eval_return": [(step, value)], "kl": ...}]}``."""
    import dataclasses

    runs: dict[str, list[dict]] = {}
    for name, (module, config) in lecture_configs().items():
        config = dataclasses.replace(config, eval_every=eval_every, stop_at_target=False)
        for seed in seeds:
            result = module.train(env, config, seed=seed, total_steps=steps, progress=progress)
            logs = {k: [list(p) for p in result.logs[k]] for k in DIAGNOSTICS if k in result.logs}
            runs.setdefault(name, []).append(logs)
    return runs


def load_reference() -> dict:
    """The shipped full-mode curves (see :func:`compare`; written by benchmarks/lecture4_curves)."""
    import json
    from importlib import resources

    return json.loads((resources.files("fdrl_lib.widgets") / "data" / REFERENCE).read_text())


def _curve(ax, runs: list[dict], key: str, color, label, style="-", alpha=0.2) -> None:
    if not runs or any(key not in r or not r[key] for r in runs):
        return
    grid = np.unique(np.concatenate([np.asarray(r[key])[:, 0] for r in runs]))
    values = np.stack([np.interp(grid, *np.asarray(r[key]).T) for r in runs])  # (seeds, T)
    if key != "eval_return" and values.shape[1] > 10:  # per-update diagnostics: smooth a little
        width = max(1, values.shape[1] // 25)
        kernel = np.ones(width) / width
        values = np.stack([np.convolve(v, kernel, mode="valid") for v in values])
        grid = grid[width - 1 :]  # each average drawn at the last step of its window
    ax.plot(grid, values.mean(0), style, color=color, label=label)
    if len(runs) > 1 and alpha:
        ax.fill_between(grid, values.min(0), values.max(0), color=color, alpha=alpha)


def draw_comparison(reference: dict, current: dict | None = None, fig: Figure | None = None):
    """Evaluation return, KL per update and clip fraction (and PPO-KL's beta), side by side:
    the reference runs as mean and range over seeds, this run's curves dashed over them."""
    fig = fig or Figure(figsize=(13, 3.4))
    fig.clear()
    keys = ("eval_return", "kl", "clip_fraction", "beta")
    titles = ("evaluation return", "KL(pi_old || pi) per update", "clip fraction", "beta (PPO-KL)")
    axes = [fig.add_subplot(1, 4, i + 1) for i in range(4)]
    colors = {"TRPO": "tab:green", "PPO-KL": "tab:orange", "PPO-clip": "tab:blue"}
    for ax, key, title in zip(axes, keys, titles, strict=True):
        for name, color in colors.items():
            _curve(ax, reference.get(name, []), key, color, name)
            if current:
                _curve(ax, current.get(name, []), key, color, None, style="--", alpha=0)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("env steps")
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
