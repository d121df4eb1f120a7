"""experiments/seed002/metagrad: run.py builds each method's config (learned η from η₀,
fixed at η₀, fixed at η̄), refuses bad names before anything compiles, and runs end to end
through the trainer at the smoke scale, resuming; report.py's numbers and drawings."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parents[1] / "experiments" / "seed002" / "metagrad"


def load(name):
    spec = importlib.util.spec_from_file_location(f"metagrad_{name}", ROOT / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


run, report = load("run"), load("report")


def test_method_configs():
    s = run.scale_settings("navigation2d", "small")
    algo, cfg = run.method_config("metagrad", s)
    assert algo == "metagrad" and cfg.eta.learn == "gamma_lambda" and cfg.observe_task
    assert (cfg.eta.init_gamma, cfg.eta.init_lambda) == s["eta0"]
    assert (cfg.eta.ref_gamma, cfg.eta.ref_lambda) == s["ref"]
    algo, fixed = run.method_config("fixed", s)
    assert algo == "metagrad_fixed" and fixed.eta.learn == "none"
    assert (fixed.eta.init_gamma, fixed.eta.init_lambda) == s["eta0"]
    _, ref = run.method_config("fixed_ref", s)
    assert (ref.eta.init_gamma, ref.eta.init_lambda) == s["ref"] == (0.99, 1.0)
    # the three differ only in η
    assert fixed.ac == cfg.ac == ref.ac and fixed.policy == cfg.policy


def test_bad_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="navigation2d"):
        run.main(["--family", "ant_vel"])
    with pytest.raises(ValueError, match="choose one of"):
        run.scale_settings("navigation2d", "huge")
    with pytest.raises(ValueError, match="fixed_ref"):
        run.main(["--methods", "metagrad,maml"])
    with pytest.raises(ValueError, match="multiple of eval_every"):
        run.main(["--iterations", "33", "--out", "/nonexistent/never-written"])


def test_smoke_run_resumes_and_reports(tmp_path):
    args = ["--family", "navigation2d", "--scale", "smoke", "--out", str(tmp_path / "out"),
            "--runs", str(tmp_path / "runs"), "--methods", "metagrad,fixed"]
    run.main(args)
    path = tmp_path / "out" / "navigation2d_smoke.json"
    first = json.loads(path.read_text())
    m = first["methods"]["metagrad"]
    assert m["iterations"] == [0, 2, 4] and np.asarray(m["returns"]).shape == (3, 1, 1)
    assert m["eta"]["iterations"] == [0, 1, 2, 3]
    assert first["methods"]["fixed"]["eta"]["gamma"] == [[np.float32(0.9).item()]] * 4
    # η moved in the learned run only
    assert m["eta"]["gamma"][-1][0] != first["methods"]["fixed"]["eta"]["gamma"][-1][0]
    # continuing the finished runs trains nothing new and keeps the numbers
    run.main([*args, "--resume"])
    again = json.loads(path.read_text())
    assert again["methods"]["metagrad"]["returns"] == m["returns"]
    assert len(again["methods"]["metagrad"]["wall_seconds_by_pass"]) == 2
    report.main(["--results", str(path)])
    for name in ("fig_navigation2d_smoke.png", "results_navigation2d_smoke.md"):
        assert (tmp_path / "out" / name).stat().st_size > 0


def _method(rets, gamma, seeds=2):
    its = [0, 10, 20, 30]
    return {"iterations": its, "returns": [[[r] for r in row] for row in rets],
            "env_steps_per_iteration": 100 * seeds, "init_env_steps": 100 * seeds,
            "wall_seconds": 120.0, "settings": {"seeds": seeds},
            "eta": {"iterations": its, "gamma": [[g] * seeds for g in gamma],
                    "lambda": [[0.9] * seeds] * 4}}


def test_report_numbers():
    learned = _method([[0, 0], [1, 2], [3, 4], [5, 8]], [0.9, 0.8, 0.7, 0.6])
    fixed = _method([[0, 0], [1, 1], [2, 2], [3, 4]], [0.9] * 4)
    r = {"family": "navigation2d", "scale": "small", "split": "test", "physics": "pure JAX",
         "device": "cpu", "jax": "0", "date": "today", "commands": ["run.py"],
         "methods": {"metagrad": learned, "fixed": fixed},
         "settings": {"seeds": 2, "eval_tasks": 4}}
    # per seed: the initial batch, then 100 steps per iteration
    np.testing.assert_allclose(report.env_steps(learned, [0, 30]), [100, 3100])
    np.testing.assert_allclose(report.late(learned), [4, 6])  # evaluations 2 and 3
    text = report.table(r)
    assert ("| meta-gradient (γ, λ learned) | 6.50 ± 1.50 | 5.00 ± 1.00 | 0.600 ± 0.000 | "
            "0.900 ± 0.000 | 3k | 2.0 |") in text
    assert "| fixed at η₀ | +3.00 (+2.00, +4.00) | +2.25 (+1.50, +3.00) |" in text
