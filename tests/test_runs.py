"""Run directories: every run can be rebuilt and evaluated from its config.json; damaged
runs get clear errors; evaluation rows during training equal ``jaxmeta eval``; the
TensorBoard log holds the scalars a person watches."""

import json
import shutil
import struct
from pathlib import Path

import jax
import jax.extend
import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from jaxmeta import cli, runs
from jaxmeta.evaluation import evaluate_run
from jaxmeta.runs import ConfigMismatchError, CorruptCheckpointError, restore_states
from jaxmeta.trainer import train
from tests.helpers import tiny_learner

FAST = dict(outer="ppo", meta_gradient="first_order")
OPTS = dict(progress=False, chunk=2, seeds=2)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """4 iterations of MAML with an evaluation every 2, checkpoints at 2 and 4."""
    out = tmp_path_factory.mktemp("run")
    train(tiny_learner("maml", **FAST), out, iterations=4, checkpoint_every=2, evaluate_every=2,
          eval_tasks=3, eval_adapt_steps=1, eval_splits=("test", "ood"), **OPTS)
    return out


def test_the_description_rebuilds_the_learner(run_dir):
    desc = runs.read_description(run_dir)
    assert (desc["format"], desc["algo"], desc["env"], desc["env_overrides"]) == (
        2, "maml", "navigation2d", {"horizon": 10})
    assert desc["config"]["inner"]["lr"] == 0.1 and desc["train"]["evaluate_every"] == 2
    assert runs.rebuild(desc).config == tiny_learner("maml", **FAST).config


def test_evaluation_rows_equal_jaxmeta_eval_of_that_checkpoint(run_dir):
    rows = [r for r in runs.read_metrics(run_dir) if "split" in r]
    assert sorted({(r["iteration"], r["split"]) for r in rows}) == [
        (i, s) for i in (0, 2, 4) for s in ("ood", "test")]
    for step in (2, 4):
        res = evaluate_run(run_dir, "ood", num_tasks=3, adapt_steps=1, seed=12345, step=step)
        mine = [r for r in rows if r["iteration"] == step and r["split"] == "ood"]
        assert [[r["pre_adapt_return"], *r["post_adapt_return"]] for r in mine] == res["per_seed"]


def read_events(path) -> list[tuple[str, int, float]]:
    """(tag, step, value) of every scalar in a TensorBoard event file (TFRecord framing:
    u64 length, u32 crc, payload, u32 crc)."""
    data, i, out = path.read_bytes(), 0, []
    while i < len(data):
        n = struct.unpack("<Q", data[i:i + 8])[0]
        event = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
        out += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
        i += 12 + n + 4
    return out


def test_tensorboard_holds_returns_losses_evaluations_and_speed(run_dir):
    files = list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert len(files) == 1
    events = read_events(files[0])
    tags = {t for t, _, _ in events}
    assert {"train/pre_return", "train/post_return", "train/loss", "train/kl",
            "eval/test/pre_adapt_return", "eval/ood/post_adapt_return/0",
            "perf/env_steps_per_s"} <= tags
    rows = runs.read_metrics(run_dir)
    post = sorted((s, v) for t, s, v in events if t == "train/post_return")
    want = [np.mean([r["post_return"] for r in rows if r["iteration"] == i and "split" not in r])
            for i in range(4)]
    np.testing.assert_allclose([v for _, v in post], want, rtol=1e-6)  # mean over seeds
    assert [s for s, _ in post] == [0, 1, 2, 3]


@pytest.mark.parametrize("content, message", [
    (None, "is not a jaxmeta run"),
    ("{not json", "is not valid JSON"),
    ('{"algo": "maml"}', "lacks ['env', 'config', 'train']"),
])
def test_eval_of_a_damaged_run_is_a_one_line_error(content, message, tmp_path, capsys):
    if content is not None:
        (tmp_path / "config.json").write_text(content)
    assert cli.main(["eval", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_corrupt_checkpoint_is_not_a_config_mismatch(tmp_path):
    out = tmp_path / "run"
    learner = tiny_learner("maml", **FAST)
    train(learner, out, iterations=2, **OPTS)
    with pytest.raises(ConfigMismatchError, match="checkpoint of iteration 2 .*does not match"):
        restore_states(tiny_learner("maml", hidden_sizes=(16,), **FAST), out, 0, 2)
    for f in (out / "checkpoints" / "2").rglob("*"):  # damage the array data
        if f.is_file() and f.parent.name == "d":
            f.write_bytes(b"garbage" * 10)
    with pytest.raises(CorruptCheckpointError, match=r"checkpoint of iteration 2 at .*"
                                                     r"checkpoints/2 is corrupt"):
        restore_states(learner, out, 0, 2)
    with pytest.raises(CorruptCheckpointError, match="iteration 2"):
        train(learner, out, iterations=4, resume=True, **OPTS)
    (out / "checkpoints" / "2" / "default" / "_METADATA").write_text("{")
    assert cli.main(["eval", str(out)]) == 2  # unreadable metadata: corrupt, one line


def test_the_recorded_config_is_the_one_that_trains(tmp_path):
    """tesp_v4 fixes inner_lr = 0: config.json says so (it once said what the flag asked)."""
    assert cli.main(["train", "--algo", "tesp_v4", "--iterations", "1", "--out",
                     str(tmp_path), "--no-progress", "--env-arg", "horizon=5",
                     "--hidden-sizes", "4", "--gru-size", "2", "--meta-batch-size", "2",
                     "--inner-episodes", "2", "--outer-episodes", "2", "--eval-episodes", "2",
                     "--buffer-size", "2", "--inner-steps", "1", "--ppo-epochs", "1"]) == 0
    desc = json.loads((tmp_path / "config.json").read_text())
    assert (desc["config"]["inner"]["lr"], desc["config"]["inner"]["optimizer"]) == (0.0, "sgd")


@pytest.mark.golden
def test_a_run_written_before_the_nested_configs_still_loads_and_resumes(tmp_path):
    """tests/fixtures/run_v1: MAML (PPO, meta_gradient="exact", 2 seeds, 2 iterations)
    written by commit 343aad2: a flat config.json and checkpoints without ``hyper``."""
    run = tmp_path / "old"
    shutil.copytree(Path(__file__).parent / "fixtures" / "run_v1", run)
    with pytest.warns(DeprecationWarning, match="'exact' is deprecated"):
        res = evaluate_run(run, num_tasks=3, adapt_steps=1)
    # what that commit's `jaxmeta eval --num-tasks 3 --adapt-steps 1` printed
    assert res["per_seed"] == [[-6.713106632232666, -4.716421127319336],
                               [-6.711156368255615, -4.723755359649658]]
    with pytest.warns(DeprecationWarning):
        learner = runs.rebuild(runs.read_description(run))
    assert learner.config.meta_gradient == "dice"
    _, rows = train(learner, run, resume=True, iterations=3, seeds=2, chunk=2, progress=False)
    assert [r["iteration"] for r in rows] == [2, 2]
    assert [r["iteration"] for r in runs.read_metrics(run)] == [0, 0, 1, 1, 2, 2]


def _qr_operands(jaxpr) -> list:
    """The operands of every QR-family primitive in ``jaxpr`` and its sub-jaxprs."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("geqrf", "householder_product", "qr"):
            found.append(eqn.invars[0].aval)
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            found += _qr_operands(sub)
    return found


def test_initial_states_decompose_one_matrix_at_a_time():
    # A vmapped init batches the orthogonal initialisers' QR decompositions; jaxlib's CPU
    # kernels then wait for their own tasks inside XLA's intra-op pool and, two at once on
    # a 2-core CPU, hang (seen with the pretrained baseline's [100, 100] policy + critic).
    learner = tiny_learner("pretrained")
    keys = runs.member_keys(0, 3, ())
    hypers = runs.sweep.member_hypers(learner, (), 3)
    operands = _qr_operands(jax.make_jaxpr(runs.compiled_init(learner.init))(keys,
                                                                            hypers).jaxpr)
    assert operands and all(a.ndim == 2 for a in operands), operands
    # and the states are those of each seed's own init, bit for bit
    states = runs.compiled_init(learner.init)(keys, hypers)
    for i in range(3):
        one = jax.jit(learner.init)(keys[i], jax.tree.map(lambda x: x[i], hypers))
        jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a)[i], b),
                     jax.tree.map(_data, states), jax.tree.map(_data, one))


def _data(x):
    return jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
