"""The trainer: ``vmap`` over members (seeds × sweep points), ``lax.scan`` over a chunk of
meta-iterations, ``jit`` once.

``train(learner, out, ...)`` writes a run directory (:mod:`jaxmeta.runs`): ``config.json``
(derived from the learner, so every run can be rebuilt), ``metrics.jsonl``, orbax
checkpoints and a TensorBoard log. Every ``evaluate_every`` iterations (and before the
first, and after the last) it adapts every member on tasks of ``eval_splits`` and writes
those rows too. One rule for non-finite values: a non-finite metric, evaluation return or
parameter stops the run, naming the iteration and the member; everything written before
is kept, including the last good checkpoint.

SIGTERM and SIGINT (Ctrl-C) stop a run cleanly: the current chunk is finished, its metrics
written, a checkpoint saved, then :class:`~jaxmeta.interrupt.TrainingInterrupted` is raised
(a second signal stops the process at once; :mod:`jaxmeta.interrupt`). A process killed at
any point leaves a run that ``resume=True`` continues bit for bit (:mod:`jaxmeta.runs`).

With ``TrainOptions.mesh`` the same program runs over a ``jax.sharding.Mesh`` (members and
tasks split over its axes; :mod:`jaxmeta.distributed`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmeta import config as config_lib
from jaxmeta import distributed, evaluation, runs, sweep
from jaxmeta.config import check_positive
from jaxmeta.envs.base import check_split
from jaxmeta.interrupt import StopOnSignal, TrainingInterrupted
from jaxmeta.protocol import MetaLearner, env_steps_per_update
from jaxmeta.rollout import splits_action_cost
from jaxmeta.runs import ConfigMismatchError, CorruptCheckpointError

SEED_LIMIT = 2**32  # jax.random.PRNGKey(s) repeats itself from 2**32 on

# Fields of TrainOptions that may differ between a run and its resumption.
RESUMABLE_FIELDS = ("iterations", "chunk", "checkpoint_every", "progress", "mesh",
                    "tensorboard")


class NonFiniteError(RuntimeError):
    """A metric, an evaluation return or a parameter became NaN or infinite."""


NonFiniteLossError = NonFiniteError  # the name before parameters were checked too


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """How to run training (not *what* is trained).

    Attributes:
      iterations: total meta-iterations (resuming continues up to this number).
      seeds: seeds per sweep point, vmapped in one program; seed i uses PRNGKey(seed + i).
      seed: first seed.
      chunk: meta-iterations per compiled call (a ``lax.scan``).
      checkpoint_every: save every N iterations (0: only at the end).
      progress: show a progress bar.
      mesh: devices to run on: ``""`` (one device), ``"auto"`` or ``"seeds=S,tasks=T"``; it
        must divide the number of members and the meta-batch. May change on resume.
      sweep: traced hyperparameters to sweep, ``((field, (v1, v2, ...)), ...)``
        (:func:`jaxmeta.sweep.parse`); every value × seed trains in the same program.
      evaluate_every: adapt every member on held-out tasks every N iterations (0: never).
      eval_splits, eval_tasks, eval_adapt_steps, eval_seed: what the evaluation adapts to:
        ``eval_tasks`` tasks of each split (the same ones every time, from ``eval_seed``),
        with ``eval_adapt_steps`` adaptation steps.
      tensorboard: also write TensorBoard event files under ``out/tb``.
    """

    iterations: int = 100
    seeds: int = 1
    seed: int = 0
    chunk: int = 10
    checkpoint_every: int = 0
    progress: bool = True
    mesh: str = ""
    sweep: sweep.Sweep = ()
    evaluate_every: int = 0
    eval_splits: tuple[str, ...] = ("train", "test", "ood")
    eval_tasks: int = 40
    eval_adapt_steps: int = 3
    eval_seed: int = 12345
    tensorboard: bool = True

    def __post_init__(self):
        distributed.parse_mesh(self.mesh)  # syntax; sizes are checked against the learner
        for f in ("iterations", "seeds", "chunk", "eval_tasks"):
            check_positive(f, getattr(self, f))
        for f in ("checkpoint_every", "evaluate_every", "eval_adapt_steps", "seed", "eval_seed"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{f} must be an integer >= 0, got {v!r}")
        if self.seed + self.seeds > SEED_LIMIT or self.eval_seed >= SEED_LIMIT:
            raise ValueError(f"seed + seeds and eval_seed must stay below 2**32 (PRNG keys "
                             f"repeat beyond), got seed={self.seed}, seeds={self.seeds}, "
                             f"eval_seed={self.eval_seed}")
        object.__setattr__(self, "sweep", tuple((n, tuple(float(x) for x in v))
                                                for n, v in self.sweep))
        object.__setattr__(self, "eval_splits", tuple(self.eval_splits))
        for s in self.eval_splits:
            check_split(s)


def _all_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
                                if jnp.issubdtype(x.dtype, jnp.inexact)]))


@functools.lru_cache(maxsize=32)
def compiled_chunk(update, seed_axis: str | None = None):
    """``jit(scan(vmap(update)))`` over a static number of iterations, cached per ``update``
    so that resuming, or training the same learner again, does not recompile. Besides the
    metrics it returns, per iteration and member, whether the whole new state is finite.

    ``seed_axis`` names the vmapped member axis after a mesh axis (``spmd_axis_name``), so
    that sharding constraints inside ``update`` keep the members split over it.
    """

    def run_chunk(states, length):
        def body(s, _):
            s, m = jax.vmap(update, spmd_axis_name=seed_axis)(s)
            return s, (m, jax.vmap(_all_finite)(s))

        return jax.lax.scan(body, states, None, length=length)

    return jax.jit(run_chunk, static_argnames="length")


def _config_diff(saved: dict, wanted: dict) -> list[str]:
    """``section.field: saved …, requested …`` for every difference that forbids resuming."""

    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            if k == "extra" and not prefix:  # notes, not what trains
                continue
            if k == "train":
                v = {f: x for f, x in v.items() if f not in RESUMABLE_FIELDS}
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
        return out

    a, b = flat(saved), flat(wanted)
    return [f"{k}: saved {a.get(k)!r}, requested {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)]


class _Loop:
    """The host side of one ``train`` call: rows, checks, evaluation, logs."""

    def __init__(self, learner, out, options, members, writer, tb):
        self.learner, self.out, self.o, self.members = learner, out, options, members
        self.writer, self.tb, self.records = writer, tb, []
        self.seeds = options.seeds
        self.last_saved = None

    def who(self, m: int) -> str:
        info = self.members[m]
        return f"seed {info['seed']}" + (f", {sweep.label(info['sweep'])}"
                                         if "sweep" in info else "")

    def write(self, rows: list[dict]) -> None:
        if self.writer:
            runs.append_metrics(self.out, rows)
        self.records += rows

    def log_points(self, prefix: str, step: int, per_member: dict) -> None:
        """TensorBoard: per sweep point, the mean over its seeds of ``[members, ...]``."""
        if self.tb is None:
            return
        s = self.seeds
        for p in range(len(self.members) // s):
            self.tb.scalars(p, prefix, {k: np.mean(np.asarray(v, float)[p * s:(p + 1) * s], 0)
                                        for k, v in per_member.items()}, step)

    def stop(self, what: str, it: int, m: int) -> NonFiniteError:
        where = (f"last good checkpoint: iteration {self.last_saved} in "
                 f"{self.out / 'checkpoints'}" if self.last_saved is not None
                 else "no checkpoint was written yet")
        return NonFiniteError(
            f"non-finite {what} at iteration {it} ({self.who(m)}); training stopped, metrics "
            f"up to iteration {it - 1} are in {self.out / 'metrics.jsonl'}; {where}")

    def chunk_rows(self, it: int, metrics: dict, finite: np.ndarray) -> None:
        """Writes the rows of a chunk up to its first non-finite iteration, then raises."""
        length, n = finite.shape
        bad = {k: ~np.isfinite(np.asarray(v, float)).reshape(length, n, -1).all(-1)
               for k, v in metrics.items()}
        bad_any = np.logical_or.reduce([~finite, *bad.values()])
        n_good = int(np.argmax(bad_any.any(1))) if bad_any.any() else length
        self.write([{"iteration": it + i, **self.members[m],
                     **{k: runs.to_json(v[i, m]) for k, v in metrics.items()}}
                    for i in range(n_good) for m in range(n)])
        for i in range(n_good):
            self.log_points("train", it + i, {k: v[i] for k, v in metrics.items()})
        if n_good < length:
            m = int(np.argmax(bad_any[n_good]))
            names = [k for k in bad if bad[k][n_good, m]] or ["parameters (or optimizer state)"]
            raise self.stop(", ".join(names), it + n_good, m)

    def evaluate(self, states, it: int) -> None:
        o = self.o
        for split in o.eval_splits:
            r, d = evaluation.member_returns(self.learner, states,
                                             jax.random.PRNGKey(o.eval_seed), split,
                                             o.eval_tasks, o.eval_adapt_steps, distance=True)
            # families with a distance term (TESP's) also record R, the return without the
            # action cost, from the same episodes
            with_r = splits_action_cost(self.learner.family)
            if not np.isfinite(r).all():
                raise self.stop(f"evaluation return ({split} split)", it,
                                int(np.argmax(~np.isfinite(r).all(1))))
            rows = [{"iteration": it, **self.members[m], "split": split,
                     "pre_adapt_return": float(r[m, 0]), "post_adapt_return": r[m, 1:].tolist()}
                    for m in range(len(r))]
            if with_r:
                for m, row in enumerate(rows):
                    row.update(pre_adapt_distance_return=float(d[m, 0]),
                               post_adapt_distance_return=d[m, 1:].tolist())
            self.write(rows)
            self.log_points(f"eval/{split}", it, {"pre_adapt_return": r[:, 0],
                                                  "post_adapt_return": r[:, 1:]})


def _upgrade(learner: MetaLearner, saved: dict) -> dict:
    """A description written before the nested configs (format 1: flat config, fewer train
    options) in today's form, so that resuming compares like with like."""
    if saved.get("format", 1) >= runs.FORMAT:
        return saved
    config = config_lib.from_dict(type(learner.config), saved["config"])
    options = dataclasses.asdict(TrainOptions(**saved["train"]))
    return json.loads(json.dumps({**saved, "format": runs.FORMAT,
                                  "config": config_lib.to_dict(config), "train": options}))


def check_out(out: Path) -> None:
    """Refuses an ``out`` that is, or lies under, something other than a directory."""
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise ValueError(f"out={str(out)!r}: {str(p)!r} is a file, not a directory")
            return


def _fresh(learner, options: TrainOptions, mesh):
    states = runs.initial_states(learner, options.seed, options.seeds, options.sweep)
    if mesh is not None:
        states = distributed.place(states, distributed.seed_sharding(mesh))
    return states


def _start(learner, out: Path, options: TrainOptions, desc: dict, resume: bool, n: int, mesh,
           writer: bool):
    """The states to start from, the iteration they are at and whether they were restored
    from a checkpoint."""
    sw = options.sweep
    if resume:
        cfg_path = out / "config.json"
        if not cfg_path.exists():
            raise FileNotFoundError(f"cannot resume: {cfg_path} does not exist")
        diffs = _config_diff(_upgrade(learner, runs.read_description(out)), desc)
        if diffs:
            raise ConfigMismatchError(
                f"refusing to resume {out}: its checkpoint was written with another config:\n  "
                + "\n  ".join(diffs))
        try:
            states, start = runs.restore_states(learner, out, options.seed, options.seeds, sw,
                                                mesh=mesh)
            restored = True
        except FileNotFoundError:  # stopped before its first checkpoint: start again
            warnings.warn(f"{out} has no checkpoint yet; resuming from iteration 0",
                          stacklevel=3)
            states, start, restored = _fresh(learner, options, mesh), 0, False
        if writer:
            runs.truncate_metrics(out, start)  # rows past the checkpoint are recomputed
        return states, start, restored
    ckpts = out / "checkpoints"
    has_metrics = (out / "metrics.jsonl").exists() and (out / "metrics.jsonl").stat().st_size
    if (ckpts.exists() and any(ckpts.iterdir())) or has_metrics:  # never overwrite a run
        raise FileExistsError(f"{out} already holds a run; pass resume=True (--resume), "
                              "choose another out, or delete it")
    states = _fresh(learner, options, mesh)
    if writer:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.jsonl").write_text("")
    return states, 0, False


def train(learner: MetaLearner, out: str | Path, options: TrainOptions | None = None, *,
          resume: bool = False, extra: dict | None = None, **overrides):
    """Trains every member (seeds × sweep points) of ``learner`` in one program into ``out``.

    Args:
      learner: the method, built by ``algorithms.make`` (its name, family and config are
        written to ``config.json``).
      out: run directory.
      options: iterations, seeds, sweep, chunking, checkpoints, evaluation; keyword
        ``overrides`` replace its fields (``train(learner, out, iterations=50, seeds=8)``).
      resume: continue from the latest checkpoint in ``out`` (from iteration 0 when the run
        stopped before its first one); metrics after resuming are bit-for-bit those of an
        uninterrupted run on the same mesh.
      extra: JSON-able notes stored in ``config.json`` (e.g. an experiment's settings).

    Returns:
      (final vmapped state, list of metric rows written by this call).

    Raises:
      NonFiniteError: a metric, evaluation return or parameter became non-finite.
      ConfigMismatchError: ``resume`` with another config than the saved one.
      CorruptCheckpointError: ``resume`` from a checkpoint that cannot be read.
      ValueError: a bad sweep, a mesh that does not fit, or an ``out`` that is a file
        (before anything compiles).
      TrainingInterrupted: SIGTERM or SIGINT arrived; the run saved a checkpoint first.
    """
    options = dataclasses.replace(options or TrainOptions(), **overrides)
    out = Path(out)
    check_out(out)
    sweep.check(learner, options.sweep)
    members = sweep.members(options.sweep, options.seed, options.seeds)
    sampling = getattr(learner.config, "sampling", None)
    mesh = distributed.resolve_mesh(options.mesh, len(members),
                                    getattr(sampling, "meta_batch_size", None))
    writer = distributed.is_writer()
    desc = runs.describe(learner, dataclasses.asdict(options), extra)
    states, start, restored = _start(learner, out, options, desc, resume, len(members), mesh,
                                     writer)
    if writer:
        runs.write_atomic(out / "config.json", json.dumps(desc, indent=2) + "\n")

    every = [x for x in (options.checkpoint_every, options.evaluate_every) if x]
    chunk = math.gcd(options.chunk, *every)
    run_chunk = (compiled_chunk(learner.update) if mesh is None
                 else compiled_chunk(learner.update, distributed.SEEDS))
    in_mesh = (lambda: jax.set_mesh(mesh)) if mesh is not None else contextlib.nullcontext
    labels = [sweep.label(p) for p in sweep.points(options.sweep)]
    tb = (runs.TensorBoard(out, labels, start if resume else None)
          if writer and options.tensorboard else None)
    loop = _Loop(learner, out, options, members, writer, tb)
    loop.last_saved = start if restored else None
    steps = env_steps_per_update(learner)
    due = lambda k: options.evaluate_every and (k % options.evaluate_every == 0
                                                or k == options.iterations)
    bar = None
    if options.progress and writer:
        from tqdm.auto import tqdm

        bar = tqdm(total=options.iterations, initial=start, desc="meta-iterations",
                   dynamic_ncols=True)
    try:
        with runs.checkpoint_manager(out, writer=True) as mngr, StopOnSignal() as stop:
            it = start
            if due(it):
                loop.evaluate(states, it)
            while it < options.iterations and not stop.requested:
                length = min(chunk, options.iterations - it)
                t0 = time.perf_counter()
                with in_mesh():
                    new_states, (metrics, finite) = run_chunk(states, length)
                metrics, finite = distributed.to_host((metrics, finite))
                seconds = time.perf_counter() - t0
                loop.chunk_rows(it, metrics, np.asarray(finite))
                states, it = new_states, it + length
                if steps:  # the whole program's rate, the same for every point
                    ones = np.ones(len(members))
                    loop.log_points("perf", it, {
                        "env_steps_per_s": ones * steps * len(members) * length / seconds,
                        "seconds_per_iteration": ones * seconds / length})
                if bar is not None:
                    post = metrics.get("post_return", metrics.get("pre_return"))
                    bar.set_postfix(ret=f"{float(np.mean(post[-1])):.2f}")
                    bar.update(length)
                if (options.checkpoint_every and it % options.checkpoint_every == 0
                        or it == options.iterations):
                    runs.save(mngr, it, states)
                    loop.last_saved = it
                if stop.requested and it < options.iterations:
                    break  # the evaluation due here runs when the run is resumed
                if due(it):
                    loop.evaluate(states, it)
                if tb is not None:
                    tb.flush()
            if stop.requested and it < options.iterations:
                if loop.last_saved != it:
                    runs.save(mngr, it, states)
                raise TrainingInterrupted(
                    f"stopped by {stop.name} after {it} of {options.iterations} iterations: "
                    f"checkpoint {it} saved in {out / 'checkpoints'}, metrics in "
                    f"{out / 'metrics.jsonl'}; continue with --resume (resume=True)",
                    stop.signum, it)
    finally:
        if bar is not None:
            bar.close()
        if tb is not None:
            tb.close()
    return states, loop.records


__all__ = ["ConfigMismatchError", "CorruptCheckpointError", "NonFiniteError",
           "NonFiniteLossError", "TrainOptions", "TrainingInterrupted", "check_out",
           "compiled_chunk", "train"]
