"""The trainer: ``vmap`` over seeds, ``lax.scan`` over a chunk of meta-iterations, ``jit``.

Output of a run in ``out/``: ``config.json`` (what was trained, used to refuse resuming
with another config), ``metrics.jsonl`` (one line per iteration per seed) and
``checkpoints/`` (orbax; the whole vmapped learner state incl. RNG keys).

With ``TrainOptions.mesh`` the same program runs over a ``jax.sharding.Mesh`` of devices
(seeds and tasks split over its axes; see :mod:`jaxmeta.distributed`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from jaxmeta import distributed
from jaxmeta.algorithms.base import MetaLearner
from jaxmeta.envs.base import check_positive

# Fields of the run description that may differ between a run and its resumption.
RESUMABLE_FIELDS = ("iterations", "chunk", "checkpoint_every", "progress", "mesh")


class NonFiniteLossError(RuntimeError):
    """Raised when a meta-iteration produces a non-finite loss."""


class ConfigMismatchError(ValueError):
    """Raised when resuming a run whose saved config differs from the requested one."""


@dataclass(frozen=True)
class TrainOptions:
    """How to run training (not *what* is trained).

    Attributes:
      iterations: total meta-iterations (resuming continues up to this number).
      seeds: number of seeds, vmapped in one program; seed i uses PRNGKey(seed + i).
      seed: first seed.
      chunk: meta-iterations per compiled call (a ``lax.scan``).
      checkpoint_every: save every N iterations (0: only at the end).
      progress: show a progress bar.
      mesh: devices to run on: ``""`` (one device), ``"auto"`` (all visible devices,
        seeds first, then tasks) or ``"seeds=S,tasks=T"``. It must divide ``seeds`` and
        the algorithm's ``meta_batch_size``. A run may be resumed on another mesh.
    """

    iterations: int = 100
    seeds: int = 1
    seed: int = 0
    chunk: int = 10
    checkpoint_every: int = 0
    progress: bool = True
    mesh: str = ""

    def __post_init__(self):
        distributed.parse_mesh(self.mesh)  # syntax; sizes are checked against the learner
        for f in ("iterations", "seeds", "chunk"):
            check_positive(f, getattr(self, f))
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every!r}")


def seed_keys(seed: int, seeds: int) -> jax.Array:
    """PRNG keys of seeds ``seed .. seed+seeds-1``; seed s's key never depends on ``seeds``."""
    return jnp.stack([jax.random.PRNGKey(seed + i) for i in range(seeds)])


def _to_json(x: Any) -> Any:
    x = np.asarray(x)
    return x.item() if x.ndim == 0 else x.tolist()


def _config_diff(saved: dict, wanted: dict) -> list[str]:
    """``section.field: saved …, requested …`` for every difference that forbids resuming."""

    def comparable(desc: dict) -> dict:
        train = {f: v for f, v in desc.get("train", {}).items() if f not in RESUMABLE_FIELDS}
        return {**desc, "train": train}

    saved, wanted = comparable(saved), comparable(wanted)
    diffs = []
    for k in sorted(set(saved) | set(wanted)):
        a, b = saved.get(k), wanted.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"{k}.{f}: saved {a.get(f)!r}, requested {b.get(f)!r}"
                      for f in sorted(set(a) | set(b)) if a.get(f) != b.get(f)]
        elif a != b:
            diffs.append(f"{k}: saved {a!r}, requested {b!r}")
    return diffs


def checkpoint_manager(out: Path) -> ocp.CheckpointManager:
    """The orbax manager of a run directory (keeps the 3 latest checkpoints)."""
    return ocp.CheckpointManager(
        (out / "checkpoints").absolute(),
        options=ocp.CheckpointManagerOptions(max_to_keep=3, create=True),
    )


def restore_states(learner: MetaLearner, out: Path, seed: int, seeds: int,
                   step: int | None = None, mesh: jax.sharding.Mesh | None = None
                   ) -> tuple[Any, int]:
    """Restores the vmapped learner state of run ``out`` (latest step by default), with its
    seed axis split over ``mesh`` when one is given, else on this process's first device,
    whatever mesh or number of processes wrote it."""
    abstract = jax.eval_shape(jax.vmap(learner.init), seed_keys(seed, seeds))
    sharding = (distributed.seed_sharding(mesh) if mesh is not None
                else jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))
    abstract = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), abstract)
    with checkpoint_manager(Path(out)) as mngr:
        step = mngr.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {Path(out) / 'checkpoints'}")
        try:
            states = mngr.restore(step, args=ocp.args.StandardRestore(abstract))
        except Exception as e:  # structure/shape mismatch: another config wrote it
            raise ConfigMismatchError(
                f"checkpoint {step} in {out} does not match this learner's state "
                f"(was it written with another config?): {e}") from None
    return states, int(step)


@functools.lru_cache(maxsize=32)
def compiled_chunk(update, seed_axis: str | None = None):
    """``jit(scan(vmap(update)))`` over a static number of iterations, cached per ``update``
    so that resuming, or training the same learner again, does not recompile.

    ``seed_axis`` names the vmapped seed axis after a mesh axis (``spmd_axis_name``), so
    that sharding constraints inside ``update`` keep the seeds split over it.
    """

    def run_chunk(states, length):
        def body(s, _):
            return jax.vmap(update, spmd_axis_name=seed_axis)(s)

        return jax.lax.scan(body, states, None, length=length)

    return jax.jit(run_chunk, static_argnames="length")


@functools.lru_cache(maxsize=32)
def compiled_init(init):
    """``jit(vmap(init))``, cached per ``init``."""
    return jax.jit(jax.vmap(init))


def train(learner: MetaLearner, out: str | Path, options: TrainOptions,
          run_config: dict | None = None, resume: bool = False):
    """Trains ``options.seeds`` seeds of ``learner`` in one program and logs to ``out``.

    Args:
      learner: the method (its ``update`` is vmapped over seeds and scanned over chunks).
      out: run directory.
      options: iterations, seeds, chunking, checkpointing.
      run_config: JSON-able description of what is trained (algo, env, config); written
        to ``config.json`` and compared on ``resume``.
      resume: continue from the latest checkpoint in ``out``; metrics after resuming are
        bit-for-bit those of an uninterrupted run on the same mesh.

    Returns:
      (final vmapped state, list of metric records written by this call).

    Raises:
      NonFiniteLossError: a loss became NaN/inf; the message names the iteration and seed,
        metrics before it are written and the last good checkpoint is kept.
      ConfigMismatchError: ``resume`` with a config other than the saved one.
      ValueError: a mesh that does not fit the devices or does not divide the batch
        (raised before anything compiles).
    """
    out = Path(out)
    mesh = distributed.resolve_mesh(options.mesh, options.seeds,
                                    getattr(learner.config, "meta_batch_size", None))
    writer = distributed.is_writer()
    desc = {**(run_config or {}), "train": asdict(options)}
    cfg_path, metrics_path = out / "config.json", out / "metrics.jsonl"
    start = 0
    if resume:
        if not cfg_path.exists():
            raise FileNotFoundError(f"cannot resume: {cfg_path} does not exist")
        saved = json.loads(cfg_path.read_text())
        diffs = _config_diff(saved, json.loads(json.dumps(desc)))
        if diffs:
            raise ConfigMismatchError(
                f"refusing to resume {out}: its checkpoint was written with another config:\n  "
                + "\n  ".join(diffs))
        states, start = restore_states(learner, out, options.seed, options.seeds, mesh=mesh)
        # drop metric lines past the checkpoint: they are recomputed identically
        kept = []
        if metrics_path.exists():
            kept = [ln for ln in metrics_path.read_text().splitlines()
                    if ln and json.loads(ln)["iteration"] < start]
        if writer:
            metrics_path.write_text("".join(ln + "\n" for ln in kept))
    else:
        has_ckpt = (out / "checkpoints").exists() and any((out / "checkpoints").iterdir())
        has_metrics = metrics_path.exists() and metrics_path.stat().st_size > 0
        if has_ckpt or has_metrics:  # never overwrite what a run wrote
            raise FileExistsError(
                f"{out} already holds a run; pass resume=True (--resume), choose another out, "
                "or delete it")
        out.mkdir(parents=True, exist_ok=True)
        states = compiled_init(learner.init)(seed_keys(options.seed, options.seeds))
        if mesh is not None:
            states = distributed.place(states, distributed.seed_sharding(mesh))
        if writer:
            metrics_path.write_text("")
    if writer:
        cfg_path.write_text(json.dumps(desc, indent=2) + "\n")

    ckpt_every = options.checkpoint_every
    chunk = math.gcd(options.chunk, ckpt_every) if ckpt_every else options.chunk

    run_chunk = compiled_chunk(learner.update, distributed.SEEDS if mesh is not None else None)
    in_mesh = (lambda: jax.set_mesh(mesh)) if mesh is not None else contextlib.nullcontext
    records: list[dict] = []
    bar = None
    if options.progress and writer:
        from tqdm.auto import tqdm

        bar = tqdm(total=options.iterations, initial=start, desc="meta-iterations",
                   dynamic_ncols=True)
    last_saved = start if resume else None
    with checkpoint_manager(out) as mngr:
        it = start
        while it < options.iterations:
            length = min(chunk, options.iterations - it)
            with in_mesh():
                new_states, metrics = run_chunk(states, length)
            metrics = distributed.to_host(metrics)  # one host transfer per chunk
            loss = np.asarray(metrics["loss"])  # [length, seeds]
            bad = np.argwhere(~np.isfinite(loss))
            n_good = int(bad[0][0]) if len(bad) else length
            lines = []
            for i in range(n_good):
                for s in range(options.seeds):
                    rec = {"iteration": it + i, "seed": options.seed + s}
                    rec.update({k: _to_json(v[i, s]) for k, v in metrics.items()})
                    lines.append(rec)
            if writer:
                with metrics_path.open("a") as f:
                    f.writelines(json.dumps(r) + "\n" for r in lines)
            records += lines
            if len(bad):
                if bar is not None:
                    bar.close()
                i_bad, s_bad = int(bad[0][0]), int(bad[0][1])
                where = (f"last good checkpoint: iteration {last_saved} in {out / 'checkpoints'}"
                         if last_saved is not None else "no checkpoint was written yet")
                raise NonFiniteLossError(
                    f"non-finite loss ({loss[i_bad, s_bad]}) at iteration {it + i_bad} "
                    f"(seed {options.seed + s_bad}); training stopped, metrics up to iteration "
                    f"{it + i_bad - 1} are in {metrics_path}; {where}")
            states = new_states
            it += length
            if bar is not None:
                post = metrics.get("post_return", metrics.get("pre_return"))
                bar.set_postfix(ret=f"{float(np.mean(post[-1])):.2f}")
                bar.update(length)
            if (ckpt_every and it % ckpt_every == 0) or it == options.iterations:
                mngr.save(it, args=ocp.args.StandardSave(states))
                mngr.wait_until_finished()
                last_saved = it
    if bar is not None:
        bar.close()
    return states, records


def clear_run(out: str | Path) -> None:
    """Deletes a run directory (for scripts that re-create a run on purpose)."""
    shutil.rmtree(out, ignore_errors=True)
