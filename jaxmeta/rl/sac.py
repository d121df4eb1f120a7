"""Soft actor-critic maths (Haarnoja et al. 2018, the twin-Q version with a learned
temperature): the tanh-squashed Gaussian policy, the soft Bellman target, the critic,
actor and temperature losses, and Polyak averaging of the target critic.

Written for a batch of transitions on axis 0 (``[B]``); the twin critics are a leading
axis of 2 on their outputs (``[2, B]``). ``mask`` weights each transition (0 for padded
steps after an episode ended): every mean is :func:`~jaxmeta.rl.losses.masked_mean`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxmeta.rl.losses import masked_mean

Array = jax.Array

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # the usual clamp of the policy's log σ


def squash_log_std(raw: Array) -> Array:
    """The network's raw log σ clamped to [LOG_STD_MIN, LOG_STD_MAX]."""
    return jnp.clip(raw, LOG_STD_MIN, LOG_STD_MAX)


def tanh_gaussian_sample(key: Array, mean: Array, log_std: Array) -> tuple[Array, Array]:
    """a = tanh(u), u ~ N(mean, σ²) (reparameterised), and log π(a) with the change of
    variables: Σ_i [log N(u_i) − log(1 − tanh(u_i)²)], the last term computed stably as
    2(log 2 − u − softplus(−2u))."""
    eps = jax.random.normal(key, mean.shape)
    u = mean + jnp.exp(log_std) * eps
    logp_u = jnp.sum(-0.5 * eps**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)
    correction = jnp.sum(2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)
    return jnp.tanh(u), logp_u - correction


def soft_target(reward: Array, terminal: Array, next_q: Array, next_logp: Array,
                alpha: Array, gamma: Array, reward_scale: Array = 1.0) -> Array:
    """y = s·r + γ(1 − d)(min_i Q'_i(s', a') − α log π(a'|s')), a' ~ π(·|s'), with no
    gradient (``next_q`` is ``[2, B]``, the target critics; ``d`` marks true terminals,
    not time limits)."""
    soft_v = jnp.min(next_q, axis=0) - alpha * next_logp
    return jax.lax.stop_gradient(reward_scale * reward + gamma * (1.0 - terminal) * soft_v)


def critic_loss(q: Array, target: Array, mask: Array) -> Array:
    """Σ_i mean ½(Q_i(s, a) − y)² over the twin critics (``q`` is ``[2, B]``)."""
    return jnp.sum(jax.vmap(lambda qi: masked_mean(0.5 * (qi - target) ** 2, mask))(q))


def actor_loss(logp: Array, q: Array, alpha: Array, mask: Array) -> Array:
    """mean(α log π(ã|s) − min_i Q_i(s, ã)), ã ~ π(·|s) reparameterised; the critics
    (``q``, ``[2, B]``) are held fixed by the caller and α carries no gradient."""
    return masked_mean(jax.lax.stop_gradient(alpha) * logp - jnp.min(q, axis=0), mask)


def temperature_loss(log_alpha: Array, logp: Array, target_entropy: float,
                     mask: Array) -> Array:
    """−log α · mean(log π(ã|s) + H̄): raises α while the entropy is below H̄ and lowers it
    above (the policy's log-probabilities carry no gradient)."""
    return -log_alpha * masked_mean(jax.lax.stop_gradient(logp + target_entropy), mask)


def polyak(target: Any, online: Any, tau: Array) -> Any:
    """θ' ← (1 − τ)θ' + τθ, leaf by leaf (``optax.incremental_update``, in SAC's order of
    arguments)."""
    return optax.incremental_update(online, target, tau)
