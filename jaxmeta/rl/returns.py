"""Return estimators: discounted returns, GAE, the linear feature baseline, normalisation.

Written for one unbatched stream (time on axis 0, as in rlax) and batched by the caller
with ``vmap``. Masks mark valid steps (1 up to and including an episode's last step).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

Array = jax.Array


def discounted_returns(r_t: Array, discount_t: Array, bootstrap: Array | float = 0.0) -> Array:
    """G_t = r_t + γ_t G_{t+1}, G_T = bootstrap (reverse ``lax.scan``).

    Args:
      r_t: rewards, shape ``[T]``.
      discount_t: per-step discounts γ·(1 − done_t), shape ``[T]``.
      bootstrap: value after the last step.
    """
    chex.assert_rank([r_t, discount_t], 1)
    chex.assert_equal_shape([r_t, discount_t])

    def body(g, xs):
        r, d = xs
        g = r + d * g
        return g, g

    _, g = jax.lax.scan(body, jnp.asarray(bootstrap, r_t.dtype), (r_t, discount_t), reverse=True)
    return g


def gae_advantages(r_t: Array, discount_t: Array, v_t: Array, v_tp1: Array, lambda_: float
                   ) -> Array:
    """Generalised advantage estimation (Schulman et al. 2016).

    δ_t = r_t + γ_t V(s_{t+1}) − V(s_t);  A_t = δ_t + γ_t λ A_{t+1};  A_T = 0.

    Args:
      r_t, discount_t, v_t, v_tp1: shape ``[T]``; ``v_tp1[t]`` is V(s_{t+1}).
      lambda_: the GAE λ.
    """
    chex.assert_rank([r_t, discount_t, v_t, v_tp1], 1)
    chex.assert_equal_shape([r_t, discount_t, v_t, v_tp1])
    delta = r_t + discount_t * v_tp1 - v_t

    def body(a, xs):
        d, g = xs
        a = d + g * lambda_ * a
        return a, a

    _, adv = jax.lax.scan(body, jnp.zeros((), r_t.dtype), (delta, discount_t), reverse=True)
    return adv


# --- linear feature baseline (Duan et al. 2016, used by MAML-RL) ---------------------------


def linear_baseline_features(obs: Array, horizon: int) -> Array:
    """φ(s, t) = [s, s², t/H, (t/H)², (t/H)³, 1] for every step of ``obs`` ``[..., T, d]``."""
    t = jnp.arange(obs.shape[-2], dtype=obs.dtype) / horizon
    t = jnp.broadcast_to(t[:, None], obs.shape[:-1] + (1,))
    ones = jnp.ones_like(t)
    return jnp.concatenate([obs, obs**2, t, t**2, t**3, ones], axis=-1)


def fit_linear_baseline(obs: Array, returns: Array, mask: Array, horizon: int,
                        reg: float = 1e-5) -> Array:
    """Least-squares fit of returns on φ(s, t) over a batch of episodes; returns V̂ ``[E, T]``.

    Solves the ridge system (ΦᵀΦ + reg·(tr(ΦᵀΦ)/d + 1)·I) w = ΦᵀG, a fixed scale-aware
    regulariser in place of rllab's "grow ×10 until finite" loop; masked steps are
    ignored. The fit is a constant for gradients (``stop_gradient``).
    """
    phi = linear_baseline_features(obs, horizon) * mask[..., None]
    flat_phi = phi.reshape(-1, phi.shape[-1])
    flat_g = (returns * mask).reshape(-1)
    a = flat_phi.T @ flat_phi
    a = a + reg * (jnp.trace(a) / a.shape[0] + 1.0) * jnp.eye(a.shape[0], dtype=a.dtype)
    w = jnp.linalg.solve(a, flat_phi.T @ flat_g)
    return jax.lax.stop_gradient(phi @ w)


def normalize(x: Array, mask: Array, eps: float = 1e-8) -> Array:
    """(x − mean) / (std + eps) over the valid entries."""
    n = jnp.maximum(mask.sum(), 1.0)
    mean = (x * mask).sum() / n
    var = (((x - mean) * mask) ** 2).sum() / n
    return (x - mean) / (jnp.sqrt(var) + eps) * mask
