"""A ring buffer of whole trials as fixed-size device arrays (VATE's VAE buffer).

Pure functions ``init / add / sample`` on a pytree, so collecting, storing and training
stay one XLA program and the buffer vmaps over seeds like everything else.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxmeta.config import check_positive
from jaxmeta.meta.trial import Trial

Array = jax.Array


@struct.dataclass
class TrialBuffer:
    """The last ``capacity`` trial streams ``[capacity, N, ...]``.

    Attributes:
      data: the stored :class:`Trial` streams (``Trial.flat()``), slot-major.
      write: the slot the next trial goes to, int32 ``()``.
      size: how many slots hold a trial, int32 ``()`` (at most ``capacity``).
    """

    data: Trial
    write: Array
    size: Array

    @property
    def capacity(self) -> int:
        """How many trials the buffer holds (its leading axis; static)."""
        return self.data.traj.reward.shape[0]


def init(example: Trial, capacity: int) -> TrialBuffer:
    """An empty buffer for ``capacity`` trials shaped like ``example`` (one stream ``[N]``;
    only its shapes and dtypes are used: arrays or ``jax.eval_shape``'s structs)."""
    check_positive("capacity", capacity)
    data = jax.tree.map(lambda x: jnp.zeros((capacity,) + x.shape, x.dtype), example)
    return TrialBuffer(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def add(buf: TrialBuffer, batch: Trial) -> TrialBuffer:
    """Writes a batch of trial streams ``[B, N]`` (B ≤ capacity) over the oldest slots."""
    b, cap = batch.traj.reward.shape[0], buf.capacity
    if b > cap:
        raise ValueError(f"a batch of {b} trials does not fit a buffer of capacity {cap}")
    slots = (buf.write + jnp.arange(b)) % cap
    data = jax.tree.map(lambda d, x: d.at[slots].set(x), buf.data, batch)
    return TrialBuffer(data, (buf.write + b) % cap, jnp.minimum(buf.size + b, cap))


def sample(buf: TrialBuffer, key: Array, n: int) -> Trial:
    """``n`` stored trials drawn uniformly (with replacement) from the filled slots.
    Call only after at least one :func:`add`."""
    idx = jax.random.randint(key, (n,), 0, jnp.maximum(buf.size, 1))
    return jax.tree.map(lambda d: d[idx], buf.data)
