"""Evolved Policy Gradients (Houthooft et al. 2018) on 2D navigation: the ES fitness over
generations, and policies trained from scratch with the evolved loss against the same
inner schedule with the policy-gradient loss, on held-out goals in and out of the training
distribution.

``navigation2d``: training and ``test`` goals in the square [−0.5, 0.5]²; ``ood`` goals in
the annulus 0.75 < ‖g‖ < 1 outside it (the analogue of the paper's GoalAnt trained on +x
goals and tested on −x: goals no inner run was ever evolved on).

Methods: ``epg`` (the evolved loss L_φ, through the trainer: vmapped seeds, checkpoints,
``--resume``) and ``pg`` (``epg_pg``: the same fresh policies, inner updates, episodes and
optimizer with the VPG loss; nothing to evolve). After training, every seed trains fresh
policies on ``eval_tasks`` goals of each split for ``adapt_updates`` inner updates
(``learner.adapt``, EPG's test-time training) and the curve of returns is recorded.

    python experiments/seed002/epg/run.py --scale small
    python experiments/seed002/epg/report.py \\
        --results experiments/seed002/epg/results/navigation2d_small.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import numpy as np

from jaxmeta import algorithms, envs, experiment
from jaxmeta import config as config_lib
from jaxmeta.evaluation import evaluate, load_run
from jaxmeta.experiment import (
    RUNNER_ERRORS,
    Results,
    add_run_args,
    choose,
    override,
    per_iteration,
    run_methods,
    train_method,
)

FAMILY = "navigation2d"
METHODS = ("epg", "pg")
SPLITS = ("test", "ood")
SIZES = dict(hidden_sizes=(32, 32), init_std=0.5, es_population=16, es_tasks=4,
             es_sigma=0.05, es_lr=0.02, inner_updates=10, inner_episodes=4, inner_epochs=4,
             inner_lr=0.01, eval_episodes=4)
# ``small``: minutes on a 2-core CPU (stated in the README); ``paper``: the population of
# 128 for an accelerator; ``smoke``: the pipeline end to end in seconds
SCALES = {
    "small": dict(seeds=2, iterations=100, eval_every=25, eval_tasks=20, horizon=20,
                  sizes=SIZES),
    "paper": dict(seeds=4, iterations=500, eval_every=50, eval_tasks=50, horizon=50,
                  sizes=dict(SIZES, hidden_sizes=(64, 64), es_population=128, es_tasks=8,
                             inner_updates=20)),
    "smoke": dict(seeds=1, iterations=2, eval_every=1, eval_tasks=2, horizon=10,
                  sizes=dict(hidden_sizes=(8,), es_population=4, es_tasks=2, inner_updates=2,
                             inner_episodes=2, inner_epochs=1, eval_episodes=2,
                             loss_conv_channels=(4,), loss_dilations=(1,),
                             loss_context_size=4, loss_hidden_sizes=(8,))),
}


def scale_settings(scale: str) -> dict:
    """The settings of ``scale`` (unknown names list the choices)."""
    return experiment.scale_settings(SCALES, scale)


def method_learner(method: str, s: dict):
    """``method``'s learner (``epg`` or its PG baseline ``epg_pg``) at settings ``s``."""
    algo = "epg" if method == "epg" else "epg_pg"
    cfg = config_lib.replace(algorithms.EPGConfig(), **s["sizes"])
    return algorithms.make(algo, envs.make(FAMILY, horizon=s["horizon"]), cfg)


def run_method(method: str, s: dict, seed: int, run_dir: Path, resume: bool,
               previous: dict | None) -> dict:
    """Trains ``method`` through the trainer (the PG baseline: one generation, nothing to
    evolve), then trains fresh policies on ``test`` and ``ood`` goals; its record adds those
    curves and the ES fitness of every generation."""
    learner = method_learner(method, s)
    # the PG baseline has nothing to evolve: one generation, for its fitness and a run dir
    s_m = s if method == "epg" else {**s, "iterations": 1, "eval_every": 1}
    rec = train_method(learner, run_dir, s_m, seed, resume, previous, "seed002/epg", (), 0)
    _, states, _, step = load_run(run_dir)
    n = learner.config.inner.updates
    evals = {split: evaluate(learner, states, jax.random.PRNGKey(123), split,
                             s["eval_tasks"], n) for split in SPLITS}
    return {**rec, "iteration": step, "evaluation": evals,
            "fitness": per_iteration(run_dir, ("fitness_mean", "fitness_max")),
            "settings": s_m}


def main(argv=None) -> None:
    """Runs the chosen methods at ``--scale`` and writes the results JSON."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", default="small")
    add_run_args(p, "seed002/epg")
    args = p.parse_args(argv)
    s = override(scale_settings(args.scale), args)
    methods = choose(args.methods, METHODS)
    for name in methods:  # every method is built (and refused) before the first run starts
        method_learner(name, s)
    stem = f"{FAMILY}_{args.scale}"
    results = Results(args.out, stem, "experiments/seed002/epg/run.py", argv, family=FAMILY,
                      scale=args.scale, settings=s, splits=list(SPLITS))
    print(f"{FAMILY} ({args.scale}): {methods}, {s['seeds']} seeds", flush=True)

    def describe(name: str, rec: dict) -> str:
        parts = [f"{sp} {np.mean(rec['evaluation'][sp]['per_seed'], 0)[0]:.2f} -> "
                 f"{rec['evaluation'][sp]['post_adapt_return'][-1]:.2f}" for sp in SPLITS]
        return f"  {name:4s} " + "   ".join(parts) + f"   [{rec['wall_seconds']:5.0f}s]"

    run_methods(methods, results, lambda name, prev: run_method(
        name, s, args.seed, Path(args.runs) / stem / name, args.resume, prev), describe)


if __name__ == "__main__":
    try:
        main()
    except RUNNER_ERRORS as e:
        raise SystemExit(f"error: {e}") from None
