"""MAML's and Meta-SGD's config (the MAML paper's defaults: 2D navigation, TRPO)."""

from __future__ import annotations

import dataclasses

from jaxmeta.config import (
    InnerConfig,
    PolicyConfig,
    PPOConfig,
    ReturnsConfig,
    SamplingConfig,
    Section,
    TRPOConfig,
    check_bool,
    check_choice,
)
from jaxmeta.meta import estimators, outer


@dataclasses.dataclass(frozen=True)
class MAMLConfig(Section):
    """MAML (``inner.optimizer="sgd"``) and Meta-SGD (``"meta_sgd"``).

    ``meta_gradient`` is ``first_order``, ``second_order`` (default) or ``dice``
    (:mod:`jaxmeta.meta.estimators`); ``outer`` picks the meta-update, ``trpo`` (default)
    or ``ppo``, configured by the section of that name. ``remat`` wraps every replayed
    fast-update in ``jax.checkpoint``.
    """

    policy: PolicyConfig = PolicyConfig()
    sampling: SamplingConfig = SamplingConfig()
    returns: ReturnsConfig = ReturnsConfig()
    inner: InnerConfig = InnerConfig()
    meta_gradient: str = "second_order"
    remat: bool = False
    outer: str = "trpo"
    ppo: PPOConfig = PPOConfig()
    trpo: TRPOConfig = TRPOConfig()

    # flat names of the shared ``MetaConfig`` that MAML, Meta-SGD and the baselines used
    LEGACY = {"outer_lr": "ppo_lr", "value_hidden_sizes": None, "value_coef": None}

    def __post_init__(self):
        object.__setattr__(self, "meta_gradient", estimators.canonical(self.meta_gradient))
        check_bool("remat", self.remat)
        check_choice("outer", self.outer, outer.NAMES)
