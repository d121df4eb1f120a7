"""Bad input, systematically: a command line or config either trains (finite metrics) or is
refused with one ``error:`` line naming the field, before anything compiles; never a
traceback, never a NaN.

- property tests (hypothesis) over ``python -m jaxmeta train`` and ``eval`` command lines:
  values of every MAML config field and training option, valid or not, labelled by the
  domains below (written here, independently of the validators), run up to the point
  where training would compile;
- a property test that trains one iteration at generated values of the traced
  hyperparameters (one compiled program serves them all), and fixed valid configs at the
  edges of the domains, trained through the CLI;
- the cases the issue listed, one by one, and the API's refusals (evaluate, MJX splits).
"""

import contextlib
import io
import itertools
import re
from pathlib import Path
from unittest import mock

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxmeta import cli, envs, evaluation, runs
from jaxmeta import config as config_lib
from jaxmeta.algorithms import MAMLConfig
from jaxmeta.trainer import NonFiniteError, TrainOptions, train
from tests.helpers import tiny_learner

COMPILES = [0]  # programs lowered (compiled, or loaded from the persistent cache)
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: COMPILES.__setitem__(0, COMPILES[0] + (
        event == "/jax/core/compile/jaxpr_to_mlir_module_duration")))

FAST = dict(outer="ppo", meta_gradient="first_order")
SETTINGS = dict(deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


class Accepted(Exception):
    """Raised where training would compile its first program: the input was accepted."""


# --- domains: (kind, ...) per flat field of MAMLConfig ---------------------------------------

DOMAINS = {
    "hidden_sizes": ("sizes",), "activation": ("choice", "relu", "tanh"),
    "init_std": ("float", 0, None, True, False),
    "meta_batch_size": ("int", 1), "inner_episodes": ("int", 1), "outer_episodes": ("int", 1),
    "eval_episodes": ("int", 1),
    "gamma": ("float", 0, 1, False, False), "gae_lambda": ("float", 0, 1, False, False),
    "baseline": ("choice", "linear", "none"),
    "inner_steps": ("int", 1), "inner_lr": ("float", 0, None, False, False),
    "inner_optimizer": ("choice", "sgd", "meta_sgd"), "inner_normalize_advantages": ("bool",),
    "meta_gradient": ("choice", "first_order", "second_order", "dice", "hessian", "exact"),
    "remat": ("bool",), "outer": ("choice", "trpo", "ppo"),
    "ppo_lr": ("float", 0, None, True, False), "ppo_epochs": ("int", 1),
    "ppo_clip": ("float", 0, None, True, False),
    "max_kl": ("float", 0, None, True, False), "cg_iters": ("int", 1),
    "cg_damping": ("float", 0, None, False, False),
    "ls_backtrack_ratio": ("float", 0, 1, True, True), "ls_max_backtracks": ("int", 1),
}
NOT_NUMBERS = ["", "abc", "1.5.2", "0x10", "--"]


def _labelled(valid, invalid):
    return st.one_of(valid.map(lambda t: (t, True)), invalid.map(lambda t: (t, False)))


def ints(lo: int, hi: int = 10**6, bad_above: list | None = None):
    return _labelled(st.integers(lo, hi).map(str), st.one_of(
        st.integers(lo - 10**6, lo - 1).map(str),
        st.sampled_from(NOT_NUMBERS + ["1.5", "1e3", "nan"] + (bad_above or []))))


def floats(lo, hi, lo_open, hi_open):
    valid = st.floats(lo, 1e6 if hi is None else hi, exclude_min=lo_open, exclude_max=hi_open,
                      allow_nan=False, allow_infinity=False).map(repr)
    bad = ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", repr(lo - 1.0), *NOT_NUMBERS]
    bad += ([repr(lo)] if lo_open else []) + ([] if hi is None else [repr(hi + 0.5)])
    bad += [repr(hi)] if hi_open else []
    return _labelled(valid, st.sampled_from(bad))


def value_of(domain):
    kind, *args = domain
    if kind == "int":
        return ints(args[0])
    if kind == "float":
        return floats(*args)
    if kind == "bool":
        return _labelled(st.sampled_from(["true", "false", "1", "0", "yes", "no", "on", "OFF"]),
                         st.sampled_from(["maybe", "", "2", "t"]))
    if kind == "choice":
        return _labelled(st.sampled_from(args),
                         st.sampled_from(["", "bogus", args[0].upper(), args[0] + " "]))
    sizes = st.lists(st.integers(1, 512), min_size=1, max_size=3).map(
        lambda xs: ",".join(map(str, xs)))
    return _labelled(sizes, st.sampled_from(["", "0", "-1", "8,0", "a", "1.5", "8,-2"]))


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# training options and the other flags of `train`: flag -> labelled values
SPLIT_LISTS = _labelled(
    st.lists(st.sampled_from(["train", "test", "ood"]), max_size=3, unique=True).map(",".join),
    st.sampled_from(["val", "test,val", "TEST", "train,,bogus"]))
OPTIONS = {
    "seeds": ints(1, 16), "seed": ints(0, 10**6, [str(2**32), str(2**40)]),
    "iterations": ints(1), "chunk": ints(1), "checkpoint_every": ints(0),
    "evaluate_every": ints(0), "eval_tasks": ints(1), "eval_adapt_steps": ints(0),
    "eval_seed": ints(0, 2**32 - 1, [str(2**32), str(2**70)]), "eval_splits": SPLIT_LISTS,
    "mesh": _labelled(st.sampled_from(["", "none", "seeds=1,tasks=1", "tasks=1"]),
                      st.sampled_from(["seeds=0", "bogus", "seeds=x", "seeds=1,gpus=2"])),
}
ENV_ARGS = _labelled(
    st.one_of(st.integers(1, 500).map(lambda h: f"horizon={h}"),
              st.floats(1e-3, 10).map(lambda v: f"max_speed={v!r}"),
              st.floats(1e-3, 0.5).map(lambda v: f"goal_range={v!r}")),
    st.sampled_from(["horizon", "horizon=0", "horizon=-3", "horizon=1.5", "horizon=abc",
                     "max_speed=inf", "max_speed=nan", "max_speed=0", "goal_range=inf",
                     "goal_range=0.6", "bogus=1", "=3"]))
SWEEPS = _labelled(
    st.sampled_from(["inner_lr=0.05,0.2", "gamma=0.9,0.99", "ppo_clip=0.1,0.3", "max_kl=0.02"]),
    st.sampled_from(["inner_lr=inf,0.1", "inner_lr=nan", "hidden_sizes=8,16", "gamma=2",
                     "inner_lr", "inner_lr=0.1,0.1", "bogus=1", "inner_lr=", "=0.1"]))


def _names(flag: str, text: str) -> set[str]:
    """What an error about ``flag`` (given ``text``) may call it."""
    names = {flag, flag.lstrip("-").replace("-", "_")}
    if flag in ("--env-arg", "--sweep"):
        names.add(text.partition("=")[0])
    return {n for n in names if n}


def _names_one(message: str, names: set[str]) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(n)}(?!\w)", message) for n in names)


@st.composite
def train_lines(draw, tmp: Path):
    """(argv, the names of its invalid flags, whether every value is valid)."""
    argv, bad = ["train", "--no-progress", "--no-tensorboard"], set()

    def add(flag, labelled):
        text, ok = labelled
        argv.extend([f"{flag}={text}"] if draw(st.booleans()) else [flag, text])
        if not ok:
            bad.update(_names(flag, text))

    add("--algo", draw(_labelled(st.sampled_from(["maml", "meta_sgd"]),
                                 st.sampled_from(["reptile", ""]))))
    if draw(st.booleans()):
        add("--env", draw(_labelled(st.just("navigation2d"), st.sampled_from(["cartpole", ""]))))
    for name in draw(st.lists(st.sampled_from(sorted(DOMAINS)), max_size=3, unique=True)):
        add(_flag(name), draw(value_of(DOMAINS[name])))
    for name in draw(st.lists(st.sampled_from(sorted(OPTIONS)), max_size=2, unique=True)):
        add(_flag(name), draw(OPTIONS[name]))
    for _ in range(draw(st.integers(0, 1))):
        add("--env-arg", draw(ENV_ARGS))
    for _ in range(draw(st.integers(0, 1))):
        add("--sweep", draw(SWEEPS))
    out = draw(st.sampled_from(["fresh", "fresh", "fresh", "file", "under_file", "run"]))
    path = {"fresh": tmp / f"new{draw(st.integers(0, 10**9))}", "file": tmp / "a_file",
            "under_file": tmp / "a_file" / "sub", "run": tmp / "a_run"}[out]
    add("--out", (str(path), out == "fresh"))
    if out != "fresh":
        bad.add(str(path))
    return argv, bad, path if out == "fresh" else None


def _run_cli(argv: list[str]) -> tuple[int | None, str]:
    """(exit code, or None where training would compile; stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return cli.main(argv), err.getvalue()
        except Accepted:
            return None, err.getvalue()


def _check_refusal(code, err, names) -> None:
    lines = err.strip("\n").split("\n")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    assert "Traceback" not in err and _names_one(lines[0], names), (lines[0], names)


def test_every_field_of_a_maml_config_has_a_domain_here():
    assert set(DOMAINS) == set(config_lib.flat_fields(MAMLConfig))


def test_train_command_lines_are_accepted_or_refused_naming_the_field(tmp_path,
                                                                      record_property):
    (tmp_path / "a_file").write_text("not a directory")
    (tmp_path / "a_run").mkdir()
    (tmp_path / "a_run" / "metrics.jsonl").write_text('{"iteration": 0}\n')
    counts = {"refused": 0, "accepted": 0}

    @settings(max_examples=400, **SETTINGS)
    @given(case=train_lines(tmp_path))
    def check(case):
        argv, bad, out = case
        compiles = COMPILES[0]
        code, err = _run_cli(argv)
        assert COMPILES[0] == compiles, "compiled before refusing or accepting"
        if bad:
            _check_refusal(code, err, bad)
            counts["refused"] += 1
        else:
            assert code is None and err == "", (argv, err)
            counts["accepted"] += 1
        assert out is None or not out.exists()  # nothing written, refused or accepted

    with mock.patch("jaxmeta.runs.initial_states", side_effect=Accepted):
        check()
    assert counts["refused"] > 200 and counts["accepted"] > 20, counts
    record_property("reliability.refused", counts["refused"])
    record_property("reliability.accepted", counts["accepted"])


@st.composite
def eval_lines(draw, run: Path):
    argv, bad = ["eval", str(run)], set()
    choices = {"--split": _labelled(st.sampled_from(["train", "test", "ood"]),
                                    st.sampled_from(["val", "", "TEST"])),
               "--adapt-steps": ints(0, 50), "--num-tasks": ints(1, 1000),
               "--seed": ints(0, 2**32 - 1, [str(2**32)]), "--step": ints(0)}
    for flag in draw(st.lists(st.sampled_from(sorted(choices)), max_size=3, unique=True)):
        text, ok = draw(choices[flag])
        argv.extend([f"{flag}={text}"])
        if not ok:
            bad.update(_names(flag, text))
    return argv, bad


def test_eval_command_lines_are_refused_naming_the_argument_before_loading(tmp_path,
                                                                           record_property):
    """The run does not exist: valid arguments get as far as saying so."""
    counts = {"refused": 0}

    @settings(max_examples=150, **SETTINGS)
    @given(case=eval_lines(tmp_path / "no_run"))
    def check(case):
        argv, bad = case
        code, err = _run_cli(argv)
        _check_refusal(code, err, bad or {str(tmp_path / "no_run")})
        if not bad:
            assert "is not a jaxmeta run" in err
        counts["refused"] += bool(bad)

    compiles = COMPILES[0]
    check()
    assert COMPILES[0] == compiles and counts["refused"] > 50
    record_property("reliability.refused", counts["refused"])


# --- what trains ----------------------------------------------------------------------------

TRACED = {"inner_lr": (0.0, 1.0), "gamma": (0.0, 1.0), "gae_lambda": (0.0, 1.0),
          "ppo_lr": (1e-6, 0.05), "ppo_clip": (1e-6, 1.0), "max_kl": (1e-6, 1.0)}


def _finite_rows(rows: list[dict]) -> bool:
    return all(np.all(np.isfinite(np.asarray(v, float))) for r in rows for k, v in r.items()
               if k not in ("iteration", "seed", "sweep"))


def test_traced_hyperparameters_train_finite_or_stop_cleanly(tmp_path, record_property):
    """Generated values of every traced field train one iteration in the one compiled
    program; a value that diverges stops with NonFiniteError, and no NaN is written."""
    learner, runs_made = tiny_learner("maml", **FAST), itertools.count()
    counts = {"trained": 0, "nonfinite": 0}
    values = st.fixed_dictionaries({}, optional={
        k: st.floats(lo, hi, allow_nan=False) for k, (lo, hi) in TRACED.items()})

    @settings(max_examples=20, **SETTINGS)
    @given(point=values)
    def check(point):
        out = tmp_path / f"run{next(runs_made)}"
        opts = TrainOptions(iterations=1, progress=False, tensorboard=False,
                            sweep=tuple((k, (v,)) for k, v in point.items()))
        try:
            _, rows = train(learner, out, opts)
        except NonFiniteError as e:
            assert "\n" not in str(e)
            counts["nonfinite"] += 1
            rows = runs.read_metrics(out)
        else:
            assert len(rows) == 1
            counts["trained"] += 1
        assert _finite_rows(rows)

    check()
    assert counts["trained"] >= 15, counts
    for k, v in counts.items():
        record_property(f"reliability.{k}", v)


TINY_CLI = ["--no-progress", "--iterations", "1", "--outer", "ppo"]
EDGES = {
    "sizes_of_one": ["--meta-batch-size", "1", "--inner-episodes", "1", "--outer-episodes", "1",
                     "--eval-episodes", "1", "--hidden-sizes", "1", "--env-arg", "horizon=1",
                     "--meta-gradient", "first_order", "--ppo-epochs", "1"],
    "bounds_and_switches": ["--hidden-sizes", "8", "--meta-batch-size", "2",
                            "--inner-episodes", "2", "--outer-episodes", "2",
                            "--eval-episodes", "2", "--env-arg", "horizon=5", "--baseline", "none",
                            "--gamma", "0", "--gae-lambda", "0", "--inner-lr", "0",
                            "--inner-normalize-advantages", "false", "--activation", "tanh",
                            "--meta-gradient", "dice", "--ppo-clip", "1e-6", "--init-std", "1e-3"],
}


@pytest.mark.parametrize("edge", sorted(EDGES))
def test_configs_at_the_edges_train_through_the_cli(edge, tmp_path, record_property):
    code, err = _run_cli(["train", *TINY_CLI, *EDGES[edge], "--out", str(tmp_path / "r")])
    assert code == 0, err
    rows = runs.read_metrics(tmp_path / "r")
    assert len(rows) == 1 and _finite_rows(rows)
    record_property("reliability.trained", 1)


# --- the cases found missing, one by one ----------------------------------------------------


@pytest.mark.parametrize("args, names", [
    (["--inner-lr", "inf"], {"inner_lr"}), (["--ppo-clip", "nan"], {"ppo_clip"}),
    (["--init-std=-inf"], {"init_std", "--init-std"}), (["--max-kl", "1e400"], {"max_kl"}),
    (["--cg-damping", "nan"], {"cg_damping"}), (["--gamma", "inf"], {"gamma"}),
    (["--env-arg", "horizon"], {"--env-arg"}), (["--env-arg", "max_speed=inf"], {"max_speed"}),
    (["--chunk", "0"], {"chunk"}), (["--checkpoint-every", "-1"], {"checkpoint_every"}),
    (["--seed", "-1"], {"seed"}), (["--seed", str(2**32)], {"seed"}),
    (["--sweep", "inner_lr=inf,0.1"], {"inner_lr"}), (["--seeds", "abc"], {"--seeds"}),
    (["--eval-splits", "test,val"], {"split"}),
    (["--algo", "rl2", "--trial-episodes", "0"], {"trial_episodes"}),
    (["--algo", "vate", "--latent-size", "0"], {"latent_size"}),
    (["--algo", "vate", "--decoder", "pixels"], {"decoder"}),
    (["--algo", "vate", "--reward-likelihood", "bernoulli"], {"reward_levels"}),
    (["--algo", "rl2", "--env-arg", "horizon=9000"], {"trial_episodes", "horizon"}),
    (["--algo", "pearl", "--context-size", "0"], {"context_size"}),
    (["--algo", "pearl", "--kl-weight=-1"], {"kl_weight"}),
    (["--algo", "pearl", "--context-layout", "sarsa"], {"context_layout", "sars"}),
    (["--algo", "sac", "--capacity", "100"], {"batch_size", "capacity"}),
    (["--algo", "sac", "--prior-steps", "150"], {"prior_steps", "horizon"}),
    (["--algo", "sac", "--env", "gridworld"], {"gridworld", "discrete"}),
])
def test_cli_refuses_in_one_line_before_compiling(args, names, tmp_path, record_property):
    compiles = COMPILES[0]
    code, err = _run_cli(["train", *args, "--out", str(tmp_path / "x")])
    _check_refusal(code, err, names)
    assert COMPILES[0] == compiles and not (tmp_path / "x").exists()
    record_property("reliability.refused", 1)


def test_out_that_is_a_file_is_refused_before_compiling(tmp_path, record_property):
    (tmp_path / "f").write_text("")
    for out in (tmp_path / "f", tmp_path / "f" / "run"):
        for resume in ([], ["--resume"]):
            compiles = COMPILES[0]
            code, err = _run_cli(["train", "--out", str(out), *resume])
            _check_refusal(code, err, {"out"})
            assert "is a file, not a directory" in err and COMPILES[0] == compiles
            record_property("reliability.refused", 1)


def test_evaluate_refuses_bad_requests_before_compiling(record_property):
    learner, key = tiny_learner("maml", **FAST), jax.random.PRNGKey(0)
    compiles = COMPILES[0]
    for kwargs, field in ((dict(num_tasks=0), "num_tasks"), (dict(adapt_steps=-1), "adapt_steps"),
                          (dict(num_tasks=2.5), "num_tasks"), (dict(split="val"), "split")):
        with pytest.raises(ValueError, match=field):
            evaluation.evaluate(learner, None, key, **kwargs)  # no states needed to refuse
        with pytest.raises(ValueError, match=field):
            evaluation.evaluate_run("no/such/run", **kwargs)
        record_property("reliability.refused", 2)
    assert COMPILES[0] == compiles


@pytest.mark.parametrize("name", ["halfcheetah_vel", "reacher2_target"])
def test_mjx_families_refuse_a_wrong_split_before_compiling(name, record_property):
    """Both a sampled family (half-cheetah) and one with a fixed training pool (reacher)."""
    family = envs.make(name)
    compiles = COMPILES[0]
    for split in ("val", "TRAIN", ""):
        with pytest.raises(ValueError, match=f"split={split!r} is not a valid split"):
            family.sample_tasks(jax.random.PRNGKey(0), 2, split)
        with pytest.raises(ValueError, match="split="):
            envs.FixedTask(family, None).sample_tasks(jax.random.PRNGKey(0), 2, split)
        with pytest.raises(ValueError, match="split="):
            TrainOptions(evaluate_every=1, eval_splits=("test", split))
        record_property("reliability.refused", 3)
    assert COMPILES[0] == compiles
