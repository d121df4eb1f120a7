"""Scale-out on JAX's own machinery: a ``jax.sharding.Mesh`` over the seed and task axes.

The trainer ``vmap``s ``update`` over members (seeds, times the points of a sweep); every
learner creates its meta-batch of tasks through :func:`jaxmeta.meta.sampling.meta_batch`,
which lays the task axis out with :func:`shard_tasks`. Under a mesh with axes
``("seeds", "tasks")``:

* the vmapped learner state is placed with its leading (seed) axis split over ``seeds``;
* the seed ``vmap`` is named ``spmd_axis_name="seeds"``, so sharding constraints inside
  ``update`` keep that axis split;
* the per-task arrays (tasks, rollout keys, sampled episodes) are constrained to be split
  over ``tasks``; XLA's partitioner (GSPMD/Shardy, ``AxisType.Auto``) propagates that
  layout through the rollouts and inserts the all-reduces of the meta-gradient.

No algorithm code knows about devices. Without a mesh (the default) :func:`shard_tasks` is
the identity and nothing changes. Several hosts: :func:`initialize` wraps
``jax.distributed.initialize``; every process then runs the same program over the global
mesh, only process 0 writes files, and checkpoints are written by orbax from every process.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

SEEDS, TASKS = "seeds", "tasks"


@dataclasses.dataclass(frozen=True)
class MeshSpec:
    """Number of devices along the seed axis and along the task axis."""

    seeds: int = 1
    tasks: int = 1

    @property
    def size(self) -> int:
        """Devices the mesh uses."""
        return self.seeds * self.tasks

    def __str__(self) -> str:
        return f"seeds={self.seeds},tasks={self.tasks}"


def parse_mesh(text: str | None) -> MeshSpec | str | None:
    """``"seeds=4,tasks=2"`` -> :class:`MeshSpec`; ``"auto"`` -> ``"auto"``; ``""``/``None``/
    ``"none"`` -> ``None`` (one device). Raises ``ValueError`` naming the bad part."""
    if text is None or text.strip().lower() in ("", "none"):
        return None
    if text.strip().lower() == "auto":
        return "auto"
    sizes = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in (SEEDS, TASKS):
            raise ValueError(f"--mesh expects 'seeds=S,tasks=T' or 'auto', got {text!r} "
                             f"(axes: {SEEDS}, {TASKS})")
        try:
            sizes[name] = int(value)
        except ValueError:
            raise ValueError(f"--mesh: {name}={value!r} is not an integer") from None
        if sizes[name] < 1:
            raise ValueError(f"--mesh: {name}={sizes[name]} must be >= 1")
    return MeshSpec(**sizes)


def auto_mesh_spec(num_devices: int, seeds: int, meta_batch_size: int | None) -> MeshSpec:
    """The largest mesh over ``num_devices`` that divides the batch: as many devices on
    the seed axis as divide both, then the rest of the devices on the task axis as far as
    they divide ``meta_batch_size``."""
    s = math.gcd(num_devices, seeds)
    rest = num_devices // s
    t = 1
    if meta_batch_size:
        t = max(d for d in range(1, rest + 1) if rest % d == 0 and meta_batch_size % d == 0)
    return MeshSpec(seeds=s, tasks=t)


def check_mesh(spec: MeshSpec, seeds: int, meta_batch_size: int | None,
               num_devices: int) -> None:
    """Refuses a mesh that does not fit the devices or does not divide the batch."""
    if spec.size > num_devices:
        raise ValueError(f"--mesh {spec} needs {spec.size} devices but only {num_devices} "
                         f"are visible ({jax.devices()[0].platform})")
    if seeds % spec.seeds:
        raise ValueError(f"--mesh {spec}: seeds={spec.seeds} does not divide the number of "
                         f"seeds ({seeds}, times the sweep points when sweeping); each device "
                         "must hold the same number of them")
    if spec.tasks > 1:
        if meta_batch_size is None:
            raise ValueError(f"--mesh {spec}: this algorithm has no meta_batch_size to split "
                             "over the task axis; use tasks=1")
        if meta_batch_size % spec.tasks:
            raise ValueError(f"--mesh {spec}: tasks={spec.tasks} does not divide "
                             f"meta_batch_size ({meta_batch_size}); each device must hold the "
                             "same number of tasks")


def resolve_mesh(text: str | MeshSpec | None, seeds: int,
                 meta_batch_size: int | None) -> Mesh | None:
    """The mesh for a run (``None``: no mesh, one device), validated before compiling."""
    spec = parse_mesh(text) if not isinstance(text, MeshSpec) else text
    if spec is None:
        return None
    n = jax.device_count()
    if spec == "auto":
        spec = auto_mesh_spec(n, seeds, meta_batch_size)
    check_mesh(spec, seeds, meta_batch_size, n)
    return make_mesh(spec)


def make_mesh(spec: MeshSpec) -> Mesh:
    """A ``(seeds, tasks)`` mesh over the first ``spec.size`` devices, with automatic
    (compiler-propagated) axes."""
    devices = np.asarray(jax.devices()[:spec.size]).reshape(spec.seeds, spec.tasks)
    return Mesh(devices, (SEEDS, TASKS), axis_types=(jax.sharding.AxisType.Auto,) * 2)


def shard_tasks(tree: Any) -> Any:
    """Constrains the leading (task) axis of every leaf to the mesh's ``tasks`` axis when
    traced under a mesh that has one (``jax.set_mesh``); the identity otherwise."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or TASKS not in mesh.axis_names or mesh.shape[TASKS] == 1:
        return tree
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, P(TASKS)), tree)


def seed_sharding(mesh: Mesh) -> NamedSharding:
    """Leading axis split over ``seeds``, the rest replicated (the vmapped learner state)."""
    return NamedSharding(mesh, P(SEEDS))


def place(tree: Any, sharding: NamedSharding) -> Any:
    """Global arrays with ``sharding`` from host values every process holds in full
    (works on one host and on many)."""

    def one(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    return jax.tree.map(one, tree)


def to_host(tree: Any) -> Any:
    """Numpy copies of (possibly sharded, possibly multi-host) arrays, on every process."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def is_writer() -> bool:
    """Whether this process writes files (metrics, config): process 0."""
    return jax.process_index() == 0


def initialize(coordinator: str | None, num_processes: int | None,
               process_id: int | None) -> None:
    """``jax.distributed.initialize`` for a multi-host run (no-op when all are ``None``).

    Args:
      coordinator: ``host:port`` of process 0's coordination service.
      num_processes: number of processes (one per host, usually).
      process_id: this process's index in ``[0, num_processes)``.
    """
    given = [coordinator is not None, num_processes is not None, process_id is not None]
    if not any(given):
        return
    if not all(given):
        raise ValueError("multi-host runs need all of --coordinator, --num-processes and "
                         "--process-id")
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ValueError(f"--process-id must lie in [0, {num_processes}), got {process_id}")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id)
