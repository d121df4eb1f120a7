"""Networks (flax.linen). Parameters are plain pytrees; apply functions are pure.

The policy is a diagonal Gaussian: an MLP gives the mean, a state-independent learned
``log_std`` vector gives the scale (as in MAML's and TRPO's reference code).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
Params = Any

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": nn.relu,
    "tanh": jnp.tanh,
}


def activation(name: str) -> Callable[[Array], Array]:
    """Looks up an activation by name; unknown names list the choices."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation={name!r} is unknown; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class MLP(nn.Module):
    """Fully-connected network: hidden layers with ``act``, then a linear output."""

    hidden: Sequence[int]
    out: int
    act: str = "relu"
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x: Array) -> Array:
        f = activation(self.act)
        for h in self.hidden:
            x = f(nn.Dense(h, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x))
        return nn.Dense(self.out, kernel_init=nn.initializers.orthogonal(self.out_scale))(x)


class GaussianPolicyNet(nn.Module):
    """π(a|s) = N(μ_θ(s), diag(exp(log_std)²)) with a learned state-independent log_std."""

    hidden: Sequence[int]
    action_size: int
    act: str = "relu"
    init_log_std: float = 0.0

    @nn.compact
    def __call__(self, obs: Array) -> tuple[Array, Array]:
        mean = MLP(self.hidden, self.action_size, self.act, out_scale=0.01)(obs)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.init_log_std), (self.action_size,)
        )
        return mean, jnp.broadcast_to(log_std, mean.shape)


class Policy(NamedTuple):
    """A Gaussian policy as two pure functions.

    Attributes:
      init: ``key -> params``.
      apply: ``(params, obs) -> (mean, log_std)``; obs may carry leading batch axes.
    """

    init: Callable[[Array], Params]
    apply: Callable[[Params, Array], tuple[Array, Array]]


def gaussian_policy(obs_size: int, action_size: int, hidden: Sequence[int] = (100, 100),
                    act: str = "relu", init_std: float = 1.0) -> Policy:
    """Builds a Gaussian MLP policy.

    Args:
      obs_size: observation length (policy input).
      action_size: action dimension.
      hidden: hidden layer widths.
      act: activation name (``relu`` or ``tanh``).
      init_std: initial standard deviation of every action dimension.
    """
    activation(act)
    if not init_std > 0:
        raise ValueError(f"init_std must be > 0, got {init_std!r}")
    net = GaussianPolicyNet(tuple(hidden), action_size, act, float(np.log(init_std)))
    dummy = np.zeros((obs_size,), np.float32)  # only its shape matters; nothing compiles
    return Policy(init=lambda key: net.init(key, dummy)["params"],
                  apply=lambda params, obs: net.apply({"params": params}, obs))


class Value(NamedTuple):
    """A state-value network ``apply(params, obs) -> v`` (scalar per observation)."""

    init: Callable[[Array], Params]
    apply: Callable[[Params, Array], Array]


def value_network(obs_size: int, hidden: Sequence[int] = (64, 64), act: str = "tanh") -> Value:
    """Builds an MLP state-value function V(s)."""
    net = MLP(tuple(hidden), 1, act)
    dummy = np.zeros((obs_size,), np.float32)  # only its shape matters; nothing compiles
    return Value(init=lambda key: net.init(key, dummy)["params"],
                 apply=lambda params, obs: net.apply({"params": params}, obs)[..., 0])


# --- diagonal Gaussian helpers -------------------------------------------------------------

_LOG_2PI = float(np.log(2 * np.pi))


def gaussian_log_prob(mean: Array, log_std: Array, action: Array) -> Array:
    """log N(a; μ, diag σ²), summed over the last axis."""
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * _LOG_2PI, axis=-1)


def gaussian_sample(key: Array, mean: Array, log_std: Array) -> Array:
    """a = μ + σ ε with ε ~ N(0, I)."""
    return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)


def gaussian_entropy(log_std: Array) -> Array:
    """Entropy of a diagonal Gaussian, summed over the last axis."""
    return jnp.sum(log_std + 0.5 * (_LOG_2PI + 1.0), axis=-1)


def gaussian_kl(mean_p: Array, log_std_p: Array, mean_q: Array, log_std_q: Array) -> Array:
    """KL(p ‖ q) of diagonal Gaussians, summed over the last axis."""
    var_p, var_q = jnp.exp(2 * log_std_p), jnp.exp(2 * log_std_q)
    return jnp.sum(
        log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5, axis=-1
    )


# --- categorical over one-hot actions (discrete families) ----------------------------------


def categorical_log_prob(logits: Array, action: Array) -> Array:
    """log π(a) of a one-hot ``action`` under ``logits`` (last axis)."""
    return jnp.sum(jax.nn.log_softmax(logits) * action, axis=-1)


def categorical_sample(key: Array, logits: Array) -> Array:
    """A one-hot sample from ``logits`` (last axis), float like the logits."""
    idx = jax.random.categorical(key, logits)
    return jax.nn.one_hot(idx, logits.shape[-1], dtype=logits.dtype)


def categorical_entropy(logits: Array) -> Array:
    """Entropy of the categorical of ``logits`` (last axis)."""
    logp = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


class ActionDist(NamedTuple):
    """How a policy's head output becomes actions, for one family.

    ``dist`` is ``(mean, log_std)`` for a diagonal Gaussian and ``(logits,)`` for a
    categorical over one-hot actions (families with ``discrete_actions``).

    Attributes:
      discrete: which of the two.
      sample: ``(key, dist) -> action [action_size]``.
      log_prob: ``(dist, action) -> log π(a)``.
      entropy: ``dist -> H[π]``.
      mode: ``dist -> the most likely action`` (greedy evaluation, pictures).
    """

    discrete: bool
    sample: Callable[[Array, tuple], Array]
    log_prob: Callable[[tuple, Array], Array]
    entropy: Callable[[tuple], Array]
    mode: Callable[[tuple], Array]


GAUSSIAN = ActionDist(
    False, lambda key, d: gaussian_sample(key, *d), lambda d, a: gaussian_log_prob(*d, a),
    lambda d: gaussian_entropy(d[1]), lambda d: d[0])
CATEGORICAL = ActionDist(
    True, lambda key, d: categorical_sample(key, d[0]),
    lambda d, a: categorical_log_prob(d[0], a), lambda d: categorical_entropy(d[0]),
    lambda d: jax.nn.one_hot(jnp.argmax(d[0], -1), d[0].shape[-1], dtype=d[0].dtype))


def action_dist(discrete: bool) -> ActionDist:
    """The categorical (one-hot actions) or diagonal-Gaussian :class:`ActionDist`."""
    return CATEGORICAL if discrete else GAUSSIAN


class PolicyHead(nn.Module):
    """The action distribution's parameters from features: an MLP to logits (categorical)
    or to a mean with a learned state-independent ``log_std`` (Gaussian)."""

    hidden: Sequence[int]
    action_size: int
    discrete: bool
    act: str = "tanh"
    init_log_std: float = 0.0

    @nn.compact
    def __call__(self, x: Array) -> tuple:
        out = MLP(self.hidden, self.action_size, self.act, out_scale=0.01)(x)
        if self.discrete:
            return (out,)
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std),
                             (self.action_size,))
        return out, jnp.broadcast_to(log_std, out.shape)
