"""Deep RL algorithms, one module per algorithm, named as in the lectures.

``from fdrl_lib import algos`` is cheap: each module (and torch) loads on first use, e.g.
``algos.dqn.train("CartPole-v1")``.
"""

import importlib
import pkgutil

# The lectures' algorithms, in course order; `available()` says which are implemented so far.
PLANNED = (
    "dqn",
    "vpg",
    "a2c",
    "a3c",
    "trpo",
    "ppo",
    "ddpg",
    "td3",
    "sac",
    "mbrl",
    "me_trpo",
    "mb_mpo",
)
__all__ = [name for name in PLANNED if any(m.name == name for m in pkgutil.iter_modules(__path__))]


def available() -> list[str]:
    """The algorithm modules that exist in this version of the library."""
    return list(__all__)


def __getattr__(name: str):
    if name in __all__:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    if name in PLANNED:
        raise AttributeError(
            f"fdrl_lib.algos.{name} is not implemented yet; available: {', '.join(__all__)}"
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
