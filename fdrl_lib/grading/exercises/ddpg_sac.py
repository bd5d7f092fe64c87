"""Lecture 5's graded exercise (notebook ``05_ddpg_sac``): four pieces of DDPG and SAC, each
checked on seeded inputs (the sampling noise is an input), with the typical bug named when an
answer matches it.

| | Learner writes | Lecture | Named mistakes |
|---|---|---|---|
| 5.1 | ``ddpg_target``: the critic's target from the lagged networks | eqs. 5.1, 5.4 | bootstraps after terminated, mask flipped |
| 5.2 | ``polyak_update``: the target networks follow the online ones | eq. 5.4 (lagged networks) | gradient into the target networks, tau on the wrong side |
| 5.3 | ``soft_q_target``: SAC's target, twin min minus alpha log pi | eq. 5.5 | max of the twin critics, entropy term's sign, no entropy term, bootstraps after terminated |
| 5.4 | ``tanh_gaussian``: a squashed Gaussian action and its log-probability | eqs. 5.5, 5.6 | no tanh correction, correction with the wrong sign |

The references are the library's (``fdrl_lib.algos.ddpg``, ``.sac``), which have their own tests
against hand-computed values and a numerical change of variables.
"""  # noqa: E501

from __future__ import annotations

import numpy as np

from fdrl_lib.grading.adapters import adapter
from fdrl_lib.grading.mistakes import IGNORES_TERMINATED, MAX_FOR_MIN, Mistake
from fdrl_lib.grading.spec import Exercise, Lecture, Output, case

# --- inputs: seeded makers (a hidden case's seed comes from the instructor's secret) ----------


def transitions(seed: int, B: int = 8, gamma: float = 0.99, twin: bool = False) -> dict:
    """B replayed transitions, at least two of them terminal, with the target critics' values
    of the next state (and, for SAC, the log-probability of the sampled next action)."""
    rng = np.random.default_rng(seed)
    terminated = np.zeros(B)
    terminated[rng.choice(B, size=max(2, B // 4), replace=False)] = 1.0
    inputs = {"reward": np.round(rng.normal(-1.0, 1.0, size=B), 3), "terminated": terminated,
              "gamma": gamma, "next_q1": rng.normal(-5.0, 2.0, size=B)}  # fmt: skip
    if not twin:
        return {"reward": inputs["reward"], "terminated": terminated, "gamma": gamma,
                "next_q": inputs["next_q1"]}  # fmt: skip
    inputs["next_q2"] = inputs["next_q1"] + rng.normal(0.0, 1.0, size=B)  # twins disagree
    inputs["next_log_prob"] = rng.normal(-0.5, 1.0, size=B)
    inputs["alpha"] = float(np.round(rng.uniform(0.05, 0.5), 3))
    return inputs


def soft_transitions(seed: int, B: int = 8, gamma: float = 0.99) -> dict:
    return transitions(seed, B=B, gamma=gamma, twin=True)


def networks(seed: int, n_in: int = 3, n_out: int = 4, tau: float = 0.05) -> dict:
    """One linear layer's weight and bias, for the online and for the target network."""
    rng = np.random.default_rng(seed)
    return {"target_weight": rng.normal(size=(n_out, n_in)), "target_bias": rng.normal(size=n_out),
            "online_weight": rng.normal(size=(n_out, n_in)), "online_bias": rng.normal(size=n_out),
            "tau": tau}  # fmt: skip


def gaussians(seed: int, B: int = 8, A: int = 1) -> dict:
    """Means, log standard deviations and standard normal noise of B actions of A dimensions."""
    rng = np.random.default_rng(seed)
    return {"mean": rng.normal(0.0, 1.0, size=(B, A)), "log_std": rng.uniform(-1.5, 0.5, (B, A)),
            "noise": rng.normal(size=(B, A))}  # fmt: skip


# --- references --------------------------------------------------------------------------------


def _tensors(inputs: dict, *names: str) -> list:
    import torch

    return [torch.tensor(np.asarray(inputs[n], dtype=float)) for n in names]  # copies


def _ref_ddpg_target(inputs: dict) -> dict:
    from fdrl_lib.algos.ddpg import ddpg_target

    reward, terminated, next_q = _tensors(inputs, "reward", "terminated", "next_q")
    return {"target": ddpg_target(reward, terminated, inputs["gamma"], next_q).numpy()}


MASK_FLIPPED = Mistake(
    "mask_flipped",
    "you bootstrap only at terminal transitions: the mask is (1 - terminated), which is 0 where "
    "the episode ended and 1 elsewhere (eq. 5.4)",
    inputs=lambda inputs: {**inputs, "terminated": 1.0 - np.asarray(inputs["terminated"])},
)


def torch_polyak(polyak_update, target_weight, target_bias, online_weight, online_bias, tau):  # noqa: ANN001, ANN201, PLR0913
    """Make the two networks' parameters (the online ones require grad, the target ones do
    not), call the learner's ``polyak_update``, and return (new weight, new bias, 1.0 if the
    result is connected to the online network's graph else 0.0)."""
    import numpy as np
    import torch

    def parameters(weight, bias, trained):
        return [torch.tensor(np.asarray(x), dtype=torch.float64, requires_grad=trained)
                for x in (weight, bias)]  # fmt: skip

    target = parameters(target_weight, target_bias, False)
    online = parameters(online_weight, online_bias, True)
    result = polyak_update(target, online, float(tau))
    new = target if result is None else result
    if not isinstance(new, (list, tuple)) or len(new) != 2:
        new = None
    if new is None or not all(isinstance(t, torch.Tensor) for t in new):
        raise ValueError(
            f"polyak_update returned {type(result).__name__}; expected the list of the target's "
            "new parameters (or None after updating target_params in place)"
        )
    if [tuple(t.shape) for t in new] != [tuple(t.shape) for t in target]:
        raise ValueError(
            f"the new parameters have shapes {[tuple(t.shape) for t in new]}; expected "
            f"{[tuple(t.shape) for t in target]} (one tensor per target parameter)"
        )
    total = sum(t.sum() for t in new)
    connected = 0.0
    if total.requires_grad:
        grads = torch.autograd.grad(total, online, allow_unused=True)
        connected = float(any(g is not None for g in grads))
    return new[0].detach().numpy(), new[1].detach().numpy(), connected


def _ref_polyak(inputs: dict, mistake: str | None = None) -> dict:
    from fdrl_lib.algos.ddpg import polyak_update

    target = _tensors(inputs, "target_weight", "target_bias")
    online = _tensors(inputs, "online_weight", "online_bias")
    polyak_update(target, online, float(inputs["tau"]))
    connected = 1.0 if mistake == "gradient_into_target" else 0.0
    return {"new_weight": target[0].numpy(), "new_bias": target[1].numpy(),
            "graph_connected": np.array(connected)}  # fmt: skip


POLYAK_GRAPH = Mistake(
    "gradient_into_target",
    "gradient flows into the target networks: your new target parameters are still connected "
    "to the online network's graph; do the update under torch.no_grad() (or detach it), the "
    "target networks only ever follow the online ones, no gradient may reach them",
)
TAU_SWAPPED = Mistake(
    "tau_swapped",
    "tau is on the wrong side: the target moves a small step toward the online network, "
    "target <- tau * online + (1 - tau) * target",
    inputs=lambda inputs: {**inputs, "tau": 1.0 - float(inputs["tau"])},
)

SOFT_NAMES = ("reward", "terminated", "gamma", "next_q1", "next_q2", "next_log_prob", "alpha")


def _ref_soft_q_target(inputs: dict, mistake: str | None = None) -> dict:
    import torch

    from fdrl_lib.algos.sac import soft_q_target

    reward, terminated, q1, q2, log_prob = _tensors(
        inputs, "reward", "terminated", "next_q1", "next_q2", "next_log_prob"
    )
    alpha = float(inputs["alpha"])
    if mistake == "max_for_min":  # the larger critic in both places: min(x, x) = x
        q1 = q2 = torch.maximum(q1, q2)
    if mistake == "entropy_sign":
        alpha = -alpha
    return {"target": soft_q_target(reward, terminated, inputs["gamma"], q1, q2, log_prob, alpha)
            .numpy()}  # fmt: skip


ENTROPY_SIGN = Mistake(
    "entropy_sign",
    "the entropy term has the wrong sign: the soft value of s' is min Q - alpha log pi(a'|s') "
    "(the entropy bonus is -log pi, eq. 5.5)",
)
NO_ENTROPY = Mistake(
    "no_entropy",
    "your target has no entropy term: SAC's soft value subtracts alpha log pi(a'|s') of the "
    "sampled next action (eq. 5.5)",
    inputs=lambda inputs: {**inputs, "alpha": 0.0},
)


def _ref_tanh_gaussian(inputs: dict, mistake: str | None = None) -> dict:
    import math

    from fdrl_lib.algos.sac import squashed_gaussian_log_prob

    mean, log_std, noise = _tensors(inputs, "mean", "log_std", "noise")
    pre_tanh = mean + log_std.exp() * noise
    log_prob = squashed_gaussian_log_prob(mean, log_std, pre_tanh)
    if mistake is not None:  # the Gaussian's own log-density, then the correction's sign
        gaussian = (-0.5 * noise.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = gaussian if mistake == "missing_correction" else 2 * gaussian - log_prob
    return {"action": pre_tanh.tanh().numpy(), "log_prob": log_prob.numpy()}


MISSING_CORRECTION = Mistake(
    "missing_correction",
    "your log-probability has no tanh correction: a = tanh(u) squeezes the density, so "
    "log pi(a) = log N(u; mean, std) - sum log(1 - tanh(u)^2)",
)
CORRECTION_SIGN = Mistake(
    "correction_sign",
    "the tanh correction has the wrong sign: subtract sum log(1 - tanh(u)^2) from the "
    "Gaussian's log-density (pi(a) = N(u) / |da/du|)",
)


EXERCISES = (
    Exercise(
        number="5.1",
        title="DDPG's critic target",
        function="ddpg_target",
        args=("reward", "terminated", "gamma", "next_q"),
        kwargs=(),
        outputs=(Output("target", "values", shape="(B,)"),),
        reference=_ref_ddpg_target,
        wrapper=adapter(),
        variants=(IGNORES_TERMINATED, MASK_FLIPPED),
        equations="eqs. 5.1, 5.4",
        cases=(
            case("B=8, gamma=0.99", transitions, seed=1),
            case("B=32, gamma=0.9", transitions, seed=2, B=32, gamma=0.9),
            case("B=64, gamma=0.98", transitions, seed=3, B=64, gamma=0.98, hidden=True),
        ),
    ),
    Exercise(
        number="5.2",
        title="Polyak averaging of the target networks",
        function="polyak_update",
        args=("target_weight", "target_bias", "online_weight", "online_bias", "tau"),
        kwargs=(),
        outputs=(
            Output("new_weight", "values"),
            Output("new_bias", "values"),
            Output("graph_connected", "values"),
        ),
        reference=_ref_polyak,
        wrapper=torch_polyak,
        variants=(POLYAK_GRAPH, TAU_SWAPPED),
        equations="eq. 5.4 (the lagged networks)",
        cases=(
            case("3 -> 4 layer, tau=0.05", networks, seed=1),
            case("5 -> 2 layer, tau=0.3", networks, seed=2, n_in=5, n_out=2, tau=0.3),
            case("8 -> 6, tau=0.01", networks, seed=3, n_in=8, n_out=6, tau=0.01, hidden=True),
        ),
    ),
    Exercise(
        number="5.3",
        title="SAC's soft Q target",
        function="soft_q_target",
        args=SOFT_NAMES,
        kwargs=(),
        outputs=(Output("target", "values", shape="(B,)"),),
        reference=_ref_soft_q_target,
        wrapper=adapter(),
        variants=(MAX_FOR_MIN, ENTROPY_SIGN, NO_ENTROPY, IGNORES_TERMINATED),
        equations="eq. 5.5",
        cases=(
            case("B=8, gamma=0.99", soft_transitions, seed=1),
            case("B=32, gamma=0.9", soft_transitions, seed=2, B=32, gamma=0.9),
            case("B=64, gamma=0.98", soft_transitions, seed=3, B=64, gamma=0.98, hidden=True),
        ),
    ),
    Exercise(
        number="5.4",
        title="The tanh-squashed Gaussian and its log-probability",
        function="tanh_gaussian",
        args=("mean", "log_std", "noise"),
        kwargs=(),
        outputs=(
            Output("action", "values", shape="(B, A)"),
            Output(
                "log_prob",
                "values",
                shape="(B,): one number per action, summed over A",
                hint="log(1 - tanh(u)^2) must be exact (no small epsilon inside the log): "
                "2 (log 2 - u - softplus(-2u)) is the same number and never rounds to log 0",
            ),
        ),
        reference=_ref_tanh_gaussian,
        wrapper=adapter(),
        variants=(MISSING_CORRECTION, CORRECTION_SIGN),
        equations="eqs. 5.5, 5.6 and the change of variables a = tanh(u)",
        cases=(
            case("B=8, one action dimension", gaussians, seed=1),
            case("B=16, A=3", gaussians, seed=2, B=16, A=3),
            case("B=32, A=6", gaussians, seed=3, B=32, A=6, hidden=True),
        ),
    ),
)

LECTURE = Lecture(
    name="05_ddpg_sac",
    title="Lecture 5: DDPG and SAC",
    exercises=EXERCISES,
    library=(
        "fdrl_lib.algos.ddpg:ddpg_target",
        "fdrl_lib.algos.ddpg:polyak_update",
        "fdrl_lib.algos.td3:clipped_double_q_target",
        "fdrl_lib.algos.sac:soft_q_target",
        "fdrl_lib.algos.sac:squashed_gaussian_log_prob",
    ),
)
