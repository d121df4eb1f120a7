"""Adaptation on held-out splits (D = train, D′ = test, D″ = ood), in the same keys for
every method: ``pre_adapt_return`` and ``post_adapt_return`` (one per adaptation step).

The trainer's evaluation hook and ``jaxmeta eval`` call the same function with the same
key derivation, so an evaluation row written during training equals ``jaxmeta eval`` of
the checkpoint at that iteration with ``--seed`` = ``TrainOptions.eval_seed``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmeta import distributed, runs, sweep
from jaxmeta.config import check_positive
from jaxmeta.envs.base import check_split
from jaxmeta.protocol import MetaLearner, check_adapt_steps


@functools.lru_cache(maxsize=32)
def adaptation_returns(learner: MetaLearner, adapt_steps: int):
    """``jit((states, tasks, keys) -> returns [members, tasks, 2, adapt_steps + 1])``: the
    return, then the return without the action cost (TESP's R; the return again for
    families whose reward has no such split, see ``protocol.Adapted``). Compiled
    once per learner and step count (tasks are an argument, so every split and every
    evaluation during training reuses one program)."""

    def one(state, task, key):
        a = learner.adapt(state, task, key, adapt_steps)
        dist = a.returns if a.distance_returns is None else a.distance_returns
        return jnp.stack([a.returns, dist])

    def one_member(state, tasks, keys):
        return jax.vmap(lambda t, k: one(state, t, k))(tasks, keys)

    return jax.jit(jax.vmap(one_member, in_axes=(0, None, None)))


def check_request(split: str, num_tasks: int, adapt_steps: int) -> None:
    """Refuses a split, task count or number of adaptation steps that cannot be evaluated
    (``ValueError`` naming the field; before anything is loaded or compiled)."""
    check_split(split)
    check_positive("num_tasks", num_tasks)
    check_adapt_steps(adapt_steps)


def tasks_and_keys(family, key: jax.Array, split: str, num_tasks: int):
    """The ``num_tasks`` tasks of ``split`` an evaluation with ``key`` adapts to, and each
    one's adaptation key (``jaxmeta video`` renders task ``k`` of the same draw)."""
    k_tasks, k_adapt = jax.random.split(key)
    return (family.sample_tasks(k_tasks, num_tasks, split),
            jax.random.split(k_adapt, num_tasks))


def member_returns(learner: MetaLearner, states: Any, key: jax.Array, split: str,
                   num_tasks: int, adapt_steps: int, distance: bool = False):
    """Mean return over ``num_tasks`` tasks of ``split`` before adaptation and after each
    step, per member ``[members, adapt_steps + 1]``; every member sees the same tasks.
    With ``distance``: ``(returns, distance_returns)``, the second from the same episodes
    without the action cost (TESP's R; equal to the first where the family has none)."""
    check_request(split, num_tasks, adapt_steps)
    tasks, keys = tasks_and_keys(learner.family, key, split, num_tasks)
    returns = adaptation_returns(learner, adapt_steps)(states, tasks, keys)
    both = np.asarray(distributed.to_host(returns)).mean(1)  # gathered across hosts
    return (both[:, 0], both[:, 1]) if distance else both[:, 0]


def summarize(per_member: np.ndarray) -> dict:
    """Mean over members (and std over them) before and after each adaptation step."""
    return {
        "num_seeds": int(per_member.shape[0]),
        "pre_adapt_return": float(per_member[:, 0].mean()),
        "post_adapt_return": [float(x) for x in per_member[:, 1:].mean(axis=0)],
        "pre_adapt_return_std": float(per_member[:, 0].std()),
        "post_adapt_return_std": [float(x) for x in per_member[:, 1:].std(axis=0)],
        "per_seed": per_member.tolist(),
    }


def evaluate(learner: MetaLearner, states: Any, key: jax.Array, split: str = "test",
             num_tasks: int = 40, adapt_steps: int = 3) -> dict:
    """Fast-adapts every member's learner to ``num_tasks`` tasks of ``split``.

    Returns a JSON-able dict: ``pre_adapt_return`` (mean over seeds and tasks),
    ``post_adapt_return`` (one per adapt step), their std over seeds, ``per_seed``,
    ``num_seeds``, ``num_tasks``, ``split`` and ``adapt_steps``.
    """
    per_member = member_returns(learner, states, key, split, num_tasks, adapt_steps)
    return {"split": split, "num_tasks": num_tasks, "adapt_steps": adapt_steps,
            **summarize(per_member)}


def load_run(run_dir: str | Path, step: int | None = None):
    """Rebuilds the learner of a saved run and restores its states.

    Returns:
      (learner, vmapped states, the run's description, restored step).

    Raises:
      runs.RunDescriptionError: no, or a damaged, ``config.json``.
    """
    desc = runs.read_description(run_dir)
    learner = runs.rebuild(desc)
    t = desc["train"]
    sw = tuple((n, tuple(v)) for n, v in t.get("sweep", ()))
    states, step = runs.restore_states(learner, run_dir, t.get("seed", 0), t.get("seeds", 1),
                                       sw, step)
    return learner, states, desc, step


def evaluate_run(run_dir: str | Path, split: str = "test", num_tasks: int = 40,
                 adapt_steps: int = 3, seed: int = 12345, step: int | None = None) -> dict:
    """:func:`evaluate` of a saved run, with its name and iteration. A sweep run reports
    one entry per swept value under ``sweep`` (each with the keys of :func:`evaluate`)."""
    check_request(split, num_tasks, adapt_steps)
    if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 0):
        raise ValueError(f"step must be an integer >= 0, got {step!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    learner, states, desc, step = load_run(run_dir, step)
    per_member = member_returns(learner, states, jax.random.PRNGKey(seed), split, num_tasks,
                                adapt_steps)
    out = {"algo": desc["algo"], "env": desc["env"], "iteration": step, "split": split,
           "num_tasks": num_tasks, "adapt_steps": adapt_steps}
    sw = tuple((n, tuple(v)) for n, v in desc["train"].get("sweep", ()))
    if not sw:
        return {**out, **summarize(per_member)}
    seeds = desc["train"].get("seeds", 1)
    out["sweep"] = [{"point": p, "label": sweep.label(p),
                     **summarize(per_member[i * seeds:(i + 1) * seeds])}
                    for i, p in enumerate(sweep.points(sw))]
    return out
