"""Lecture 3's graded exercise (notebook ``03_policy_gradients``): four pieces of the policy
gradient, each checked on seeded inputs, with the typical bug named when an answer matches it.

| | Learner writes | Lecture | Named mistakes |
|---|---|---|---|
| 3.1 | ``reward_to_go``: ``G_t`` within each episode | eq. 3.27 | past rewards included, sum crosses an episode end |
| 3.2 | ``baseline_advantages``: ``G_t - b(s_t)``, ``b`` the average ``G`` per state | eqs. 3.32, 3.34 | baseline depends on the action |
| 3.3 | ``gae``: generalised advantage estimates | section 3.7 | sum crosses an episode end, bootstraps after terminated, truncation as terminal |
| 3.4 | ``pg_loss``: the loss whose gradient is ``-g`` | eqs. 3.27, 3.45 | wrong sign |

The references are the library's (``fdrl_lib.returns``, ``fdrl_lib.algos.vpg``), which have
their own tests against brute force and an enumerated exact gradient.
"""  # noqa: E501

from __future__ import annotations

import numpy as np

from fdrl_lib.grading.adapters import adapter, torch_reference
from fdrl_lib.grading.mistakes import (
    IGNORES_TERMINATED,
    SIGN_FLIPPED,
    SUM_CROSSES_EPISODE_END,
    TRUNCATION_AS_TERMINAL,
    Mistake,
)
from fdrl_lib.grading.spec import Exercise, Lecture, Output, case

# --- inputs: seeded makers (a hidden case's seed comes from the instructor's secret) ----------


def episodes(seed: int, T: int = 12, gamma: float = 0.9) -> dict:
    """One stream of T steps with at least two episode ends inside it (ends are terminal)."""
    rng = np.random.default_rng(seed)
    ends = np.zeros(T, bool)
    ends[rng.choice(np.arange(1, T - 1), size=2, replace=False)] = True
    ends[-1] = True  # the stream holds complete episodes only
    return {"rewards": np.round(rng.normal(1.0, 1.0, size=T), 2), "episode_ends": ends,
            "gamma": gamma}  # fmt: skip


def visits(seed: int, B: int = 16, S: int = 3, A: int = 2) -> dict:
    """B samples (G_t, s_t, a_t); returns depend on the action, so a per-(s, a) mean differs."""
    rng = np.random.default_rng(seed)
    states = np.concatenate([np.arange(S), rng.integers(S, size=B - S)])  # every state visited
    actions = rng.integers(A, size=B)
    returns = np.round(rng.normal(size=B) + 2.0 * actions + states, 2)
    return {"returns": returns, "states": states, "actions": actions, "n_states": S}


def rollout(seed: int, T: int = 14, gamma: float = 0.9, lam: float = 0.8) -> dict:
    """One env's rollout with a termination and a truncation inside it; next_values follow
    values within an episode (V of the real final observation after a truncation, 0 after a
    termination) and bootstrap at the rollout's end."""
    rng = np.random.default_rng(seed)
    terminated, truncated = np.zeros(T, bool), np.zeros(T, bool)
    cut = rng.choice(np.arange(1, T - 2), size=2, replace=False)
    terminated[cut[0]], truncated[cut[1]] = True, True
    values = np.round(rng.normal(size=T), 2)
    next_values = np.append(values[1:], np.round(rng.normal(), 2))
    next_values[terminated] = 0.0
    next_values[truncated] = np.round(rng.normal(), 2)  # V(final observation), not V(reset)
    return {"rewards": np.round(rng.normal(size=T), 2), "values": values,
            "next_values": next_values, "terminated": terminated, "truncated": truncated,
            "gamma": gamma, "lam": lam}  # fmt: skip


def batch(seed: int, B: int = 8, A: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    return {"logits": rng.normal(size=(B, A)), "actions": rng.integers(A, size=B),
            "advantages": rng.normal(size=B)}  # fmt: skip


# --- references --------------------------------------------------------------------------------


def _ref_reward_to_go(inputs: dict, mistake: str | None = None) -> dict:
    from fdrl_lib.returns import discounted_returns

    rewards, ends, gamma = inputs["rewards"], inputs["episode_ends"], inputs["gamma"]
    if mistake != "past_rewards":
        return {"G": discounted_returns(rewards, gamma, terminated=ends)}
    # the whole episode's discounted return R(tau), at every step of the episode
    G, start = np.zeros(len(rewards)), 0
    for end in np.flatnonzero(ends):
        G[start : end + 1] = discounted_returns(rewards[start : end + 1], gamma)[0]
        start = end + 1
    return {"G": G}


PAST_REWARDS = Mistake(
    "past_rewards",
    "your G_t includes rewards from before step t (the whole episode's return): an action cannot "
    "change the past, so sum only from t onwards (eq. 3.27, reward-to-go)",
)


def _ref_baseline(inputs: dict, mistake: str | None = None) -> dict:
    returns, states, actions = inputs["returns"], inputs["states"], inputs["actions"]
    keys = states * 1_000 + actions if mistake == "action_dependent" else states
    baseline = np.array([returns[keys == k].mean() for k in keys])  # (B,) b of each sample
    return {"advantages": returns - baseline}


ACTION_DEPENDENT = Mistake(
    "action_dependent",
    "your baseline depends on the action (an average per state and action): the proof that a "
    "baseline leaves the gradient unbiased (eqs. 3.20-3.23) needs b to ignore a_t; average the "
    "returns per state only",
)


def _ref_gae(inputs: dict) -> dict:
    from fdrl_lib.returns import gae

    names = ("rewards", "values", "next_values", "terminated", "truncated", "gamma", "lam")
    return {"advantages": gae(*(inputs[n] for n in names))}


def _pg_loss(logits, actions, advantages):  # noqa: ANN001, ANN201
    from fdrl_lib.algos.vpg import policy_gradient_surrogate

    log_prob = logits.log_softmax(-1).gather(1, actions[:, None]).squeeze(1)
    return -policy_gradient_surrogate(log_prob, advantages)


PG_NAMES, PG_GRAD = ("logits", "actions", "advantages"), ("logits",)


def _ref_pg(inputs: dict) -> dict:
    return torch_reference(_pg_loss, inputs, PG_NAMES, ("loss", "grad_logits"), grad=PG_GRAD)


EXERCISES = (
    Exercise(
        number="3.1",
        title="Reward-to-go within each episode",
        function="reward_to_go",
        args=("rewards", "episode_ends", "gamma"),
        kwargs=(),
        outputs=(Output("G", "values"),),
        reference=_ref_reward_to_go,
        variants=(PAST_REWARDS, SUM_CROSSES_EPISODE_END),
        equations="eq. 3.27",
        cases=(
            case("12 steps, three episodes, gamma=0.9", episodes, seed=1),
            case("20 steps, gamma=1", episodes, seed=2, T=20, gamma=1.0),
            case("40 steps, gamma=0.7", episodes, seed=3, T=40, gamma=0.7, hidden=True),
        ),
    ),
    Exercise(
        number="3.2",
        title="Advantages against a state-dependent baseline",
        function="baseline_advantages",
        args=("returns", "states", "actions", "n_states"),
        kwargs=(),
        outputs=(Output("advantages", "values"),),
        reference=_ref_baseline,
        variants=(ACTION_DEPENDENT,),
        equations="eqs. 3.23, 3.32, 3.34",
        cases=(
            case("16 samples, 3 states, 2 actions", visits, seed=1),
            case("40 samples, 5 states, 3 actions", visits, seed=2, B=40, S=5, A=3),
            case("64 samples, 4 states", visits, seed=3, B=64, S=4, hidden=True),
        ),
    ),
    Exercise(
        number="3.3",
        title="Generalised advantage estimation",
        function="gae",
        args=("rewards", "values", "next_values", "terminated", "truncated", "gamma", "lam"),
        kwargs=(),
        outputs=(Output("advantages", "values"),),
        reference=_ref_gae,
        variants=(SUM_CROSSES_EPISODE_END, IGNORES_TERMINATED, TRUNCATION_AS_TERMINAL),
        equations="eqs. 3.41-3.43 and GAE (section 3.7)",
        cases=(
            case("14 steps, lam=0.8", rollout, seed=1),
            case("20 steps, lam=0.95, gamma=0.99", rollout, seed=2, T=20, gamma=0.99, lam=0.95),
            case("30 steps, lam=0.5", rollout, seed=3, T=30, lam=0.5, hidden=True),
        ),
    ),
    Exercise(
        number="3.4",
        title="The policy-gradient loss",
        function="pg_loss",
        args=PG_NAMES,
        kwargs=(),
        outputs=(Output("loss", "values", atol=1e-8), Output("grad_logits", "values", atol=1e-8)),
        reference=_ref_pg,
        wrapper=adapter(grad=PG_GRAD),
        variants=(SIGN_FLIPPED,),
        equations="eqs. 3.27, 3.45",
        cases=(
            case("B=8, A=3", batch, seed=1),
            case("B=32, A=4", batch, seed=2, B=32, A=4),
            case("B=64, A=5", batch, seed=3, B=64, A=5, hidden=True),
        ),
    ),
)

LECTURE = Lecture(
    name="03_policy_gradients",
    title="Lecture 3: policy gradients and advantage estimation",
    exercises=EXERCISES,
    library=(
        "fdrl_lib.returns:discounted_returns",
        "fdrl_lib.returns:gae",
        "fdrl_lib.algos.vpg:policy_gradient_surrogate",
    ),
)
