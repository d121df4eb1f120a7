"""EPG's learned loss L_φ and the inner agent's memory unit.

Per step t of an episode the loss sees the features

    x_t = [s_t, a_t, r_t, d_t, m, μ_θ(s_t), log σ_θ(s_t), log π_θ(a_t|s_t)]

(observation, action, reward, done flag, the memory vector, and the policy's Gaussian at s_t
with the log-probability of the action taken), zeroed on the masked steps after an
episode's end. The last three depend on θ and m on the memory's parameters: the gradient
of L_φ trains both.

``kind="conv"`` (the paper's architecture): 1-D temporal convolutions over the episode's
``[T, features]`` sequence, each padded on one side so that the output at step t sees only
a window of R steps (R = 1 + Σ (kernel_size − 1)·dilation): t..t+R−1 with
``direction="future"`` (a return-to-go is a function of what follows a step), t−R+1..t
with ``"past"`` (causal). A dense layer projects the last one to the *per-step* context
c_t [context_size]; its masked mean over the episode is the *per-episode* context c̄
(the paper's f_context). An MLP on [x_t, c_t, c̄] gives L_t. ``kind="linear"``:
L_t = w·x_t + b. The loss is the masked mean of L_t over all steps of the batch.

The memory unit is m = tanh(W·1 + b): a one-layer net with the constant input 1, whose
(W, b) belong to the inner agent and are trained with θ; their initial values are part of
φ (evolved with the loss).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmeta.algorithms.epg.config import LossNetConfig
from jaxmeta.nets import activation
from jaxmeta.rollout import Trajectory

Array = jax.Array
Params = Any


def feature_size(obs_size: int, action_size: int, memory_size: int) -> int:
    """Length of the per-step features x_t."""
    return obs_size + 3 * action_size + 3 + memory_size


def step_features(traj: Trajectory, mean: Array, log_std: Array, logp: Array,
                  memory: Array) -> Array:
    """x_t ``[..., T, F]`` of episodes ``traj`` ``[..., T]`` under the policy's (μ, log σ)
    and log π(a|s) on them, and the memory vector ``memory`` ``[M]``; 0 where masked."""
    mem = jnp.broadcast_to(memory, traj.reward.shape + memory.shape)
    x = jnp.concatenate([traj.obs, traj.action, traj.reward[..., None], traj.done[..., None],
                         mem, mean, log_std, logp[..., None]], axis=-1)
    return x * traj.mask[..., None]


def receptive_field(cfg: LossNetConfig) -> int:
    """How many steps the convolutions' output at one step sees."""
    return 1 + sum((cfg.kernel_size - 1) * d for d in cfg.dilations)


class LossNet(nn.Module):
    """Per-step losses L_t ``[E, T]`` from features ``[E, T, F]`` and the mask ``[E, T]``
    (see the module docstring)."""

    cfg: LossNetConfig

    @nn.compact
    def __call__(self, x: Array, mask: Array) -> Array:
        cfg = self.cfg
        if cfg.kind == "linear":
            return nn.Dense(1, name="linear")(x)[..., 0]
        act = activation(cfg.activation)
        future = cfg.direction == "future"
        h = jnp.flip(x, axis=-2) if future else x  # "future" = causal in reversed time
        for i, (ch, d) in enumerate(zip(cfg.conv_channels, cfg.dilations, strict=True)):
            pad = (cfg.kernel_size - 1) * d
            h = act(nn.Conv(ch, (cfg.kernel_size,), kernel_dilation=(d,),
                            padding=[(pad, 0)], name=f"conv_{i}")(h))
        h = jnp.flip(h, axis=-2) if future else h
        ctx = nn.Dense(cfg.context_size, name="context")(h)
        w = mask[..., None]
        pooled = (ctx * w).sum(-2, keepdims=True) / jnp.maximum(w.sum(-2, keepdims=True), 1.0)
        z = jnp.concatenate([x, ctx, jnp.broadcast_to(pooled, ctx.shape)], axis=-1)
        for i, size in enumerate(cfg.hidden_sizes):
            z = act(nn.Dense(size, name=f"hidden_{i}")(z))
        return nn.Dense(1, name="out")(z)[..., 0]


class MemoryUnit(nn.Module):
    """m = tanh(W·1 + b) ``[size]``."""

    size: int

    @nn.compact
    def __call__(self) -> Array:
        return jnp.tanh(nn.Dense(self.size, name="dense")(jnp.ones((1,))))


class LearnedLoss(NamedTuple):
    """L_φ and the memory unit as pure functions.

    Attributes:
      init: ``key -> φ = {"net": loss-net params, "memory": initial memory params}``.
      memory: ``memory params -> m [M]``.
      features: :func:`step_features`.
      per_step: ``(φ["net"], x [E, T, F], mask [E, T]) -> L_t [E, T]``.
      feature_size: F.
    """

    init: Callable[[Array], Params]
    memory: Callable[[Params], Array]
    features: Callable[..., Array]
    per_step: Callable[[Params, Array, Array], Array]
    feature_size: int

    def loss(self, net: Params, x: Array, mask: Array) -> Array:
        """L_φ: the masked mean of L_t over the batch."""
        per = self.per_step(net, x, mask)
        return (per * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def learned_loss(cfg: LossNetConfig, obs_size: int, action_size: int, horizon: int
                 ) -> LearnedLoss:
    """Builds L_φ for a family's sizes (initialisers are lecun-normal/zeros, no QR)."""
    size = feature_size(obs_size, action_size, cfg.memory_size)
    net = LossNet(cfg)
    mem = MemoryUnit(cfg.memory_size)
    dummy_x = np.zeros((1, horizon, size), np.float32)  # only shapes matter
    dummy_m = np.ones((1, horizon), np.float32)

    def init(key):
        k_net, k_mem = jax.random.split(key)
        return {"net": net.init(k_net, dummy_x, dummy_m)["params"],
                "memory": mem.init(k_mem)["params"]}

    return LearnedLoss(
        init=init,
        memory=lambda p: mem.apply({"params": p}),
        features=step_features,
        per_step=lambda p, x, m: net.apply({"params": p}, x, m),
        feature_size=size)
