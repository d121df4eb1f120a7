"""jaxmeta.experiment: the experiment runners' shared choices and results file."""

import argparse
import json

import numpy as np
import pytest

from jaxmeta import experiment
from jaxmeta.experiment import Results, add_run_args, choose, override, train_method, training_curve
from tests.helpers import tiny_learner


def test_choose_lists_the_choices_for_unknown_names():
    assert choose(None, ("a", "b")) == ["a", "b"]
    assert choose("b", ("a", "b")) == ["b"]
    with pytest.raises(ValueError, match=r"unknown methods \['c'\]; choose from \['a', 'b'\]"):
        choose("a,c", ("a", "b"))


def test_override_keeps_evaluations_on_the_iteration_grid():
    base = {"iterations": 100, "eval_every": 25, "seeds": 3}
    args = argparse.Namespace(iterations=50, seeds=None)
    assert override(base, args) == {"iterations": 50, "eval_every": 25, "seeds": 3}
    assert base["iterations"] == 100  # not modified in place
    with pytest.raises(ValueError, match="iterations=30 must be a multiple of eval_every=25"):
        override(base, argparse.Namespace(iterations=30, seeds=None))


def test_results_are_written_after_each_method_and_extended_later(tmp_path):
    r = Results(tmp_path / "out", "fam_small", "run.py", ["--scale", "small"], scale="small")
    r.add("maml", {"x": 1})
    first = json.loads((tmp_path / "out" / "fam_small.json").read_text())
    assert first["methods"]["maml"] == {"x": 1, "command": "python run.py --scale small"}
    assert first["scale"] == "small" and first["device"] and first["date"]
    # a later invocation for another method keeps the first record; rerunning one replaces it
    again = Results(tmp_path / "out", "fam_small", "run.py", ["--methods", "tesp"])
    again.add("tesp", {"x": 2})
    again.add("maml", {"x": 3})
    data = json.loads(again.path.read_text())
    assert {m: v["x"] for m, v in data["methods"].items()} == {"maml": 3, "tesp": 2}
    assert data["commands"] == ["python run.py --methods tesp"]
    # two invocations side by side: each one's records survive the other's writes, and a
    # record the other rewrote is not put back to what this one read when it started
    a = Results(tmp_path / "out", "fam_small", "run.py", ["--methods", "pearl"])
    b = Results(tmp_path / "out", "fam_small", "run.py", ["--methods", "maml"])
    b.add("maml", {"x": 4})
    a.add("pearl", {"x": 5})
    data = json.loads(a.path.read_text())
    assert {m: v["x"] for m, v in data["methods"].items()} == {"maml": 4, "tesp": 2, "pearl": 5}


def test_training_curve_averages_each_seed_between_evaluations():
    rows = [{"iteration": i, "seed": s, "post_return": 10.0 * i + s}
            for i in range(4) for s in (0, 1)]
    rows += [{"iteration": 2, "seed": 0, "split": "test", "post_return": 1e6}]  # evaluation
    # intervals [0, 2) and [2, 4): means of iterations 0, 1 and of 2, 3, per seed
    assert training_curve(rows, "post_return", [0, 2, 4]) == [[5.0, 6.0], [25.0, 26.0]]


def test_run_args_are_the_shared_flags():
    p = argparse.ArgumentParser()
    add_run_args(p, "vate")
    a = p.parse_args(["--seeds", "2", "--resume"])
    assert (a.out, a.runs, a.seeds, a.resume, a.iterations, a.methods) == (
        "experiments/vate/results", "runs/vate", 2, True, None, None)


def test_train_method_records_the_wall_clock_of_every_pass(tmp_path):
    learner = tiny_learner("maml", outer="ppo", meta_gradient="first_order")
    s = {"iterations": 2, "eval_every": 1, "eval_tasks": 2, "seeds": 1}
    first = train_method(learner, tmp_path / "r", s, 0, False, None, "t", ("test",), 1)
    assert first["env_steps_per_iteration"] > 0 and len(first["wall_seconds_by_pass"]) == 1
    again = train_method(learner, tmp_path / "r", {**s, "iterations": 3}, 0, True, first, "t",
                         ("test",), 1)
    assert len(again["wall_seconds_by_pass"]) == 2
    assert again["wall_seconds"] == sum(again["wall_seconds_by_pass"])
    assert again["config"] == first["config"]


def test_make_family_gives_physics_only_to_mujoco_families():
    from jaxmeta.experiment import make_family

    nav = make_family("navigation2d", "mjx", 7)  # pure JAX: physics is not its option
    assert nav.horizon == 7
    cheetah = make_family("halfcheetah_vel", "mujoco")
    assert cheetah.physics == "mujoco" and cheetah.horizon == 200


def test_scale_settings_names_the_choices_and_copies_the_sizes():
    scales = {"nav": {"small": {"seeds": 2, "sizes": {"hidden_sizes": (8,)}}}}
    s = experiment.scale_settings(scales, "small", "nav")
    s["sizes"]["hidden_sizes"] = (64,)
    assert scales["nav"]["small"]["sizes"]["hidden_sizes"] == (8,)
    with pytest.raises(ValueError, match=r"unknown family 'cheetah'; choose one of \['nav'\]"):
        experiment.scale_settings(scales, "small", "cheetah")
    with pytest.raises(ValueError, match=r"unknown scale 'huge'; choose one of \['small'\]"):
        experiment.scale_settings(scales["nav"], "huge")


def test_env_steps_per_seed_counts_init_and_updates_over_all_seeds():
    rec = {"env_steps_per_iteration": 400, "init_env_steps": 200}
    np.testing.assert_allclose(experiment.env_steps_per_seed(rec, [0, 10], 2), [100, 2100])
    assert experiment.env_steps_per_seed({"env_steps_per_iteration": 40}, 3, 4) == 30


def test_per_iteration_reads_every_stride_th_training_row(tmp_path):
    rows = [{"iteration": i, "seed": s, "gamma": i + s / 10} for i in range(4) for s in (0, 1)]
    rows.append({"iteration": 3, "seed": 0, "split": "test", "gamma": -1.0})  # an evaluation
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    got = experiment.per_iteration(tmp_path, ("gamma",), stride=2)
    assert got == {"iterations": [0, 2], "gamma": [[0.0, 0.1], [2.0, 2.1]]}
