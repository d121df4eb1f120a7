"""Trainer: determinism, vmap over seeds, bit-exact resume, non-finite values, bad input,
and the CLI end to end."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmeta import cli
from jaxmeta.protocol import MetaLearner
from jaxmeta.runs import restore_states
from jaxmeta.trainer import ConfigMismatchError, NonFiniteError, TrainOptions, train
from tests.helpers import tiny_learner

OPTS = dict(progress=False, chunk=2)
# The trainer's guarantees do not depend on the method; a first-order PPO MAML compiles
# several times faster than the TRPO default (TRPO is covered in test_algorithms).
FAST = dict(outer="ppo", meta_gradient="first_order")


def read_metrics(path):
    return [json.loads(ln) for ln in (path / "metrics.jsonl").read_text().splitlines()]


def test_same_seed_same_metrics_bit_for_bit(tmp_path):
    learner = tiny_learner("maml", **FAST)
    _, a = train(learner, tmp_path / "a", TrainOptions(iterations=4, seeds=2, **OPTS))
    _, b = train(learner, tmp_path / "b", TrainOptions(iterations=4, seeds=2, **OPTS))
    assert a == b
    assert read_metrics(tmp_path / "a") == read_metrics(tmp_path / "b")
    assert len(a) == 4 * 2 and {r["seed"] for r in a} == {0, 1}


def test_vmapped_seeds_equal_single_seed_runs(tmp_path):
    """Seed s of a 3-seed vmapped run equals a single run of seed s up to float32
    rounding: XLA's CPU kernels reduce batched matmuls in another order than unbatched
    ones, and TRPO's CG and line search amplify the drift over iterations (measured:
    relative |Δ| up to ~4e-4 after 4 iterations). A wrong per-seed key derivation would
    differ by O(1). Runs with the same seeds *and* seed count are bit-exact (test above)."""
    learner = tiny_learner("maml", **FAST)
    _, batched = train(learner, tmp_path / "all", TrainOptions(iterations=2, seeds=3, **OPTS))
    for s in range(3):
        _, single = train(
            learner, tmp_path / f"s{s}", TrainOptions(iterations=2, seeds=1, seed=s, **OPTS)
        )
        mine = [r for r in batched if r["seed"] == s]
        assert len(mine) == len(single) == 2
        for x, y in zip(mine, single, strict=True):
            assert x.keys() == y.keys()
            for k in x:
                np.testing.assert_allclose(x[k], y[k], rtol=1e-3, atol=1e-4, err_msg=k)


def test_resume_is_bit_exact(tmp_path):
    """Including the evaluation rows (``evaluate_every``): the evaluation at the resumed
    iteration is recomputed from the restored state."""
    learner = tiny_learner("maml", **FAST)
    full = TrainOptions(iterations=6, seeds=2, checkpoint_every=2, evaluate_every=2,
                        eval_tasks=2, eval_adapt_steps=1, eval_splits=("test",), **OPTS)
    train(learner, tmp_path / "full", full)
    train(learner, tmp_path / "cut", full, iterations=4)
    # a crash after a checkpoint may leave extra metric lines; they are recomputed
    with (tmp_path / "cut" / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"iteration": 4, "seed": 0, "loss": 123.0}) + "\n")
    train(learner, tmp_path / "cut", full, resume=True)
    rows = read_metrics(tmp_path / "full")
    assert rows == read_metrics(tmp_path / "cut")
    assert [r["iteration"] for r in rows if "split" in r] == [0, 0, 2, 2, 4, 4, 6, 6]


def _poisoned(learner: MetaLearner, at: int, loss: bool = True) -> MetaLearner:
    """``learner`` whose parameters (and loss, unless ``loss=False``) become NaN at
    iteration ``at``."""

    def update(state):
        state, m = learner.update(state)
        bad = state.iteration == at + 1
        if loss:
            m = dict(m, loss=jnp.where(bad, jnp.nan, m["loss"]))
        params = jax.tree.map(lambda p: jnp.where(bad, jnp.nan, p), state.params)
        return state.replace(params=params), m

    return learner._replace(update=update)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    base = tiny_learner("maml", **FAST)
    learner = _poisoned(base, at=5)
    out = tmp_path / "nan"
    with pytest.raises(
        NonFiniteError,
        match=r"non-finite loss.* at iteration 5 \(seed 0\).*last good checkpoint: "
        r"iteration 4",
    ):
        train(learner, out, TrainOptions(iterations=10, seeds=1, checkpoint_every=2, **OPTS))
    its = [r["iteration"] for r in read_metrics(out)]
    assert its == [0, 1, 2, 3, 4]
    states, step = restore_states(base, out, 0, 1)
    assert step == 4 and int(states.iteration[0]) == 4
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(states.params))


def test_nan_parameters_stop_even_with_a_finite_loss(tmp_path):
    """random_init's loss is a constant 0: the parameters are checked too."""
    learner = _poisoned(tiny_learner("random_init"), at=2, loss=False)
    with pytest.raises(NonFiniteError, match=r"non-finite parameters .* at iteration 2 "
                                             r"\(seed 1\)"):
        train(learner, tmp_path, TrainOptions(iterations=4, seeds=2, seed=1, **OPTS))
    assert [r["iteration"] for r in read_metrics(tmp_path)] == [0, 0, 1, 1]


def test_nan_before_first_checkpoint_keeps_metrics(tmp_path):
    learner = _poisoned(tiny_learner("maml", **FAST), at=1)
    out = tmp_path / "early"
    opts = TrainOptions(iterations=4, checkpoint_every=4, **OPTS)
    with pytest.raises(NonFiniteError, match="iteration 1 .*no checkpoint was written yet"):
        train(learner, out, opts)
    before = (out / "metrics.jsonl").read_text()
    assert [json.loads(ln)["iteration"] for ln in before.splitlines()] == [0]
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(tiny_learner("maml", **FAST), out, opts)
    assert (out / "metrics.jsonl").read_text() == before
    # with no checkpoint to resume from, resuming starts again from iteration 0
    with pytest.warns(UserWarning, match="no checkpoint yet; resuming from iteration 0"):
        train(tiny_learner("maml", **FAST), out, opts, resume=True)
    assert [r["iteration"] for r in read_metrics(out)] == [0, 1, 2, 3]


def test_resume_with_another_config_is_refused(tmp_path):
    out = tmp_path / "run"
    train(tiny_learner("maml", **FAST), out, TrainOptions(iterations=2, **OPTS))
    before = (out / "metrics.jsonl").read_text()
    with pytest.raises(ConfigMismatchError, match=r"config.inner.lr: saved 0.1, requested 0.5"):
        train(tiny_learner("maml", inner_lr=0.5, **FAST), out, TrainOptions(iterations=4, **OPTS),
              resume=True)
    with pytest.raises(FileExistsError, match="resume"):
        train(tiny_learner("maml", **FAST), out, TrainOptions(iterations=2, **OPTS))
    assert (out / "metrics.jsonl").read_text() == before  # nothing written is lost


def test_checkpoint_of_another_shape_is_refused(tmp_path):
    out = tmp_path / "run"
    train(tiny_learner("maml", **FAST), out, TrainOptions(iterations=2, **OPTS))
    with pytest.raises(ConfigMismatchError, match="does not match"):
        restore_states(tiny_learner("maml", hidden_sizes=(16,), **FAST), out, 0, 1)


def test_train_options_validation():
    with pytest.raises(ValueError, match="seeds must be a positive integer"):
        TrainOptions(seeds=0)
    with pytest.raises(ValueError, match="iterations"):
        TrainOptions(iterations=-1)
    with pytest.raises(ValueError, match="evaluate_every must be an integer >= 0"):
        TrainOptions(evaluate_every=-5)
    with pytest.raises(ValueError, match="split='val'"):
        TrainOptions(eval_splits=("test", "val"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train", "--algo", "reptile", "--out", "x"],
            "unknown algo 'reptile'; registered algos: adaptsv, epg, epg_pg, maesn, "
            "maesn_latent_space, maml, meta_sgd, metagrad, ",
        ),
        (
            ["train", "--env", "cartpole", "--out", "x"],
            "unknown env 'cartpole'; registered envs: ant_dir, ",
        ),
        (["train", "--meta-batch-size", "0", "--out", "x"], "meta_batch_size must be a positive"),
        (["train", "--seeds", "-1", "--out", "x"], "seeds must be a positive integer"),
        (["train", "--outer", "adam", "--out", "x"], "outer='adam' is not valid"),
        (["train", "--algo", "tesp_v4", "--inner-lr", "0.1", "--out", "x"],
         "tesp_v4 fixes inner_lr=0.0"),
        (["train", "--evaluate-every", "2", "--eval-splits", "test,val", "--out", "x"],
         "split='val'"),
    ],
)
def test_cli_bad_input(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before anything was written


def test_cli_train_eval_plot_end_to_end(tmp_path, capsys):
    out = str(tmp_path / "run")
    args = [
        "train",
        "--algo",
        "maml",
        "--env",
        "navigation2d",
        "--env-arg",
        "horizon=10",
        "--seeds",
        "2",
        "--iterations",
        "2",
        "--out",
        out,
        "--no-progress",
        "--hidden-sizes",
        "8",
        "--meta-batch-size",
        "3",
        "--inner-episodes",
        "2",
        "--outer-episodes",
        "2",
        "--eval-episodes",
        "2",
        "--cg-iters",
        "3",
        "--ls-max-backtracks",
        "4",
        "--ppo-epochs",
        "2",
        "--outer",
        "ppo",
        "--meta-gradient",
        "first_order",
        "--remat",
        "false",
    ]
    assert cli.main(args) == 0
    desc = json.loads((tmp_path / "run" / "config.json").read_text())
    assert desc["config"]["policy"]["hidden_sizes"] == [8] and desc["train"]["seeds"] == 2
    assert desc["config"]["outer"] == "ppo" and desc["config"]["remat"] is False
    capsys.readouterr()
    assert (
        cli.main(
            ["eval", out, "--split", "test", "--adapt-steps", "3", "--json", "--num-tasks", "4"]
        )
        == 0
    )
    res = json.loads(capsys.readouterr().out)
    assert res["split"] == "test" and res["num_tasks"] == 4
    assert isinstance(res["pre_adapt_return"], float) and len(res["post_adapt_return"]) == 3
    assert cli.main(["eval", out, "--split", "val"]) == 2
    assert "split='val'" in capsys.readouterr().err
    assert cli.main(["plot", out]) == 0
    png = tmp_path / "run" / "curves.png"
    assert png.exists() and png.read_bytes()[:4] == b"\x89PNG"
