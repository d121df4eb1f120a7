"""experiments/seed002/maesn and experiments/seed002/epg: the runners refuse bad names before
anything compiles, build what they say (MAML on the dense variant, latent-only MAESN),
and run end to end through the trainer at the smoke scale; the reports draw and tabulate
what the runners wrote."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1] / "experiments" / "seed002"


def load(method, name):
    spec = importlib.util.spec_from_file_location(f"{method}_{name}",
                                                  ROOT / method / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_maesn_methods_train_dense_and_adapt_sparse():
    run = load("maesn", "run")
    s = run.scale_settings("smoke")
    trainer, sparse = run.method_learners("maml", s)
    assert trainer.family.env_spec.overrides == {"reward": "dense"}
    assert sparse.family.env_spec.overrides == {}
    trainer, sparse = run.method_learners("maesn", s)
    assert trainer is sparse and not trainer.config.adapt_policy
    assert trainer.config.train_reward == "dense"
    assert run.method_learners("maesn_policy", s)[0].config.adapt_policy
    assert not run.method_learners("latent_space", s)[0].config.train_inner


@pytest.mark.parametrize("method, argv, message", [
    ("maesn", ["--scale", "huge"], "unknown scale 'huge'"),
    ("maesn", ["--methods", "reptile"], "unknown methods \\['reptile'\\]"),
    ("epg", ["--methods", "ppo"], "unknown methods \\['ppo'\\]"),
])
def test_bad_names_are_refused(method, argv, message, tmp_path):
    run = load(method, "run")
    with pytest.raises(ValueError, match=message):
        run.main([*argv, "--out", str(tmp_path / "o"), "--runs", str(tmp_path / "r")])


@pytest.mark.parametrize("method, stem, first", [
    ("maesn", "navigation2d_sparse_smoke", "maesn"), ("epg", "navigation2d_smoke", "epg")])
def test_smoke_run_and_report(method, stem, first, tmp_path):
    run, report = load(method, "run"), load(method, "report")
    out = tmp_path / "out"
    run.main(["--scale", "smoke", "--methods", first, "--out", str(out), "--runs",
              str(tmp_path / "runs")])
    result = json.loads((out / f"{stem}.json").read_text())
    rec = result["methods"][first]
    assert rec["iteration"] == 2
    report.main(["--results", str(out / f"{stem}.json")])
    assert (out / f"fig_{stem}.png").stat().st_size > 0
    assert first in (out / f"results_{stem}.md").read_text().lower()
