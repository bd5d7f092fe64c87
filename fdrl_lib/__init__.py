"""fdrl: the library behind the Foundations of Deep RL course.

Importing ``fdrl_lib`` is cheap: no torch until a deep algorithm is used.
"""

__version__ = "0.1.0"


def fast_mode() -> bool:
    """True when ``FDRL_FAST=1``: notebooks and demos shrink their budgets (CI, quick looks)."""
    import os

    return os.environ.get("FDRL_FAST", "0") not in ("", "0", "false", "False")


def evaluate(policy, env, episodes: int = 10, seed: int = 123) -> float:
    """Mean undiscounted return of a deterministic ``policy`` over ``episodes`` episodes."""
    from fdrl_lib.training import evaluate as _evaluate

    return _evaluate(policy, env, episodes=episodes, seed=seed)
