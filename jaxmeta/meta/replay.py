"""Differentiable replay of the fast-updates from stored inner data.

Sampling runs the K fast-updates with no gradient and stores what each step saw (its
episodes, advantages, buffers). The meta-objective needs θ_{K+1} as a function of the
meta-parameters, so the updates are re-run from that stored data under a gradient: a
``lax.scan`` of the same inner step. The estimator (:mod:`jaxmeta.meta.estimators`)
decides whether the step's inner gradient is held constant (first order) or
differentiated through (second order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

Array = jax.Array


def replay(step: Callable[[Any, Any], Any], fast: Any, data: Any, remat: bool = False,
           logp: Callable[[Any, Any], Array] | None = None) -> tuple[Any, Array | None]:
    """Re-runs ``fast ← step(fast, data_k)`` over the stored ``data`` (leading axis K).

    Args:
      step: one fast-update from the stored data of step k (already closed over the
        meta-parameters it depends on and over the estimator's first/second order).
      fast: the fast parameters before the first update (a function of the
        meta-parameters under the outer gradient).
      data: the stored per-step data, leaves ``[K, ...]``.
      remat: wrap every step in ``jax.checkpoint``, so second-order memory stays flat in K.
      logp: optionally ``(fast_k, data_k) -> log P(τ_k | fast_k)``, summed over k (the
        score-function term of the DiCE estimator needs it).

    Returns:
      (fast_{K+1}, Σ_k logp_k or ``None``).
    """

    def body(f, d):
        lp = logp(f, d) if logp is not None else None
        return step(f, d), lp

    if remat:
        body = jax.checkpoint(body)
    fast, lps = jax.lax.scan(body, fast, data)
    return fast, (lps.sum() if logp is not None else None)
