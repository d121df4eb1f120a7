"""Meta-RL methods and their registry: ``make(name, family, config)`` and ``names()``."""

from __future__ import annotations

from collections.abc import Callable

from jaxmeta.algorithms.base import Adapted, LearnerState, MetaConfig, MetaLearner
from jaxmeta.algorithms.baselines import make_oracle, make_pretrained, make_random_init
from jaxmeta.algorithms.maml import make_maml, make_meta_sgd
from jaxmeta.algorithms.tesp import PRESETS, TESPConfig, make_tesp, preset_maker
from jaxmeta.envs.base import TaskFamily

_REGISTRY: dict[str, tuple[Callable[..., MetaLearner], type]] = {
    "maml": (make_maml, MetaConfig),
    "meta_sgd": (make_meta_sgd, MetaConfig),
    "pretrained": (make_pretrained, MetaConfig),
    "random_init": (make_random_init, MetaConfig),
    "oracle": (make_oracle, MetaConfig),
    # TESP, AdaptSV and the ablations V1-V5: presets of one method (a preset's fields
    # override the config's)
    **{name: (preset_maker(name), TESPConfig) for name in PRESETS},
}


def names() -> list[str]:
    """Registered algorithm names, sorted."""
    return sorted(_REGISTRY)


def config_class(name: str) -> type:
    """The config dataclass of algorithm ``name``."""
    _check(name)
    return _REGISTRY[name][1]


def _check(name: str) -> None:
    if name not in _REGISTRY:
        raise ValueError(f"unknown algo {name!r}; registered algos: {', '.join(names())}")


def make(name: str, family: TaskFamily, config=None) -> MetaLearner:
    """Builds algorithm ``name`` on ``family`` (unknown names list the registered ones)."""
    _check(name)
    constructor, cls = _REGISTRY[name]
    return constructor(family, config if config is not None else cls())


__all__ = ["Adapted", "LearnerState", "MetaConfig", "MetaLearner", "config_class", "make",
           "make_maml", "make_meta_sgd", "make_oracle", "make_pretrained", "make_random_init",
           "make_tesp", "names", "TESPConfig"]
