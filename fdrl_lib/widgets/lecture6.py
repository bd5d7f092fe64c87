"""Lecture 6's interactive demos and the notebook's experiment helpers.

* ``EnsembleDemo``: a 1-D dynamics ``s' = s + f(s)`` fitted by an ensemble of K models from a
  growing data set. A slider adds data; the members agree where the data is and fan out where
  it is not, and their disagreement (std over members) is drawn underneath.
* ``ExploitationDemo``: a policy trained by TRPO inside a model fitted on little real data.
  Its imagined return (what the model promises) climbs while its real return does not: the
  policy has found the model's errors. A slider walks through the training iterations.
* ``learning_curves`` / ``draw_learning_curves``: real-env-step learning curves over seeds for
  the notebook's model-based against model-free comparison, drawn over shipped references.

The logic lives in pure functions (``ensemble_state``, ``draw_ensemble``, ``exploitation_run``,
``draw_exploitation``) that tests drive without a browser; the widget classes only wire controls
to them. Each demo is shown first as an ordinary picture, then the live controls.
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

REFERENCE = Path(__file__).parent / "data" / "lecture6_reference.json"


# ---------------------------------------------------------------------- ensembles, 1-D
def true_step(s: np.ndarray) -> np.ndarray:
    """The 1-D system of the ensemble demo: ``s' = s + 0.4 sin(2 s)``."""
    return s + 0.4 * np.sin(2.0 * s)


def demo_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` of a fixed sequence of observed states (spreading out from 0 as data is
    added, as a policy explores) and their noisy next states, ``(n,)`` each."""
    rng = np.random.default_rng(seed)
    order = rng.normal(size=400) * np.linspace(0.6, 2.5, 400)  # later points reach further
    s = np.clip(order[:n], -3.0, 3.0)
    return s, true_step(s) + 0.05 * rng.normal(size=400)[:n]


@lru_cache(maxsize=16)
def ensemble_state(n: int, K: int = 5, seed: int = 0) -> dict[str, Any]:
    """Fit K models to :func:`demo_data` ``(n)`` and predict on a grid over ``[-4, 4]``.

    Returns ``grid`` (G,), ``true`` (G,), ``members`` (K, G) predicted next states, ``spread``
    (G,) the disagreement (:func:`~fdrl_lib.dynamics.disagreement`), ``s``, ``next_s`` (n,).
    """
    import torch

    from fdrl_lib.dynamics import DynamicsEnsemble, FitSettings, disagreement, fit_dynamics

    if n < 2 or K < 2:
        raise ValueError(f"need at least 2 data points and 2 models, got n={n}, K={K}")
    s, next_s = demo_data(n, seed)
    grid = np.linspace(-4.0, 4.0, 161)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = DynamicsEnsemble(K, 1, 1, hidden=(32, 32))
            settings = FitSettings(lr=3e-3, batch_size=64, max_epochs=150, patience=15)
            zeros = np.zeros((n, 1))
            fit_dynamics(model, s[:, None], zeros, next_s[:, None], rng=seed, settings=settings)
        x = torch.as_tensor(grid, dtype=torch.float32)[:, None]
        with torch.no_grad():
            members = model.next_obs(x, torch.zeros(len(grid), 1))[..., 0].numpy()  # (K, G)
        spread = disagreement(model, x, torch.zeros(len(grid), 1)).numpy()
    finally:
        torch.set_num_threads(before)
    return {"grid": grid, "true": true_step(grid), "members": members, "spread": spread,
            "s": s, "next_s": next_s}  # fmt: skip


def draw_ensemble(state: dict[str, Any], fig: Figure | None = None) -> Figure:
    """The members' predictions over the data and the true system; their disagreement below."""
    fig = fig if fig is not None else Figure()
    fig.clear()
    fig.set_size_inches(8.0, 4.5)
    ax, ax_spread = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for k, member in enumerate(state["members"]):
        ax.plot(
            state["grid"], member, lw=1, alpha=0.8, label="ensemble members" if k == 0 else None
        )
    ax.plot(state["grid"], state["true"], "k--", lw=1.5, label="true s'")
    ax.plot(state["s"], state["next_s"], "o", color="k", ms=3, label=f"data (n={len(state['s'])})")
    ax.set_ylim(-6, 6)
    ax.set_ylabel("predicted s'")
    ax.legend(loc="upper left", fontsize=8)
    ax_spread.fill_between(state["grid"], state["spread"], color="tab:red", alpha=0.4)
    ax_spread.set_ylabel("disagreement\n(std over members)")
    ax_spread.set_xlabel("state s")
    ax_spread.set_yscale("log")
    fig.tight_layout()
    return fig


class EnsembleDemo(Demo):
    """Add data to a 1-D dynamics fit; the ensemble's disagreement shrinks where it lands."""

    SIZES = (5, 10, 20, 40, 80, 160)

    def __init__(self, n: int = 20, K: int = 5) -> None:
        import ipywidgets as w

        super().__init__()
        self.K = K
        self.n = w.SelectionSlider(options=list(self.SIZES), value=n, description="data points")
        self.n.observe(self._on_change, names="value")
        self.controls = w.HBox([self.n])
        self.state: dict[str, Any] = {}
        self._on_change()

    def _on_change(self, change: Any = None) -> None:
        self.state = ensemble_state(int(self.n.value), self.K)
        draw_ensemble(self.state, fig=self.figure)
        self._refresh()


def ensemble_demo(**settings: Any) -> EnsembleDemo:
    """Show the ensemble demo: a picture of the defaults first, then the live slider."""
    return EnsembleDemo(**settings).show()


# ------------------------------------------------------------------- model exploitation
def exploitation_run(
    iterations: int = 60, episodes: int = 1, K: int = 1, seed: int = 0, eval_episodes: int = 5
) -> dict[str, np.ndarray]:
    """Fit a model on ``episodes`` real episodes of a random policy, then run ``iterations``
    TRPO steps inside it (no new real data), scoring the policy's mean action after each:

    ``imagined`` (I,) its return in the model (mean over members, from the real start states of
    the evaluation episodes), ``real`` (I,) its return on those same real episodes.
    """
    import gymnasium as gym
    import torch

    from fdrl_lib.algos import mbrl
    from fdrl_lib.algos.me_trpo import model_returns
    from fdrl_lib.training import evaluate, seeded

    c = mbrl.Config(K=K)
    task = mbrl.TASKS["Pendulum-v1"]
    with seeded(seed) as streams:
        env = gym.make("Pendulum-v1")
        rng = streams.generator()
        parts, policy = mbrl.policy_parts(env, c)
        model = mbrl.make_model(env, task, c)
        spaces = mbrl.spaces_of(env)
        data, monitor = mbrl.Dataset(), _Silent()
        env.action_space.seed(seed)  # the random actions of the data: same seed, same data
        mbrl.collect_episodes(
            env, lambda obs: env.action_space.sample(), episodes, data, monitor, 0, rng
        )
        mbrl.fit_dynamics(model, *data.arrays(), rng, c.fit_settings())
        starts = np.array([env.reset(seed=123 + i)[0] for i in range(eval_episodes)])
        imagined, real = [], []
        for _ in range(iterations):
            starts_batch = mbrl.start_states(data, c.imagined_episodes, rng, c.reset_share)
            dynamics = mbrl.member_dynamics(model, np.arange(c.imagined_episodes) % K)
            mbrl.policy_step_in_model(parts, dynamics, task, starts_batch, spaces, c, rng)
            with torch.no_grad():
                eta = model_returns(model, parts[0], task, starts, task.horizon, spaces)
            imagined.append(float(eta.mean()))
            real.append(evaluate(policy, "Pendulum-v1", episodes=eval_episodes, seed=123))
        env.close()
    return {"imagined": np.array(imagined), "real": np.array(real)}


class _Silent:
    """A stand-in for the training Monitor where nothing is recorded."""

    def track(self, *args: Any) -> None:
        pass


def draw_exploitation(
    run: dict[str, np.ndarray], upto: int | None = None, fig: Figure | None = None
) -> Figure:
    """Imagined against real return over TRPO iterations in a fixed model; a marker at ``upto``."""
    fig = fig if fig is not None else Figure()
    fig.clear()
    fig.set_size_inches(8.0, 3.5)
    ax = fig.subplots()
    its = np.arange(1, len(run["real"]) + 1)
    upto = len(its) if upto is None else int(upto)
    ax.plot(its[:upto], run["imagined"][:upto], color="tab:orange", label="imagined return (model)")
    ax.plot(its[:upto], run["real"][:upto], color="tab:blue", label="real return (env)")
    ax.axhline(-200, color="k", ls=":", lw=1, label="solved (-200)")
    ax.set_xlim(0, len(its) + 1)
    low = min(run["real"].min(), run["imagined"].min())
    ax.set_ylim(min(low, -1500) - 50, 50)
    ax.set_xlabel("TRPO steps inside the model (no new real data)")
    ax.set_ylabel("return of the mean action")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


class ExploitationDemo(Demo):
    """Walk through the policy's training in a fixed model: the gap between promise and reality."""

    def __init__(self, run: dict[str, np.ndarray]) -> None:
        import ipywidgets as w

        super().__init__()
        self.run = run
        n = len(run["real"])
        self.upto = w.IntSlider(value=n, min=1, max=n, description="TRPO steps")
        self.upto.observe(self._on_change, names="value")
        self.controls = w.HBox([self.upto])
        self._on_change()

    def _on_change(self, change: Any = None) -> None:
        draw_exploitation(self.run, self.upto.value, fig=self.figure)
        self._refresh()


def exploitation_demo(run: dict[str, np.ndarray]) -> ExploitationDemo:
    """Show the exploitation demo for ``run`` (from :func:`exploitation_run`)."""
    return ExploitationDemo(run).show()


# ------------------------------------------------------------------------ learning curves
def curve_of(result) -> tuple[list[int], list[float]]:
    """(real env steps, evaluation return) of a ``TrainResult``'s periodic evaluations."""
    records = result.logs.get("eval_return", [])
    return [s for s, _ in records], [v for _, v in records]


def reference_curves() -> dict[str, Any]:
    """The shipped full-mode learning curves (``widgets/data/lecture6_reference.json``)."""
    return json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {}


def reference_results(algo: str) -> list:
    """The shipped runs of ``algo`` as objects with the ``logs``, ``kept_step`` and ``seed`` of a
    ``TrainResult`` (and ``fresh``, their fresh 10-episode return), so the notebook draws them
    with the same code as its live runs."""
    from types import SimpleNamespace

    runs = reference_curves().get("runs", [])
    return [
        SimpleNamespace(
            **{**run, "logs": {k: [tuple(x) for x in v] for k, v in run["logs"].items()}}
        )
        for run in runs
        if run["algo"] == algo and "logs" in run
    ]


def draw_learning_curves(curves: dict[str, list], reference: dict[str, Any] | None = None,
                         fig: Figure | None = None) -> Figure:  # fmt: skip
    """Evaluation return against real env steps, one line per seed run, per algorithm; the
    shipped reference runs drawn faintly behind (log-scaled steps: model-free needs far more)."""
    fig = fig if fig is not None else Figure()
    fig.clear()
    fig.set_size_inches(8.0, 4.0)
    ax = fig.subplots()
    colors = {}
    palette = itertools.cycle(["tab:blue", "tab:orange", "tab:red", "tab:green", "tab:purple"])
    for source, alpha, width in ((reference or {}, 0.25, 1.0), (curves, 0.9, 1.8)):
        for algo, runs in source.get("curves", source).items() if source else []:
            if algo not in colors:  # one colour per algorithm, live and reference alike
                colors[algo] = next(palette)
            color = colors[algo]
            for i, (steps, returns) in enumerate(runs):
                label = (
                    algo
                    if (i == 0 and source is curves) or (i == 0 and algo not in curves)
                    else None
                )
                ax.plot(steps, returns, "o-", color=color, alpha=alpha, lw=width, ms=4, label=label)
    ax.axhline(-200, color="k", ls=":", lw=1, label="solved (-200)")
    ax.set_xscale("log")
    ax.set_xlabel("real env steps")
    ax.set_ylabel("training-time evaluation return")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
