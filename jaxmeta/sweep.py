"""Sweeps over traced hyperparameters: one compiled program trains every value × seed.

A sweep is a tuple of ``(flat field name, values)`` pairs; several fields give their grid
(the Cartesian product, in the order given). The trainer vmaps over *members*, ordered
point-major: member ``p * seeds + s`` is sweep point ``p`` with seed ``seed + s``, so every
point sees the same seeds (common random numbers). Only traced fields
(:func:`jaxmeta.config.traced`) can be swept: they live in ``state.hyper``; a static field
(sizes, horizon, K, choices) changes the program and is refused.
"""

from __future__ import annotations

import itertools
from typing import Any

import jax
import jax.numpy as jnp

from jaxmeta import algorithms
from jaxmeta import config as config_lib
from jaxmeta.protocol import MetaLearner

Sweep = tuple[tuple[str, tuple[float, ...]], ...]


def parse(items: list[str] | tuple[str, ...]) -> Sweep:
    """``["inner_lr=0.05,0.2", "gamma=0.9,0.99"]`` -> a :data:`Sweep` (syntax only; the
    fields are checked against a learner by :func:`check`)."""
    out: list[tuple[str, tuple[float, ...]]] = []
    for item in items or ():
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--sweep expects FIELD=V1,V2,..., got {item!r}")
        texts = [v.strip() for v in values.split(",")]
        if not values.strip() or any(not v for v in texts):
            raise ValueError(f"--sweep {name}: empty value in {values!r}; give "
                             f"{name}=V1,V2,...")
        try:
            vals = tuple(float(v) for v in texts)
        except ValueError:
            raise ValueError(f"--sweep {name}: values must be numbers, got {values!r}") from None
        if len(set(vals)) != len(vals):
            raise ValueError(f"--sweep {name}: repeated value in {values!r}")
        if name in dict(out):
            raise ValueError(f"--sweep {name} is given twice")
        out.append((name, vals))
    return tuple(out)


def check(learner: MetaLearner, sweep: Sweep) -> None:
    """Refuses fields that are unknown, static, or fixed by the algorithm's preset, and
    values the config would refuse; the message names the field."""
    cls = type(learner.config)
    fields = config_lib.flat_fields(cls)
    fixed = set(algorithms.entry(learner.name).preset) if learner.name else set()
    sweepable = sorted(n for n in config_lib.traced_names(cls) if n not in fixed)
    for name, values in sweep:
        if name not in fields:
            raise ValueError(f"--sweep {name}: {learner.name or cls.__name__} has no field "
                             f"{name!r}; sweepable fields: {', '.join(sweepable)}")
        if not fields[name].traced:
            raise ValueError(f"--sweep {name}: {name} is static (it changes shapes or the "
                             f"compiled program) and cannot be swept; sweepable fields: "
                             f"{', '.join(sweepable)}")
        if name in fixed:
            raise ValueError(f"--sweep {name}: {learner.name} fixes {name}; sweepable "
                             f"fields: {', '.join(sweepable)}")
        for v in values:
            config_lib.replace(learner.config, **{name: v})  # the config's own checks


def points(sweep: Sweep) -> list[dict[str, float]]:
    """The grid of a sweep, one dict of values per point (``[{}]`` without a sweep)."""
    names = [n for n, _ in sweep]
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(v for _, v in sweep))]


def label(point: dict[str, float]) -> str:
    """``inner_lr=0.05,gamma=0.9`` (empty without a sweep)."""
    return ",".join(f"{k}={v:g}" for k, v in point.items())


def member_hypers(learner: MetaLearner, sweep: Sweep, seeds: int) -> Any:
    """The ``hyper`` of every member, stacked ``[points × seeds]`` (point-major)."""
    base = learner.default_hyper()
    per_point = [{**base, **{k: jnp.asarray(v, jnp.float32) for k, v in p.items()}}
                 for p in points(sweep)]
    return jax.tree.map(lambda *xs: jnp.stack([x for x in xs for _ in range(seeds)]),
                        *per_point)


def members(sweep: Sweep, seed: int, seeds: int) -> list[dict]:
    """Per member: ``{"seed": s}`` plus ``{"sweep": point}`` when sweeping."""
    return [{"seed": seed + s, **({"sweep": p} if sweep else {})}
            for p in points(sweep) for s in range(seeds)]
