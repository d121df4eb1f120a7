"""Soft actor-critic on fixed training tasks, and the off-policy learner PEARL wires."""

from jaxmeta.algorithms.sac.config import CollectConfig, SACConfig, SoftACConfig
from jaxmeta.algorithms.sac.learner import (
    ContextEncoder,
    SACNets,
    Transition,
    kl_to_unit,
    make_sac,
    offpolicy_learner,
    sac_nets,
)

__all__ = ["CollectConfig", "ContextEncoder", "SACConfig", "SACNets", "SoftACConfig",
           "Transition", "kl_to_unit", "make_sac", "offpolicy_learner", "sac_nets"]
