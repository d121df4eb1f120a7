"""Sweeps over traced hyperparameters: one compiled program for every value × seed, rows
that carry the values, evaluation and plots per value, and bad input refused up front."""

import json

import numpy as np
import pytest

from jaxmeta import cli, sweep
from jaxmeta.evaluation import evaluate_run
from jaxmeta.trainer import TrainOptions, compiled_chunk, train
from tests.helpers import tiny_learner

FAST = dict(outer="ppo", meta_gradient="first_order")
OPTS = dict(progress=False, chunk=2, iterations=2, seeds=2)


@pytest.mark.parametrize("items, message", [
    (["inner_lr"], "--sweep expects FIELD=V1,V2,..., got 'inner_lr'"),
    (["=0.1"], "--sweep expects FIELD=V1,V2"),
    (["inner_lr="], "--sweep inner_lr: empty value"),
    (["inner_lr=0.1,"], "--sweep inner_lr: empty value"),
    (["inner_lr=a,b"], "--sweep inner_lr: values must be numbers"),
    (["inner_lr=0.1,0.1"], "--sweep inner_lr: repeated value"),
    (["gamma=0.9", "gamma=0.99"], "--sweep gamma is given twice"),
])
def test_malformed_sweeps_are_refused(items, message):
    with pytest.raises(ValueError, match=message):
        sweep.parse(items)


@pytest.mark.parametrize("algo, items, message", [
    ("maml", ["innerlr=0.1"], "maml has no field 'innerlr'; sweepable fields: gae_lambda, "
                              "gamma, inner_lr, max_kl, ppo_clip, ppo_lr"),
    ("maml", ["inner_steps=1,2"], "inner_steps is static .* cannot be swept"),
    ("maml", ["meta_batch_size=4,8"], "meta_batch_size is static"),
    ("tesp_v4", ["inner_lr=0.1,0.2"], "tesp_v4 fixes inner_lr; sweepable fields: eta, "),
    ("maml", ["gamma=0.9,1.5"], "gamma must satisfy 0 <= gamma <= 1, got 1.5"),
])
def test_fields_that_cannot_be_swept_are_refused(algo, items, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        train(tiny_learner(algo), tmp_path / "r", sweep=sweep.parse(items), **OPTS)
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_a_sweep_trains_every_value_in_one_program(tmp_path):
    learner = tiny_learner("maml", **FAST)  # cached: another test may have trained it before
    before = compiled_chunk(learner.update)._cache_size()
    _, rows = train(learner, tmp_path / "s", sweep=sweep.parse(["inner_lr=0.05,0.2"]), **OPTS)
    assert compiled_chunk(learner.update)._cache_size() <= before + 1  # one program at most
    assert [(r["sweep"]["inner_lr"], r["seed"]) for r in rows[:4]] == [
        (0.05, 0), (0.05, 1), (0.2, 0), (0.2, 1)]
    by = {(r["iteration"], r["sweep"]["inner_lr"], r["seed"]): r for r in rows}
    # every value sees the same seeds: the same pre-adaptation episodes at iteration 0
    for s in (0, 1):
        assert by[(0, 0.05, s)]["pre_return"] == by[(0, 0.2, s)]["pre_return"]
        assert by[(0, 0.05, s)]["post_return"] != by[(0, 0.2, s)]["post_return"]
    # ... and each equals a run with that value in its config (float32 rounding aside: the
    # batch of 4 members reduces in another order than a batch of 2)
    _, single = train(tiny_learner("maml", inner_lr=0.2, **FAST), tmp_path / "one", **OPTS)
    for r in single:
        mine = by[(r["iteration"], 0.2, r["seed"])]
        for k in ("pre_return", "post_return", "loss"):
            np.testing.assert_allclose(mine[k], r[k], rtol=1e-3, atol=1e-4, err_msg=k)
    desc = json.loads((tmp_path / "s" / "config.json").read_text())
    assert desc["train"]["sweep"] == [["inner_lr", [0.05, 0.2]]]
    assert sorted(p.name for p in (tmp_path / "s" / "tb").iterdir()) == ["inner_lr=0.05",
                                                                         "inner_lr=0.2"]


def test_a_grid_of_two_fields():
    pts = sweep.points(sweep.parse(["inner_lr=0.05,0.2", "gamma=0.9,0.99"]))
    assert pts == [{"inner_lr": 0.05, "gamma": 0.9}, {"inner_lr": 0.05, "gamma": 0.99},
                   {"inner_lr": 0.2, "gamma": 0.9}, {"inner_lr": 0.2, "gamma": 0.99}]
    members = sweep.members(sweep.parse(["gamma=0.9,0.99"]), 3, 2)
    assert members == [{"seed": 3, "sweep": {"gamma": 0.9}}, {"seed": 4, "sweep": {"gamma": 0.9}},
                       {"seed": 3, "sweep": {"gamma": 0.99}},
                       {"seed": 4, "sweep": {"gamma": 0.99}}]


def test_cli_sweep_eval_and_plot_report_each_value(tmp_path, capsys):
    out = str(tmp_path / "run")
    argv = ["train", "--env-arg", "horizon=10", "--seeds", "2", "--iterations", "2", "--chunk",
            "2", "--sweep", "inner_lr=0.05,0.2", "--out", out, "--no-progress",
            "--hidden-sizes", "8", "--meta-batch-size", "3", "--inner-episodes", "2",
            "--outer-episodes", "2", "--eval-episodes", "2", "--ppo-epochs", "2",
            "--outer", "ppo", "--meta-gradient", "first_order"]
    assert cli.main(argv) == 0
    assert "2 seed(s) x 2 sweep points" in capsys.readouterr().out
    assert cli.main(["eval", out, "--json", "--num-tasks", "3", "--adapt-steps", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [p["point"] for p in res["sweep"]] == [{"inner_lr": 0.05}, {"inner_lr": 0.2}]
    assert all(len(p["per_seed"]) == 2 and len(p["post_adapt_return"]) == 1
               for p in res["sweep"])
    assert res == evaluate_run(out, num_tasks=3, adapt_steps=1)
    assert cli.main(["plot", out]) == 0
    assert (tmp_path / "run" / "curves.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("sweep_arg, message", [
    ("inner_lr", "--sweep expects FIELD=V1,V2,..., got 'inner_lr'"),
    ("inner_lr=", "--sweep inner_lr: empty value"),
    ("inner_lr=0.1,x", "--sweep inner_lr: values must be numbers"),
    ("hidden_sizes=4,8", "hidden_sizes is static"),
    ("inner_rate=0.1", "has no field 'inner_rate'; sweepable fields"),
])
def test_cli_refuses_bad_sweeps_in_one_line(sweep_arg, message, tmp_path, capsys):
    assert cli.main(["train", "--sweep", sweep_arg, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_options_keep_a_sweep_json_round_trippable():
    o = TrainOptions(sweep=[["inner_lr", [0.05, 0.2]]])
    assert o.sweep == (("inner_lr", (0.05, 0.2)),)
