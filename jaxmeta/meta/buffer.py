"""Fixed-capacity ring buffers as device arrays: replay of transitions (SAC, PEARL) and of
whole trials (VATE's VAE buffer).

A :class:`RingBuffer` is a pytree of arrays ``[capacity, ...]`` with a write index and a
fill count, handled by pure functions ``init / add / sample`` (plus ``sample_windows``
for contiguous context windows and ``clear``), so collecting, storing and training stay
one XLA program. A buffer per task is the same functions under ``jax.vmap`` over a
leading task axis (and over seeds above it); nothing is kept on the Python side.

Sampling draws only from filled slots; call it after at least one :func:`add` (an empty
buffer returns slot 0's zeros).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxmeta.config import check_positive

Array = jax.Array


@struct.dataclass
class RingBuffer:
    """The last ``capacity`` items written, slot-major.

    Attributes:
      data: the stored items, a pytree whose leaves are ``[capacity, ...]``.
      write: the slot the next item goes to, int32 ``()``.
      size: how many slots hold an item, int32 ``()`` (at most ``capacity``).
    """

    data: Any
    write: Array
    size: Array

    @property
    def capacity(self) -> int:
        """How many items the buffer holds (static): the axis after the stacking axes
        (the write index is ``()`` for one buffer, ``[n]`` for a stack of n)."""
        return jax.tree.leaves(self.data)[0].shape[self.write.ndim]


def _rows(tree: Any) -> int:
    return jax.tree.leaves(tree)[0].shape[0]


def check_fits(capacity: int, n: int, what: str) -> None:
    """Refuses a batch of ``n`` items (``what`` names it) for a buffer of ``capacity``."""
    if n > capacity:
        raise ValueError(f"{what}: {n} items do not fit a buffer of capacity {capacity}; "
                         "raise the capacity or lower the batch")


def init(example: Any, capacity: int) -> RingBuffer:
    """An empty buffer for ``capacity`` items shaped like ``example`` (one item; only its
    shapes and dtypes are used: arrays or ``jax.eval_shape``'s structs)."""
    check_positive("capacity", capacity)
    data = jax.tree.map(lambda x: jnp.zeros((capacity,) + tuple(x.shape), x.dtype), example)
    return RingBuffer(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def add(buf: RingBuffer, batch: Any) -> RingBuffer:
    """Writes a batch of items (leaves ``[b, ...]``, b ≤ capacity) over the oldest slots."""
    b, cap = _rows(batch), buf.capacity
    check_fits(cap, b, "add")
    slots = (buf.write + jnp.arange(b)) % cap
    data = jax.tree.map(lambda d, x: d.at[slots].set(x), buf.data, batch)
    return RingBuffer(data, (buf.write + b) % cap, jnp.minimum(buf.size + b, cap))


def clear(buf: RingBuffer) -> RingBuffer:
    """The buffer emptied (the arrays stay; nothing is sampled from them until written)."""
    return buf.replace(write=jnp.zeros_like(buf.write), size=jnp.zeros_like(buf.size))


def sample(buf: RingBuffer, key: Array, n: int) -> Any:
    """``n`` items drawn uniformly, with replacement, from the filled slots."""
    idx = jax.random.randint(key, (n,), 0, jnp.maximum(buf.size, 1))
    return jax.tree.map(lambda d: d[idx], buf.data)


def sample_windows(buf: RingBuffer, key: Array, n: int, length: int) -> Any:
    """``n`` windows of ``length`` consecutively written items (leaves ``[n, length, ...]``),
    each starting uniformly among the starts whose window lies wholly in the filled
    slots, in write order (across the ring's wrap). Needs ``size ≥ length``: with fewer
    items written the windows repeat the oldest ones."""
    check_positive("length", length)
    check_fits(buf.capacity, length, "sample_windows")
    oldest = (buf.write - buf.size) % buf.capacity
    start = jax.random.randint(key, (n,), 0, jnp.maximum(buf.size - length + 1, 1))
    logical = jnp.clip(start[:, None] + jnp.arange(length), 0, jnp.maximum(buf.size - 1, 0))
    idx = (oldest + logical) % buf.capacity
    return jax.tree.map(lambda d: d[idx], buf.data)


def sample_rows(stack: RingBuffer, key: Array, rows: Array, n: int) -> Any:
    """``n`` items from each of the buffers ``rows`` of a stack of buffers (leading axis:
    one buffer per task), uniformly from that buffer's filled slots: leaves
    ``[len(rows), n, ...]``. Gathers the items only (the selected buffers are not copied
    whole, as ``sample`` under ``vmap`` of a sliced stack would)."""
    size = jnp.maximum(stack.size[rows], 1)
    idx = jax.random.randint(key, (rows.shape[0], n), 0, size[:, None])
    return jax.tree.map(lambda d: d[rows[:, None], idx], stack.data)
