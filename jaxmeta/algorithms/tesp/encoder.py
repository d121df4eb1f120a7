"""TESP's task encoder g: a GRU over [s_t, a_t, r_t] of one episode (steps after
termination are skipped), then a dense layer to R^d; h is the mean of g over a buffer
(TESP Eq. 5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmeta.algorithms.tesp.buffer import EpisodeBuffer
from jaxmeta.rollout import Trajectory

Array = jax.Array
Params = Any


class _EncoderNet(nn.Module):
    """g(τ): GRU over [s_t, a_t, r_t] (masked steps keep the state), then a dense layer."""

    gru_size: int
    embedding_size: int

    @nn.compact
    def __call__(self, traj: Trajectory) -> Array:
        x = jnp.concatenate([traj.obs, traj.action, traj.reward[..., None]], axis=-1)
        cell = nn.GRUCell(self.gru_size, name="gru")
        scan = nn.scan(_masked_gru_step, variable_broadcast="params",
                       split_rngs={"params": False})
        carry = jnp.zeros((self.gru_size,), x.dtype)
        final, _ = scan(cell, carry, (x, traj.mask))
        return nn.Dense(self.embedding_size, name="out")(final)


def _masked_gru_step(cell, carry, xs):
    x, m = xs
    new, _ = cell(carry, x)
    carry = m * new + (1.0 - m) * carry
    return carry, None


class Encoder(NamedTuple):
    """The task encoder as pure functions.

    Attributes:
      init: ``key -> params``.
      episode: ``(params, τ [T, ...]) -> g(τ) [d]``.
    """

    init: Callable[[Array], Params]
    episode: Callable[[Params, Trajectory], Array]

    def embed(self, params: Params, buf: EpisodeBuffer) -> Array:
        """h = (1/|B|) Σ_{τ∈B} g(τ) over the filled slots (Eq. 5)."""
        g = jax.vmap(self.episode, in_axes=(None, 0))(params, buf.traj)
        w = buf.valid / jnp.maximum(buf.valid.sum(), 1.0)
        return w @ g


def task_encoder(obs_size: int, action_size: int, horizon: int, gru_size: int,
                 embedding_size: int) -> Encoder:
    """Builds g: GRU(``gru_size``) over (s, a, r), then a dense layer to R^``embedding_size``."""
    net = _EncoderNet(gru_size, embedding_size)
    dummy = Trajectory(obs=jnp.zeros((horizon, obs_size)), action=jnp.zeros((horizon, action_size)),
                       reward=jnp.zeros((horizon,)), done=jnp.zeros((horizon,)),
                       mask=jnp.ones((horizon,)), logp=jnp.zeros((horizon,)))
    return Encoder(init=lambda key: net.init(key, dummy)["params"],
                   episode=lambda params, traj: net.apply({"params": params}, traj))
