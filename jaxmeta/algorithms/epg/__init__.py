"""Evolved Policy Gradients (Houthooft et al. 2018): an evolution strategy evolves a learned
loss whose gradient trains policies from scratch."""

from jaxmeta.algorithms.epg.config import (
    EPGConfig,
    EPGInnerConfig,
    ESConfig,
    LossNetConfig,
)
from jaxmeta.algorithms.epg.learner import epg_pieces, make_epg

__all__ = ["EPGConfig", "EPGInnerConfig", "ESConfig", "LossNetConfig", "epg_pieces",
           "make_epg"]
