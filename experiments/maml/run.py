"""MAML's half-cheetah experiment (Finn et al. 2017, §5.3 and Fig. 5) on one task family.

Trains MAML and the paper's baselines through the trainer (``jaxmeta.train``: vmapped
seeds, checkpoints, ``--resume``) and evaluates with its hook: before training and every
``eval_every`` meta-iterations, each seed's learner takes 0–3 gradient steps (VPG, the
inner learning rate, ``eval_episodes`` trajectories per step) on ``eval_tasks`` held-out
tasks (``test``). Fig. 5 plots the return after each number of steps at the end of training.

* ``maml``: second-order MAML, one inner step at training time, TRPO meta-update;
* ``pretrained``: one policy trained on all tasks jointly (multi-task PPO), fine-tuned;
* ``random_init``: no training, fine-tuned from a random initialisation;
* ``oracle``: multi-task PPO whose policy also sees the task (goal velocity or
  direction): an upper reference.

Runs go to ``RUNS/<family>_<scale>/<method>/`` (each can be resumed, evaluated and plotted
with ``python -m jaxmeta``); the summary to ``OUT/<family>_<scale>.json``, which
``report.py`` turns into the figures and the table.

    python experiments/maml/run.py --family halfcheetah_vel --scale small
    python experiments/maml/run.py --family halfcheetah_dir --scale small --resume
    python experiments/maml/run.py --family halfcheetah_vel --scale paper      # GPU
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from jaxmeta import algorithms, envs, experiment
from jaxmeta.experiment import (
    RUNNER_ERRORS,
    Results,
    add_run_args,
    choose,
    evaluation_summary,
    override,
    train_method,
)

FAMILIES = ("halfcheetah_vel", "halfcheetah_dir")
METHODS = ("maml", "pretrained", "random_init", "oracle")
ADAPT_STEPS = 3  # Fig. 5: 0, 1, 2 and 3 gradient steps
SPLIT = "test"

# ``paper``: the MAML paper's half-cheetah settings (§5.3, appendix A.2: horizon 200, 40
# tasks × 20 trajectories, one inner step of 0.1, TRPO, [100, 100] ReLU policy, up to 500
# meta-iterations). ``small``: what fits about an hour of a 2-core CPU with C MuJoCo.
SCALES = {
    "paper": dict(iterations=500, eval_every=50, eval_tasks=40, seeds=3, horizon=200,
                  meta_batch_size=40, episodes=20),
    "small": dict(iterations=200, eval_every=20, eval_tasks=20, seeds=2, horizon=200,
                  meta_batch_size=10, episodes=10),
    # a check that the pipeline runs end to end (compiling dominates; no result to read)
    "smoke": dict(iterations=2, eval_every=1, eval_tasks=2, seeds=1, horizon=10,
                  meta_batch_size=2, episodes=2, hidden_sizes=(8,)),
}


def scale_settings(scale: str) -> dict:
    """The sizes of ``scale`` (unknown names list the choices)."""
    return experiment.scale_settings(SCALES, scale)


def method_config(method: str, s: dict):
    """``method``'s config at settings ``s``: the paper's policy, inner step (VPG, lr 0.1,
    normalised advantages, linear baseline, γ = 0.99) and trajectory counts for every
    method; MAML meta-trains with TRPO (max KL 0.01), the baselines with multi-task PPO."""
    n = s["episodes"]
    return algorithms.config_with(
        method, hidden_sizes=s.get("hidden_sizes", (100, 100)),
        meta_batch_size=s["meta_batch_size"], inner_episodes=n, outer_episodes=n,
        eval_episodes=n, inner_steps=1, inner_lr=0.1)


def summary(run_dir: Path) -> dict:
    """Per evaluation: the return after 0..ADAPT_STEPS gradient steps per seed
    (``returns[i][seed][k]``); per training chunk, the mean training return per seed."""
    return evaluation_summary(run_dir, SPLIT)


def run_method(method: str, family, s: dict, seed: int, run_dir: Path, resume: bool,
               previous: dict | None = None) -> dict:
    """Trains ``method`` (``s["seeds"]`` vmapped seeds) through the trainer with the
    evaluation hook; ``random_init`` trains for one iteration that changes nothing. The
    wall-clock of a resumed run adds this invocation to ``previous`` (its last record)."""
    learner = algorithms.make(method, family, method_config(method, s))
    iterations, every = ((1, 1) if method == "random_init"
                         else (s["iterations"], s["eval_every"]))
    rec = train_method(learner, run_dir, s, seed, resume, previous, "maml", (SPLIT,),
                       ADAPT_STEPS, iterations=iterations, every=every)
    return {**summary(run_dir), **rec}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", default="halfcheetah_vel", help=f"one of {FAMILIES}")
    p.add_argument("--scale", default="small", help=f"one of {sorted(SCALES)}")
    add_run_args(p, "maml")
    args = p.parse_args(argv)
    if args.family not in FAMILIES:
        raise ValueError(f"unknown family {args.family!r}; choose one of {list(FAMILIES)}")
    s = override(scale_settings(args.scale), args)
    methods = choose(args.methods, METHODS)
    family = envs.make(args.family, horizon=s["horizon"], physics=args.physics)
    stem = f"{args.family}_{args.scale}"
    results = Results(args.out, stem, "experiments/maml/run.py", argv, family=args.family,
                      scale=args.scale, settings=s, physics=family.physics,
                      adapt_steps=ADAPT_STEPS, split=SPLIT)
    print(f"{args.family} ({args.scale}, {family.physics}): {methods}, {s['seeds']} seeds x "
          f"{s['iterations']} meta-iterations", flush=True)
    for m in methods:
        rec = run_method(m, family, s, args.seed, Path(args.runs) / stem / m, args.resume,
                         results.data["methods"].get(m))
        final = np.mean(rec["returns"][-1], axis=0)
        print(f"  {m:12s} return after 0..{ADAPT_STEPS} steps "
              + " ".join(f"{x:8.1f}" for x in final) + f"   [{rec['wall_seconds']:5.0f}s]",
              flush=True)
        results.add(m, rec)  # after every method: nothing is lost
    print(f"wrote {results.path}")


if __name__ == "__main__":
    try:
        main()
    except RUNNER_ERRORS as e:
        raise SystemExit(f"error: {e}") from None
