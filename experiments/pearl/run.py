"""PEARL (Rakelly et al. 2019) against MAML (TRPO) and RL²: held-out-task return after
adaptation against the env steps spent in meta-training.

Every method trains through the trainer (``jaxmeta.train``: vmapped seeds, checkpoints,
``--resume``); its evaluation hook runs, before training and every ``eval_every``
updates, on ``eval_tasks`` held-out tasks (``test``), each method's own adaptation:

* ``pearl``: PEARL's test protocol: episode 1 with z from the prior, each later episode
  with z from the posterior given every transition so far (``adapt_episodes`` in all);
* ``rl2``: trials of ``adapt_episodes`` episodes, the GRU's memory across them;
* ``maml``: one VPG step on ``episodes`` trajectories (the MAML paper's protocol;
  meta-trained with TRPO through that step).

``returns[i][seed]`` holds, at evaluation i, the return before adaptation and after each
step of it (episodes for PEARL and RL², gradient steps for MAML); the last entry is the
adapted return. Env steps count everything simulated for training, PEARL's initial
replay filling (``init_env_steps``) included.

    python experiments/pearl/run.py --family navigation2d_sparse --scale small
    python experiments/pearl/run.py --family halfcheetah_vel_pearl --scale small
    python experiments/pearl/run.py --family halfcheetah_vel_pearl --scale small --resume
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

METHODS = ("pearl", "maml", "rl2")
SPLIT = "test"

# Sizes per family and scale. ``iterations``/``eval_every`` per method (their updates cost
# very different numbers of env steps); shared: seeds, evaluation tasks, adaptation length.
# ``small``: what fits a 2-core CPU (C MuJoCo for the cheetah), stated in the README;
# ``paper``: PEARL's own settings (oyster's configs) and MAML's, for an accelerator;
# ``smoke``: the pipeline end to end in seconds (no result to read).
SCALES = {
    "navigation2d_sparse": {
        "small": dict(
            seeds=2, eval_tasks=20, adapt_episodes=5,
            pearl=dict(iterations=300, eval_every=20, hidden_sizes=(64, 64),
                       encoder_hidden_sizes=(64, 64), num_train_tasks=40, capacity=4000,
                       initial_steps=200, tasks_per_iteration=5, prior_steps=40,
                       posterior_steps=160, extra_posterior_steps=0, train_steps=200,
                       meta_batch_size=8, batch_size=128, context_size=64, gamma=0.9,
                       reward_scale=20.0, kl_weight=1.0, actor_lr=1e-3, critic_lr=1e-3,
                       encoder_lr=1e-3, critic_reward="dense"),
            maml=dict(iterations=200, eval_every=20, hidden_sizes=(100, 100),
                      meta_batch_size=20, episodes=20),
            rl2=dict(iterations=1000, eval_every=100, meta_batch_size=16, gamma=0.9,
                     hidden_sizes=(64,), gru_size=64),
        ),
        "paper": dict(
            seeds=3, eval_tasks=20, adapt_episodes=6,
            pearl=dict(iterations=1000, eval_every=50, num_train_tasks=80, capacity=100_000,
                       initial_steps=200, tasks_per_iteration=10, prior_steps=100,
                       posterior_steps=900, extra_posterior_steps=0, train_steps=1000,
                       meta_batch_size=16, batch_size=256, context_size=1024, gamma=0.9,
                       reward_scale=100.0, kl_weight=1.0, critic_reward="dense"),
            maml=dict(iterations=500, eval_every=50, hidden_sizes=(100, 100),
                      meta_batch_size=20, episodes=20),
            rl2=dict(iterations=5000, eval_every=500, meta_batch_size=16, gamma=0.9,
                     hidden_sizes=(64,), gru_size=64),
        ),
        "smoke": dict(
            seeds=1, eval_tasks=2, adapt_episodes=2,
            pearl=dict(iterations=2, eval_every=1, hidden_sizes=(8,), encoder_hidden_sizes=(8,),
                       num_train_tasks=4, capacity=200, initial_steps=20, tasks_per_iteration=2,
                       prior_steps=20, posterior_steps=20, extra_posterior_steps=0,
                       train_steps=2, meta_batch_size=2, batch_size=8, context_size=8,
                       critic_reward="dense"),
            maml=dict(iterations=2, eval_every=1, hidden_sizes=(8,), meta_batch_size=2,
                      episodes=2),
            rl2=dict(iterations=2, eval_every=1, meta_batch_size=2, hidden_sizes=(8,),
                     gru_size=8),
        ),
    },
    "halfcheetah_vel_pearl": {
        "small": dict(
            seeds=2, eval_tasks=30, adapt_episodes=3,
            pearl=dict(iterations=400, eval_every=40, hidden_sizes=(128, 128),
                       encoder_hidden_sizes=(128, 128), num_train_tasks=100, capacity=10_000,
                       initial_steps=200, tasks_per_iteration=2, prior_steps=200,
                       posterior_steps=0, extra_posterior_steps=200, train_steps=250,
                       meta_batch_size=8, batch_size=128, context_size=64),
            maml=dict(iterations=100, eval_every=10, hidden_sizes=(100, 100),
                      meta_batch_size=10, episodes=10),
            rl2=dict(iterations=300, eval_every=30, meta_batch_size=8, hidden_sizes=(64, 64),
                     gru_size=64, entropy_coef=0.0),
        ),
        "paper": dict(
            seeds=3, eval_tasks=30, adapt_episodes=3,
            pearl=dict(iterations=500, eval_every=25),  # the registered defaults are oyster's
            maml=dict(iterations=500, eval_every=50, hidden_sizes=(100, 100),
                      meta_batch_size=40, episodes=20),
            rl2=dict(iterations=2000, eval_every=200, meta_batch_size=16,
                     hidden_sizes=(64, 64), gru_size=64, entropy_coef=0.0),
        ),
        "smoke": dict(
            seeds=1, eval_tasks=2, adapt_episodes=2, horizon=10,
            pearl=dict(iterations=2, eval_every=1, hidden_sizes=(8,), encoder_hidden_sizes=(8,),
                       num_train_tasks=4, capacity=200, initial_steps=20, tasks_per_iteration=2,
                       prior_steps=10, extra_posterior_steps=10, train_steps=2,
                       meta_batch_size=2, batch_size=8, context_size=8),
            maml=dict(iterations=2, eval_every=1, hidden_sizes=(8,), meta_batch_size=2,
                      episodes=2),
            rl2=dict(iterations=2, eval_every=1, meta_batch_size=2, hidden_sizes=(8,),
                     gru_size=8),
        ),
    },
}


def scale_settings(family: str, scale: str) -> dict:
    """The sizes of ``scale`` on ``family`` (unknown names list the choices)."""
    return experiment.scale_settings(SCALES, scale, family)


def method_settings(s: dict, method: str) -> dict:
    """The shared settings with ``method``'s own on top (its iterations, sizes)."""
    shared = {k: v for k, v in s.items() if k not in METHODS}
    return {**shared, **s[method]}


def method_config(method: str, m: dict):
    """``method``'s config at its settings ``m``. MAML: the paper's inner VPG step (lr 0.1,
    linear baseline, γ = 0.99) on ``episodes`` trajectories, TRPO outer step. RL²: PPO
    (4 epochs, 7e-4) on trials of ``adapt_episodes`` episodes. PEARL: the registered
    defaults (oyster's cheetah settings) with the fields of ``m``."""
    flat = {k: v for k, v in m.items() if k not in ("iterations", "eval_every", "seeds",
                                                    "eval_tasks", "adapt_episodes", "horizon")}
    if method == "maml":
        n = flat.pop("episodes")
        flat.update(inner_episodes=n, outer_episodes=n, eval_episodes=n, inner_steps=1,
                    inner_lr=0.1)
    elif method == "rl2":
        flat.update(trial_episodes=m["adapt_episodes"], eval_trials=2, ppo_epochs=4,
                    ppo_lr=7e-4, value_hidden_sizes=flat["hidden_sizes"])
    cfg = algorithms.config_with(method, **flat)
    # config_with skips names a class lacks; here every name is meant, so check
    unknown = set(flat) - set(config_lib.flat_fields(type(cfg)))
    if unknown:
        raise ValueError(f"{method} has no config fields {sorted(unknown)}")
    return cfg


def adapt_steps(method: str, m: dict) -> int:
    """Adaptation steps of the evaluation: episodes after the first (PEARL, RL²), or one
    gradient step (MAML, as it was meta-trained)."""
    return 1 if method == "maml" else m["adapt_episodes"] - 1


def summary(run_dir: Path) -> dict:
    """Per evaluation: each seed's return before and after each adaptation step
    (``returns[i][seed][k]``); per interval, each seed's training return."""
    return evaluation_summary(run_dir, SPLIT)


def run_method(method: str, family, s: dict, seed: int, run_dir: Path, resume: bool,
               previous: dict | None = None) -> dict:
    """Trains ``method`` (``s["seeds"]`` vmapped seeds) through the trainer with the
    evaluation hook; returns its record."""
    m = method_settings(s, method)
    learner = algorithms.make(method, family, method_config(method, m))
    rec = train_method(learner, run_dir, m, seed, resume, previous, "pearl", (SPLIT,),
                       adapt_steps(method, m))
    return {**summary(run_dir), **rec, "settings": m}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", default="navigation2d_sparse", help=f"one of {sorted(SCALES)}")
    p.add_argument("--scale", default="small")
    add_run_args(p, "pearl")
    args = p.parse_args(argv)
    s = scale_settings(args.family, args.scale)
    methods = choose(args.methods, METHODS)
    if args.iterations is not None:  # one override for the methods run now
        for name in methods:
            s[name]["iterations"] = args.iterations
    for name in methods:
        override(method_settings(s, name), args, ("seeds",))  # iterations vs eval_every
    if args.seeds is not None:
        s["seeds"] = args.seeds
    family = make_family(args.family, args.physics, s.get("horizon"))
    for name in methods:  # every method is built (and refused) before the first run starts
        algorithms.make(name, family, method_config(name, method_settings(s, name)))
    stem = f"{args.family}_{args.scale}"
    results = Results(args.out, stem, "experiments/pearl/run.py", argv, family=args.family,
                      scale=args.scale, settings=s, split=SPLIT,
                      physics=getattr(family, "physics", "pure JAX"))
    print(f"{args.family} ({args.scale}): {methods}, {s['seeds']} seeds", flush=True)
    def describe(name: str, rec: dict) -> str:
        final = np.mean(rec["returns"][-1], axis=0)
        steps = experiment.env_steps_per_seed(rec, rec["iterations"][-1], s["seeds"])
        return (f"  {name:6s} return before/after adaptation "
                + " ".join(f"{x:8.2f}" for x in final)
                + f"   {steps:,.0f} env steps/seed   [{rec['wall_seconds']:5.0f}s]")

    run_methods(methods, results, lambda name, prev: run_method(
        name, family, s, args.seed, Path(args.runs) / stem / name, args.resume, prev),
        describe)


if __name__ == "__main__":
    try:
        main()
    except RUNNER_ERRORS as e:
        raise SystemExit(f"error: {e}") from None
