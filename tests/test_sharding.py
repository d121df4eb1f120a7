"""Scale-out over a device mesh (seeds x tasks), on 4 virtual CPU devices.

XLA reads ``--xla_force_host_platform_device_count`` once, when the process starts. With 4
devices (``XLA_FLAGS=--xla_force_host_platform_device_count=4``; ``make test`` runs this file
so, in a pytest process of its own) the tests run in-process. With fewer (a plain
``pytest``), each of them is skipped here and :func:`test_sharding_suite_runs_with_four_devices`
runs this file in a child pytest with 4 virtual devices instead, and fails if any test
there fails: they are never skipped silently, and never run twice (the Makefile's main suite
``--ignore``s this file, so its runner does not start a second copy).

Tolerances: a sharded run computes the same per-seed, per-task program, but XLA's CPU
kernels reduce a batch of 1 seed (or 2 tasks) per device in another order than the whole
batch on one device, and the means over tasks become cross-device all-reduces. So metrics
agree to float32 rounding, not bit for bit: checked at rtol 1e-4, atol 1e-5 after 4
iterations. Measured on meshes seeds=2, seeds=2×tasks=2 and tasks=4: returns ≤ 3e-6 and
gradient norms ≤ 6e-5 relative; losses and KLs (≈1e-4 and 1e-6) ≤ 5e-6 absolute. Runs
on the *same* mesh, incl. resuming a sharded checkpoint, are bit-exact. A wrong key or
task layout would differ by O(1).
"""

import dataclasses
import json

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jaxmeta import cli, distributed
from jaxmeta.distributed import MeshSpec, auto_mesh_spec, check_mesh, parse_mesh
from jaxmeta.meta.policy import blind_policy
from jaxmeta.meta.sampling import sample_meta_batch
from jaxmeta.rollout import rollout
from jaxmeta.runs import restore_states
from jaxmeta.trainer import TrainOptions, train
from tests.helpers import TINY, tiny_family, tiny_learner

FOUR_DEVICES = jax.device_count() >= 4
FORCE_FOUR = "--xla_force_host_platform_device_count=4"
needs_four = pytest.mark.skipif(
    not FOUR_DEVICES,
    reason=f"needs 4 devices: run by test_sharding_suite_runs_with_four_devices in a child "
           f"process, or directly: XLA_FLAGS={FORCE_FOUR} pytest tests/test_sharding.py")

# first-order PPO MAML (fast to compile) with 4 tasks so that tasks=2 divides the batch
FAST = dict(outer="ppo", meta_gradient="first_order", meta_batch_size=4)
OPTS = dict(progress=False, chunk=2, iterations=4, seeds=2)


def metrics(path):
    return [json.loads(ln) for ln in (path / "metrics.jsonl").read_text().splitlines()]


def assert_metrics_close(a, b, rtol=1e-4, atol=1e-5):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys() and (x["iteration"], x["seed"]) == (y["iteration"], y["seed"])
        for k in x:
            np.testing.assert_allclose(x[k], y[k], rtol=rtol, atol=atol, err_msg=k)


@pytest.fixture(scope="module")
def single_device_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    train(tiny_learner("maml", **FAST), out, TrainOptions(**OPTS))
    return metrics(out)


@needs_four
def test_parse_and_auto_mesh():
    assert parse_mesh("seeds=4,tasks=2") == MeshSpec(4, 2)
    assert parse_mesh("tasks=2") == MeshSpec(1, 2)
    assert parse_mesh("") is None and parse_mesh("none") is None
    assert parse_mesh("auto") == "auto"
    for bad, msg in [("seed=2", "axes: seeds, tasks"), ("seeds=x", "not an integer"),
                     ("tasks=0", "must be >= 1")]:
        with pytest.raises(ValueError, match=msg):
            parse_mesh(bad)
    # seeds first, then the devices left over on the task axis as far as they divide it
    assert auto_mesh_spec(8, 4, 20) == MeshSpec(4, 2)
    assert auto_mesh_spec(8, 3, 20) == MeshSpec(1, 4)
    assert auto_mesh_spec(8, 1, 3) == MeshSpec(1, 1)
    assert auto_mesh_spec(4, 2, 4) == MeshSpec(2, 2)


@needs_four
@pytest.mark.parametrize("spec, seeds, tasks, msg", [
    (MeshSpec(4, 1), 2, 4, "seeds=4 does not divide the number of seeds"),
    (MeshSpec(1, 2), 2, 3, "tasks=2 does not divide meta_batch_size"),
    (MeshSpec(4, 2), 4, 4, "needs 8 devices but only 4"),
    (MeshSpec(1, 2), 2, None, "no meta_batch_size"),
])
def test_mesh_that_does_not_divide_is_refused(spec, seeds, tasks, msg):
    with pytest.raises(ValueError, match=msg):
        check_mesh(spec, seeds, tasks, 4)


@needs_four
def test_train_refuses_bad_mesh_before_compiling(tmp_path, capsys):
    learner = tiny_learner("maml", **FAST)
    with pytest.raises(ValueError, match="tasks=3 does not divide meta_batch_size"):
        train(learner, tmp_path / "r", TrainOptions(**OPTS, mesh="tasks=3"))
    assert not (tmp_path / "r").exists()  # nothing written, nothing compiled
    with pytest.raises(ValueError, match="axes: seeds, tasks"):
        TrainOptions(mesh="devices=4")
    argv = ["train", "--out", str(tmp_path / "c"), "--env-arg", "horizon=5",
            "--hidden-sizes", "4", "--meta-batch-size", "3", "--mesh", "seeds=1,tasks=2"]
    assert cli.main(argv) == 2
    assert "does not divide meta_batch_size (3)" in capsys.readouterr().err
    assert cli.main(["train", "--out", str(tmp_path / "d"), "--coordinator", "h:1"]) == 2
    assert "--num-processes" in capsys.readouterr().err


@needs_four
def test_task_axis_is_split_over_the_mesh():
    """The shared sampler lays every per-task array out over the task axis, and the
    trainer's seed vmap keeps seeds on the seed axis: no device holds the whole batch."""
    family = tiny_family()
    spec = blind_policy(family, TINY.policy)

    def sample_task(params, task, key):
        return rollout(family, spec.fn(params, task), task, key, 2)

    def sample(params, key):
        return sample_meta_batch(family, 4, sample_task, params, key)

    params = jax.lax.map(spec.policy.init, jax.random.split(jax.random.PRNGKey(0), 2))
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    mesh = distributed.make_mesh(MeshSpec(2, 2))
    ref_tasks, ref_trajs = jax.jit(jax.vmap(sample))(params, keys)
    with jax.set_mesh(mesh):
        params, keys = distributed.place((params, keys), distributed.seed_sharding(mesh))
        tasks, trajs = jax.jit(jax.vmap(sample, spmd_axis_name="seeds"))(params, keys)
    for leaf in jax.tree.leaves((tasks, trajs)):
        # done/mask do not depend on the seed (vmap broadcasts them): split over tasks only
        assert tuple(leaf.sharding.spec)[1] == "tasks"
    for leaf in (trajs.obs, trajs.action, trajs.logp, tasks.goal):
        assert tuple(leaf.sharding.spec)[:2] == ("seeds", "tasks")
        assert len(leaf.sharding.device_set) == 4
    # the random streams do not depend on the layout
    jax.tree.map(np.testing.assert_array_equal, (tasks, trajs), (ref_tasks, ref_trajs))


@needs_four
def test_seed_sharded_run_matches_single_device(tmp_path, single_device_run):
    states, _ = train(tiny_learner("maml", **FAST), tmp_path,
                      TrainOptions(**OPTS, mesh="seeds=2,tasks=1"))
    assert_metrics_close(metrics(tmp_path), single_device_run)
    leaf = jax.tree.leaves(states)[0]
    assert leaf.sharding.spec == P("seeds") and len(leaf.sharding.device_set) == 2


@needs_four
def test_seed_and_task_sharded_run_matches_single_device(tmp_path, single_device_run):
    opts = dataclasses.replace(TrainOptions(**OPTS, mesh="seeds=2,tasks=2"), checkpoint_every=2)
    train(tiny_learner("maml", **FAST), tmp_path / "full", opts)
    assert_metrics_close(metrics(tmp_path / "full"), single_device_run)

    # sharded checkpoints: restore onto the mesh with the same layout and values
    learner = tiny_learner("maml", **FAST)
    mesh = distributed.make_mesh(MeshSpec(2, 2))
    restored, step = restore_states(learner, tmp_path / "full", 0, 2, mesh=mesh)
    plain, _ = restore_states(learner, tmp_path / "full", 0, 2)
    assert step == 4
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(plain), strict=True):
        assert a.sharding.spec == P("seeds") and len(a.sharding.device_set) == 4
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # resume from the sharded checkpoint at iteration 2 on the same mesh: bit-exact
    train(learner, tmp_path / "cut", dataclasses.replace(opts, iterations=2))
    train(learner, tmp_path / "cut", opts, resume=True)
    assert metrics(tmp_path / "cut") == metrics(tmp_path / "full")
    # ... and on one device (the mesh may change between a run and its resumption)
    train(learner, tmp_path / "one", dataclasses.replace(opts, iterations=2))
    train(learner, tmp_path / "one", dataclasses.replace(opts, mesh=""), resume=True)
    assert_metrics_close(metrics(tmp_path / "one"), single_device_run)


@needs_four
def test_tesp_runs_sharded_without_changes(tmp_path):
    """A method with its own sampling (episode buffers, encoder) shards the same way."""
    learner = tiny_learner("tesp", meta_batch_size=4)
    opts = TrainOptions(progress=False, chunk=1, iterations=2, seeds=2)
    train(learner, tmp_path / "a", opts)
    train(learner, tmp_path / "b", dataclasses.replace(opts, mesh="auto"))
    assert_metrics_close(metrics(tmp_path / "b"), metrics(tmp_path / "a"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@needs_four
def test_two_process_run_matches_single_device(tmp_path, single_device_run):
    """Two processes with 2 CPU devices each (jax.distributed over Gloo) train one
    seeds=2 × tasks=2 mesh through the CLI: process 0 writes the metrics, they match the
    single-device run, and the checkpoint they wrote together restores in one process."""
    import os
    import subprocess
    import sys

    argv = ["--algo", "maml", "--env", "navigation2d", "--env-arg", "horizon=10",
            "--hidden-sizes", "8", "--meta-batch-size", "4", "--inner-episodes", "2",
            "--outer-episodes", "2", "--eval-episodes", "2", "--ppo-epochs", "2",
            "--outer", "ppo", "--meta-gradient", "first_order", "--seeds", "2",
            "--iterations", "4", "--chunk", "2", "--no-progress", "--mesh", "seeds=2,tasks=2",
            "--out", str(tmp_path / "run"), "--coordinator", f"localhost:{_free_port()}",
            "--num-processes", "2"]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    procs = [subprocess.Popen([sys.executable, "-m", "jaxmeta", "train", *argv,
                               "--process-id", str(i)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert_metrics_close(metrics(tmp_path / "run"), single_device_run)
    states, step = restore_states(tiny_learner("maml", **FAST), tmp_path / "run", 0, 2)
    assert step == 4 and jax.tree.leaves(states)[0].shape[0] == 2


@pytest.mark.skipif(FOUR_DEVICES, reason="this process has 4 devices: the tests above ran here")
def test_sharding_suite_runs_with_four_devices(tmp_path):
    """This file in a child pytest with 4 virtual CPU devices (see the module docstring):
    every test above must pass there, and none may be skipped but this runner."""
    import os
    import subprocess
    import sys
    import xml.etree.ElementTree as ET
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {FORCE_FOUR}".strip()
    env["JAX_PLATFORMS"] = "cpu"
    report = tmp_path / "sharding.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           f"--junitxml={report}", __file__]
    r = subprocess.run(cmd, env=env, cwd=Path(__file__).resolve().parents[1],
                       capture_output=True, text=True, timeout=1200)
    tail = (r.stdout + r.stderr)[-6000:]
    rerun = f"XLA_FLAGS={env['XLA_FLAGS']!r} pytest tests/test_sharding.py"
    assert r.returncode == 0, f"the sharding tests failed with 4 devices ({rerun}):\n{tail}"
    suite = ET.parse(report).getroot().find("testsuite")
    counts = {k: int(suite.get(k)) for k in ("tests", "failures", "errors", "skipped")}
    # 11 tests above, and this runner skipped there (the child has 4 devices)
    assert counts["tests"] >= 12 and counts["skipped"] == 1, (counts, tail)
    assert counts["failures"] == counts["errors"] == 0, (counts, tail)
