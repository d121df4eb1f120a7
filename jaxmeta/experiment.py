"""What the paper experiments' runners (``experiments/<name>/run.py``) share: choosing
methods and sizes from the command line with clear errors, and a results file that keeps
every method's record and is rewritten after each one, so a stopped invocation loses
nothing that finished."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np

from jaxmeta import config as config_lib
from jaxmeta import envs
from jaxmeta.interrupt import TrainingInterrupted
from jaxmeta.protocol import env_steps_per_update
from jaxmeta.runs import read_metrics
from jaxmeta.trainer import train

# What a runner's ``main`` turns into a one-line ``error: ...`` exit: bad names and sizes,
# run directories that exist or do not, and a run stopped by a signal after saving (its
# message says to continue with --resume).
RUNNER_ERRORS = (ValueError, FileExistsError, FileNotFoundError, TrainingInterrupted)


def choose(requested: str | None, pool: Sequence[str], what: str = "methods") -> list[str]:
    """The comma-separated ``requested`` names (all of ``pool`` when ``None``); unknown
    names are a ``ValueError`` listing the choices."""
    names = requested.split(",") if requested else list(pool)
    bad = [n for n in names if n not in pool]
    if bad:
        raise ValueError(f"unknown {what} {bad}; choose from {list(pool)}")
    return names


def override(settings: dict, args, fields: Sequence[str] = ("iterations", "seeds")) -> dict:
    """``settings`` with the ``fields`` that ``args`` sets (not ``None``), checking that
    ``iterations`` is a multiple of ``eval_every`` (evaluations and checkpoints fall on it)."""
    s = dict(settings)
    s.update({k: getattr(args, k) for k in fields if getattr(args, k, None) is not None})
    if s["iterations"] % s["eval_every"]:
        raise ValueError(f"iterations={s['iterations']} must be a multiple of "
                         f"eval_every={s['eval_every']}")
    return s


def training_curve(rows: list[dict], key: str, iterations: Sequence[int]) -> list[list[float]]:
    """``[intervals, seeds]``: each seed's mean of ``key`` over the training rows of
    ``metrics.jsonl`` (those without a ``split``) between consecutive ``iterations`` (the
    evaluation points: interval ``[iterations[i], iterations[i + 1])``)."""
    train = [r for r in rows if "split" not in r and key in r]
    seeds = sorted({r["seed"] for r in train})
    return [[float(np.mean([r[key] for r in train if a <= r["iteration"] < b
                            and r["seed"] == seed])) for seed in seeds]
            for a, b in zip(iterations[:-1], iterations[1:], strict=True)]


def scale_settings(scales: dict, scale: str, family: str | None = None) -> dict:
    """A runner's settings: ``scales[scale]``, or ``scales[family][scale]`` for runners whose
    table is keyed by family first; unknown names list the choices. Nested dicts (sizes)
    are copied, so a caller may change them."""
    if family is not None:
        if family not in scales:
            raise ValueError(f"unknown family {family!r}; choose one of {sorted(scales)}")
        scales = scales[family]
    if scale not in scales:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(scales)}")
    return {k: dict(v) if isinstance(v, dict) else v for k, v in scales[scale].items()}


def env_steps_per_seed(record: dict, iterations, seeds: int) -> np.ndarray:
    """Env steps per seed of a runner's ``record`` after ``iterations`` updates: the
    updates' (``env_steps_per_iteration`` counts every seed) plus those ``init`` simulated
    (``init_env_steps``, off-policy buffer filling; 0 when absent)."""
    return (np.asarray(iterations, dtype=float) * record["env_steps_per_iteration"]
            + record.get("init_env_steps", 0)) / seeds


def per_iteration(run_dir: str | Path, keys: Sequence[str], stride: int = 1) -> dict:
    """Every ``stride``-th training row's ``keys`` from ``metrics.jsonl``:
    ``{"iterations": [...], key: [[value of each seed] per iteration]}``."""
    rows = [r for r in read_metrics(run_dir) if "split" not in r and keys[0] in r]
    its = sorted({r["iteration"] for r in rows})[::stride]
    by = {(r["iteration"], r["seed"]): r for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    return {"iterations": its, **{k: [[by[(i, sd)][k] for sd in seeds] for i in its]
                                  for k in keys}}


def evaluation_summary(run_dir: str | Path, split: str) -> dict:
    """A run's evaluations on ``split``: ``iterations``, and ``returns[i][seed]`` = the
    return before adaptation, then after each adaptation step; per interval between
    evaluations, each seed's training return (``train_return``; its metric, the
    post-adaptation return when the learner logs one, in ``train_return_key``)."""
    rows = read_metrics(Path(run_dir))
    evals = [r for r in rows if r.get("split") == split]
    its = sorted({r["iteration"] for r in evals})
    returns = [[[r["pre_adapt_return"], *r["post_adapt_return"]] for r in evals
                if r["iteration"] == i] for i in its]
    key = "post_return" if any("post_return" in r for r in rows) else "pre_return"
    return {"iterations": its, "returns": returns,
            "train_return": training_curve(rows, key, its), "train_return_key": key}


def add_run_args(parser, experiment: str) -> None:
    """The flags every runner shares: ``--methods --seed --iterations --seeds --physics
    --out --runs --resume`` (results under ``experiments/<experiment>/results``, runs
    under ``runs/<experiment>``)."""
    parser.add_argument("--methods", default=None, help="comma-separated subset of the methods")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=None, help="override the scale's")
    parser.add_argument("--seeds", type=int, default=None, help="override the scale's")
    parser.add_argument("--physics", default="auto",
                        help="simulator of the MuJoCo families: auto (C MuJoCo on a CPU, MJX on "
                             "an accelerator), mujoco or mjx")
    parser.add_argument("--out", default=f"experiments/{experiment}/results")
    parser.add_argument("--runs", default=f"runs/{experiment}",
                        help="where the training runs go")
    parser.add_argument("--resume", action="store_true",
                        help="continue the runs of an interrupted invocation from their "
                             "checkpoints")


def train_method(learner, run_dir: str | Path, s: dict, seed: int, resume: bool,
                 previous: dict | None, experiment: str, splits: Sequence[str],
                 adapt_steps: int, iterations: int | None = None,
                 every: int | None = None) -> dict:
    """Trains ``learner`` through ``jaxmeta.train`` (``s["seeds"]`` vmapped seeds; chunks,
    checkpoints and evaluations on ``splits`` every ``every`` iterations, default
    ``s["eval_every"]``; ``iterations`` default ``s["iterations"]``), resuming the run in
    ``run_dir`` when asked and it exists.

    Returns the record's common part: the wall-clock summed over the invocations that
    trained this run (``previous``: its last record, for a resumed run), the run
    directory, env steps per iteration and those ``init`` simulates before the first
    (off-policy replay filling; both over all seeds) and the config."""
    run_dir = Path(run_dir)
    every = s["eval_every"] if every is None else every
    t0 = time.time()
    train(learner, run_dir, iterations=s["iterations"] if iterations is None else iterations,
          seeds=s["seeds"], seed=seed, chunk=every, checkpoint_every=every,
          evaluate_every=every, eval_splits=tuple(splits), eval_tasks=s["eval_tasks"],
          eval_adapt_steps=adapt_steps, progress=False,
          resume=resume and (run_dir / "config.json").exists(),
          extra={"experiment": experiment, "settings": s})
    wall = time.time() - t0
    passes = [*(previous or {}).get("wall_seconds_by_pass", []), wall] if resume else [wall]
    steps = env_steps_per_update(learner)
    return {"wall_seconds": sum(passes), "wall_seconds_by_pass": passes,
            "run_dir": str(run_dir),
            "env_steps_per_iteration": None if steps is None else steps * s["seeds"],
            "init_env_steps": learner.init_env_steps * s["seeds"],
            "config": config_lib.to_dict(learner.config)}


def make_family(name: str, physics: str, horizon: int | None = None):
    """The family ``name`` of an experiment: ``physics`` for the MuJoCo families (ignored
    by the pure-JAX ones), and the scale's ``horizon`` when it sets one."""
    kw = {"physics": physics} if envs.has_mujoco_model(name) else {}
    if horizon is not None:
        kw["horizon"] = horizon
    return envs.make(name, **kw)


def run_methods(methods: Sequence[str], results: Results,
                run: Callable[[str, dict | None], dict], describe: Callable[[str, dict], str]
                ) -> None:
    """Runs each method (``run(name, its previous record) -> record``), prints
    ``describe(name, record)`` and adds the record to ``results`` at once, so a stopped
    invocation keeps every method that finished."""
    for name in methods:
        rec = run(name, results.data["methods"].get(name))
        print(describe(name, rec), flush=True)
        results.add(name, rec)
    print(f"wrote {results.path}")


def report_main(argv, doc: str, default: str, runner: str, title: str,
                figure: Callable[[dict, Path], None], table: Callable[[dict], str]) -> None:
    """A report script's ``main``: ``--results`` (default ``default``), then
    ``fig_<stem>.png`` by ``figure`` and ``results_<stem>.md`` (``# <title>: <stem>`` and
    ``table``) beside it."""
    p = argparse.ArgumentParser(description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=default, help="a JSON file run.py wrote")
    args = p.parse_args(argv)
    path, result = load_results(args.results, runner)
    fig = path.parent / f"fig_{path.stem}.png"
    figure(result, fig)
    md = path.parent / f"results_{path.stem}.md"
    md.write_text(f"# {title}: {path.stem}\n\n" + table(result))
    print(f"wrote {fig}, {md}")


def load_results(path: str | Path, runner: str) -> tuple[Path, dict]:
    """(path, contents) of a results JSON a runner wrote, for a report script; a missing
    file or one with no method yet exits with one line naming ``runner``."""
    path = Path(path)
    if not path.exists():
        raise SystemExit(f"no {path}; run {runner} first")
    result = json.loads(path.read_text())
    if not result.get("methods"):
        raise SystemExit(f"{path} has no methods yet")
    return path, result


class Results:
    """``OUT/<stem>.json``: a header (what ran, where, when) and one record per method.

    An existing file is extended: a method run again replaces its record, the others stay.
    ``add`` rewrites the file at once, over the records on disk at that moment, so that
    invocations running other methods side by side do not drop each other's records."""

    def __init__(self, out_dir: str | Path, stem: str, script: str, argv: list[str] | None,
                 **header):
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / f"{stem}.json"
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.command = f"python {script} " + " ".join(sys.argv[1:] if argv is None else argv)
        self.data.update(header, device=jax.devices()[0].device_kind, jax=jax.__version__,
                         date=time.strftime("%Y-%m-%d"))
        self.data.setdefault("methods", {})
        self.added: dict[str, dict] = {}  # this invocation's records

    def add(self, method: str, record: dict) -> None:
        self.added[method] = {**record, "command": self.command}
        if self.path.exists():  # what other invocations wrote since this one started
            self.data["methods"] = json.loads(self.path.read_text()).get("methods", {})
        self.data["methods"].update(self.added)
        self.data["commands"] = sorted({r["command"] for r in self.data["methods"].values()})
        self.path.write_text(json.dumps(self.data, indent=1))


__all__ = ["RUNNER_ERRORS", "Results", "add_run_args", "choose", "env_steps_per_seed",
           "evaluation_summary", "load_results", "make_family", "override", "per_iteration",
           "report_main", "run_methods", "scale_settings", "train_method", "training_curve"]
