"""TESP's experiments (Lan et al. 2019, §5, Fig. 4 and 5) on one task family.

Trains every method through the trainer (``jaxmeta.train``: vmapped seeds, checkpoints,
``--resume``) with its evaluation hook: every ``eval_every`` meta-updates (and before
training) each seed's learner fast-adapts with 3 fast-updates to ``eval_tasks`` tasks of D
(``train``: the fixed pool of 100 training tasks), D′ (``test``) and D″ (``ood``); the rows
record the mean return after adaptation and before it, twice: R as the paper defines it
(§5.2: the distance term only, ``post_R``/``pre_R``) and the full return the learners
optimise (with the action cost, ``post``/``pre``), both from the same episodes. The runs go to
``RUNS/<family>[_ablation]_<scale>/<method>/`` (each can be resumed, evaluated and plotted
with ``python -m jaxmeta``); the per-method summary goes to
``OUT/<family>[_ablation]_<scale>.json``, which ``report.py`` turns into figures and tables.

    python experiments/tesp/run.py --family reacher2_target --scale small
    python experiments/tesp/run.py --family reacher2_target --scale small --ablation
    python experiments/tesp/run.py --family reacher2_target --scale small --resume
    python experiments/tesp/run.py --family ant_target --scale paper      # GPU

Methods: TESP, MAML, Meta-SGD, AdaptSV (Fig. 4) or TESP and V1–V5 (``--ablation``,
Fig. 5). All use VPG fast-updates with first-order meta-gradients and a PPO meta-update
(TESP §5.1); MAML and Meta-SGD adapt their whole policy with K = 3 inner steps of N
episodes, TESP and AdaptSV additionally sample N warm-up episodes with h = 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from jaxmeta import algorithms, envs, experiment
from jaxmeta.algorithms.tesp import paper_config
from jaxmeta.experiment import (
    RUNNER_ERRORS,
    Results,
    add_run_args,
    choose,
    override,
    train_method,
    training_curve,
)
from jaxmeta.runs import read_metrics

FAMILIES = ("wheeled_goal", "ant_target", "reacher2_target", "reacher4_target")
METHODS = ("tesp", "maml", "meta_sgd", "adaptsv")
ABLATIONS = ("tesp", "tesp_v1", "tesp_v2", "tesp_v3", "tesp_v4", "tesp_v5")
SPLITS = ("train", "test", "ood")
ADAPT_STEPS = 3

# Shared sizes of each scale, the same for every family. ``small`` fits a 2-core CPU with C
# MuJoCo (2-6 min per method, see README);
# ``paper`` is the TESP supplement's protocol (sizes from ``paper_config``; 100 evaluation
# tasks per split).
SCALES = {
    "small": dict(iterations=100, eval_every=25, eval_tasks=16, seeds=3, horizon=50,
                  meta_batch_size=8, episodes=8, buffer_size=4, hidden_sizes=(64, 64),
                  gru_size=32, outer_lr=3e-3),
    "paper": dict(iterations=500, eval_every=25, eval_tasks=100, seeds=5, horizon=200),
    # a check that the pipeline runs end to end (compiling dominates; no result to read)
    "smoke": dict(iterations=2, eval_every=1, eval_tasks=2, seeds=1, horizon=5,
                  meta_batch_size=2, episodes=2, buffer_size=2, hidden_sizes=(8,), gru_size=4,
                  outer_lr=3e-3),
}


def scale_settings(scale: str, family: str) -> dict:
    """The sizes of ``scale`` for ``family`` (unknown names list the choices)."""
    s = experiment.scale_settings(SCALES, scale)
    if scale == "paper":
        p = paper_config(family)
        s.update(meta_batch_size=p.sampling.meta_batch_size, episodes=p.sampling.inner_episodes,
                 buffer_size=p.buffer_size, hidden_sizes=p.policy.hidden_sizes,
                 gru_size=p.gru_size, embedding_size=p.embedding_size, outer_lr=p.ppo.lr)
    return s


def method_config(method: str, s: dict):
    """The config of ``method`` at settings ``s``: the same sizes and hyper-parameters for
    every method (TESP §5.1: VPG fast-updates, first order, PPO meta-update); the ablation
    presets then fix their own switches (``algorithms.make``)."""
    n = s["episodes"]
    return algorithms.config_with(
        method, hidden_sizes=s["hidden_sizes"], gru_size=s["gru_size"],
        embedding_size=s.get("embedding_size", 8), meta_batch_size=s["meta_batch_size"],
        inner_episodes=n, outer_episodes=n, eval_episodes=n, buffer_size=s["buffer_size"],
        inner_steps=ADAPT_STEPS, inner_lr=0.001, meta_gradient="first_order", outer="ppo",
        ppo_lr=s["outer_lr"], ppo_clip=0.15, gamma=0.99, gae_lambda=0.97)


def summary(run_dir: Path) -> dict:
    """The report's per-method record from a run's ``metrics.jsonl``: per evaluation, the
    return before and after adaptation per seed and split; per chunk of ``eval_every``
    meta-updates, the mean training return after adaptation per seed."""
    rows = read_metrics(run_dir)
    evals = [r for r in rows if "split" in r]
    its = sorted({r["iteration"] for r in evals})
    out = {"iterations": its, "post": {}, "pre": {}, "post_R": {}, "pre_R": {}}
    for split in SPLITS:
        mine = [r for r in evals if r["split"] == split]
        for name, key, last in (("post", "post_adapt_return", True),
                                ("pre", "pre_adapt_return", False),
                                ("post_R", "post_adapt_distance_return", True),
                                ("pre_R", "pre_adapt_distance_return", False)):
            out[name][split] = [[r[key][-1] if last else r[key] for r in mine
                                 if r["iteration"] == i] for i in its]
    out["train_post_return"] = training_curve(rows, "post_return", its)  # [intervals, seeds]
    return out


def run_method(method: str, family, s: dict, seed: int, run_dir: Path, resume: bool,
               previous: dict | None = None) -> dict:
    """Trains ``method`` with ``s["seeds"]`` vmapped seeds through the trainer, evaluating on
    D, D′ and D″ every ``eval_every`` meta-updates; returns the report's record."""
    learner = algorithms.make(method, family, method_config(method, s))
    rec = train_method(learner, run_dir, s, seed, resume, previous, "tesp", SPLITS,
                       ADAPT_STEPS)
    return {**summary(run_dir), **rec}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", default="reacher2_target", help=f"one of {FAMILIES}")
    p.add_argument("--scale", default="small", help=f"one of {sorted(SCALES)}")
    p.add_argument("--ablation", action="store_true", help="TESP vs V1-V5 (Fig. 5)")
    add_run_args(p, "tesp")
    args = p.parse_args(argv)
    if args.family not in FAMILIES:
        raise ValueError(f"unknown family {args.family!r}; choose one of {list(FAMILIES)}")
    s = override(scale_settings(args.scale, args.family), args)
    methods = choose(args.methods, ABLATIONS if args.ablation else METHODS)
    family = envs.make(args.family, horizon=s["horizon"], physics=args.physics)
    stem = f"{args.family}{'_ablation' if args.ablation else ''}_{args.scale}"
    results = Results(args.out, stem, "experiments/tesp/run.py", argv, family=args.family,
                      scale=args.scale, settings=s, adapt_steps=ADAPT_STEPS,
                      physics=family.physics)

    def log(msg):
        print(msg, flush=True)

    log(f"{args.family} ({args.scale}, {family.physics}): {methods}, {s['seeds']} seeds x "
        f"{s['iterations']} meta-updates")
    for m in methods:
        log(f"  {m}: training {s['seeds']} seeds, evaluating every {s['eval_every']}")
        rec = run_method(m, family, s, args.seed, Path(args.runs) / stem / m, args.resume,
                         results.data["methods"].get(m))
        log("  R " + "  ".join(f"{k} {np.mean(rec['post_R'][k][-1]):8.2f}" for k in SPLITS)
            + f"   [{rec['wall_seconds']:5.0f}s]")
        results.add(m, rec)  # after every method: nothing is lost
    log(f"wrote {results.path}")


if __name__ == "__main__":
    try:
        main()
    except RUNNER_ERRORS as e:
        raise SystemExit(f"error: {e}") from None
