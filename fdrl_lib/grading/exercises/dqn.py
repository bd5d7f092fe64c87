"""Lecture 2 exercises (``solutions/02_dqn.ipynb``): the single source of their checks.

Six learner functions, graded on replayed transition streams, seeded inputs and mock networks:

- 2.1 ``q_update(Q, obs, action, reward, next_obs, terminated, truncated, alpha, gamma) -> Q``
  one step of tabular Q-learning (eqs. 2.4-2.5, Algorithm 2), replayed over a stream
- 2.2 ``epsilon_greedy(q_values, epsilon, rng) -> action``   Algorithm 3's exploration
- 2.3 ``dqn_target(reward, terminated, gamma, next_q_target, next_q_online=None) -> y (B,)``
  Algorithm 3's target, and double DQN's (eq. 2.12) when the online net's values are given
- 2.4 ``huber(error, delta=1.0) -> (loss, grad)``             the Huber loss of section 2.2.1
- 2.5 ``sum_tree_sample(priorities, uniforms) -> (tree, indices)``   prioritized replay
- 2.6 ``dqn_loss(online, target, obs, action, reward, next_obs, terminated, gamma, double)``
  the TD loss in torch, from two real networks (built in the kernel from seeded weights)

Expected answers come from the library where it has the same shape (``fdrl_lib.algos.dqn``'s
``dqn_target`` on fixed Q-values and ``huber``, ``fdrl_lib.buffers.SumTree``), otherwise from
the short references below. Functions that do not map arrays to arrays are called through a
``wrapper`` (see ``fdrl_lib/grading/spec.py``): it replays the stream for 2.1, hands 2.2 a
seeded ``numpy.random.Generator`` and counts the actions, and builds the two torch networks
for 2.6 and reads back the loss and the gradients of both networks. The reference dictionaries
also hold the typical wrong answers (``"y@ignores_terminated"``, ...), so feedback can name the
mistake when a learner's output matches one.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from fdrl_lib.grading.spec import Case, Exercise, Inputs, Lecture, Output

# ----------------------------------------------------------------------------------------------
# Wrappers: run in the learner's kernel (their source is sent as text), self-contained.


def replay_q_updates(  # noqa: ANN201, PLR0913 (sent as source into the kernel)
    q_update, Q, obs, action, reward, next_obs, terminated, truncated, alpha, gamma
):
    """Apply the learner's one-step ``q_update`` to every transition of a stream, in order."""
    import numpy as np

    Q = np.array(Q, dtype=float)  # (S, A)
    for t in range(len(obs)):
        result = q_update(
            Q,
            int(obs[t]),
            int(action[t]),
            float(reward[t]),
            int(next_obs[t]),
            bool(terminated[t]),
            bool(truncated[t]),
            float(alpha),
            float(gamma),
        )
        if result is None:
            raise ValueError(
                f"q_update returned None at transition {t}; return the updated table Q (S, A)"
            )
        result = np.asarray(result, dtype=float)
        if result.shape != Q.shape:
            raise ValueError(
                f"q_update returned shape {result.shape} at transition {t}; expected {Q.shape}"
            )
        Q = np.array(result, dtype=float)
    return Q


def sample_epsilon_greedy(epsilon_greedy, q_values, epsilon, seed, n):  # noqa: ANN001, ANN201
    """Draw ``n`` actions with one seeded Generator; return their counts (A,) and whether the
    same seed gives the same actions again (1.0) or not (0.0)."""
    import numpy as np

    q_values = np.asarray(q_values, dtype=float)
    A = len(q_values)

    def draws(count: int) -> list[int]:
        rng = np.random.default_rng(int(seed))
        actions = []
        for i in range(count):
            action = epsilon_greedy(q_values.copy(), float(epsilon), rng)
            value = np.asarray(action)
            if value.ndim != 0 or value.dtype.kind not in "biu" and value != np.round(value):
                raise ValueError(
                    f"epsilon_greedy returned {action!r} at draw {i}; expected one int action"
                )
            if not 0 <= int(value) < A:
                raise ValueError(
                    f"epsilon_greedy returned action {int(value)} at draw {i}; expected 0..{A - 1}"
                )
            actions.append(int(value))
        return actions

    first = draws(int(n))
    again = draws(200)
    counts = np.bincount(first, minlength=A).astype(float)  # (A,)
    return counts, float(again == first[:200])


def torch_dqn_loss(  # noqa: ANN201, PLR0913
    dqn_loss,
    obs,
    action,
    reward,
    next_obs,
    terminated,
    gamma,
    sizes,
    online_params,
    target_params,
    double=False,
):
    """Build the online and target MLPs from flat weights, call the learner's ``dqn_loss``,
    backpropagate, and return (loss, sum |gradient| on the target, online gradient (P,))."""
    import numpy as np
    import torch
    from torch import nn

    def build(params):
        obs_dim, hidden, A = (int(x) for x in sizes)
        net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, A))
        vector = torch.as_tensor(np.asarray(params), dtype=torch.float32)
        nn.utils.vector_to_parameters(vector, net.parameters())
        return net

    online, target = build(online_params), build(target_params)  # both require grad
    f32 = torch.float32
    loss = dqn_loss(
        online,
        target,
        torch.as_tensor(obs, dtype=f32),
        torch.as_tensor(action, dtype=torch.int64),
        torch.as_tensor(reward, dtype=f32),
        torch.as_tensor(next_obs, dtype=f32),
        torch.as_tensor(terminated, dtype=f32),
        float(gamma),
        double=bool(double),
    )
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError(f"dqn_loss returned {type(loss).__name__}; expected a scalar tensor")
    if not loss.requires_grad:
        raise ValueError(
            "dqn_loss returned a loss with no gradient: Q(s, a) of the online network must be "
            "computed with gradients (only the target goes under torch.no_grad())"
        )
    loss.backward()

    def grads(net):
        return [
            torch.zeros_like(p) if p.grad is None else p.grad.detach() for p in net.parameters()
        ]

    online_grad = torch.cat([g.flatten() for g in grads(online)]).numpy().astype(float)
    target_grad = float(sum(g.abs().sum() for g in grads(target)))
    return float(loss.detach()), target_grad, online_grad


# Isolation reference: while 2.6 is checked (in the notebook's check cell and by the grader
# alike), a learner's dqn_target is swapped for this one. It keeps the caller's types: torch
# tensors in, a tensor out (what a dqn_loss naturally passes), numpy arrays in, an array out.


def dqn_target(reward, terminated, gamma, next_q_target, next_q_online=None):  # noqa: ANN001, ANN201
    import numpy as np

    if type(next_q_target).__module__.split(".")[0] == "torch":
        import torch

        chooser = next_q_target if next_q_online is None else next_q_online
        best = torch.as_tensor(chooser).argmax(dim=1, keepdim=True)  # (B, 1)
        value = next_q_target.gather(1, best).squeeze(1)  # (B,)
        like = {"dtype": value.dtype, "device": value.device}
        done = torch.as_tensor(terminated, **like)
        return torch.as_tensor(reward, **like) + gamma * (1.0 - done) * value
    next_q_target = np.asarray(next_q_target, dtype=float)  # (B, A)
    chooser = next_q_target if next_q_online is None else np.asarray(next_q_online, dtype=float)
    best = chooser.argmax(axis=1)  # (B,)
    bootstrap = 1.0 - np.asarray(terminated, dtype=float)
    value = next_q_target[np.arange(len(best)), best]
    return np.asarray(reward, dtype=float) + gamma * bootstrap * value


KERNEL_REFERENCES = {"dqn_target": inspect.getsource(dqn_target)}

# ----------------------------------------------------------------------------------------------
# 2.1 Tabular Q-learning on a replayed stream. Reference written out (the library's q_learning
# runs a whole env loop, not one update); typical wrong variants alongside.


def stream_inputs(
    seed: int,
    T: int,
    S: int = 5,
    A: int = 3,
    p_terminated: float = 0.0,
    p_truncated: float = 0.0,
    alpha: float = 0.1,
    gamma: float = 0.9,
    random_Q0: bool = True,
) -> Inputs:
    """A stream of T transitions of a random walk: episodes end by termination or a time-limit
    cut with the given chances, and the next transition starts from a fresh state."""
    rng = np.random.default_rng(seed)
    obs = np.zeros(T, dtype=np.int64)
    next_obs = rng.integers(S, size=T)
    action = rng.integers(A, size=T)
    reward = np.round(rng.normal(size=T), 2)
    ends = rng.random(T)
    terminated = ends < p_terminated
    truncated = (ends >= p_terminated) & (ends < p_terminated + p_truncated)
    if p_terminated > 0 and not terminated.any():  # every seed shows what the case promises
        terminated[T // 3], truncated[T // 3] = True, False
    if p_truncated > 0 and not truncated.any():
        truncated[2 * T // 3], terminated[2 * T // 3] = True, False
    state = int(rng.integers(S))
    resets = rng.integers(S, size=T)
    for t in range(T):
        obs[t] = state
        state = int(resets[t]) if terminated[t] or truncated[t] else int(next_obs[t])
    Q = np.round(rng.normal(size=(S, A)), 2) if random_Q0 else np.zeros((S, A))
    return {
        "Q": Q,
        "obs": obs,
        "action": action,
        "reward": reward,
        "next_obs": next_obs,
        "terminated": terminated,
        "truncated": truncated,
        "alpha": float(alpha),
        "gamma": float(gamma),
    }


def _replay(inputs: Inputs, rule: str = "right") -> np.ndarray:
    Q = np.array(inputs["Q"], dtype=float)
    alpha, gamma = inputs["alpha"], inputs["gamma"]
    for t in range(len(inputs["obs"])):
        s, a, r = int(inputs["obs"][t]), int(inputs["action"][t]), float(inputs["reward"][t])
        terminal = bool(inputs["terminated"][t])
        if rule == "ignores_terminated":
            terminal = False
        elif rule == "truncated_as_terminal":
            terminal = terminal or bool(inputs["truncated"][t])
        bootstrap_from = int(
            inputs["obs"][t] if rule == "bootstraps_from_obs" else inputs["next_obs"][t]
        )
        target = r if terminal else r + gamma * Q[bootstrap_from].max()  # eq. 2.4
        if rule == "gamma_on_reward":
            target = gamma * target
        if rule == "no_average":
            Q[s, a] = target
        else:
            Q[s, a] = (1 - alpha) * Q[s, a] + alpha * target  # eq. 2.5
    return Q


def _ref_q_update(inputs: Inputs) -> dict[str, Any]:
    rules = (
        "ignores_terminated",
        "truncated_as_terminal",
        "no_average",
        "bootstraps_from_obs",
        "gamma_on_reward",
    )
    return {"Q": _replay(inputs), **{f"Q@{rule}": _replay(inputs, rule) for rule in rules}}


# ----------------------------------------------------------------------------------------------
# 2.2 epsilon-greedy: exact action probabilities.

N_DRAWS = 20_000  # per case: a frequency's standard error is at most 0.0035


def greedy_inputs(q_values: list[float], epsilon: float, seed: int) -> Inputs:
    return {
        "q_values": np.asarray(q_values, dtype=float),
        "epsilon": float(epsilon),
        "seed": int(seed),
        "n": N_DRAWS,
    }


def _q_values(seed: int, A: int) -> np.ndarray:
    """A distinct, seeded Q-value per action (no ties for the greedy action)."""
    rng = np.random.default_rng(seed)
    return np.round(rng.permutation(A) + rng.uniform(0.0, 0.9, size=A), 2)


def _ref_epsilon_greedy(inputs: Inputs) -> dict[str, Any]:
    q_values, epsilon = inputs["q_values"], inputs["epsilon"]
    A = len(q_values)
    probs = np.full(A, epsilon / A)  # a uniformly random action, the greedy one included ...
    probs[int(np.argmax(q_values))] += 1 - epsilon  # ... else the greedy one (cases have no ties)
    return {"counts": probs, "same_seed_same_actions": np.array(1.0)}


# ----------------------------------------------------------------------------------------------
# 2.3 DQN targets: the library's dqn_target on fixed Q-values.


def target_inputs(
    seed: int, B: int = 8, A: int = 3, gamma: float = 0.99, p_terminal: float = 0.0, double=False
) -> Inputs:
    rng = np.random.default_rng(seed)
    inputs = {
        "reward": np.round(rng.normal(size=B), 2),
        "terminated": rng.random(B) < p_terminal,
        "gamma": float(gamma),
        "next_q_target": rng.normal(size=(B, A)),
    }
    if p_terminal > 0:  # at least one terminal and one non-terminal transition
        inputs["terminated"][:2] = [True, False]
    if double:  # online and target disagree on the best action in most rows
        inputs["next_q_online"] = rng.normal(size=(B, A))
    return inputs


def _td_target(inputs: Inputs, double: bool, terminated: np.ndarray, evaluate_online=False):
    import torch

    from fdrl_lib.algos.dqn import dqn_target

    def tensor(values: np.ndarray):
        return torch.as_tensor(values, dtype=torch.float64)

    q_target = inputs["next_q_target"]
    q_online = inputs.get("next_q_online", q_target)
    y = dqn_target(
        tensor(inputs["reward"]),
        tensor(terminated),
        inputs["gamma"],
        tensor(q_online if evaluate_online else q_target),  # the net that scores a*
        tensor(q_online) if double else None,  # the net that picks a* (eq. 2.12)
    )
    return y.numpy()


def _ref_dqn_target(inputs: Inputs) -> dict[str, Any]:
    double = inputs.get("next_q_online") is not None
    terminated = np.asarray(inputs["terminated"], dtype=float)
    ref = {
        "y": _td_target(inputs, double, terminated),
        "y@ignores_terminated": _td_target(inputs, double, np.zeros_like(terminated)),
    }
    if double:
        ref["y@evaluates_with_online"] = _td_target(inputs, True, terminated, True)
        ref["y@not_double"] = _td_target(inputs, False, terminated)
    reward, gamma, alive = inputs["reward"], inputs["gamma"], 1.0 - terminated
    value = dqn_target(
        np.zeros_like(reward),
        np.zeros_like(reward),
        1.0,
        inputs["next_q_target"],
        inputs.get("next_q_online"),
    )  # (B,) next values
    ref["y@gamma_on_reward"] = gamma * (reward + alive * value)
    if terminated.any():
        ref["y@terminal_drops_reward"] = alive * (reward + gamma * value)
    return ref


# ----------------------------------------------------------------------------------------------
# 2.4 Huber loss: value from the library's huber, gradient by autograd.


def huber_inputs(error: np.ndarray, delta: float | None) -> Inputs:
    inputs: Inputs = {"error": np.asarray(error, dtype=float)}
    if delta is not None:
        inputs["delta"] = float(delta)
    return inputs


def _ref_huber(inputs: Inputs) -> dict[str, Any]:
    import torch

    from fdrl_lib.algos.dqn import huber

    delta = inputs.get("delta", 1.0)
    error = torch.tensor(inputs["error"], dtype=torch.float64, requires_grad=True)
    loss = huber(error, delta=delta)
    (grad,) = torch.autograd.grad(loss.sum(), error)
    e = inputs["error"]
    small = np.abs(e) <= delta
    return {
        "loss": loss.detach().numpy(),
        "grad": grad.numpy(),
        "loss@no_half": np.where(small, e**2, delta * (np.abs(e) - 0.5 * delta)),
        "loss@no_offset": np.where(small, 0.5 * e**2, delta * np.abs(e)),
        "loss@squared_error": 0.5 * e**2,
        "grad@unclipped": e.copy(),
        "grad@clipped_at_one": np.clip(e, -1.0, 1.0),
    }


# ----------------------------------------------------------------------------------------------
# 2.5 Sum-tree sampling: the library's SumTree (checked against cumulative sums in the tests).


def sum_tree_inputs(priorities: np.ndarray, uniforms: np.ndarray) -> Inputs:
    return {
        "priorities": np.asarray(priorities, dtype=float),
        "uniforms": np.asarray(uniforms, dtype=float),
    }


def _priorities(seed: int, N: int) -> np.ndarray:
    """N integer priorities in 0..4, with at least one zero and a positive total."""
    rng = np.random.default_rng(seed)
    priorities = rng.integers(1, 5, size=N).astype(float)
    priorities[rng.integers(N)] = 0.0
    return priorities


def stratified_values(total: float, uniforms: np.ndarray) -> np.ndarray:
    """One point in each of B equal slices of [0, total): ``(j + u_j) * total / B``."""
    B = len(uniforms)
    return (np.arange(B) + uniforms) * (total / B)


def _ref_sum_tree(inputs: Inputs) -> dict[str, Any]:
    from fdrl_lib.buffers import SumTree

    priorities, uniforms = inputs["priorities"], inputs["uniforms"]
    tree = SumTree(len(priorities))
    tree.update(np.arange(len(priorities)), priorities)
    values = stratified_values(tree.total, uniforms)
    cumulative = np.cumsum(priorities)
    return {
        "tree": tree.nodes.copy(),
        "indices": tree.find(values),
        "indices@boundary_goes_left": np.searchsorted(cumulative, values, side="left"),
        "indices@not_stratified": tree.find(uniforms * tree.total),
    }


# ----------------------------------------------------------------------------------------------
# 2.6 The DQN loss in torch: two MLPs with seeded weights; reference from the library.


def loss_inputs(
    seed: int,
    B: int = 16,
    obs_dim: int = 4,
    hidden: int = 8,
    A: int = 3,
    gamma: float = 0.99,
    p_terminal: float = 0.3,
    reward_scale: float = 1.0,
    double: bool = False,
) -> Inputs:
    rng = np.random.default_rng(seed)
    n_params = hidden * obs_dim + hidden + A * hidden + A
    terminated = (rng.random(B) < p_terminal).astype(float)
    if p_terminal > 0:
        terminated[:2] = [1.0, 0.0]
    return {
        "obs": rng.normal(size=(B, obs_dim)).astype(np.float32),
        "action": rng.integers(A, size=B),
        "reward": (reward_scale * rng.normal(size=B)).astype(np.float32),
        "next_obs": rng.normal(size=(B, obs_dim)).astype(np.float32),
        "terminated": terminated.astype(np.float32),
        "gamma": float(gamma),
        "sizes": np.array([obs_dim, hidden, A]),
        "online_params": (0.5 * rng.normal(size=n_params)).astype(np.float32),
        "target_params": (0.5 * rng.normal(size=n_params)).astype(np.float32),
        "double": bool(double),
    }


def _reference_loss(inputs: Inputs, variant: str = "right") -> tuple[float, np.ndarray]:
    import torch

    from fdrl_lib.algos.dqn import dqn_target, huber
    from fdrl_lib.nn import mlp

    def build(params: np.ndarray) -> torch.nn.Module:
        net = mlp([int(x) for x in inputs["sizes"]])
        torch.nn.utils.vector_to_parameters(torch.as_tensor(params), net.parameters())
        return net

    online, target = build(inputs["online_params"]), build(inputs["target_params"])
    obs, next_obs = torch.as_tensor(inputs["obs"]), torch.as_tensor(inputs["next_obs"])
    reward = torch.as_tensor(inputs["reward"])
    terminated = torch.as_tensor(inputs["terminated"])
    if variant == "ignores_terminated":
        terminated = torch.zeros_like(terminated)
    double = bool(inputs["double"])
    with torch.no_grad():  # the target is a fixed label: no gradient reaches the target net
        evaluator = online if variant == "evaluates_with_online" else target
        next_q_online = online(next_obs) if double else None
        y = dqn_target(reward, terminated, inputs["gamma"], evaluator(next_obs), next_q_online)
    q = online(obs).gather(1, torch.as_tensor(inputs["action"])[:, None]).squeeze(1)  # (B,)
    error = q - y
    if variant == "max_not_taken_action":
        error = online(obs).max(dim=1).values - y
    if variant == "squared_error":
        loss = (0.5 * error**2).mean()
    elif variant == "mse":
        loss = (error**2).mean()
    elif variant == "sum":
        loss = huber(error).sum()
    else:
        loss = huber(error).mean()
    loss.backward()
    grad = torch.cat([p.grad.flatten() for p in online.parameters()])
    return float(loss.detach()), grad.numpy().astype(float)


def _ref_dqn_loss(inputs: Inputs) -> dict[str, Any]:
    loss, grad = _reference_loss(inputs)
    ref: dict[str, Any] = {
        "loss": np.array(loss),
        "online_grad": grad,
        "target_grad": np.array(0.0),
    }
    variants = ["ignores_terminated", "squared_error", "mse", "sum", "max_not_taken_action"]
    if inputs["double"]:
        variants.append("evaluates_with_online")
    for variant in variants:
        ref[f"loss@{variant}"] = np.array(_reference_loss(inputs, variant)[0])
    return ref


# ----------------------------------------------------------------------------------------------
# The exercises. Case names say what differs, so a failed case points at the bug.

IGNORES_TERMINATED = (
    "your target bootstraps from terminal transitions (terminated=True): there the target is "
    "just the reward; multiply the bootstrap term by (1 - terminated)"
)

EXERCISES = (
    Exercise(
        number="2.1",
        title="Tabular Q-learning update",
        function="q_update",
        args=(
            "Q",
            "obs",
            "action",
            "reward",
            "next_obs",
            "terminated",
            "truncated",
            "alpha",
            "gamma",
        ),
        kwargs=(),
        outputs=(
            Output(
                "Q",
                "values",
                mistakes=(
                    ("Q@ignores_terminated", IGNORES_TERMINATED),
                    (
                        "Q@truncated_as_terminal",
                        "your update stops bootstrapping when an episode is cut by a time limit "
                        "(truncated=True): s' still has a future there, only terminated removes "
                        "the bootstrap",
                    ),
                    (
                        "Q@no_average",
                        "your update overwrites Q(s, a) with the target; eq. 2.5 mixes it in: "
                        "(1 - alpha) Q(s, a) + alpha target",
                    ),
                    (
                        "Q@bootstraps_from_obs",
                        "your target bootstraps from the current state: it is "
                        "r + gamma max_a' Q(s', a') with s' = next_obs, not obs (eq. 2.4)",
                    ),
                    (
                        "Q@gamma_on_reward",
                        "you discounted the reward: the target is r + gamma max_a' Q(s', a'), "
                        "gamma multiplies only the bootstrap (eq. 2.4)",
                    ),
                ),
                hint="one update: target = r (terminated) or r + gamma max_a' Q(s', a') "
                "(otherwise, truncated included); Q(s, a) <- (1 - alpha) Q(s, a) + alpha target",
            ),
        ),
        reference=_ref_q_update,
        wrapper=replay_q_updates,
        equations="eqs. 2.4-2.5 and Algorithm 2",
        cases=(
            Case(
                "5 transitions, no episode ends, Q0 = 0",
                lambda: stream_inputs(1, 5, random_Q0=False),
            ),
            Case(
                "30 transitions with terminal ones, random Q0",
                lambda: stream_inputs(2, 30, p_terminated=0.2),
            ),
            Case(
                "30 transitions with time-limit truncations (they still bootstrap)",
                lambda seed=3: stream_inputs(seed, 30, p_truncated=0.25),
                hidden=True,
            ),
            Case(
                "60 transitions, terminated and truncated, alpha=0.5, gamma=0.5",
                lambda seed=4: stream_inputs(seed, 60, 6, 4, 0.15, 0.15, alpha=0.5, gamma=0.5),
                hidden=True,
            ),
        ),
        notes="ignoring terminated costs the 2 cases with terminal transitions; treating a "
        "truncation as terminal costs the 2 cases with truncations",
    ),
    Exercise(
        number="2.2",
        title="Epsilon-greedy action selection",
        function="epsilon_greedy",
        args=("q_values", "epsilon", "seed", "n"),
        kwargs=(),
        outputs=(
            Output(
                "counts",
                "frequencies",
                hint="with probability epsilon pick one of all A actions uniformly (the greedy "
                "one included), else the greedy action argmax_a Q(s, a)",
            ),
            Output(
                "same_seed_same_actions",
                "values",
                hint="the same seed gave different actions: draw every random number from the "
                "rng argument (not np.random.* or the random module)",
            ),
        ),
        reference=_ref_epsilon_greedy,
        wrapper=sample_epsilon_greedy,
        equations="Algorithm 3 (with probability epsilon a random action) and section 2.1",
        cases=(
            Case("A=4, epsilon=0.1", lambda: greedy_inputs([0.5, 2.0, -1.0, 1.5], 0.1, 1)),
            Case(
                "A=4, epsilon=0 (always greedy)",
                lambda: greedy_inputs([0.5, 2.0, -1.0, 1.5], 0.0, 2),
            ),
            Case(
                "A=3, epsilon=1 (uniformly random)",
                lambda seed=3: greedy_inputs(_q_values(seed, 3), 1.0, seed),
                hidden=True,
            ),
            Case(
                "A=6, epsilon=0.3, negative values",
                lambda seed=4: greedy_inputs(_q_values(seed, 6) - 7.0, 0.3, seed),
                hidden=True,
            ),
        ),
        notes="a random action that excludes the greedy one costs every case with 0 < epsilon",
    ),
    Exercise(
        number="2.3",
        title="The DQN target, vanilla and double",
        function="dqn_target",
        args=("reward", "terminated", "gamma", "next_q_target"),
        kwargs=("next_q_online",),
        outputs=(
            Output(
                "y",
                "values",
                mistakes=(
                    ("y@ignores_terminated", IGNORES_TERMINATED),
                    (
                        "y@evaluates_with_online",
                        "your double DQN target evaluates the chosen action with the online "
                        "network; eq. 2.12 chooses a' with the online network and evaluates it "
                        "with the target network: next_q_target[b, argmax next_q_online[b]]",
                    ),
                    (
                        "y@not_double",
                        "your target ignores next_q_online: double DQN (eq. 2.12) chooses a' "
                        "with the online network's values",
                    ),
                    (
                        "y@gamma_on_reward",
                        "you discounted the reward: y = r + gamma (1 - terminated) Q(s', a'), "
                        "gamma multiplies only the bootstrap",
                    ),
                    (
                        "y@terminal_drops_reward",
                        "at terminal transitions your target drops the reward too: there y = r "
                        "(only the bootstrap term is multiplied by 1 - terminated)",
                    ),
                ),
                hint="y_j = r_j + gamma (1 - terminated_j) max_a' next_q_target[j, a'] (vanilla), "
                "or next_q_target[j, argmax_a' next_q_online[j, a']] (double, eq. 2.12); one "
                "value per row j, the max over the action axis (axis=1)",
            ),
        ),
        reference=_ref_dqn_target,
        equations="Algorithm 3 (the target y_j) and eq. 2.12 (double DQN)",
        cases=(
            Case("vanilla, no terminal transitions", lambda: target_inputs(1)),
            Case(
                "vanilla, with terminal transitions",
                lambda: target_inputs(2, p_terminal=0.4),
            ),
            Case(
                "double DQN, no terminal transitions",
                lambda: target_inputs(3, double=True),
            ),
            Case(
                "double DQN, with terminal transitions",
                lambda seed=4: target_inputs(seed, B=16, A=4, p_terminal=0.3, double=True),
                hidden=True,
            ),
            Case(
                "vanilla, B=32, A=5, gamma=0.5",
                lambda seed=5: target_inputs(seed, B=32, A=5, gamma=0.5),
                hidden=True,
            ),
        ),
        notes="ignoring terminated costs the 2 terminal cases; evaluating with the online net "
        "costs the 2 double-DQN cases",
    ),
    Exercise(
        number="2.4",
        title="The Huber loss and its gradient",
        function="huber",
        args=("error",),
        kwargs=("delta",),
        outputs=(
            Output(
                "loss",
                "values",
                mistakes=(
                    (
                        "loss@no_half",
                        "your quadratic branch is error^2; Huber's is error^2 / 2 (so the "
                        "slope is error, meeting the linear branch's slope delta at |error| = "
                        "delta)",
                    ),
                    (
                        "loss@no_offset",
                        "your linear branch is delta |error|; subtract delta^2 / 2 so the two "
                        "branches meet at |error| = delta",
                    ),
                    (
                        "loss@squared_error",
                        "your loss is error^2 / 2 everywhere: beyond |error| > delta Huber grows "
                        "linearly",
                    ),
                ),
            ),
            Output(
                "grad",
                "values",
                mistakes=(
                    (
                        "grad@unclipped",
                        "your gradient is the error itself everywhere: beyond |error| > delta "
                        "it is delta * sign(error)",
                    ),
                    (
                        "grad@clipped_at_one",
                        "your gradient is clipped at 1; it is clipped at delta",
                    ),
                ),
            ),
        ),
        reference=_ref_huber,
        equations="section 2.2.1 (Huber loss: quadratic for small errors, linear for large)",
        cases=(
            Case(
                "delta=1, errors in both branches",
                lambda: huber_inputs([-3.0, -0.5, 0.0, 0.25, 0.9, 2.0, 10.0], None),
            ),
            Case(
                "delta=1, |error| = delta exactly (the branches meet)",
                lambda: huber_inputs([-1.0, 1.0], 1.0),
            ),
            Case(
                "delta=0.5, seeded errors",
                lambda seed=1: huber_inputs(np.random.default_rng(seed).normal(size=20), 0.5),
                hidden=True,
            ),
            Case(
                "delta=2, large errors",
                lambda seed=2: huber_inputs(5 * np.random.default_rng(seed).normal(size=20), 2.0),
                hidden=True,
            ),
        ),
        notes="a linear branch without -delta^2/2 costs every case with |error| > delta",
    ),
    Exercise(
        number="2.5",
        title="Sum-tree sampling for prioritized replay",
        function="sum_tree_sample",
        args=("priorities", "uniforms"),
        kwargs=(),
        outputs=(
            Output(
                "tree",
                "values",
                hint="layout: L = the smallest power of two >= N, tree[L + i] = priorities[i] "
                "(0 for i >= N), tree[k] = tree[2k] + tree[2k + 1] for 1 <= k < L, tree[0] = 0",
            ),
            Output(
                "indices",
                "values",
                atol=0.0,
                mistakes=(
                    (
                        "indices@boundary_goes_left",
                        "a value on a boundary between two leaves went to the left one (this "
                        "samples zero-priority leaves): leaf i owns [c_(i-1), c_i), go right "
                        "when value >= the left child's sum",
                    ),
                    (
                        "indices@not_stratified",
                        "your draws are not stratified: draw j must land in the j-th of B "
                        "equal slices, value_j = (j + uniforms[j]) * total / B",
                    ),
                ),
            ),
        ),
        reference=_ref_sum_tree,
        equations="section 2.2.2 (prioritized replay: P(i) proportional to p_i)",
        cases=(
            Case(
                "4 leaves, draws on leaf boundaries, a zero priority",
                lambda: sum_tree_inputs([1.0, 0.0, 2.0, 1.0], [0.0, 0.0, 0.0, 0.0]),
            ),
            Case(
                "8 integer priorities, 8 stratified draws",
                lambda: sum_tree_inputs(
                    np.random.default_rng(1).integers(0, 6, size=8),
                    np.random.default_rng(2).random(8),
                ),
            ),
            Case(
                "5 priorities (padded to 8 leaves), 16 draws",
                lambda seed=3: sum_tree_inputs(
                    _priorities(seed, 5), np.random.default_rng(seed).random(16)
                ),
                hidden=True,
            ),
            Case(
                "13 float priorities, 6 draws",
                lambda seed=4: sum_tree_inputs(
                    np.random.default_rng(seed).random(13),
                    np.random.default_rng(seed + 1).random(6),
                ),
                hidden=True,
            ),
        ),
        notes="boundaries to the left (sampling zero-priority leaves) cost the boundary case",
    ),
    Exercise(
        number="2.6",
        title="The DQN loss in torch",
        function="dqn_loss",
        args=(
            "obs",
            "action",
            "reward",
            "next_obs",
            "terminated",
            "gamma",
            "sizes",
            "online_params",
            "target_params",
        ),
        kwargs=("double",),
        outputs=(
            Output(
                "loss",
                "values",
                atol=1e-5,
                mistakes=(
                    ("loss@ignores_terminated", IGNORES_TERMINATED),
                    (
                        "loss@evaluates_with_online",
                        "your double DQN target evaluates the chosen action with the online "
                        "network; eq. 2.12 evaluates it with the target network",
                    ),
                    (
                        "loss@squared_error",
                        "your loss is the squared error (error^2 / 2); DQN uses the Huber loss "
                        "(delta = 1), linear for |error| > 1",
                    ),
                    (
                        "loss@mse",
                        "your loss is the mean squared error; DQN uses the Huber loss "
                        "(delta = 1), linear for |error| > 1",
                    ),
                    (
                        "loss@sum",
                        "your loss sums over the batch (B times too large); take the mean over "
                        "the B transitions of the minibatch",
                    ),
                    (
                        "loss@max_not_taken_action",
                        "your prediction is max_a Q(s, a); the loss compares Q(s, a_j) of the "
                        "action taken, online(obs).gather(1, action[:, None])",
                    ),
                ),
            ),
            Output(
                "target_grad",
                "values",
                atol=1e-7,
                hint="your loss backpropagates into the target network (its parameters got "
                "gradients): compute the target under torch.no_grad() (or .detach() it); it is "
                "a fixed label, only the online network is trained (Algorithm 3)",
            ),
            Output("online_grad", "values", atol=1e-5),
        ),
        reference=_ref_dqn_loss,
        wrapper=torch_dqn_loss,
        isolate=("dqn_target",),
        equations="Algorithm 3, eq. 2.10 (gradient step on the TD error) and eq. 2.12",
        cases=(
            Case("vanilla DQN, B=16, with terminal transitions", lambda: loss_inputs(1)),
            Case(
                "double DQN, B=16, with terminal transitions",
                lambda: loss_inputs(2, double=True),
            ),
            Case(
                "vanilla DQN, large rewards (Huber's linear branch), gamma=0.9",
                lambda seed=3: loss_inputs(seed, gamma=0.9, reward_scale=5.0),
                hidden=True,
            ),
            Case(
                "double DQN, B=32, no terminal transitions",
                lambda seed=4: loss_inputs(seed, B=32, p_terminal=0.0, double=True),
                hidden=True,
            ),
        ),
        notes="backpropagating into the target network costs all 4 cases",
    ),
)

LECTURE = Lecture(
    name="02_dqn",
    title="Lecture 2: Deep Q-learning",
    exercises=EXERCISES,
    kernel_references=KERNEL_REFERENCES,
    library=(
        "fdrl_lib.algos.dqn:td_target",
        "fdrl_lib.algos.dqn:huber",
        "fdrl_lib.buffers:SumTree.update",
        "fdrl_lib.buffers:SumTree.find",
    ),
)
