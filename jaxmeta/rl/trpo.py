"""TRPO: conjugate gradient and one trust-region step (Schulman et al. 2015)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

Array = jax.Array
Params = Any


def conjugate_gradient(avp: Callable[[Array], Array], b: Array, iters: int = 10,
                       residual_tol: float = 1e-10) -> Array:
    """Solves A x = b for symmetric positive-definite A given only x ↦ A x.

    Runs exactly ``iters`` iterations (a ``lax.scan``); once the residual norm² drops
    below ``residual_tol`` the iterate stops changing.
    """
    def body(carry, _):
        x, r, p, rr = carry
        active = rr > residual_tol
        ap = avp(p)
        alpha = rr / jnp.maximum(p @ ap, 1e-30)
        x_new, r_new = x + alpha * p, r - alpha * ap
        rr_new = r_new @ r_new
        p_new = r_new + (rr_new / jnp.maximum(rr, 1e-30)) * p
        keep = lambda new, old: jnp.where(active, new, old)
        return (keep(x_new, x), keep(r_new, r), keep(p_new, p), keep(rr_new, rr)), None

    x0 = jnp.zeros_like(b)
    (x, _, _, _), _ = jax.lax.scan(body, (x0, b, b, b @ b), None, length=iters)
    return x


class TRPOInfo(NamedTuple):
    """Diagnostics of one TRPO step."""

    loss_before: Array
    loss_after: Array
    kl: Array
    step_fraction: Array  # 0 when no candidate satisfied the constraints
    grad_norm: Array


def trpo_step(params: Params, loss_fn: Callable[[Params], Array],
              kl_fn: Callable[[Params], Array], max_kl: float = 0.01, damping: float = 1e-5,
              cg_iters: int = 10, backtrack_ratio: float = 0.8, max_backtracks: int = 15,
              require_improvement: bool = True,
              dist_fn: Callable[[Params], Any] | None = None,
              kl_of_dist: Callable[[Any], Array] | None = None) -> tuple[Params, TRPOInfo]:
    """One TRPO update: natural-gradient direction by CG, then a backtracking line search.

    Direction s solves (F + damping·I) s = −∇L with F the Hessian of ``kl_fn`` at
    ``params``. The full step β s with β = sqrt(2 δ / sᵀF s) is shrunk by
    ``backtrack_ratio`` until the loss decreases and KL ≤ δ (``max_kl``); if no candidate
    qualifies the parameters are unchanged.

    Fisher-vector products: by default forward-over-reverse AD of ``kl_fn``, linearised
    once per step. If ``kl_fn = kl_of_dist ∘ dist_fn`` is given in two parts (parameters
    → action-distribution parameters → KL against the old ones), the exact Gauss–Newton
    form F v = Jᵀ H J v is used instead (J: Jacobian of ``dist_fn``, H: Hessian of
    ``kl_of_dist`` at the old distribution, where the KL gradient vanishes). It needs one
    JVP and one VJP of ``dist_fn`` per product: for MAML that avoids differentiating the
    (already second-order) adaptation twice more.

    Args:
      params: current parameters (any pytree).
      loss_fn: surrogate loss to *minimise*.
      kl_fn: mean KL(π_old ‖ π_params), zero with zero gradient at ``params``.
      require_improvement: accept a candidate only if ``loss_fn`` decreases. Set it to
        False when part of the gradient has no value on the sampled data (e.g. a
        score-function term with value zero); then only the KL constraint is checked.
      dist_fn, kl_of_dist: optional factorisation of ``kl_fn`` (see above).
    """
    flat, unravel = ravel_pytree(params)
    f_loss = lambda x: loss_fn(unravel(x))
    f_kl = lambda x: kl_fn(unravel(x))
    loss0, g = jax.value_and_grad(f_loss)(flat)
    if dist_fn is not None and kl_of_dist is not None:
        dist0, jvp_dist = jax.linearize(lambda x: dist_fn(unravel(x)), flat)
        vjp_dist = jax.linear_transpose(jvp_dist, flat)
        grad_kl_out = jax.grad(kl_of_dist)

        def fvp(v):
            u = jvp_dist(v)
            hu = jax.jvp(grad_kl_out, (dist0,), (u,))[1]
            return vjp_dist(hu)[0] + damping * v
    else:
        # linearise ∇KL once; every CG iteration then reuses its residuals
        _, hvp_kl = jax.linearize(jax.grad(f_kl), flat)

        def fvp(v):
            return hvp_kl(v) + damping * v

    step_dir = conjugate_gradient(fvp, -g, cg_iters)
    shs = 0.5 * step_dir @ fvp(step_dir)
    full_step = step_dir * jnp.sqrt(max_kl / jnp.maximum(shs, 1e-12))

    def cond(carry):
        i, accepted, _, _, _ = carry
        return jnp.logical_and(i < max_backtracks, jnp.logical_not(accepted))

    def body(carry):
        i, _, _, _, _ = carry
        frac = backtrack_ratio**i
        cand = flat + frac * full_step
        new_loss, kl = f_loss(cand), f_kl(cand)
        improved = (new_loss < loss0) if require_improvement else True
        ok = improved & (kl <= max_kl) & jnp.isfinite(new_loss)
        return i + 1, ok, frac, new_loss, kl

    init = (jnp.zeros((), jnp.int32), jnp.zeros((), bool), jnp.zeros(()), loss0, jnp.zeros(()))
    _, accepted, frac, new_loss, kl = jax.lax.while_loop(cond, body, init)
    frac = jnp.where(accepted, frac, 0.0)
    new_flat = flat + frac * full_step
    info = TRPOInfo(loss_before=loss0, loss_after=jnp.where(accepted, new_loss, loss0),
                    kl=jnp.where(accepted, kl, 0.0), step_fraction=frac,
                    grad_norm=jnp.linalg.norm(g))
    return unravel(new_flat), info
