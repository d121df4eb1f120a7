"""Meta-gradient RL (Xu, van Hasselt, Silver 2018): A2C with γ and λ meta-learned online,
against the same A2C with (γ, λ) fixed, at the same budget of env steps.

Methods (all ``jaxmeta.algorithms.metagrad`` at the same sizes, seeds and batches):

* ``metagrad``: η = (γ, λ) starts at ``eta0`` and is meta-learned (reference η̄ = ``ref``);
* ``fixed``: η fixed at ``eta0`` (where the meta-gradient run starts);
* ``fixed_ref``: η fixed at the reference η̄ (what the meta-objective measures with).

Every run goes through the trainer (``jaxmeta.train``: vmapped seeds, checkpoints,
``--resume``); its evaluation hook measures, before training and every ``eval_every``
updates, the return on ``eval_tasks`` held-out tasks (``test``) with no adaptation step
(the agents are task-aware: ``observe_task``). The learned γ and λ of every iteration are
read from ``metrics.jsonl`` into the results (every ``eta_stride``-th iteration).

    python experiments/seed002/metagrad/run.py --family navigation2d --scale small
    python experiments/seed002/metagrad/run.py --family halfcheetah_vel --scale small
    python experiments/seed002/metagrad/report.py \
        --results experiments/seed002/metagrad/results/<family>_<scale>.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from jaxmeta import algorithms, experiment
from jaxmeta import config as config_lib
from jaxmeta.experiment import (
    RUNNER_ERRORS,
    Results,
    add_run_args,
    choose,
    evaluation_summary,
    make_family,
    override,
    run_methods,
    train_method,
)

METHODS = ("metagrad", "fixed", "fixed_ref")
SPLIT = "test"

# ``small``: what fits a 2-core CPU (C MuJoCo for the cheetah), stated in the README;
# ``paper``: longer runs with bigger batches, for an accelerator; ``smoke``: the pipeline
# end to end in seconds (no result to read). ``eta0`` and ``ref`` are (γ, λ).
SCALES = {
    "navigation2d": {
        "small": dict(seeds=5, iterations=1000, eval_every=50, eval_tasks=40, horizon=100,
                      eta0=(0.9, 0.95), ref=(0.99, 1.0), eta_stride=5,
                      sizes=dict(hidden_sizes=(64, 64), ac_value_hidden_sizes=(64, 64),
                                 ac_tasks=10, ac_episodes=2, ac_lr=3e-3, eta_lr=0.03)),
        "paper": dict(seeds=8, iterations=5000, eval_every=250, eval_tasks=100, horizon=100,
                      eta0=(0.9, 0.95), ref=(0.99, 1.0), eta_stride=25,
                      sizes=dict(hidden_sizes=(64, 64), ac_value_hidden_sizes=(64, 64),
                                 ac_tasks=20, ac_episodes=4, ac_lr=1e-3, eta_lr=0.01)),
        "smoke": dict(seeds=1, iterations=4, eval_every=2, eval_tasks=2, horizon=10,
                      eta0=(0.9, 0.95), ref=(0.99, 1.0), eta_stride=1,
                      sizes=dict(hidden_sizes=(8,), ac_value_hidden_sizes=(8,), ac_tasks=2,
                                 ac_episodes=1, ac_eval_episodes=1)),
    },
    "halfcheetah_vel": {
        "small": dict(seeds=4, iterations=600, eval_every=50, eval_tasks=20, horizon=200,
                      eta0=(0.99, 0.95), ref=(0.99, 1.0), eta_stride=5,
                      sizes=dict(hidden_sizes=(64, 64), ac_value_hidden_sizes=(64, 64),
                                 ac_tasks=8, ac_episodes=1, ac_eval_episodes=2, ac_lr=1e-3,
                                 init_std=0.5, eta_lr=0.03)),
        "paper": dict(seeds=8, iterations=5000, eval_every=250, eval_tasks=40, horizon=200,
                      eta0=(0.99, 0.95), ref=(0.99, 1.0), eta_stride=25,
                      sizes=dict(hidden_sizes=(64, 64), ac_value_hidden_sizes=(64, 64),
                                 ac_tasks=20, ac_episodes=2, ac_lr=3e-4, eta_lr=0.01)),
        "smoke": dict(seeds=1, iterations=2, eval_every=1, eval_tasks=2, horizon=10,
                      eta0=(0.99, 0.95), ref=(0.99, 1.0), eta_stride=1,
                      sizes=dict(hidden_sizes=(8,), ac_value_hidden_sizes=(8,), ac_tasks=2,
                                 ac_episodes=1, ac_eval_episodes=1)),
    },
}


def scale_settings(family: str, scale: str) -> dict:
    """The settings of ``scale`` on ``family`` (unknown names list the choices)."""
    return experiment.scale_settings(SCALES, scale, family)


def method_config(method: str, s: dict):
    """(registry name, config) of ``method``: the shared sizes, task-aware agents, and the
    method's (γ, λ): learned from ``eta0``, fixed at ``eta0``, or fixed at ``ref``."""
    g0, l0 = s["ref"] if method == "fixed_ref" else s["eta0"]
    flat = {**s["sizes"], "observe_task": True, "eta_init_gamma": g0, "eta_init_lambda": l0,
            "eta_ref_gamma": s["ref"][0], "eta_ref_lambda": s["ref"][1]}
    if method == "metagrad":
        return "metagrad", config_lib.replace(algorithms.MetaGradConfig(), **flat)
    # the preset's eta_learn="none" set here too: a fixed λ may be 1, a learned one not
    return "metagrad_fixed", config_lib.replace(algorithms.MetaGradConfig(), **flat,
                                                eta_learn="none")


def eta_trajectory(run_dir: Path, stride: int) -> dict:
    """Every ``stride``-th training row's γ and λ: ``iterations``, ``gamma[i][seed]``,
    ``lambda[i][seed]``."""
    return experiment.per_iteration(run_dir, ("gamma", "lambda"), stride)


def run_method(method: str, family, s: dict, seed: int, run_dir: Path, resume: bool,
               previous: dict | None = None) -> dict:
    """Trains ``method`` (``s["seeds"]`` vmapped seeds) through the trainer with the
    evaluation hook; its record adds the evaluations and the γ, λ trajectory."""
    algo, cfg = method_config(method, s)
    learner = algorithms.make(algo, family, cfg)
    rec = train_method(learner, run_dir, s, seed, resume, previous, "seed002/metagrad",
                       (SPLIT,), 0)
    return {**evaluation_summary(run_dir, SPLIT), **rec, "eta": eta_trajectory(
        run_dir, s["eta_stride"]), "settings": s}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", default="navigation2d", help=f"one of {sorted(SCALES)}")
    p.add_argument("--scale", default="small")
    add_run_args(p, "seed002/metagrad")
    args = p.parse_args(argv)
    s = override(scale_settings(args.family, args.scale), args)
    methods = choose(args.methods, METHODS)
    family = make_family(args.family, args.physics, s["horizon"])
    for name in methods:  # every method is built (and refused) before the first run starts
        algo, cfg = method_config(name, s)
        algorithms.make(algo, family, cfg)
    stem = f"{args.family}_{args.scale}"
    results = Results(args.out, stem, "experiments/seed002/metagrad/run.py", argv,
                      family=args.family, scale=args.scale, settings=s, split=SPLIT,
                      physics=getattr(family, "physics", "pure JAX"))
    print(f"{args.family} ({args.scale}): {methods}, {s['seeds']} seeds", flush=True)
    def describe(name: str, rec: dict) -> str:
        final = np.mean(rec["returns"][-1], axis=0)[0]
        eta = (np.mean(rec["eta"]["gamma"][-1]), np.mean(rec["eta"]["lambda"][-1]))
        steps = experiment.env_steps_per_seed(rec, rec["iterations"][-1], s["seeds"])
        return (f"  {name:9s} held-out return {final:8.2f}   γ {eta[0]:.3f} λ {eta[1]:.3f}"
                f"   {steps:,.0f} env steps/seed   [{rec['wall_seconds']:5.0f}s]")

    run_methods(methods, results, lambda name, prev: run_method(
        name, family, s, args.seed, Path(args.runs) / stem / name, args.resume, prev),
        describe)


if __name__ == "__main__":
    try:
        main()
    except RUNNER_ERRORS as e:
        raise SystemExit(f"error: {e}") from None
