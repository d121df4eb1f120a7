"""Outer steps (meta-updates) as values: ``ppo(optimizer, epochs, clip)`` and
``trpo(max_kl, cg_iters, ...)``.

An :class:`OuterStep` brings the surrogate it optimises (PPO's clipped ratio, TRPO's
importance-sampled ratio) and the step that minimises an :class:`Objective` built from
that surrogate. A learner takes one as a value; nothing branches on its name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax

from jaxmeta import rl
from jaxmeta.config import PPOConfig, TRPOConfig, check_choice

Array = jax.Array
Params = Any
Metrics = dict[str, Array]

NAMES = ("trpo", "ppo")


class Objective(NamedTuple):
    """What an outer step minimises, as functions of the meta-parameters.

    Attributes:
      loss: ``params -> scalar`` surrogate loss.
      kl: ``params -> mean KL(π_old ‖ π_params)`` on the sampled data (TRPO's constraint,
        PPO's ``kl`` metric), or ``None``.
      dist, kl_of_dist: optionally ``kl = kl_of_dist ∘ dist`` in two parts (parameters →
        action-distribution parameters → KL), for TRPO's exact Gauss–Newton
        Fisher-vector products (:func:`jaxmeta.rl.trpo_step`).
      exact: the loss's *value* estimates the objective. ``False`` for DiCE, whose score
        term has value 0: TRPO's line search then checks only the KL constraint.
    """

    loss: Callable[[Params], Array]
    kl: Callable[[Params], Array] | None = None
    dist: Callable[[Params], Any] | None = None
    kl_of_dist: Callable[[Any], Array] | None = None
    exact: bool = True


class OuterStep(NamedTuple):
    """A meta-update rule.

    Attributes:
      name: ``ppo`` or ``trpo``.
      init: ``params -> optimizer state`` (``()`` for TRPO).
      surrogate: ``(logp, logp_old, adv, mask) -> loss`` over one stream of steps.
      step: ``(params, opt_state, objective) -> (params, opt_state, metrics)``; metrics
        hold ``loss`` (before the step), ``grad_norm``, and ``kl`` when the objective has
        one (TRPO adds ``step_fraction``).
    """

    name: str
    init: Callable[[Params], Any]
    surrogate: Callable[[Array, Array, Array, Array], Array]
    step: Callable[[Params, Any, Objective], tuple[Params, Any, Metrics]]


def ppo_epochs(loss_fn: Callable[[Params], Any], opt: optax.GradientTransformation,
               params: Params, opt_state: Any, num_epochs: int, has_aux: bool = False):
    """``num_epochs`` full-batch gradient steps of ``opt`` on ``loss_fn`` (``lax.scan``).
    With ``has_aux``, ``loss_fn`` returns ``(loss, aux)`` and each epoch's aux is kept.

    Returns:
      ((params, opt_state), (loss per epoch, gradient norm per epoch[, aux per epoch]));
      the losses (and aux) are evaluated before each epoch's step.
    """

    def epoch(carry, _):
        p, o = carry
        out, g = jax.value_and_grad(loss_fn, has_aux=has_aux)(p)
        updates, o = opt.update(g, o, p)
        per_epoch = (out[0], optax.tree.norm(g), out[1]) if has_aux else (out,
                                                                           optax.tree.norm(g))
        return (optax.apply_updates(p, updates), o), per_epoch

    return jax.lax.scan(epoch, (params, opt_state), None, length=num_epochs)


def ppo(optimizer: optax.GradientTransformation, epochs: int, clip: float | Array
        ) -> OuterStep:
    """PPO (Schulman et al. 2017) as an outer step: ``epochs`` full-batch steps of
    ``optimizer`` on the clipped surrogate; later epochs reuse the first epoch's data."""

    def surrogate(logp, logp_old, adv, mask):
        return rl.ppo_clip_loss(logp, logp_old, adv, mask, clip)

    def step(params, opt_state, objective: Objective):
        (params, opt_state), (losses, gnorms) = ppo_epochs(objective.loss, optimizer, params,
                                                           opt_state, epochs)
        metrics = {"loss": losses[0], "grad_norm": gnorms[0]}
        if objective.kl is not None:
            metrics["kl"] = objective.kl(params)
        return params, opt_state, metrics

    return OuterStep("ppo", optimizer.init, surrogate, step)


def trpo(max_kl: float | Array, cg_iters: int = 10, cg_damping: float = 1e-5,
         backtrack_ratio: float = 0.8, max_backtracks: int = 15) -> OuterStep:
    """TRPO (Schulman et al. 2015) as an outer step: natural-gradient direction by CG,
    backtracking line search under KL ≤ ``max_kl`` (:func:`jaxmeta.rl.trpo_step`)."""

    def step(params, opt_state, objective: Objective):
        new, info = rl.trpo_step(
            params, objective.loss, objective.kl, max_kl, cg_damping, cg_iters,
            backtrack_ratio, max_backtracks, require_improvement=objective.exact,
            dist_fn=objective.dist, kl_of_dist=objective.kl_of_dist)
        return new, opt_state, {"loss": info.loss_before, "kl": info.kl,
                                "step_fraction": info.step_fraction,
                                "grad_norm": info.grad_norm}

    return OuterStep("trpo", lambda params: (), rl.surrogate_loss, step)


def from_config(name: str, ppo_cfg: PPOConfig, trpo_cfg: TRPOConfig) -> OuterStep:
    """The outer step ``name`` (``ppo`` with Adam, or ``trpo``) from (bound) sections."""
    check_choice("outer", name, NAMES)
    if name == "ppo":
        return ppo(optax.adam(ppo_cfg.lr), ppo_cfg.epochs, ppo_cfg.clip)
    return trpo(trpo_cfg.max_kl, trpo_cfg.cg_iters, trpo_cfg.cg_damping,
                trpo_cfg.ls_backtrack_ratio, trpo_cfg.ls_max_backtracks)
