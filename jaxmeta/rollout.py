"""Sampling: a ``lax.scan`` over time for one episode, ``vmap`` over episodes.

Batching over tasks is the caller's ``vmap`` (algorithms vmap :func:`rollout` over the
task axis).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxmeta.envs.base import TaskFamily
from jaxmeta.nets import gaussian_log_prob, gaussian_sample

Array = jax.Array
PolicyFn = Callable[[Array], tuple[Array, Array]]  # obs -> (mean, log_std)


class Trajectory(NamedTuple):
    """Time-major transitions of one episode (``[T, ...]``; ``[E, T, ...]`` for E episodes).

    Attributes:
      obs: observation s_t the action was chosen from, ``[T, obs_size]``.
      action: sampled (unclipped) action a_t, ``[T, action_size]``.
      reward: r_t, ``[T]``.
      done: 1 on the step that ended the episode, ``[T]``.
      mask: 1 for valid steps (up to and including the last one), ``[T]``.
      logp: log π_behaviour(a_t | s_t) at sampling time, ``[T]``.
    """

    obs: Array
    action: Array
    reward: Array
    done: Array
    mask: Array
    logp: Array

    def env_steps(self) -> int:
        """Simulated env steps held here: every step of every episode, masked steps after
        termination included (they are simulated too; shapes are static)."""
        return math.prod(self.reward.shape)


def count_env_steps(tree: Any) -> int:
    """Env steps simulated to produce a pytree of sampled data: the sum of ``env_steps()``
    over the objects in it that define one (:class:`Trajectory`, and batch types that hold
    copies, such as TESP's episode buffers, which count 0). Works on abstract values
    (``jax.eval_shape``) too. A batch type defines ``env_steps()`` as
    ``count_env_steps(tuple(self))``, i.e. over its fields."""
    has = lambda x: hasattr(x, "env_steps")
    return sum(x.env_steps() for x in jax.tree.leaves(tree, is_leaf=has) if has(x))


def episode(family: TaskFamily, policy_fn: PolicyFn, task: Any, key: Array) -> Trajectory:
    """Samples one episode of ``task`` with ``policy_fn`` (no gradient flows through it).

    Steps after termination are still simulated (fixed shapes) but masked out.
    """
    k_reset, k_act = jax.random.split(key)
    state0 = family.reset(k_reset, task)

    def body(carry, k):
        state, alive = carry
        mean, log_std = policy_fn(state.obs)
        action = gaussian_sample(k, mean, log_std)
        logp = gaussian_log_prob(mean, log_std, action)
        nxt = family.step(state, action, task)
        step = Trajectory(obs=state.obs, action=action, reward=nxt.reward * alive,
                          done=nxt.done * alive, mask=alive, logp=logp)
        return (nxt, alive * (1.0 - nxt.done)), step

    keys = jax.random.split(k_act, family.horizon)
    _, traj = jax.lax.scan(body, (state0, jnp.ones(())), keys)
    return jax.tree.map(jax.lax.stop_gradient, traj)


def rollout(family: TaskFamily, policy_fn: PolicyFn, task: Any, key: Array, num_episodes: int
            ) -> Trajectory:
    """``num_episodes`` independent episodes of one task, stacked on a leading axis."""
    keys = jax.random.split(key, num_episodes)
    return jax.vmap(lambda k: episode(family, policy_fn, task, k))(keys)


def episode_returns(traj: Trajectory) -> Array:
    """Undiscounted return Σ_t r_t of every episode (sum over the time axis)."""
    return jnp.sum(traj.reward * traj.mask, axis=-1)


def splits_action_cost(family: TaskFamily) -> bool:
    """Whether ``family``'s reward is a distance term minus an action cost it exposes
    (``action_cost_term``: the TESP target-reaching families)."""
    return hasattr(family, "action_cost_term")


def distance_returns(family: TaskFamily, traj: Trajectory) -> Array | None:
    """Σ_t of the reward without its action cost (TESP's R, the distance term only) for
    families that split their reward (``action_cost_term``, the TESP target-reaching
    families); ``None`` for the others. Computed from the same episodes as
    :func:`episode_returns`, so it changes nothing that is learned."""
    if not splits_action_cost(family):
        return None
    return jnp.sum((traj.reward + family.action_cost_term(traj.action)) * traj.mask, axis=-1)
