"""Seed 003's experiments (VATE, Zintgraf et al.): RL² vs VATE on the gridworld, the
ablations, and RL² vs VATE on half-cheetah velocity.

Every method trains through the trainer (``jaxmeta.train``: vmapped seeds, checkpoints,
``--resume``); its evaluation hook runs, before training and every ``eval_every``
updates, ``eval_trials`` trials of ``trial_episodes`` episodes on each of ``eval_tasks``
held-out tasks (``test``), and records the mean return of every episode of the trial
(``pre_adapt_return`` = episode 1, ``post_adapt_return`` = episodes 2..E).

* ``rl2``: a GRU policy, memory across the trial's episodes (RL², the paper's baseline);
* ``vate``: the recurrent posterior q(m | τ:t), reward decoder, policy on [s, μ, σ];
* ``vate_past_decoding``, ``vate_no_rl_grad``: seed 003 §5's two ablations;
* ``varibad``: the later paper's setting (KL to the previous posterior, no RL gradient
  into the encoder).

The gridworld's Bayes-optimal and oracle returns per episode come from the exact planner
(``jaxmeta.envs.gridworld_bayes``) and are stored with the results as the ceilings.

    python experiments/vate/run.py --family gridworld --scale small
    python experiments/vate/run.py --family halfcheetah_vel --scale small --methods rl2,vate
    python experiments/vate/run.py --family gridworld --scale small --resume
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from jaxmeta import algorithms, experiment
from jaxmeta.envs import gridworld_bayes
from jaxmeta.experiment import (
    RUNNER_ERRORS,
    Results,
    add_run_args,
    choose,
    make_family,
    override,
    train_method,
    training_curve,
)
from jaxmeta.runs import read_metrics

METHODS = ("rl2", "vate", "vate_past_decoding", "vate_no_rl_grad", "varibad")
SPLIT = "test"

# gridworld ``small``: seed 003's task (5×5, 3 episodes × 15 steps, 16 tasks per update);
# VATE's ELBO uses 15 of the 45 start points per trial (elbo_starts) to fit the CPU.
# halfcheetah_vel ``small``: 2 episodes × 200 steps, 8 tasks per update.
SCALES = {
    "gridworld": {
        "small": dict(iterations=2500, eval_every=250, eval_tasks=21, seeds=3, episodes=3,
                      meta_batch_size=16),
        "smoke": dict(iterations=4, eval_every=2, eval_tasks=2, seeds=1, episodes=3,
                      meta_batch_size=2, gru_size=8),
    },
    "halfcheetah_vel": {
        "small": dict(iterations=150, eval_every=50, eval_tasks=8, seeds=2, episodes=2,
                      meta_batch_size=8),
        "smoke": dict(iterations=2, eval_every=1, eval_tasks=2, seeds=1, episodes=2,
                      meta_batch_size=2, gru_size=8, horizon=10),
    },
}


def scale_settings(family: str, scale: str) -> dict:
    """The sizes of ``scale`` on ``family`` (unknown names list the choices)."""
    return experiment.scale_settings(SCALES, scale, family)


def method_config(method: str, family: str, s: dict):
    """The shared sizes: GRU 64, heads [32] (gridworld) or [64, 64] (cheetah), PPO 4 epochs
    at 7e-4, γ = 0.95 on the gridworld (variBAD's) and 0.99 on the cheetah; VATE's latent
    5, Bernoulli reward decoder on s_{t+1} (gridworld) or Gaussian on (s, a, s′)."""
    grid = family == "gridworld"
    flat = dict(gru_size=s.get("gru_size", 64), hidden_sizes=(32,) if grid else (64, 64),
                value_hidden_sizes=(32,) if grid else (64, 64),
                meta_batch_size=s["meta_batch_size"], trial_episodes=s["episodes"],
                eval_trials=4, ppo_epochs=4, ppo_lr=7e-4, gamma=0.95 if grid else 0.99,
                entropy_coef=0.05 if grid else 0.0, latent_size=5,
                elbo_starts=15 if grid else 20, vae_batch_trials=s["meta_batch_size"],
                vae_buffer_trials=256 if grid else 64)
    if grid:
        flat.update(reward_likelihood="bernoulli", reward_decoder_input="next_state")
    return algorithms.config_with(method, **flat)


def references(family) -> dict:
    """The gridworld's exact per-episode Bayes-optimal and oracle returns ({} otherwise)."""
    if family.name != "gridworld":
        return {}
    e = 3
    return {"bayes_optimal": gridworld_bayes.bayes_optimal_returns(family, e).tolist(),
            "oracle": gridworld_bayes.oracle_returns(family, e).tolist()}


def summary(run_dir: Path) -> dict:
    """Per evaluation: each seed's mean return in every episode of the trial
    (``returns[i][seed][episode]``); per interval, each seed's training return per episode."""
    rows = read_metrics(run_dir)
    evals = [r for r in rows if r.get("split") == SPLIT]
    its = sorted({r["iteration"] for r in evals})
    returns = [[[r["pre_adapt_return"], *r["post_adapt_return"]] for r in evals
                if r["iteration"] == i] for i in its]
    return {"iterations": its, "returns": returns,
            "train_pre_return": training_curve(rows, "pre_return", its),
            "train_post_return": training_curve(rows, "post_return", its)}


def run_method(method: str, family, s: dict, seed: int, run_dir: Path, resume: bool,
               previous: dict | None = None) -> dict:
    """Trains ``method`` (``s["seeds"]`` vmapped seeds) with the evaluation hook."""
    learner = algorithms.make(method, family, method_config(method, family.name, s))
    rec = train_method(learner, run_dir, s, seed, resume, previous, "vate", (SPLIT,),
                       s["episodes"] - 1)
    return {**summary(run_dir), **rec}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", default="gridworld", help=f"one of {sorted(SCALES)}")
    p.add_argument("--scale", default="small")
    add_run_args(p, "vate")
    args = p.parse_args(argv)
    s = override(scale_settings(args.family, args.scale), args)
    methods = choose(args.methods, METHODS)
    family = make_family(args.family, args.physics, s.get("horizon"))
    stem = f"{args.family}_{args.scale}"
    results = Results(args.out, stem, "experiments/vate/run.py", argv, family=args.family,
                      scale=args.scale, settings=s, split=SPLIT,
                      physics=getattr(family, "physics", "pure JAX"), **references(family))
    print(f"{args.family} ({args.scale}): {methods}, {s['seeds']} seeds x {s['iterations']} "
          "updates", flush=True)
    for m in methods:
        rec = run_method(m, family, s, args.seed, Path(args.runs) / stem / m, args.resume,
                         results.data["methods"].get(m))
        final = np.mean(rec["returns"][-1], axis=0)
        print(f"  {m:20s} return per episode " + " ".join(f"{x:7.2f}" for x in final)
              + f"   [{rec['wall_seconds']:5.0f}s]", flush=True)
        results.add(m, rec)  # after every method: nothing is lost
    print(f"wrote {results.path}")


if __name__ == "__main__":
    try:
        main()
    except RUNNER_ERRORS as e:
        raise SystemExit(f"error: {e}") from None
