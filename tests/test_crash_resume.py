"""Crashes: a CLI training run killed with SIGKILL at several points (one of them inside a
checkpoint write), stopped with SIGTERM and with SIGINT, and resumed after each, ends with
the metrics and the state of an uninterrupted run, bit for bit; no checkpoint folder is
ever left half-written.

Each process pauses at a known point (tests/crash_hooks.py) and the test signals it there.
The processes share the suite's persistent compilation cache, so only the first compiles.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxmeta import runs

REPO = Path(__file__).resolve().parents[1]
TMP = ocp.path.atomicity_types.TMP_DIR_SUFFIX
ITERATIONS = 8
TINY = ["train", "--algo", "maml", "--env", "navigation2d", "--env-arg", "horizon=10",
        "--seeds", "2", "--iterations", str(ITERATIONS), "--chunk", "1", "--no-progress",
        "--hidden-sizes", "8", "--meta-batch-size", "3", "--inner-episodes", "2",
        "--outer-episodes", "2", "--eval-episodes", "2", "--outer", "ppo", "--ppo-epochs", "2",
        "--meta-gradient", "first_order"]


def _env(pause: str | None, where: Path) -> dict:
    # The subprocesses share a compilation cache (the suite's, or one beside the runs when
    # the suite has none) so each restart loads the programs instead of compiling them.
    cache = jax.config.jax_compilation_cache_dir or str(where.parent / "jax-cache")
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=cache,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")  # XLA_FLAGS are inherited
    env.pop("JAXMETA_TEST_PAUSE", None)
    if pause:
        env.update(JAXMETA_TEST_PAUSE=pause, JAXMETA_TEST_PAUSE_DIR=str(where))
    return env


def _start(out: Path, *extra: str, pause: str | None = None) -> subprocess.Popen:
    where = out.parent / f"pause-{pause}"
    where.mkdir(exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "tests.crash_hooks", *TINY, "--out", str(out),
                             *extra], cwd=REPO, env=_env(pause, where), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _signal_at_pause(p: subprocess.Popen, out: Path, pause: str, sig: int) -> str:
    """Waits until ``p`` pauses at ``pause``, sends ``sig``, lets a survivor go on, and
    returns its stderr once it exits."""
    where = out.parent / f"pause-{pause}"
    deadline = time.monotonic() + 120
    while not (where / "paused").exists():
        if p.poll() is not None or time.monotonic() > deadline:
            p.kill()
            _, err = p.communicate()
            raise AssertionError(f"never paused at {pause} (exit {p.returncode}):\n{err}")
        time.sleep(0.02)
    p.send_signal(sig)
    (where / "go").write_text("")
    _, err = p.communicate(timeout=120)
    return err


def _entries(out: Path) -> tuple[list[int], list[str]]:
    """(committed checkpoint steps, every other entry) of ``out/checkpoints``."""
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    return sorted(int(n) for n in names if n.isdigit()), [n for n in names if not n.isdigit()]


def _check_checkpoints(out: Path) -> list:
    """Every numbered checkpoint folder restores, at the iteration its name says."""
    learner = runs.rebuild(runs.read_description(out))
    states = []
    for step in _entries(out)[0]:
        s, got = runs.restore_states(learner, out, 0, 2, step=step)
        assert got == step and np.all(np.asarray(s.iteration) == step)
        states.append(s)
    return states


def _unterminated_tail(out: Path) -> bool:
    text = (out / "metrics.jsonl").read_text()
    return bool(text) and not text.endswith("\n")


def test_kill_and_signals_then_resume_is_bit_exact(tmp_path, record_property):
    ref_out, out = tmp_path / "ref", tmp_path / "cut"
    ref = _start(ref_out, "--checkpoint-every", "1")  # the uninterrupted run, alongside
    every = ["--checkpoint-every", "1"]
    survived = 0

    # SIGKILL while appending the rows of iteration 0, before the first checkpoint
    _signal_at_pause(_start(out, *every, pause="metrics@0"), out, "metrics@0", signal.SIGKILL)
    assert _unterminated_tail(out) and _entries(out)[0] == []
    survived += 1

    # resumed from iteration 0; SIGKILL inside the write of checkpoint 2, its folder created
    p = _start(out, *every, "--resume", pause="ckpt-tmp@2")
    _signal_at_pause(p, out, "ckpt-tmp@2", signal.SIGKILL)
    steps, other = _entries(out)
    assert steps == [1] and any(n.startswith("2" + TMP) for n in other), other
    assert not _unterminated_tail(out)
    _check_checkpoints(out)
    survived += 1

    # SIGKILL with checkpoint 3 fully written but not yet committed (renamed)
    p = _start(out, *every, "--resume", pause="ckpt-commit@3")
    _signal_at_pause(p, out, "ckpt-commit@3", signal.SIGKILL)
    steps, other = _entries(out)
    assert steps == [1, 2] and [n for n in other if n.startswith("3" + TMP)], other
    assert not [n for n in other if n.startswith("2" + TMP)]  # the orphan was removed
    assert any((out / "checkpoints" / n / "default").is_dir() for n in other)
    _check_checkpoints(out)
    survived += 1

    # SIGKILL while an obsolete checkpoint (max 3 are kept) is being removed
    p = _start(out, *every, "--resume", pause="purge@5")
    _signal_at_pause(p, out, "purge@5", signal.SIGKILL)
    steps, other = _entries(out)
    assert steps == [3, 4, 5] and other == [runs.DELETED], other
    _check_checkpoints(out)
    survived += 1

    # SIGTERM, then SIGINT, each during a chunk that is not due for a checkpoint: the run
    # finishes the chunk, saves, says so in one line and exits with 128 + the signal
    for it, sig in ((5, signal.SIGTERM), (6, signal.SIGINT)):
        p = _start(out, "--checkpoint-every", "0", "--resume", pause=f"chunk@{it}")
        err = _signal_at_pause(p, out, f"chunk@{it}", sig)
        assert p.returncode == 128 + sig, err
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"interrupted: stopped by {sig.name} after {it + 1} of "
                               f"{ITERATIONS} iterations: checkpoint {it + 1} saved"), err
        assert "Traceback" not in err
        assert _entries(out) == ([it - 1, it, it + 1], [])
        assert max(r["iteration"] for r in runs.read_metrics(out)) == it
        survived += 1

    p = _start(out, *every, "--resume")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    _, err = ref.communicate(timeout=120)
    assert ref.returncode == 0, err

    assert runs.read_metrics(out) == runs.read_metrics(ref_out)
    assert [r["iteration"] for r in runs.read_metrics(out)] == [
        i for i in range(ITERATIONS) for _ in range(2)]
    assert _entries(out) == _entries(ref_out) == ([6, 7, 8], [])
    for a, b in zip(_check_checkpoints(out), _check_checkpoints(ref_out), strict=True):
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert json.loads((out / "config.json").read_text())["train"]["checkpoint_every"] == 1
    record_property("reliability.crash_points", survived)
