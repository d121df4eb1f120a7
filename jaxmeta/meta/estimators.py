"""Meta-gradient estimators: one set of names for every method.

A gradient-based meta-learner replays its fast-updates from stored episodes under a
gradient (:mod:`jaxmeta.meta.replay`) and differentiates a surrogate of the adapted
policy's return. The estimators differ in which terms of the true meta-gradient they keep:

* ``first_order``: ∂θ_{K+1}/∂θ ≈ I (FOMAML); the inner gradients are held constant, but
  a learned inner state (Meta-SGD's α) still receives its gradient.
* ``second_order``: differentiates through the fast-updates, with the sampled inner
  episodes held fixed. It is what MAML-RL's reference code computes ("hessian" in MAML
  terms). It ignores that the inner episodes were *sampled* from π_θ.
* ``dice``: ``second_order`` plus the score-function term of the inner sampling
  distribution, the unbiased gradient of J(θ) = E_{τ_1..K ~ π_θ1..K}[R(θ_{K+1})]
  ("formulation I" of Rothfuss et al. 2019, ProMP): the DiCE estimator (Foerster et al.
  2018) applied to the whole meta-iteration. The outer objective is multiplied by the
  magic box ⊡(Σ_k log P(τ_k | θ_k)), of value 1 and gradient Ĵ·Σ_k ∇log P(τ_k | θ_k); Ĵ_i
  is replaced by Ĵ_i − b_i with b_i the leave-one-out mean of Ĵ over the other tasks (it
  does not depend on task i's episodes, so the estimator stays unbiased). The outer
  surrogate must then estimate the gradient of the same objective as the score term:
  the time-summed, unnormalised return of the adapted policy.

Older names are accepted with a deprecation warning: ``hessian`` (MAML) is
``second_order``, ``exact`` (MAML) is ``dice``.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmeta.config import check_choice

Array = jax.Array

FIRST_ORDER, SECOND_ORDER, DICE = "first_order", "second_order", "dice"
NAMES = (FIRST_ORDER, SECOND_ORDER, DICE)
ALIASES = {"hessian": SECOND_ORDER, "exact": DICE}


def canonical(name: str, allowed: tuple[str, ...] = NAMES, field: str = "meta_gradient") -> str:
    """The estimator's name today; old aliases warn, unknown names list the choices."""
    if name in ALIASES:
        new = ALIASES[name]
        warnings.warn(f"{field}={name!r} is deprecated; it is now called {new!r}",
                      DeprecationWarning, stacklevel=3)
        name = new
    check_choice(field, name, allowed)
    return name


class Estimator(NamedTuple):
    """What an estimator asks of the replay and of the meta-objective.

    Attributes:
      name: ``first_order``, ``second_order`` or ``dice``.
    """

    name: str

    @property
    def first_order(self) -> bool:
        """Inner gradients held constant in the replay (∂θ_{k+1}/∂θ_k ≈ I)."""
        return self.name == FIRST_ORDER

    @property
    def score_term(self) -> bool:
        """The meta-objective includes the inner episodes' score-function term."""
        return self.name == DICE


def make(name: str) -> Estimator:
    """The estimator called ``name`` (or one of its old aliases)."""
    return Estimator(canonical(name))


def leave_one_out_baseline(j_hat: Array) -> Array:
    """b_i = mean_{j≠i} Ĵ_j over a meta-batch ``[B]`` (0 when B = 1)."""
    n = j_hat.shape[0]
    return (j_hat.sum() - j_hat) / (n - 1) if n > 1 else jnp.zeros_like(j_hat)


def meta_objective(estimator: Estimator, surrogate: Array, inner_logp: Array,
                   j_hat: Array) -> Array:
    """The loss whose gradient is the estimator's meta-gradient (negated).

    Args:
      estimator: which terms to keep.
      surrogate: per-task outer surrogate losses ``[B]`` (differentiable in θ through the
        replayed fast-updates).
      inner_logp: per-task Σ_k log P(τ_k | θ_k) of the stored inner episodes ``[B]``.
      j_hat: per-task mean return of the adapted policy ``[B]`` (the score term's weight).

    Returns:
      mean_i surrogate_i, minus mean_i (Ĵ_i − b_i)·(log P_i − ⊥log P_i) for ``dice``: the
      second term has value 0 and gradient −(Ĵ_i − b_i)∇log P_i.
    """
    loss = surrogate.mean()
    if estimator.score_term:
        weight = jax.lax.stop_gradient(j_hat - leave_one_out_baseline(j_hat))
        magic = inner_logp - jax.lax.stop_gradient(inner_logp)  # value 0, grad ∇log P
        loss = loss - jnp.mean(weight * magic)
    return loss
