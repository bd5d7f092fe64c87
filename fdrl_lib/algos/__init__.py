"""Deep RL algorithms, one module per algorithm, named as in the lectures.

``from fdrl_lib import algos`` is cheap: each module (and torch) loads on first use, e.g.
``algos.dqn.train("CartPole-v1")``.
"""

import importlib

__all__ = [
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
]


def __getattr__(name: str):
    if name in __all__:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
