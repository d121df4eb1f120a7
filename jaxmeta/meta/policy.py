"""Policies as meta-learners see them: a Gaussian policy plus how it sees the task.

A :class:`PolicySpec` turns parameters and a *context* into an ``obs -> (mean, log_std)``
function. The context is whatever the policy conditions on: nothing for MAML's blind
policy, the task's features for the oracle, an embedding h for TESP and AdaptSV.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxmeta.config import PolicyConfig
from jaxmeta.envs.base import TaskFamily
from jaxmeta.nets import Policy, gaussian_log_prob, gaussian_policy, gaussian_sample
from jaxmeta.rollout import Trajectory

Array = jax.Array
Params = Any
PolicyFn = Callable[[Array], tuple[Array, Array]]


class PolicySpec(NamedTuple):
    """A policy plus how it sees its context.

    Attributes:
      policy: the Gaussian policy (init/apply).
      condition: ``(obs [..., obs_size], context) -> policy input [..., input_size]``.
      input_size: length of the policy input.
    """

    policy: Policy
    condition: Callable[[Array, Any], Array]
    input_size: int

    def fn(self, params: Params, context: Any) -> PolicyFn:
        """The ``obs -> (mean, log_std)`` of parameters ``params`` in ``context``."""
        return lambda obs: self.policy.apply(params, self.condition(obs, context))


def _gaussian(input_size: int, action_size: int, cfg: PolicyConfig) -> Policy:
    return gaussian_policy(input_size, action_size, cfg.hidden_sizes, cfg.activation,
                           cfg.init_std)


def blind_policy(family: TaskFamily, cfg: PolicyConfig) -> PolicySpec:
    """π(a | s): sees only the observation (what MAML-style meta-learners use)."""
    return PolicySpec(_gaussian(family.obs_size, family.action_size, cfg),
                      lambda obs, context: obs, family.obs_size)


def feature_policy(family: TaskFamily, cfg: PolicyConfig, feature_size: int,
                   features: Callable[[Any], Array]) -> PolicySpec:
    """π(a | [s, features(context)]): the observation concatenated with a vector derived
    from the context (``features(context)`` of shape ``[feature_size]``)."""
    size = family.obs_size + feature_size

    def condition(obs, context):
        feat = features(context)
        return jnp.concatenate([obs, jnp.broadcast_to(feat, obs.shape[:-1] + feat.shape)],
                               axis=-1)

    return PolicySpec(_gaussian(size, family.action_size, cfg), condition, size)


def oracle_policy(family: TaskFamily, cfg: PolicyConfig) -> PolicySpec:
    """π(a | [s, task_features(task)]): the oracle, which observes the task."""
    return feature_policy(family, cfg, family.task_feature_size, family.task_features)


def embedded_policy(family: TaskFamily, cfg: PolicyConfig, embedding_size: int) -> PolicySpec:
    """π(a | [s, h]) whose context is an embedding h ``[embedding_size]`` (TESP Eq. 7)."""
    return feature_policy(family, cfg, embedding_size, lambda h: h)


def log_prob(policy_fn: PolicyFn, traj: Trajectory) -> Array:
    """log π(a_t | s_t) of every stored step under ``policy_fn``."""
    mean, log_std = policy_fn(traj.obs)
    return gaussian_log_prob(mean, log_std, traj.action)


def act(policy_fn: PolicyFn, obs: Array, key: Array) -> Array:
    """One action sampled from ``policy_fn(obs)``."""
    mean, log_std = policy_fn(obs)
    return gaussian_sample(key, mean, log_std)
