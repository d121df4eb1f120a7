"""Policy-gradient objectives (losses to minimise) over one stream of steps."""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def masked_mean(x: Array, mask: Array) -> Array:
    """Mean of ``x`` over valid entries."""
    return (x * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def vpg_loss(logp: Array, adv: Array, mask: Array) -> Array:
    """REINFORCE / VPG loss  L = −mean_t[log π(a_t|s_t) · A_t]  (A_t held constant)."""
    return -masked_mean(logp * jax.lax.stop_gradient(adv), mask)


def ppo_clip_loss(logp: Array, logp_old: Array, adv: Array, mask: Array, clip: float) -> Array:
    """PPO clipped surrogate (Schulman et al. 2017), as a loss:

    L = −mean_t min(ρ_t A_t, clip(ρ_t, 1−ε, 1+ε) A_t),  ρ_t = π(a_t|s_t)/π_old(a_t|s_t).
    """
    ratio = jnp.exp(logp - logp_old)
    adv = jax.lax.stop_gradient(adv)
    obj = jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip, 1 + clip) * adv)
    return -masked_mean(obj, mask)


def surrogate_loss(logp: Array, logp_old: Array, adv: Array, mask: Array) -> Array:
    """TRPO's importance-sampled surrogate  L = −mean_t ρ_t A_t."""
    return -masked_mean(jnp.exp(logp - logp_old) * jax.lax.stop_gradient(adv), mask)
