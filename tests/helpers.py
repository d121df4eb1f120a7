"""Tiny shared learners, built once per test session so compiled programs are reused."""

import functools

from jaxmeta import algorithms, envs
from jaxmeta.algorithms.base import MetaConfig

TINY = MetaConfig(hidden_sizes=(8,), meta_batch_size=3, inner_episodes=2, outer_episodes=2,
                  eval_episodes=2, ppo_epochs=2, cg_iters=3, ls_max_backtracks=4,
                  value_hidden_sizes=(8,))


@functools.cache
def tiny_family(horizon: int = 10):
    return envs.make("navigation2d", horizon=horizon)


@functools.cache
def tiny_learner(algo: str = "maml", **overrides):
    import dataclasses

    cfg = dataclasses.replace(TINY, **overrides)
    return algorithms.make(algo, tiny_family(), cfg)


def run_config(algo: str = "maml", **overrides):
    import dataclasses

    cfg = dataclasses.replace(TINY, **overrides)
    return {"algo": algo, "env": "navigation2d", "env_overrides": {"horizon": 10},
            "config": dataclasses.asdict(cfg)}
