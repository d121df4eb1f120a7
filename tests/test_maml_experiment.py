"""experiments/maml: run.py reads the trainer's evaluation rows into the return after
0..K gradient steps per seed, refuses bad names before anything compiles, and report.py
aggregates over seeds (mean ± std) and draws both figures."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parents[1] / "experiments" / "maml"


def load(name):
    spec = importlib.util.spec_from_file_location(f"maml_{name}", ROOT / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


run, report = load("run"), load("report")


def write_metrics(path: Path) -> None:
    rows = []
    for it in (0, 2):
        for seed in (0, 1):
            rows.append({"iteration": it, "seed": seed, "split": "test",
                         "pre_adapt_return": -10.0 - seed + it,
                         "post_adapt_return": [-8.0 - seed + it, -7.0 + it, -6.5 + it]})
    for it in range(2):
        for seed in (0, 1):
            rows.append({"iteration": it, "seed": seed, "pre_return": -20.0 + it,
                         "post_return": -18.0 + it + seed})
    rows.append({"iteration": 2, "seed": 0, "kind": "perf", "env_steps_per_s": 1.0})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_summary_reads_returns_after_each_gradient_step(tmp_path):
    write_metrics(tmp_path / "metrics.jsonl")
    s = run.summary(tmp_path)
    assert s["iterations"] == [0, 2]
    # [evaluations][seeds][0..3 steps]
    np.testing.assert_array_equal(s["returns"][1], [[-8, -6, -5, -4.5], [-9, -7, -5, -4.5]])
    # one training interval [0, 2): mean post-adaptation return per seed
    assert s["train_return_key"] == "post_return"
    np.testing.assert_allclose(s["train_return"], [[-17.5, -16.5]])


def test_bad_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="halfcheetah_dir"):
        run.main(["--family", "ant_vel"])
    with pytest.raises(ValueError, match="choose one of"):
        run.scale_settings("huge")
    with pytest.raises(ValueError, match="random_init"):
        run.main(["--methods", "maml,rl2"])


def result(tmp_path):
    write_metrics(tmp_path / "metrics.jsonl")
    m = {**run.summary(tmp_path), "wall_seconds": 60.0}
    return {"family": "halfcheetah_vel", "scale": "small", "adapt_steps": 3, "split": "test",
            "physics": "mujoco", "device": "cpu", "jax": "0", "date": "today",
            "commands": ["run.py"], "settings": dict(run.SCALES["small"]),
            "methods": {"maml": m, "random_init": m}}


def test_the_table_has_mean_and_std_over_seeds_after_each_step(tmp_path):
    text = report.table([result(tmp_path)])
    row = next(line for line in text.splitlines() if line.startswith("| MAML"))
    # last evaluation: 0 steps (-8, -9), 1 step (-6, -7), 2 and 3 steps equal over seeds
    assert row == "| MAML | -8.5 ± 0.5 | -6.5 ± 0.5 | -5.0 ± 0.0 | -4.5 ± 0.0 | 1.0 |"
    assert "C MuJoCo" in text and "2.0 min for all methods" in text


def test_both_figures_are_drawn(tmp_path):
    r = result(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "halfcheetah_vel_small.json").write_text(json.dumps(r))
    report.main(["--dir", str(tmp_path / "out"), "--scale", "small"])
    for name in ("fig5_small.png", "curves_small.png", "results_small.md"):
        assert (tmp_path / "out" / name).stat().st_size > 0
