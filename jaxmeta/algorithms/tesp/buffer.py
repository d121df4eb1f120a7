"""TESP's episode buffer: the best M episodes of one task so far, as fixed-size arrays
(TESP Eq. 3-4), so that it vmaps over tasks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxmeta.rollout import Trajectory, episode_returns

Array = jax.Array


@struct.dataclass
class EpisodeBuffer:
    """The best episodes of one task so far, in fixed-size arrays (leading axis: slots).

    Attributes:
      traj: the stored episodes, a :class:`Trajectory` with ``[C, T, ...]`` leaves.
      ret: their undiscounted returns ``[C]`` (−inf in empty slots).
      valid: 1 for filled slots ``[C]``.
    """

    traj: Trajectory
    ret: Array
    valid: Array

    def env_steps(self) -> int:
        """0: a buffer holds copies of episodes, counted where they were sampled."""
        return 0


def buffer_init(capacity: int, like: Trajectory) -> EpisodeBuffer:
    """An empty buffer with ``capacity`` slots for episodes shaped like ``like[0]``."""
    traj = jax.tree.map(lambda x: jnp.zeros((capacity,) + x.shape[1:], x.dtype), like)
    return EpisodeBuffer(traj=traj, ret=jnp.full((capacity,), -jnp.inf),
                         valid=jnp.zeros((capacity,)))


def buffer_insert(buf: EpisodeBuffer, new: Trajectory) -> EpisodeBuffer:
    """S_C(B ∪ new): keeps the ``C`` best episodes by return (Eq. 3–4), C = capacity.

    Ties are broken towards the older episode (lower index after concatenation).
    """
    cap = buf.ret.shape[0]
    ret = jnp.concatenate([buf.ret, episode_returns(new)])
    valid = jnp.concatenate([buf.valid, jnp.ones(new.reward.shape[:1])])
    traj = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), buf.traj, new)
    _, idx = jax.lax.top_k(jnp.where(valid > 0, ret, -jnp.inf), cap)
    return EpisodeBuffer(traj=jax.tree.map(lambda x: x[idx], traj), ret=ret[idx],
                         valid=valid[idx])
