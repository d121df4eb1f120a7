"""TESP's experiments (Lan et al. 2019, §5, Fig. 4 and 5) on one task family.

Trains every method with several vmapped seeds and, every ``eval_every`` meta-updates
(and before training), fast-adapts each seed's learner with 3 fast-updates to
``eval_tasks`` tasks of D (``train``: the fixed pool of 100 training tasks), D′ (``test``)
and D″ (``ood``), recording the mean return after adaptation (the paper's R) and before
it. Writes ``OUT/<family>[_ablation].json``; ``report.py`` turns those into the figures and
the table.

    python experiments/tesp/run.py --family reacher2_target --scale small
    python experiments/tesp/run.py --family reacher2_target --scale small --ablation
    python experiments/tesp/run.py --family ant_target --scale paper      # GPU

Methods: TESP, MAML, Meta-SGD, AdaptSV (Fig. 4) or TESP and V1–V5 (``--ablation``,
Fig. 5). All use VPG fast-updates with first-order meta-gradients and a PPO meta-update
(TESP §5.1); MAML and Meta-SGD adapt their whole policy with K = 3 inner steps of N
episodes, TESP and AdaptSV additionally sample N warm-up episodes with h = 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

from jaxmeta import algorithms, envs
from jaxmeta.algorithms.tesp import paper_config
from jaxmeta.evaluate import adaptation_returns
from jaxmeta.train import compiled_chunk, compiled_init, seed_keys

FAMILIES = ("wheeled_goal", "ant_target", "reacher2_target", "reacher4_target")
METHODS = ("tesp", "maml", "meta_sgd", "adaptsv")
ABLATIONS = ("tesp", "tesp_v1", "tesp_v2", "tesp_v3", "tesp_v4", "tesp_v5")
SPLITS = ("train", "test", "ood")
ADAPT_STEPS = 3

# Shared sizes of each scale. ``small`` fits a 2-core CPU (see README for timings);
# ``paper`` is the TESP supplement's protocol (sizes from ``paper_config``; 100 evaluation
# tasks per split).
SCALES = {
    "small": dict(iterations=100, eval_every=25, eval_tasks=16, seeds=3, horizon=50,
                  meta_batch_size=8, episodes=8, buffer_size=4, hidden_sizes=(64, 64),
                  gru_size=32, outer_lr=3e-3),
    "paper": dict(iterations=500, eval_every=25, eval_tasks=100, seeds=5, horizon=200),
}
# Per-family changes to the small scale: on a CPU the 4-link reacher simulates ~4x, the
# ant and the wheeled robot ~20-40x slower than the 2-link reacher, so they get fewer
# meta-updates, seeds and episodes (still about an hour per family on 2 cores).
_SLOW = dict(iterations=50, seeds=2, meta_batch_size=6, episodes=6, buffer_size=3,
             eval_tasks=10)
SMALL_BY_FAMILY = {"ant_target": _SLOW, "wheeled_goal": _SLOW, "reacher4_target": _SLOW}


def scale_settings(scale: str, family: str) -> dict:
    """The sizes of ``scale`` for ``family`` (unknown names list the choices)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
    s = dict(SCALES[scale])
    if scale == "small":
        s.update(SMALL_BY_FAMILY.get(family, {}))
    else:
        p = paper_config(family)
        s.update(meta_batch_size=p.meta_batch_size, episodes=p.inner_episodes,
                 buffer_size=p.buffer_size, hidden_sizes=p.hidden_sizes, gru_size=p.gru_size,
                 embedding_size=p.embedding_size, outer_lr=p.outer_lr)
    return s


def method_config(method: str, s: dict):
    """The config of ``method`` at settings ``s`` (TESP presets apply their own fields)."""
    n = s["episodes"]
    if method in ("maml", "meta_sgd"):
        return algorithms.MetaConfig(
            hidden_sizes=s["hidden_sizes"], meta_batch_size=s["meta_batch_size"],
            inner_episodes=n, outer_episodes=n, eval_episodes=n, inner_steps=ADAPT_STEPS,
            inner_lr=0.001, meta_gradient="first_order", outer="ppo", outer_lr=s["outer_lr"],
            ppo_clip=0.15, gamma=0.99, gae_lambda=0.97)
    return algorithms.TESPConfig(
        hidden_sizes=s["hidden_sizes"], gru_size=s["gru_size"],
        embedding_size=s.get("embedding_size", 8), meta_batch_size=s["meta_batch_size"],
        inner_episodes=n, outer_episodes=n, eval_episodes=n, buffer_size=s["buffer_size"],
        fast_updates=ADAPT_STEPS, inner_lr=0.001, outer_lr=s["outer_lr"], ppo_clip=0.15,
        gamma=0.99, gae_lambda=0.97)


def run_method(method: str, family, s: dict, seed: int, log) -> dict:
    """Trains ``method`` with ``s["seeds"]`` vmapped seeds; evaluates every ``eval_every``."""
    learner = algorithms.make(method, family, method_config(method, s))
    t0 = time.time()
    states = compiled_init(learner.init)(seed_keys(seed, s["seeds"]))
    run = compiled_chunk(learner.update)
    evaluate = adaptation_returns(learner, ADAPT_STEPS)
    eval_tasks = {split: family.sample_tasks(jax.random.PRNGKey(1000 + i), s["eval_tasks"],
                                             split) for i, split in enumerate(SPLITS)}
    eval_keys = jax.random.split(jax.random.PRNGKey(7), s["eval_tasks"])
    out = {"iterations": [], "post": {k: [] for k in SPLITS}, "pre": {k: [] for k in SPLITS},
           "train_post_return": []}
    train_time = eval_time = 0.0
    it = 0
    while True:
        t = time.time()
        for split in SPLITS:
            r = np.asarray(evaluate(states, eval_tasks[split], eval_keys)).mean(axis=1)
            out["post"][split].append(r[:, -1].tolist())  # [seeds]
            out["pre"][split].append(r[:, 0].tolist())
        eval_time += time.time() - t
        out["iterations"].append(it)
        log(f"  {method:<9} it {it:4d}  R after {ADAPT_STEPS} fast-updates: " + "  ".join(
            f"{k} {np.mean(out['post'][k][-1]):8.2f}" for k in SPLITS)
            + f"   [{time.time() - t0:5.0f}s]")
        if it >= s["iterations"]:
            break
        t = time.time()
        states, metrics = run(states, s["eval_every"])
        jax.block_until_ready(states)
        train_time += time.time() - t
        post = np.asarray(metrics["post_return"])
        if not np.all(np.isfinite(post)):
            raise FloatingPointError(f"{method}: non-finite return before iteration "
                                     f"{it + s['eval_every']}")
        out["train_post_return"].append(post.mean(axis=0).tolist())
        it += s["eval_every"]
    out.update(train_seconds=train_time, eval_seconds=eval_time,
               wall_seconds=time.time() - t0,
               config=json.loads(json.dumps(dataclasses.asdict(learner.config))))
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", default="reacher2_target", help=f"one of {FAMILIES}")
    p.add_argument("--scale", default="small", help=f"one of {sorted(SCALES)}")
    p.add_argument("--ablation", action="store_true", help="TESP vs V1-V5 (Fig. 5)")
    p.add_argument("--methods", default=None, help="comma-separated subset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iterations", type=int, default=None, help="override the scale's")
    p.add_argument("--seeds", type=int, default=None, help="override the scale's")
    p.add_argument("--out", default="experiments/tesp/results")
    args = p.parse_args(argv)
    if args.family not in FAMILIES:
        raise SystemExit(f"unknown family {args.family!r}; choose one of {list(FAMILIES)}")
    s = scale_settings(args.scale, args.family)
    for k in ("iterations", "seeds"):
        if getattr(args, k) is not None:
            s[k] = getattr(args, k)
    if s["iterations"] % s["eval_every"]:
        raise SystemExit(f"iterations={s['iterations']} must be a multiple of "
                         f"eval_every={s['eval_every']}")
    pool = ABLATIONS if args.ablation else METHODS
    methods = args.methods.split(",") if args.methods else list(pool)
    bad = [m for m in methods if m not in pool]
    if bad:
        raise SystemExit(f"unknown methods {bad}; choose from {list(pool)}")
    family = envs.make(args.family, horizon=s["horizon"])
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{args.family}{'_ablation' if args.ablation else ''}_{args.scale}.json"
    result = json.loads(path.read_text()) if path.exists() else {}
    command = "python experiments/tesp/run.py " + " ".join(sys.argv[1:] if argv is None
                                                            else argv)
    result.update({
        "family": args.family, "scale": args.scale, "settings": {k: v for k, v in s.items()},
        "device": jax.devices()[0].device_kind, "jax": jax.__version__,
        "date": time.strftime("%Y-%m-%d"), "adapt_steps": ADAPT_STEPS,
    })
    result.setdefault("methods", {})

    def log(msg):
        print(msg, flush=True)

    log(f"{args.family} ({args.scale}): {methods}, {s['seeds']} seeds x {s['iterations']} "
        f"meta-updates")
    for m in methods:
        result["methods"][m] = {**run_method(m, family, s, args.seed, log), "command": command}
        result["commands"] = sorted({r["command"] for r in result["methods"].values()})
        path.write_text(json.dumps(result, indent=1))  # after every method: nothing is lost
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
