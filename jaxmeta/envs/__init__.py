"""Task families and their registry: ``make(name, **overrides)`` and ``names()``."""

from __future__ import annotations

from collections.abc import Callable

from jaxmeta.envs.base import SPLITS, EnvState, TaskFamily, check_split
from jaxmeta.envs.navigation import Navigation2D, Navigation2DSparse, NavTask

_REGISTRY: dict[str, Callable[..., TaskFamily]] = {
    "navigation2d": Navigation2D,
    "navigation2d_sparse": Navigation2DSparse,
}


def register(name: str, constructor: Callable[..., TaskFamily]) -> None:
    """Adds a family constructor under ``name`` (refuses to overwrite)."""
    if name in _REGISTRY:
        raise ValueError(f"task family {name!r} is already registered")
    _REGISTRY[name] = constructor


def names() -> list[str]:
    """Registered task-family names, sorted."""
    return sorted(_REGISTRY)


def make(name: str, **overrides) -> TaskFamily:
    """Builds the task family ``name`` with constructor ``overrides`` (e.g. ``horizon=50``).

    Raises:
      ValueError: unknown name (the message lists the registered ones) or a bad override.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown env {name!r}; registered envs: {', '.join(names())}")
    try:
        return _REGISTRY[name](**overrides)
    except TypeError as e:  # unknown keyword
        raise ValueError(f"bad overrides for env {name!r}: {e}") from None


__all__ = ["SPLITS", "EnvState", "NavTask", "TaskFamily", "check_split", "make", "names",
           "register"]
