"""Timing: compile apart, one warm-up call, then the median and spread of timed calls."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax

from jaxmeta.runs import initial_states
from jaxmeta.trainer import compiled_chunk


def compile_timed(fn: Callable, *args) -> tuple[Any, float]:
    """``jit(fn).lower(*args).compile()`` and its wall time in seconds."""
    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t


def trainer_program(learner, seeds: int, iterations: int) -> tuple[Any, Any, float]:
    """The trainer's own program (``train.compiled_chunk``) for ``seeds`` vmapped seeds and
    ``iterations`` meta-iterations per call, compiled.

    Returns:
      (compiled program ``states -> (states, metrics)``, initial states of seeds
      0..seeds-1, compile time in seconds).
    """
    states = initial_states(learner, 0, seeds)
    t = time.perf_counter()
    compiled = compiled_chunk(learner.update).lower(states, iterations).compile()
    return compiled, states, time.perf_counter() - t


def time_calls(fn: Callable, args: tuple, repeats: int) -> dict:
    """One warm-up call, then ``repeats`` timed calls (blocking on the result)."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "repeats": repeats}


def peak_memory() -> dict:
    """Peak device memory (accelerators that report it) and the process's peak RSS."""
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        out["peak_device_mb"] = stats["peak_bytes_in_use"] / 2**20
    return out


def memory_estimate(compiled) -> dict:
    """XLA's static buffer sizes of a compiled program, in MiB."""
    mem = compiled.memory_analysis()
    if mem is None:
        return {}
    return {f"xla_{k}_mb": getattr(mem, f"{k}_size_in_bytes") / 2**20
            for k in ("temp", "argument", "output") if hasattr(mem, f"{k}_size_in_bytes")}
