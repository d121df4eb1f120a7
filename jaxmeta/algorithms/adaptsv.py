"""AdaptSV (TESP §5), the MAESN-like baseline of TESP: the shared policy π(a | [s, z])
whose task variable z ∈ R^d is fast-updated from a meta-learned start z₀ (with
per-parameter rates α), with no encoder and no buffer. z is deterministic, as TESP
describes it; MAESN (Gupta et al. 2018) samples it from a learned Gaussian instead.

Wiring: TESP's embedding learner with a task variable as its task inference.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxmeta.algorithms.tesp.config import AdaptSVConfig
from jaxmeta.algorithms.tesp.learner import TaskInference, embedding_learner
from jaxmeta.envs.base import TaskFamily
from jaxmeta.protocol import MetaLearner


def task_variable(size: int) -> TaskInference:
    """h = z, a free vector initialised to 0 and adapted by the fast-updates; it sees no
    episodes (no warm-up, no context)."""
    return TaskInference("z", lambda key: jnp.zeros((size,)), lambda z, ctx: z, False,
                         lambda warm: None, lambda ctx, traj: ctx)


def make_adaptsv(family: TaskFamily, config: AdaptSVConfig | None = None) -> MetaLearner:
    """AdaptSV on ``family``."""
    cfg = config or AdaptSVConfig()
    return embedding_learner(family, cfg, task_variable(cfg.embedding_size))
