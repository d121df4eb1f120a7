"""``python -m tests.crash_hooks ARGS...`` runs ``python -m jaxmeta ARGS...`` with a pause at
one chosen point, so that tests/test_crash_resume.py can signal a training process at a
known place (what a crash at that place leaves is then deterministic).

``JAXMETA_TEST_PAUSE=POINT@ITERATION`` and ``JAXMETA_TEST_PAUSE_DIR=DIR``: on reaching
POINT for ITERATION the process writes ``DIR/paused`` and waits until ``DIR/go`` exists
(a test that kills it never creates it). Points:

- ``metrics``: appending the rows of iteration ITERATION, half of the last line written;
- ``ckpt-tmp``: checkpoint ITERATION, orbax has created its temporary folder;
- ``ckpt-commit``: checkpoint ITERATION, every file written, the folder not yet renamed;
- ``purge``: after checkpoint ITERATION, an obsolete checkpoint partly removed;
- ``chunk``: before the compiled chunk that starts at iteration ITERATION.

Only the test process sets these variables; the library has no hooks of its own.
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp

from jaxmeta import cli, runs, trainer

POINTS = ("metrics", "ckpt-tmp", "ckpt-commit", "purge", "chunk")


def _pause(where: Path, point: str) -> None:
    (where / "paused").write_text(point)
    while not (where / "go").exists():
        time.sleep(0.01)


def install(point: str, at: int, where: Path) -> None:
    """Patches the one place ``point`` names (see the module docstring)."""
    if point == "metrics":
        def append_metrics(run_dir, rows):
            if not any(r["iteration"] == at and "split" not in r for r in rows):
                return original(run_dir, rows)
            text = "".join(json.dumps(r) + "\n" for r in rows)
            cut = len(text) - len(json.dumps(rows[-1])) // 2 - 1
            with (run_dir / "metrics.jsonl").open("a") as f:
                f.write(text[:cut])
                f.flush()
                os.fsync(f.fileno())
            _pause(where, point)

        original, runs.append_metrics = runs.append_metrics, append_metrics
    elif point in ("ckpt-tmp", "ckpt-commit"):
        cls = ocp.path.atomicity.AtomicRenameTemporaryPath
        create, finalize = cls.create, cls.finalize

        async def create_then_pause(self):
            path = await create(self)
            if point == "ckpt-tmp" and self.get_final().name == str(at):
                _pause(where, point)
            return path

        async def pause_then_finalize(self):
            if point == "ckpt-commit" and self.get_final().name == str(at):
                _pause(where, point)
            return await finalize(self)

        cls.create, cls.finalize = create_then_pause, pause_then_finalize
    elif point == "purge":
        def purge_deleted(ckpt_dir):
            ckpt_dir = Path(ckpt_dir)
            steps = [int(p.name) for p in ckpt_dir.iterdir() if p.name.isdigit()]
            if max(steps, default=None) != at:
                return original(ckpt_dir)
            files = sorted(p for p in (ckpt_dir / runs.DELETED).rglob("*") if p.is_file())
            if len(files) < 2:
                raise RuntimeError(f"purge@{at}: nothing to delete in {ckpt_dir}")
            files[0].unlink()
            _pause(where, point)

        original, runs.purge_deleted = runs.purge_deleted, purge_deleted
    elif point == "chunk":
        def compiled_chunk(update, seed_axis=None):
            run = original(update, seed_axis)

            def paused_run(states, length):
                if int(np.asarray(states.iteration).ravel()[0]) == at:
                    _pause(where, point)
                return run(states, length)

            return paused_run

        original, trainer.compiled_chunk = trainer.compiled_chunk, compiled_chunk
    else:
        raise ValueError(f"JAXMETA_TEST_PAUSE: unknown point {point!r}; one of {POINTS}")


if __name__ == "__main__":
    spec = os.environ.get("JAXMETA_TEST_PAUSE")
    if spec:
        point, _, at = spec.partition("@")
        install(point, int(at), Path(os.environ["JAXMETA_TEST_PAUSE_DIR"]))
    sys.exit(cli.main(sys.argv[1:]))
