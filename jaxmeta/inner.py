"""Inner-loop (fast-update) optimizers as ``optax.GradientTransformation`` pairs.

The state of an inner optimizer is part of what the meta-learner learns: for
:func:`meta_sgd` it *is* the pytree of per-parameter learning rates α (Li et al. 2017,
TESP Eq. 9), so meta-gradients flow into it exactly like into the policy parameters.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

Params = Any


class MetaSGDState(NamedTuple):
    """Learned learning rates, a pytree shaped like the parameters."""

    lr: Params


def sgd(learning_rate: float) -> optax.GradientTransformation:
    """Plain SGD with a fixed rate:  θ' = θ − α ∇L  (MAML, Finn et al. 2017 Eq. 1)."""
    if not learning_rate >= 0:
        raise ValueError(f"inner_lr must be >= 0, got {learning_rate!r}")

    def init(params):
        del params
        return optax.EmptyState()

    def update(grads, state, params=None):
        del params
        return jax.tree.map(lambda g: -learning_rate * g, grads), state

    return optax.GradientTransformation(init, update)


def meta_sgd(init_learning_rate: float) -> optax.GradientTransformation:
    """Meta-SGD:  θ' = θ − α ⊙ ∇L  with α a learned pytree shaped like θ (Li et al. 2017).

    ``init`` fills α with ``init_learning_rate``; the caller meta-learns the state.
    """
    if not init_learning_rate >= 0:
        raise ValueError(f"inner_lr must be >= 0, got {init_learning_rate!r}")

    def init(params):
        return MetaSGDState(lr=jax.tree.map(lambda p: jnp.full_like(p, init_learning_rate), params))

    def update(grads, state, params=None):
        del params
        return jax.tree.map(lambda a, g: -a * g, state.lr, grads), state

    return optax.GradientTransformation(init, update)
