"""PEARL's permutation-invariant context encoder: Gaussian factors per transition and
their product (Rakelly et al. 2019, Eq. 4 and §4.1)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmeta.algorithms.pearl.config import PEARLConfig
from jaxmeta.algorithms.sac.learner import ContextEncoder, Transition
from jaxmeta.envs.base import TaskFamily
from jaxmeta.nets import MLP

Array = jax.Array
MIN_VAR = 1e-7  # the factors' variance floor (PEARL clamps σ² the same way)


def product_of_gaussians(mean: Array, var: Array, weight: Array) -> tuple[Array, Array]:
    """∏_n N(μ_n, σ²_n) over the factors with weight 1, normalised: precision Σ w/σ²,
    mean (Σ w μ/σ²)/precision. ``mean``/``var`` are ``[N, L]``, ``weight`` ``[N]``.
    With no factor (Σ w = 0) the result is the prior N(0, I)."""
    w = weight[:, None]
    precision = jnp.sum(w / var, axis=0)
    none = jnp.sum(weight) == 0
    safe = jnp.where(none, 1.0, precision)
    post_var = jnp.where(none, 1.0, 1.0 / safe)
    post_mean = jnp.where(none, 0.0, jnp.sum(w * mean / var, axis=0) / safe)
    return post_mean, post_var


def context_features(t: Transition, layout: str) -> Array:
    """One transition as the encoder's input: [s, a, r] or [s, a, r, s']."""
    parts = [t.obs, t.action, t.reward[..., None]]
    if layout == "sars":
        parts.append(t.next_obs)
    return jnp.concatenate(parts, -1)


def pearl_encoder(family: TaskFamily, cfg: PEARLConfig) -> ContextEncoder:
    """The encoder of ``cfg.encoder`` for ``family``'s transitions."""
    e, latent = cfg.encoder, cfg.encoder.latent_size
    net = MLP(tuple(e.encoder_hidden_sizes), 2 * latent, cfg.sac.activation)
    o, z = np.zeros((family.obs_size,), np.float32), np.zeros((), np.float32)
    example = Transition(o, np.zeros((family.action_size,), np.float32), z, o, z, z, z)

    def posterior(params, context: Transition, weight: Array):
        out = net.apply(params, context_features(context, e.context_layout))
        var = jnp.maximum(jax.nn.softplus(out[..., latent:]), MIN_VAR)
        return product_of_gaussians(out[..., :latent], var, weight)

    return ContextEncoder(
        latent_size=latent,
        context_size=e.context_size,
        init=lambda key: net.init(key, context_features(example, e.context_layout)),
        posterior=posterior,
        kl_weight=lambda c: c.encoder.kl_weight,
        lr=lambda c: c.encoder.encoder_lr)
