"""Adaptation on held-out splits (D = train, D′ = test, D″ = ood)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxmeta import algorithms, envs
from jaxmeta.algorithms.base import MetaLearner
from jaxmeta.envs.base import check_positive, check_split
from jaxmeta.train import TrainOptions, restore_states


def evaluate(learner: MetaLearner, states: Any, key: jax.Array, split: str = "test",
             num_tasks: int = 40, adapt_steps: int = 3) -> dict:
    """Fast-adapts every seed's learner to ``num_tasks`` tasks of ``split``.

    The same tasks are used for every seed. Returns a JSON-able dict with
    ``pre_adapt_return`` (mean over seeds and tasks), ``post_adapt_return`` (a list, one
    per adapt step), their per-seed values and spread (std over seeds), ``num_tasks``,
    ``split`` and ``adapt_steps``.
    """
    check_split(split)
    check_positive("num_tasks", num_tasks)
    if not isinstance(adapt_steps, int) or adapt_steps < 0:
        raise ValueError(f"adapt_steps must be a non-negative integer, got {adapt_steps!r}")
    k_tasks, k_adapt = jax.random.split(key)
    tasks = learner.family.sample_tasks(k_tasks, num_tasks, split)
    keys = jax.random.split(k_adapt, num_tasks)
    returns = np.asarray(adaptation_returns(learner, adapt_steps)(states, tasks, keys))
    per_seed = returns.mean(axis=1)  # [seeds, steps+1]
    return {
        "split": split,
        "num_tasks": num_tasks,
        "adapt_steps": adapt_steps,
        "num_seeds": int(returns.shape[0]),
        "pre_adapt_return": float(per_seed[:, 0].mean()),
        "post_adapt_return": [float(x) for x in per_seed[:, 1:].mean(axis=0)],
        "pre_adapt_return_std": float(per_seed[:, 0].std()),
        "post_adapt_return_std": [float(x) for x in per_seed[:, 1:].std(axis=0)],
        "per_seed": per_seed.tolist(),
    }


@functools.lru_cache(maxsize=32)
def adaptation_returns(learner: MetaLearner, adapt_steps: int):
    """``jit((states, tasks, keys) -> returns [seeds, tasks, adapt_steps + 1])``, compiled
    once per learner and step count (tasks are an argument, so every split and every
    evaluation during training reuses one program)."""

    def one_seed(state, tasks, keys):
        return jax.vmap(lambda t, k: learner.adapt(state, t, k, adapt_steps).returns)(tasks, keys)

    return jax.jit(jax.vmap(one_seed, in_axes=(0, None, None)))


def config_from_dict(algo: str, d: dict):
    """Rebuilds algorithm ``algo``'s config dataclass from its JSON form (lists → tuples)."""
    cls = algorithms.config_class(algo)
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def load_run(run_dir: str | Path, step: int | None = None):
    """Rebuilds the learner of a saved run and restores its state.

    Returns:
      (learner, vmapped states, the run's config dict, restored step).
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        raise FileNotFoundError(f"{run_dir} is not a jaxmeta run (no config.json)")
    desc = json.loads(cfg_path.read_text())
    family = envs.make(desc["env"], **desc.get("env_overrides", {}))
    learner = algorithms.make(desc["algo"], family, config_from_dict(desc["algo"], desc["config"]))
    opts = TrainOptions(**desc["train"])
    states, step = restore_states(learner, run_dir, opts.seed, opts.seeds, step)
    return learner, states, desc, step
