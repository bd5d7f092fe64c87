"""Lecture 2's interactive demos and the notebook's experiment helpers.

* ``QLearningDemo``: tabular Q-learning (Algorithm 2) on a gridworld, live. Sliders for epsilon
  and alpha, a play/step control for the number of environment steps; the Q-table fills in next
  to ``Q*`` from Q-value iteration (eq. 2.1).
* ``ReplayDemo``: prioritized replay's sampling distribution ``P(i) = p_i^alpha / sum_k p_k^alpha``
  as alpha moves from uniform (0) to fully greedy in |TD error| (1), with the importance weights
  ``w_i`` for beta, and what the library's sum tree actually samples.
* ``ablation``: seed sweeps over DQN configs for the learning-curve plots, read from training's
  own periodic evaluation (``result.logs["eval_return"]``).

The logic lives in pure functions (``qlearning_state``, ``draw_qlearning``, ``replay_state``,
``draw_replay``) that tests drive without a browser; the widget classes only wire controls to
them. As in lecture 1, each demo is displayed first as an ordinary matplotlib picture (what a saved
notebook, GitHub and the slides show) and the controls then update that display in place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fdrl_lib import buffers
from fdrl_lib.tabular import GridWorld
from fdrl_lib.tabular.qlearning import QLearningResult
from fdrl_lib.widgets import STATIC_NOTE, Demo
from fdrl_lib.widgets.lecture1 import LAYOUTS, check_layout, make_grid

# ---------------------------------------------------------------------- prioritized replay


def priority_probs(
    td_errors: Sequence[float] | np.ndarray, alpha: float, eps: float = 1e-6
) -> np.ndarray:
    """``P(i) = p_i^alpha / sum_k p_k^alpha`` with ``p_i = |TD error_i| + eps``, shape (N,).

    ``alpha = 0`` is uniform replay; ``alpha = 1`` replays in proportion to |TD error|.
    """
    td_errors = np.asarray(td_errors, dtype=float)
    if td_errors.ndim != 1 or td_errors.size == 0:
        raise ValueError(f"td_errors has shape {td_errors.shape}; expected a non-empty (N,) array")
    if not alpha >= 0:
        raise ValueError(f"alpha={alpha}; expected a priority exponent >= 0")
    return buffers.priority_probabilities(td_errors, alpha, eps)  # the replay buffer's formula


def importance_weights(probs: np.ndarray, beta: float) -> np.ndarray:
    """``w_i = (N P(i))^-beta / max_j w_j``, shape (N,): beta = 1 undoes the skew exactly."""
    if not 0 <= beta <= 1:
        raise ValueError(f"beta={beta}; expected an importance exponent in [0, 1]")
    probs = np.asarray(probs, dtype=float)
    return buffers.importance_weights(probs, len(probs), beta)  # the replay buffer's formula


def example_td_errors(n: int = 16, seed: int = 0) -> np.ndarray:
    """A made-up replay memory's |TD errors| (N,), largest first: most small, a few large."""
    rng = np.random.default_rng(seed)
    errors = np.round(rng.exponential(0.3, size=n) + 0.02 * rng.random(n), 3)
    return np.sort(errors)[::-1]


def replay_state(
    td_errors: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.6,
    beta: float = 0.4,
    samples: int = 20_000,
    seed: int = 0,
) -> dict[str, Any]:
    """What the replay demo shows for one alpha and beta.

    ``probs`` is the closed form :func:`priority_probs`; ``tree_probs`` reads the same numbers out
    of the library's ``PrioritizedReplayBuffer`` sum tree (leaf / root); ``frequency`` is how often
    each transition came up in ``samples`` draws from that buffer; ``weights`` the importance
    weights :func:`importance_weights`. All (N,).
    """
    from fdrl_lib.buffers import PrioritizedReplayBuffer

    td_errors = example_td_errors() if td_errors is None else np.asarray(td_errors, dtype=float)
    probs = priority_probs(td_errors, alpha)
    n = len(td_errors)
    memory = PrioritizedReplayBuffer(n, (1,), alpha=alpha, eps=1e-6, seed=seed)
    for i in range(n):
        memory.add([i], 0, 0.0, [i], False, False)
    memory.update_priorities(np.arange(n), td_errors)  # p_i <- (|delta_i| + eps)^alpha
    tree_probs = memory.tree[np.arange(n)] / memory.tree.total
    frequency = np.zeros(n)
    if samples > 0:
        batch = memory.sample(samples, beta=beta)
        frequency = np.bincount(batch["indices"], minlength=n) / samples
    return {
        "td_errors": td_errors,
        "alpha": float(alpha),
        "beta": float(beta),
        "probs": probs,
        "tree_probs": tree_probs,
        "frequency": frequency,
        "weights": importance_weights(probs, beta),
        "samples": samples,
    }


def draw_replay(state: dict[str, Any], fig: Figure | None = None) -> Figure:
    """Bars of P(i) (sum-tree draws as dots, uniform 1/N dashed) over the |TD errors|, and w_i."""
    fig = fig if fig is not None else Figure()
    fig.clear()
    fig.set_size_inches(9.0, 3.0)
    ax_p, ax_w = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    n = len(state["probs"])
    index = np.arange(n)
    ax_p.bar(index, state["probs"], color="tab:blue", label=r"$P(i) = p_i^\alpha / \sum p^\alpha$")
    if state["samples"] > 0:
        ax_p.plot(index, state["frequency"], "o", color="tab:orange", ms=4, label="sum-tree draws")
    ax_p.axhline(1 / n, color="k", ls="--", lw=1, label="uniform 1/N")
    ax_p.set_xticks(index, [f"{e:.2g}" for e in state["td_errors"]], rotation=90, fontsize=7)
    ax_p.set_xlabel(r"transition's |TD error| $\delta_i$")
    ax_p.set_ylabel("replay probability")
    ax_p.set_title(rf"$\alpha$ = {state['alpha']:.2f}", fontsize=10)
    ax_p.legend(fontsize=7, loc="upper right")
    ax_w.bar(index, state["weights"], color="tab:green")
    ax_w.set_xticks([])
    ax_w.set_ylim(0, 1.05)
    ax_w.set_title(rf"importance weights $w_i$, $\beta$ = {state['beta']:.2f}", fontsize=10)
    fig.tight_layout()
    return fig


class ReplayDemo(Demo):
    """Prioritized replay: slide alpha (skew of P(i)) and beta (importance correction)."""

    def __init__(
        self,
        alpha: float = 0.6,
        beta: float = 0.4,
        td_errors: Sequence[float] | np.ndarray | None = None,
        samples: int = 20_000,
    ) -> None:
        import ipywidgets as w

        super().__init__()
        self.td_errors = example_td_errors() if td_errors is None else np.asarray(td_errors)
        self.samples = samples
        self.alpha = w.FloatSlider(value=alpha, min=0.0, max=1.0, step=0.05, description="alpha")
        self.beta = w.FloatSlider(value=beta, min=0.0, max=1.0, step=0.05, description="beta")
        self.state: dict[str, Any] = {}
        for control in (self.alpha, self.beta):
            control.observe(self._on_change, names="value")
        self.controls = w.HBox([self.alpha, self.beta])
        self._on_change()

    def _on_change(self, change: Any = None) -> None:
        self.state = replay_state(self.td_errors, self.alpha.value, self.beta.value, self.samples)
        draw_replay(self.state, fig=self.figure)
        self._refresh()


def replay_demo(**settings: Any) -> ReplayDemo:
    """Show the prioritized-replay demo: a picture of the defaults first, then live sliders."""
    return ReplayDemo(**settings).show()


# ---------------------------------------------------------------------- tabular Q-learning

STEPS_MAX = 20_000  # env steps of Q-learning per setting; the step slider walks through them
CHUNK = 200  # env steps between stored Q-tables (one notch of the step slider)


def q_error(Q: np.ndarray, Q_star: np.ndarray, n_cells: int) -> float:
    """Root-mean-square ``Q - Q*`` over every (cell, action) pair (the hidden terminal left out)."""
    return float(np.sqrt(np.mean((Q[:n_cells] - Q_star[:n_cells]) ** 2)))


def greedy_agreement(Q: np.ndarray, Q_star: np.ndarray, states: Sequence[int]) -> int:
    """In how many of ``states`` Q's greedy action is unique and optimal (argmax Q*).

    A state where Q's best actions tie (all zeros before any update) has no greedy action yet,
    so it does not count: an empty table agrees with pi* nowhere, not in the cells where action 0
    happens to be optimal.
    """
    Q, Q_star = np.asarray(Q)[list(states)], np.asarray(Q_star)[list(states)]
    best = Q.max(axis=1, keepdims=True)
    unique = np.sum(np.isclose(Q, best, rtol=0, atol=1e-12), axis=1) == 1
    return int(np.sum(unique & (Q.argmax(axis=1) == Q_star.argmax(axis=1))))


@lru_cache(maxsize=32)
def _learn(
    layout: str, epsilon: float, alpha: float, seed: int, steps: int
) -> tuple[GridWorld, QLearningResult, np.ndarray]:
    from fdrl_lib.tabular import q_value_iteration
    from fdrl_lib.tabular.qlearning import q_learning

    grid = make_grid(layout, 0.9, 0.2, 0.0)
    result = q_learning(
        grid,
        steps=steps,
        alpha=alpha,
        epsilon=epsilon,
        gamma=grid.gamma,
        seed=seed,
        record_every=CHUNK,
    )
    return grid, result, q_value_iteration(grid.mdp).Q


def learn_gridworld(
    layout: str = "book",
    epsilon: float = 0.3,
    alpha: float = 0.2,
    seed: int = 0,
    steps: int = STEPS_MAX,
) -> tuple[GridWorld, QLearningResult, np.ndarray]:
    """One run of ``q_learning`` (Algorithm 2) on a classic grid (noise 0.2, gamma 0.9), cached.

    Returns ``(grid, result, Q_star)``; ``result.Q_history[j]`` is the table after
    ``(j + 1) * CHUNK`` steps and ``Q_star`` (S, A) comes from Q-value iteration (eq. 2.2).
    """
    if not 0 <= epsilon <= 1:
        raise ValueError(f"epsilon={epsilon}; expected a probability in [0, 1]")
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha={alpha}; expected a learning rate in (0, 1]")
    if steps < CHUNK or steps % CHUNK:
        raise ValueError(f"steps={steps}; expected a positive multiple of CHUNK={CHUNK}")
    key = (layout, round(float(epsilon), 6), round(float(alpha), 6), int(seed), int(steps))
    return _learn(*key)


def qlearning_state(
    layout: str = "book",
    epsilon: float = 0.3,
    alpha: float = 0.2,
    step: int = STEPS_MAX,
    seed: int = 0,
) -> dict[str, Any]:
    """What the Q-learning demo shows after ``step`` env steps (a multiple of ``CHUNK``).

    ``Q`` (S, A) is the learned table (all zeros at step 0), ``Q_star`` (S, A) the optimum,
    ``errors`` the RMS error of every stored table (the curve), ``episodes`` how many episodes
    finished by ``step`` and ``policy_agrees`` in how many non-exit cells Q's greedy action is
    unique and optimal (``greedy_agreement``).
    """
    if step < 0 or step > STEPS_MAX or step % CHUNK:
        raise ValueError(f"step={step}; expected a multiple of {CHUNK} between 0 and {STEPS_MAX}")
    grid, result, Q_star = learn_gridworld(layout, epsilon, alpha, seed)
    n_cells = len(grid.cells)
    Q = np.zeros_like(Q_star) if step == 0 else result.Q_history[step // CHUNK - 1]
    open_cells = [s for s in range(n_cells) if s not in grid.exits]
    agrees = greedy_agreement(Q, Q_star, open_cells)
    errors = [q_error(np.zeros_like(Q_star), Q_star, n_cells)]
    errors += [q_error(q, Q_star, n_cells) for q in result.Q_history]
    return {
        "grid": grid,
        "Q": Q,
        "Q_star": Q_star,
        "step": int(step),
        "epsilon": float(epsilon),
        "alpha": float(alpha),
        "error": q_error(Q, Q_star, n_cells),
        "errors": np.array(errors),  # (STEPS_MAX // CHUNK + 1,) at steps 0, CHUNK, ...
        "episodes": int(np.searchsorted(result.episode_ends, step, side="right")),
        "policy_agrees": agrees,
        "open_cells": len(open_cells),
    }


def draw_qlearning(state: dict[str, Any], fig: Figure | None = None) -> Figure:
    """The learned Q-table next to Q*, and the RMS error against steps (a dot at ``step``)."""
    from fdrl_lib.plotting import plot_q_values

    grid = state["grid"]
    fig = fig if fig is not None else Figure()
    fig.clear()
    rows, cols = grid.shape
    fig.set_size_inches(min(14.0, 3.3 * cols + 3.5), 1.5 * rows + 0.9)
    ax_q, ax_star, ax_err = fig.subplots(1, 3, gridspec_kw={"width_ratios": [cols, cols, 3]})
    title = (
        f"Q after {state['step']:,} steps ({state['episodes']} episodes)\n"
        f"epsilon {state['epsilon']:.2f}, alpha {state['alpha']:.2f}; greedy = pi* in "
        f"{state['policy_agrees']}/{state['open_cells']} cells"
    )
    plot_q_values(grid, state["Q"], ax=ax_q, title=title, vmax=1.0)
    plot_q_values(grid, state["Q_star"], ax=ax_star, title="Q* (Q-value iteration)", vmax=1.0)
    steps = np.arange(len(state["errors"])) * CHUNK
    ax_err.plot(steps, state["errors"], lw=1)
    ax_err.plot([state["step"]], [state["error"]], "o", color="tab:red")
    ax_err.set_xlabel("env steps", fontsize=8)
    ax_err.set_title("RMS  Q - Q*", fontsize=9)
    ax_err.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


class QLearningDemo(Demo):
    """Tabular Q-learning on a gridworld (Algorithm 2): the Q-table filling in as steps pass.

    ``layout``, ``epsilon``, ``alpha`` (ipywidgets) choose the run: changing them re-runs
    ``q_learning`` once for ``STEPS_MAX`` steps (cached); ``step`` (slider, driven by ``play``
    and the ``next_button``) indexes the stored tables. ``n_runs`` counts Q-learning runs.
    """

    def __init__(
        self,
        layout: str = "book",
        epsilon: float = 0.3,
        alpha: float = 0.2,
        step: int = 2_000,
        seed: int = 0,
    ) -> None:
        import ipywidgets as w

        super().__init__()
        check_layout(layout)
        self.seed = seed
        self.layout = w.Dropdown(options=LAYOUTS, value=layout, description="layout")
        self.epsilon = w.FloatSlider(
            value=epsilon, min=0.0, max=1.0, step=0.05, description="epsilon"
        )
        self.alpha = w.FloatSlider(value=alpha, min=0.05, max=1.0, step=0.05, description="alpha")
        self.step = w.IntSlider(
            value=step, min=0, max=STEPS_MAX, step=CHUNK, description="env steps"
        )
        self.play = w.Play(value=step, min=0, max=STEPS_MAX, step=CHUNK, interval=150)
        w.jslink((self.play, "value"), (self.step, "value"))
        self.next_button = w.Button(description=f"+{CHUNK} steps")
        self.next_button.on_click(self.advance)
        self.n_runs = 0
        self._key: tuple | None = None
        self.state: dict[str, Any] = {}
        for control in (self.layout, self.epsilon, self.alpha):
            control.observe(self._on_setting, names="value")
        self.step.observe(self._on_view, names="value")
        self.controls = w.VBox(
            [
                w.HBox([self.layout, self.epsilon, self.alpha]),
                w.HBox([self.play, self.step, self.next_button]),
            ]
        )
        self._on_setting()

    def advance(self, button: Any = None) -> None:
        """One notch forward (CHUNK env steps), stopping at STEPS_MAX."""
        self.step.value = min(STEPS_MAX, self.step.value + CHUNK)

    def _on_setting(self, change: Any = None) -> None:
        key = (self.layout.value, self.epsilon.value, self.alpha.value)
        if key != self._key:  # a new run of Q-learning (cached), keeping its Q snapshots
            self._key = key
            self.n_runs += 1
            learn_gridworld(*key, seed=self.seed)
        self._on_view()

    def _on_view(self, change: Any = None) -> None:
        self.state = qlearning_state(*self._key, step=self.step.value, seed=self.seed)
        draw_qlearning(self.state, fig=self.figure)
        self._refresh()


def qlearning_demo(**settings: Any) -> QLearningDemo:
    """Show the Q-learning demo: a picture of the defaults first, then live controls."""
    return QLearningDemo(**settings).show()


# ---------------------------------------------------------------------- DQN experiments


def carry_forward(
    records: Sequence[Mapping[str, float]], total_steps: int, every: int, key: str = "eval_return"
) -> list[dict[str, float]]:
    """Extend a run stopped at the threshold to ``total_steps``, repeating its last score.

    Early stopping treats a solved task as staying solved; without this the mean over seeds would
    only cover the steps every seed ran. A run that was not stopped is returned unchanged.
    """
    out = [dict(r) for r in records]
    if not out:
        raise ValueError("records is empty; expected at least one evaluation")
    step = out[-1]["step"]
    while step + every <= total_steps:
        step += every
        out.append({"step": float(step), key: out[-1][key]})
    return out


def ablation(
    configs: Mapping[str, Any],
    seeds: Sequence[int] = (0, 1, 2),
    total_steps: int = 30_000,
    env: Any = "CartPole-v1",
    every: int = 2_000,
    episodes: int = 5,
    threshold: float | None = 475.0,
    progress: bool = True,
    train: Callable[..., Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Train each named DQN config on every seed, with training's own periodic evaluation.

    Each run evaluates its greedy policy every ``every`` env steps on ``episodes`` episodes (the
    shared evaluation of ``fdrl_lib.training``, read back from ``result.logs["eval_return"]``)
    and stops at ``threshold`` (None: uses the whole budget). Returns ``{name: {"records": [one
    carried-forward eval history per seed], "solved_at": [...], "wall_time": [...], "final":
    [...]}}``; ``records`` feeds ``plotting.learning_curve(..., key="eval_return")``. ``train``
    defaults to ``fdrl_lib.algos.dqn.train``.
    """
    import dataclasses

    if train is None:
        from fdrl_lib.algos import dqn

        train = dqn.train
    runs = [(name, seed) for name in configs for seed in seeds]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(runs), desc="ablation", unit="run")
    out: dict[str, dict[str, Any]] = {
        name: {"records": [], "solved_at": [], "wall_time": [], "final": []} for name in configs
    }
    for name, seed in runs:
        config = dataclasses.replace(
            configs[name],
            eval_every=every,
            eval_episodes=episodes,
            target_return=threshold,
            stop_at_target=threshold is not None,
        )
        start = time.perf_counter()
        result = train(env, config, seed=seed, total_steps=total_steps, progress=False)
        evaluations = result.logs.get("eval_return", [])
        if not evaluations:
            raise ValueError(f"the run of {name!r} logged no evaluation (every={every})")
        records = [{"step": float(step), "eval_return": float(v)} for step, v in evaluations]
        solved = [int(step) for step, v in evaluations if threshold is not None and v >= threshold]
        row = out[name]
        row["records"].append(carry_forward(records, total_steps, every))
        row["solved_at"].append(solved[0] if solved else None)
        row["wall_time"].append(time.perf_counter() - start)
        row["final"].append(records[-1]["eval_return"])
        if bar is not None:
            bar.set_postfix(run=f"{name} seed {seed}", refresh=False)
            bar.update(1)
    if bar is not None:
        bar.close()
    return out


def ablation_table(results: Mapping[str, Mapping[str, Any]], total_steps: int) -> str:
    """A markdown table: seeds solved, mean steps to solve (unsolved counts as the budget)."""
    lines = [
        "| variant | seeds solved | mean steps to solve | final eval return | wall time / run |",
        "|---|---|---|---|---|",
    ]
    for name, row in results.items():
        solved = [s for s in row["solved_at"] if s is not None]
        steps = [s if s is not None else total_steps for s in row["solved_at"]]
        lines.append(
            f"| {name} | {len(solved)}/{len(steps)} | {np.mean(steps):,.0f} | "
            f"{np.mean(row['final']):.0f} | {np.mean(row['wall_time']):.1f} s |"
        )
    return "\n".join(lines)


__all__ = [
    "CHUNK",
    "STATIC_NOTE",
    "STEPS_MAX",
    "QLearningDemo",
    "draw_qlearning",
    "learn_gridworld",
    "q_error",
    "qlearning_demo",
    "qlearning_state",
    "ReplayDemo",
    "ablation",
    "ablation_table",
    "carry_forward",
    "greedy_agreement",
    "draw_replay",
    "example_td_errors",
    "importance_weights",
    "priority_probs",
    "replay_demo",
    "replay_state",
]
