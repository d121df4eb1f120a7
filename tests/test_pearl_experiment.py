"""experiments/pearl: run.py gives each method its own settings and refuses bad names and
fields before anything compiles; report.py counts env steps (PEARL's initial filling
included), finds where PEARL reaches an on-policy method's final return, and draws."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parents[1] / "experiments" / "pearl"


def load(name):
    spec = importlib.util.spec_from_file_location(f"pearl_{name}", ROOT / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


run, report = load("run"), load("report")


def test_method_settings_and_configs():
    s = run.scale_settings("navigation2d_sparse", "small")
    pearl = run.method_settings(s, "pearl")
    assert pearl["seeds"] == 2 and pearl["iterations"] == 300 and "maml" not in pearl
    cfg = run.method_config("pearl", pearl)
    assert cfg.sac.critic_reward == "dense" and cfg.collect.num_train_tasks == 40
    maml = run.method_config("maml", run.method_settings(s, "maml"))
    assert (maml.sampling.inner_episodes, maml.sampling.outer_episodes) == (20, 20)
    rl2 = run.method_config("rl2", run.method_settings(s, "rl2"))
    assert rl2.trial.trial_episodes == s["adapt_episodes"]
    # PEARL and RL² adapt over the trial's episodes, MAML by one gradient step
    assert run.adapt_steps("pearl", pearl) == 4 and run.adapt_steps("maml", pearl) == 1
    with pytest.raises(ValueError, match=r"maml has no config fields \['latent_size'\]"):
        run.method_config("maml", {**run.method_settings(s, "maml"), "latent_size": 3})


def test_bad_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="navigation2d_sparse"):
        run.main(["--family", "ant_vel"])
    with pytest.raises(ValueError, match="choose one of"):
        run.scale_settings("navigation2d_sparse", "huge")
    with pytest.raises(ValueError, match="rl2"):
        run.main(["--methods", "pearl,vate"])
    with pytest.raises(ValueError, match="multiple of eval_every"):
        run.main(["--scale", "small", "--iterations", "30", "--methods", "pearl",
                  "--out", "/nonexistent/never-written"])


def method(its, rets, per_it, init, seeds=2):
    return {"iterations": its, "returns": rets, "env_steps_per_iteration": per_it * seeds,
            "init_env_steps": init * seeds, "wall_seconds": 60.0, "settings": {"seeds": seeds}}


def result():
    # returns[eval][seed][before, after]
    pearl = method([0, 10, 20], [[[0, 1], [0, 1]], [[1, 3], [1, 5]], [[2, 6], [2, 8]]], 100,
                   500)
    maml = method([0, 100], [[[0, 0], [0, 0]], [[1, 4], [1, 4]]], 1000, 0)
    return {"family": "navigation2d_sparse", "scale": "small", "split": "test",
            "physics": "pure JAX", "device": "cpu", "jax": "0", "date": "today",
            "commands": ["run.py"], "methods": {"pearl": pearl, "maml": maml},
            "settings": {"seeds": 2, "eval_tasks": 4, "adapt_episodes": 2}}


def test_env_steps_and_steps_to_reach():
    r = result()
    # per seed: PEARL's 500 initial steps, then 100 per iteration
    np.testing.assert_allclose(report.env_steps(r["methods"]["pearl"]), [500, 1500, 2500])
    # MAML ends at 4.0 after 100k steps per seed; PEARL's mean first reaches 4 at it. 10
    assert report.steps_to_reach(r["methods"]["pearl"], 4.0) == 1500
    assert report.steps_to_reach(r["methods"]["pearl"], 9.0) is None
    # the untrained evaluation (iteration 0) does not count, even when it is high enough
    assert report.steps_to_reach(r["methods"]["pearl"], 1.0) == 1500
    text = report.table(r)
    assert "| PEARL | 2.00 ± 0.00 | 7.00 ± 1.00 | 20 | 2k | 1.0 |" in text
    assert "| MAML (TRPO) | 4.00 | 100k | 2k | 67× |" in text


def test_report_draws_figure_and_table(tmp_path):
    path = tmp_path / "navigation2d_sparse_small.json"
    path.write_text(json.dumps(result()))
    report.main(["--results", str(path)])
    for name in ("fig_navigation2d_sparse_small.png", "results_navigation2d_sparse_small.md"):
        assert (tmp_path / name).stat().st_size > 0
