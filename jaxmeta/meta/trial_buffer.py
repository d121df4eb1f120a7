"""A ring buffer of whole trials (VATE's VAE buffer): :mod:`jaxmeta.meta.buffer` with
one item per trial stream (``Trial.flat()``, ``[N, ...]``)."""

from __future__ import annotations

from jaxmeta.meta.buffer import RingBuffer, add, init, sample

TrialBuffer = RingBuffer

__all__ = ["TrialBuffer", "add", "init", "sample"]
