"""A run directory: what was trained, its metrics, its checkpoints and its TensorBoard log.

``runs/NAME/``:

* ``config.json``: the run's description: ``algo``, ``env`` and ``env_overrides`` (how to
  rebuild the family with ``envs.make``), the algorithm's ``config`` (nested, as it
  trains: presets applied), and ``train`` (the :class:`~jaxmeta.trainer.TrainOptions`,
  incl. a sweep). Written by the trainer from the learner itself, so every run can be
  rebuilt and evaluated (:func:`rebuild`).
* ``metrics.jsonl``: one JSON object per line. Training rows: ``iteration`` (0-based index
  of the meta-iteration), ``seed``, ``sweep`` (the swept values, sweeps only) and the
  learner's metrics. Evaluation rows (``evaluate_every``) also carry ``split``, and their
  ``iteration`` is the number of meta-iterations done before the evaluation.
* ``checkpoints/``: orbax checkpoints of the whole vmapped state (RNG keys included).
* ``tb/``: TensorBoard event files (one subfolder per sweep point).

Crash safety: a process killed at any point leaves a run that ``--resume`` continues bit
for bit. ``config.json`` and rewrites of ``metrics.jsonl`` are atomic (a temporary file
renamed over the old one); appended metric rows end in a newline, and an unterminated last
line (a kill mid-append) is dropped when read. Orbax writes a checkpoint into a temporary
folder and renames it on commit; the trainer deletes leftover temporary folders when it
opens the run, and old checkpoints are renamed into ``checkpoints/deleted`` before they are
removed, so every numbered checkpoint folder is complete.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from jaxmeta import algorithms, distributed, envs, sweep
from jaxmeta import config as config_lib
from jaxmeta.protocol import MetaLearner

FORMAT = 2  # config.json format: 2 = nested configs, sweeps (1 = flat MetaConfig/TESPConfig)


class ConfigMismatchError(ValueError):
    """Resuming (or restoring) a run with another config than the one it was written with."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint that cannot be read back (truncated or damaged files)."""


class RunDescriptionError(ValueError):
    """A run directory whose ``config.json`` is missing, unreadable or incomplete."""


# --- the description ------------------------------------------------------------------------


def describe(learner: MetaLearner, train_options: dict, extra: dict | None = None) -> dict:
    """The ``config.json`` of a run of ``learner`` (JSON-able)."""
    spec = learner.family.env_spec
    desc = {"format": FORMAT, "algo": learner.name,
            "env": spec.name if spec else learner.family.name,
            "env_overrides": dict(spec.overrides) if spec else None,
            "config": config_lib.to_dict(learner.config), "train": train_options}
    if extra:
        desc["extra"] = extra
    return json.loads(json.dumps(desc))


def read_description(run_dir: str | Path) -> dict:
    """The description of a run, or a :class:`RunDescriptionError` saying what is wrong."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise RunDescriptionError(f"{run_dir} is not a jaxmeta run: {path} does not exist")
    try:
        desc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunDescriptionError(f"{path} is not valid JSON ({e}); the run cannot be "
                                  "rebuilt") from None
    missing = [k for k in ("algo", "env", "config", "train") if not isinstance(desc, dict)
               or k not in desc]
    if missing:
        raise RunDescriptionError(f"{path} lacks {missing}: it was not written by the jaxmeta "
                                  "trainer, so the run cannot be rebuilt")
    if not desc["algo"] or desc.get("env_overrides", {}) is None:
        raise RunDescriptionError(f"{path}: the learner was not built by algorithms.make / "
                                  "envs.make (no registry name), so it cannot be rebuilt")
    return desc


def rebuild(desc: dict) -> MetaLearner:
    """The learner a description was written from (old flat configs are converted)."""
    overrides = dict(desc.get("env_overrides") or {})
    if "physics" not in overrides and envs.has_mujoco_model(desc["env"]):
        overrides["physics"] = "mjx"  # written before the C backend existed: MJX then
    family = envs.make(desc["env"], **overrides)
    cls = algorithms.config_class(desc["algo"])
    return algorithms.make(desc["algo"], family, config_lib.from_dict(cls, desc["config"]))


# --- metrics ----------------------------------------------------------------------------------


def write_atomic(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file renamed over it, so that a
    process killed meanwhile leaves either the old or the new content."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _metric_lines(path: Path) -> list[tuple[str, dict]]:
    """The complete rows of a ``metrics.jsonl`` as (line, row). A last line without its
    newline was cut by a crash mid-append and is left out; any other unreadable line is an
    error naming the file and the line."""
    text = path.read_text()
    lines = text.split("\n")[:-1]  # what follows the last newline is incomplete
    out = []
    for i, ln in enumerate(lines, 1):
        if not ln.strip():
            continue
        try:
            out.append((ln, json.loads(ln)))
        except json.JSONDecodeError:
            raise RunDescriptionError(f"{path}, line {i}: not a JSON row ({ln[:60]!r})") from None
    return out


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The rows of ``metrics.jsonl`` (an unterminated last line, cut by a crash, is left out)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    return [row for _, row in _metric_lines(path)]


def truncate_metrics(run_dir: Path, before: int) -> None:
    """Drops the rows of iterations ``>= before`` (they are recomputed when resuming) and a
    line cut by a crash; the file is replaced atomically."""
    path = run_dir / "metrics.jsonl"
    if path.exists():
        kept = [ln for ln, row in _metric_lines(path) if row["iteration"] < before]
        write_atomic(path, "".join(ln + "\n" for ln in kept))


def append_metrics(run_dir: Path, rows: list[dict]) -> None:
    """Appends rows to ``metrics.jsonl``."""
    with (run_dir / "metrics.jsonl").open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def to_json(x: Any) -> Any:
    """A metric value as JSON (scalars to numbers, arrays to lists)."""
    x = np.asarray(x)
    return x.item() if x.ndim == 0 else x.tolist()


# --- checkpoints ------------------------------------------------------------------------------


DELETED = "deleted"  # old checkpoints are renamed into checkpoints/deleted, then removed


def purge_deleted(ckpt_dir: Path) -> None:
    """Removes the checkpoints orbax renamed into ``DELETED`` (a kill meanwhile leaves a
    partial folder there, never among the numbered checkpoints)."""
    shutil.rmtree(Path(ckpt_dir) / DELETED, ignore_errors=True)


def remove_unfinished(ckpt_dir: Path) -> list[Path]:
    """Deletes what a killed writer left: orbax's temporary folders (checkpoints that were
    never committed) and the ``DELETED`` folder. Only the process that trains into the run
    may call this (a checkpoint being written looks the same). Returns what it removed."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    suffix = ocp.path.atomicity_types.TMP_DIR_SUFFIX
    gone = [p for p in ckpt_dir.iterdir() if suffix in p.name or p.name == DELETED]
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    return gone


def checkpoint_manager(run_dir: Path, writer: bool = False) -> ocp.CheckpointManager:
    """The orbax manager of a run directory (keeps the 3 latest checkpoints). ``writer``:
    the training process, which first removes what a killed writer left
    (:func:`remove_unfinished`)."""
    ckpt_dir = (Path(run_dir) / "checkpoints").absolute()
    if writer and distributed.is_writer():
        remove_unfinished(ckpt_dir)
    return ocp.CheckpointManager(ckpt_dir, item_handlers=ocp.StandardCheckpointHandler(),
                                 options=ocp.CheckpointManagerOptions(
                                     max_to_keep=3, create=True, todelete_subdir=DELETED))


def save(mngr: ocp.CheckpointManager, step: int, states: Any) -> None:
    """Saves ``states`` as checkpoint ``step``, waits until it is committed, then removes
    the checkpoints it made obsolete."""
    mngr.save(step, args=ocp.args.StandardSave(states))
    mngr.wait_until_finished()
    if distributed.is_writer():
        purge_deleted(Path(str(mngr.directory)))


def clear(run_dir: str | Path) -> None:
    """Deletes a run directory (for scripts that re-create a run on purpose)."""
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)


def _leaf_names(tree: Any) -> dict[str, tuple]:
    def name(path):
        return ".".join(str(getattr(k, "name", getattr(k, "key", getattr(k, "idx", k))))
                        for k in path)

    return {name(p): (tuple(x.shape), np.dtype(x.dtype))
            for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _corrupt(step: int, where: Path, e: Exception) -> CorruptCheckpointError:
    first = str(e).split(" [tensorstore_spec")[0][:300]
    return CorruptCheckpointError(f"checkpoint of iteration {step} at {where} is corrupt "
                                  f"(cannot be read): {type(e).__name__}: {first}")


def restore(run_dir: str | Path, abstract: Any, step: int | None = None,
            hyper: Any = None) -> tuple[Any, int]:
    """Restores the checkpoint ``step`` (default: the latest) into the layout of
    ``abstract`` (``ShapeDtypeStruct`` leaves with shardings). A checkpoint written before
    states held their hyperparameters (no ``hyper`` leaves) is restored with ``hyper``
    (the run's values, which its config.json holds) put in.

    Raises:
      FileNotFoundError: no checkpoint.
      ConfigMismatchError: the checkpoint holds another state (names the differences).
      CorruptCheckpointError: it cannot be read (names the step and the path).
    """
    run_dir = Path(run_dir)
    with checkpoint_manager(run_dir) as mngr:
        steps = mngr.all_steps()
        if step is None and not steps:
            raise FileNotFoundError(f"no checkpoint in {run_dir / 'checkpoints'}")
        if step is not None and step not in steps:
            raise FileNotFoundError(f"no checkpoint of iteration {step} in "
                                    f"{run_dir / 'checkpoints'}; it holds {sorted(steps)}")
        step = max(steps) if step is None else step
        where = run_dir / "checkpoints" / str(step)
        try:
            saved = {m.name: (tuple(m.shape), np.dtype(m.dtype))
                     for m in jax.tree.leaves(mngr.item_metadata(step).tree)}
        except Exception as e:
            raise _corrupt(step, where, e) from None
        wanted = _leaf_names(abstract)
        older = {k: v for k, v in wanted.items() if not k.startswith("hyper.")}
        if saved == older and saved != wanted and hyper is not None:  # before traced hyper
            target = {f: getattr(abstract, f) for f in ("params", "opt_state", "key",
                                                        "iteration")}
            try:
                got = mngr.restore(step, args=ocp.args.StandardRestore(target))
            except Exception as e:
                raise _corrupt(step, where, e) from None
            return abstract.replace(**got, hyper=hyper), int(step)
        if saved != wanted:
            diffs = sorted(set(saved.items()) ^ set(wanted.items()))[:4]
            raise ConfigMismatchError(
                f"checkpoint of iteration {step} at {where} does not match this learner's "
                f"state (was it written with another config?); first differences "
                f"(name, (shape, dtype)): {diffs}")
        try:
            return mngr.restore(step, args=ocp.args.StandardRestore(abstract)), int(step)
        except Exception as e:
            raise _corrupt(step, where, e) from None


# --- the vmapped states of a run -------------------------------------------------------------


def seed_keys(seed: int, seeds: int) -> jax.Array:
    """PRNG keys of seeds ``seed .. seed+seeds-1``; seed s's key never depends on ``seeds``."""
    return jnp.stack([jax.random.PRNGKey(seed + i) for i in range(seeds)])


def member_keys(seed: int, seeds: int, sw: sweep.Sweep) -> jax.Array:
    """The key of every member (point-major): each sweep point gets the same seeds."""
    return jnp.tile(seed_keys(seed, seeds), (len(sweep.points(sw)), 1))


@functools.lru_cache(maxsize=32)
def compiled_init(init):
    """``init`` over the members' (keys, hypers), one member after another (``lax.map``), in
    one compiled program cached per ``init``; the states are those of ``vmap(init)``.

    Not ``vmap``: it batches the orthogonal initialisers' QR decompositions, and jaxlib's CPU
    LAPACK kernels split a batch of large matrices into tasks on XLA's intra-op thread pool
    and wait for them from inside that pool. With as many such decompositions running at
    once as the pool has threads (two on a 2-core CPU: a policy's and a critic's layers),
    every thread waits for tasks that no thread is free to run, and the program hangs
    before the first iteration. One matrix at a time runs inline."""
    return jax.jit(lambda keys, hypers: jax.lax.map(lambda kh: init(*kh), (keys, hypers)))


def initial_states(learner: MetaLearner, seed: int, seeds: int, sw: sweep.Sweep = ()) -> Any:
    """The initial state of every member (seeds × sweep points), vmapped."""
    return compiled_init(learner.init)(member_keys(seed, seeds, sw),
                                       sweep.member_hypers(learner, sw, seeds))


def restore_states(learner: MetaLearner, run_dir: str | Path, seed: int, seeds: int,
                   sw: sweep.Sweep = (), step: int | None = None,
                   mesh: jax.sharding.Mesh | None = None) -> tuple[Any, int]:
    """Restores the vmapped states of run ``run_dir`` (latest step by default), with the
    member axis split over ``mesh`` when one is given, else on this process's first device,
    whatever mesh or number of processes wrote it."""
    abstract = jax.eval_shape(compiled_init(learner.init), member_keys(seed, seeds, sw),
                              sweep.member_hypers(learner, sw, seeds))
    sharding = (distributed.seed_sharding(mesh) if mesh is not None
                else jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))
    abstract = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), abstract)
    hyper = jax.device_put(sweep.member_hypers(learner, sw, seeds), sharding)
    return restore(run_dir, abstract, step, hyper)


# --- TensorBoard ------------------------------------------------------------------------------


class TensorBoard:
    """Scalars of a run in TensorBoard event files, one writer per sweep point.

    Tags: ``train/<metric>`` (mean over seeds; vector metrics get one tag per entry),
    ``eval/<split>/pre_adapt_return`` and ``eval/<split>/post_adapt_return/<k>``,
    ``perf/env_steps_per_s``. Resuming purges events from the resumed iteration on.
    """

    def __init__(self, run_dir: Path, labels: list[str], purge_step: int | None):
        from tensorboardX import SummaryWriter

        self.writers = [SummaryWriter(str(run_dir / "tb" / label) if label else
                                      str(run_dir / "tb"), purge_step=purge_step)
                        for label in labels]

    def scalars(self, point: int, prefix: str, values: dict, step: int) -> None:
        """Writes ``values`` (scalars or 1-D lists) under ``prefix/`` for sweep point ``point``."""
        w = self.writers[point]
        for k, v in values.items():
            v = np.asarray(v, float)
            if v.ndim == 0:
                w.add_scalar(f"{prefix}/{k}", float(v), step)
            else:
                for j, x in enumerate(v.ravel()):
                    w.add_scalar(f"{prefix}/{k}/{j}", float(x), step)

    def flush(self) -> None:
        for w in self.writers:
            w.flush()

    def close(self) -> None:
        for w in self.writers:
            w.close()
