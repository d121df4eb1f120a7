"""MAESN (Gupta et al. 2018) on sparse-reward 2D navigation: return after adaptation
against MAML and the LatentSpace baseline, and what the latent does to exploration.

``navigation2d_sparse``: goals on the upper half of the unit circle, reward 1 − d only
within 0.2 of the goal, 20 steps from the origin. Every method is meta-trained on the dense
reward −d (the paper's protocol; ``train_reward="dense"``) and adapted at test time on the
sparse one, to ``eval_tasks`` held-out (``test``) goals.

Methods (same policy sizes, tasks per iteration and episodes per step):

* ``maesn``: latent-only fast adaptation (ω = (μ, log σ), learned rates α);
* ``maesn_policy``: MAESN adapting θ as well (the paper's optional Eq. 5);
* ``latent_space``: the LatentSpace baseline (the same latent policy and per-task latents
  trained without fast-updates; adapted by policy gradient at test time);
* ``maml``: MAML-RL (TRPO, one inner VPG step), trained on the dense reward
  (``navigation2d_sparse`` with ``reward="dense"``), adapted with plain gradient steps on
  the sparse one.

Every run goes through the trainer (vmapped seeds, checkpoints, ``--resume``). After
training, every seed adapts to the same ``eval_tasks`` goals for ``adapt_steps`` steps
(``jaxmeta.evaluation.evaluate``), and ``exploration`` records the positions of a few
episodes of seed 0 on one goal before adaptation: one z per episode from the prior for the
MAESN methods, the policy's own noise for MAML.

    python experiments/seed002/maesn/run.py --scale small
    python experiments/seed002/maesn/report.py \
        --results experiments/seed002/maesn/results/navigation2d_sparse_small.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
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

FAMILY = "navigation2d_sparse"
METHODS = ("maesn", "maesn_policy", "latent_space", "maml")
ALGOS = {"maesn": "maesn", "maesn_policy": "maesn", "latent_space": "maesn_latent_space",
         "maml": "maml"}
SIZES = dict(hidden_sizes=(32, 32), meta_batch_size=10, inner_episodes=20, outer_episodes=20,
             eval_episodes=20)
# ``small``: minutes on a 2-core CPU (stated in the README); ``paper``: the longer runs for
# an accelerator; ``smoke``: the pipeline end to end in seconds (no result to read)
SCALES = {
    "small": dict(seeds=5, iterations=300, eval_every=50, eval_tasks=40, adapt_steps=5,
                  num_train_tasks=20, latent_size=2, explore_episodes=8, sizes=SIZES),
    "paper": dict(seeds=10, iterations=1500, eval_every=100, eval_tasks=100, adapt_steps=10,
                  num_train_tasks=100, latent_size=2, explore_episodes=8,
                  sizes=dict(SIZES, hidden_sizes=(64, 64), meta_batch_size=20)),
    "smoke": dict(seeds=1, iterations=2, eval_every=1, eval_tasks=2, adapt_steps=1,
                  num_train_tasks=3, latent_size=2, explore_episodes=2,
                  sizes=dict(hidden_sizes=(8,), meta_batch_size=2, inner_episodes=2,
                             outer_episodes=2, eval_episodes=2)),
}


def scale_settings(scale: str) -> dict:
    """The settings of ``scale`` (unknown names list the choices)."""
    return experiment.scale_settings(SCALES, scale)


def method_learners(method: str, s: dict):
    """(learner that trains, learner that adapts on the sparse reward) of ``method``."""
    family = envs.make(FAMILY)
    algo = ALGOS[method]
    flat = dict(s["sizes"])
    if algo.startswith("maesn"):
        flat.update(num_train_tasks=s["num_train_tasks"], latent_size=s["latent_size"],
                    adapt_policy=method == "maesn_policy")
    cfg = config_lib.replace(algorithms.config_class(algo)(), **flat)
    sparse = algorithms.make(algo, family, cfg)
    # MAESN reads the dense reward itself (train_reward="dense"); MAML trains on the
    # family's dense variant
    return (sparse if algo.startswith("maesn")
            else algorithms.make(algo, envs.make(FAMILY, reward="dense"), cfg)), sparse


def positions(learner, params, task, key, n: int) -> np.ndarray:
    """``[n, T + 1, 2]``: the positions of ``n`` episodes of ``learner.act(params, ...)``
    from the origin (MAESN: ``params`` per episode, one z each)."""
    fam = learner.family

    def one(p, k):
        k_reset, k_act = jax.random.split(k)
        s0 = fam.reset(k_reset, task)

        def body(s, kk):
            s = fam.step(s, learner.act(p, s.obs, kk, task), task)
            return s, s.obs

        _, obs = jax.lax.scan(body, s0, jax.random.split(k_act, fam.horizon))
        return jnp.concatenate([s0.obs[None], obs])

    return np.asarray(jax.vmap(one)(params, jax.random.split(key, n)))


def exploration(method: str, learner, states, s: dict) -> dict:
    """Seed 0's episodes on the first held-out goal before any adaptation."""
    state = jax.tree.map(lambda x: x[0], states)
    task = jax.tree.map(lambda x: x[0], learner.family.sample_tasks(
        jax.random.PRNGKey(2024), 1, "test"))
    n = s["explore_episodes"]
    key = jax.random.PRNGKey(7)
    if ALGOS[method].startswith("maesn"):  # z ~ N(0, I), one per episode
        z = jax.random.normal(jax.random.fold_in(key, 1), (n, s["latent_size"]))
        params = {"policy": jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape),
                                         state.params["policy"]), "z": z}
    else:
        params = jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape),
                              state.params["policy"])
    return {"goal": np.asarray(task.goal).tolist(),
            "positions": positions(learner, params, task, key, n).tolist()}


def run_method(method: str, s: dict, seed: int, run_dir: Path, resume: bool,
               previous: dict | None) -> dict:
    """Trains ``method`` through the trainer, then adapts every seed on held-out goals with the
    sparse reward; its record adds the evaluation, the training curve and the exploration."""
    trainer, sparse = method_learners(method, s)
    rec = train_method(trainer, run_dir, s, seed, resume, previous, "seed002/maesn", (), 0)
    _, states, _, step = load_run(run_dir)
    ev = evaluate(sparse, states, jax.random.PRNGKey(123), "test", s["eval_tasks"],
                  s["adapt_steps"])
    curve = per_iteration(run_dir, ("post_return", "pre_return"))
    return {**rec, "iteration": step, "evaluation": ev, "train_curve": curve,
            "exploration": exploration(method, sparse, states, s), "settings": s}


def main(argv=None) -> None:
    """Runs the chosen methods at ``--scale`` and writes the results JSON."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", default="small")
    add_run_args(p, "seed002/maesn")
    args = p.parse_args(argv)
    s = override(scale_settings(args.scale), args)
    methods = choose(args.methods, METHODS)
    for name in methods:  # every method is built (and refused) before the first run starts
        method_learners(name, s)
    stem = f"{FAMILY}_{args.scale}"
    results = Results(args.out, stem, "experiments/seed002/maesn/run.py", argv, family=FAMILY,
                      scale=args.scale, settings=s, split="test")
    print(f"{FAMILY} ({args.scale}): {methods}, {s['seeds']} seeds", flush=True)

    def describe(name: str, rec: dict) -> str:
        ev = rec["evaluation"]
        return (f"  {name:13s} sparse return pre {ev['pre_adapt_return']:.3f} -> after "
                f"{ev['adapt_steps']} steps {ev['post_adapt_return'][-1]:.3f}"
                f"   [{rec['wall_seconds']:5.0f}s]")

    run_methods(methods, results, lambda name, prev: run_method(
        name, s, args.seed, Path(args.runs) / stem / name, args.resume, prev), describe)


if __name__ == "__main__":
    try:
        main()
    except RUNNER_ERRORS as e:
        raise SystemExit(f"error: {e}") from None
