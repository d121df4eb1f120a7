"""Tiny shared learners, built once per test session so compiled programs are reused."""

import functools

from jaxmeta import algorithms, envs
from jaxmeta.algorithms.base import MetaConfig
from jaxmeta.algorithms.tesp import TESPConfig

TINY = MetaConfig(hidden_sizes=(8,), meta_batch_size=3, inner_episodes=2, outer_episodes=2,
                  eval_episodes=2, ppo_epochs=2, cg_iters=3, ls_max_backtracks=4,
                  value_hidden_sizes=(8,))
TINY_TESP = TESPConfig(hidden_sizes=(8,), gru_size=4, embedding_size=2, meta_batch_size=3,
                       inner_episodes=3, outer_episodes=2, eval_episodes=2, buffer_size=2,
                       fast_updates=2, ppo_epochs=2)


def tiny_config(algo: str):
    """The tiny config of ``algo``'s config class."""
    return TINY_TESP if algorithms.config_class(algo) is TESPConfig else TINY


@functools.cache
def tiny_family(horizon: int = 10):
    return envs.make("navigation2d", horizon=horizon)


@functools.cache
def tiny_learner(algo: str = "maml", **overrides):
    import dataclasses

    cfg = dataclasses.replace(tiny_config(algo), **overrides)
    return algorithms.make(algo, tiny_family(), cfg)


def run_config(algo: str = "maml", **overrides):
    import dataclasses

    cfg = dataclasses.replace(tiny_config(algo), **overrides)
    return {"algo": algo, "env": "navigation2d", "env_overrides": {"horizon": 10},
            "config": dataclasses.asdict(cfg)}
