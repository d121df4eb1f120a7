"""Inner-loop (fast-update) optimizers as ``optax.GradientTransformation`` pairs, and the
fast-update step itself.

The state of an inner optimizer is part of what the meta-learner learns: for
:func:`meta_sgd` it *is* the pytree of per-parameter learning rates α (Li et al. 2017,
TESP Eq. 9), so meta-gradients flow into it exactly like into the policy parameters.
Rates may be traced values (a swept or meta-learned hyperparameter).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import optax

from jaxmeta.config import check_choice, check_range

Params = Any


class MetaSGDState(NamedTuple):
    """Learned learning rates, a pytree shaped like the parameters."""

    lr: Params


def sgd(learning_rate: float | jax.Array) -> optax.GradientTransformation:
    """Plain SGD with a fixed rate:  θ' = θ − α ∇L  (MAML, Finn et al. 2017 Eq. 1)."""
    check_range("inner_lr", learning_rate, lo=0)

    def init(params):
        del params
        return optax.EmptyState()

    def update(grads, state, params=None):
        del params
        return jax.tree.map(lambda g: -learning_rate * g, grads), state

    return optax.GradientTransformation(init, update)


def meta_sgd(init_learning_rate: float | jax.Array) -> optax.GradientTransformation:
    """Meta-SGD:  θ' = θ − α ⊙ ∇L  with α a learned pytree shaped like θ (Li et al. 2017).

    ``init`` fills α with ``init_learning_rate``; the caller meta-learns the state.
    """
    check_range("inner_lr", init_learning_rate, lo=0)

    def init(params):
        return MetaSGDState(lr=jax.tree.map(lambda p: jnp.full_like(p, init_learning_rate),
                                            params))

    def update(grads, state, params=None):
        del params
        return jax.tree.map(lambda a, g: -a * g, state.lr, grads), state

    return optax.GradientTransformation(init, update)


def rate_metrics(opt_state: Any) -> dict[str, jax.Array]:
    """``{"inner_lr_mean": mean α}`` for Meta-SGD's learned rates, ``{}`` for a fixed rate."""
    if isinstance(opt_state, MetaSGDState):
        return {"inner_lr_mean": jnp.mean(jax.flatten_util.ravel_pytree(opt_state.lr)[0])}
    return {}


OPTIMIZERS: dict[str, Callable[[Any], optax.GradientTransformation]] = {
    "sgd": sgd, "meta_sgd": meta_sgd}


def optimizer(name: str, learning_rate) -> optax.GradientTransformation:
    """The inner optimizer ``name`` (``sgd`` | ``meta_sgd``) with (initial) rate
    ``learning_rate``."""
    check_choice("inner_optimizer", name, OPTIMIZERS)
    return OPTIMIZERS[name](learning_rate)


def inner_step(loss_fn: Callable[[Params], jax.Array], opt: optax.GradientTransformation,
               fast: Params, opt_state: Any, first_order: bool = False) -> Params:
    """One fast-update  fast ← fast + U(∇ loss_fn(fast))  with the inner optimizer ``opt``.

    With ``first_order`` the inner gradient is a constant for outer derivatives (no second
    derivatives), but a learned inner state (Meta-SGD's α) still receives meta-gradients.
    """
    g = jax.grad(loss_fn)(fast)
    if first_order:
        g = jax.lax.stop_gradient(g)
    updates, _ = opt.update(g, opt_state, fast)
    return optax.apply_updates(fast, updates)
