"""Meta-training throughput of MAML on navigation2d, and compile time of one update.

Counts every simulated environment step of a meta-iteration: per task, ``inner_steps``
batches of ``inner_episodes`` plus ``outer_episodes`` post-adaptation episodes, each
``horizon`` steps. Timing excludes compilation (reported separately), uses the trainer's
program (``jit(scan(vmap(update)))`` over a chunk of iterations) and reports the median
over repeats. Writes JSON to ``benchmarks/results/`` and prints a markdown row.

Usage: python benchmarks/maml_throughput.py [--seeds 1 16] [--iterations 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
from pathlib import Path

import jax

from jaxmeta import algorithms, envs
from jaxmeta.bench import compile_timed, time_calls, trainer_program

PAPER = algorithms.MetaConfig()  # MAML paper: 20 tasks x 20 episodes, [100, 100], TRPO


def bench(seeds: int, iterations: int, repeats: int, cfg=PAPER) -> dict:
    family = envs.make("navigation2d")
    learner = algorithms.make("maml", family, cfg)
    compiled, states, compile_s = trainer_program(learner, seeds, iterations)
    timing = time_calls(compiled, (states,), repeats)
    steps = (seeds * iterations * cfg.meta_batch_size * family.horizon
             * (cfg.inner_steps * cfg.inner_episodes + cfg.outer_episodes))
    return {"seeds": seeds, "iterations_per_call": iterations, "env_steps_per_call": steps,
            **timing, "env_steps_per_s": steps / timing["median_s"], "compile_chunk_s": compile_s}


def compile_one_update(cfg=PAPER) -> float:
    """Wall time to lower and compile one (single-seed) ``update``."""
    learner = algorithms.make("maml", envs.make("navigation2d"), cfg)
    state = learner.init(jax.random.PRNGKey(0))
    return compile_timed(learner.update, state)[1]


def remat_memory(inner_steps=(1, 3, 5), cfg=PAPER) -> list[dict]:
    """XLA's temp-buffer size of one compiled second-order ``update`` vs K, with and
    without ``jax.checkpoint`` around the inner steps (``MetaConfig.remat``)."""
    import dataclasses

    rows = []
    family = envs.make("navigation2d")
    for k in inner_steps:
        for remat in (False, True):
            c = dataclasses.replace(cfg, inner_steps=k, remat=remat, meta_gradient="hessian")
            learner = algorithms.make("maml", family, c)
            state = learner.init(jax.random.PRNGKey(0))
            mem = jax.jit(learner.update).lower(state).compile().memory_analysis()
            rows.append({"inner_steps": k, "remat": remat,
                         "temp_bytes": int(getattr(mem, "temp_size_in_bytes", -1))})
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 16])
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--remat-memory", action="store_true",
                   help="also report compiled temp memory vs inner steps, with/without remat")
    args = p.parse_args()
    import jaxlib

    meta = {
        "benchmark": "maml_navigation2d_throughput",
        "date": datetime.date.today().isoformat(),
        "device": f"{jax.devices()[0].device_kind} x{jax.device_count()} ({platform.processor()}"
                  f", {__import__('os').cpu_count()} cores)",
        "versions": {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
                     "python": platform.python_version()},
        "config": {"meta_batch_size": PAPER.meta_batch_size,
                   "inner_episodes": PAPER.inner_episodes,
                   "outer_episodes": PAPER.outer_episodes, "horizon": 100,
                   "hidden_sizes": PAPER.hidden_sizes, "outer": PAPER.outer,
                   "meta_gradient": PAPER.meta_gradient, "inner_steps": PAPER.inner_steps},
    }
    meta["compile_one_update_s"] = compile_one_update()
    print(f"compile one update: {meta['compile_one_update_s']:.1f} s", flush=True)
    meta["runs"] = []
    for s in args.seeds:
        meta["runs"].append(bench(s, args.iterations, args.repeats))
        print(json.dumps(meta["runs"][-1]), flush=True)
    if args.remat_memory:
        meta["remat_memory"] = remat_memory()
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"maml_throughput_{meta['date']}.json"
    path.write_text(json.dumps(meta, indent=2))
    print(json.dumps(meta, indent=2))
    for r in meta["runs"]:
        print(f"| MAML navigation2d | {r['seeds']} | {r['env_steps_per_s']:,.0f} | "
              f"{r['median_s']:.2f} s / {r['iterations_per_call']} it | "
              f"{meta['compile_one_update_s']:.1f} s |")
    for r in meta.get("remat_memory", []):
        print(f"| K={r['inner_steps']} | remat={r['remat']} | {r['temp_bytes'] / 2**20:.1f} MiB |")


if __name__ == "__main__":
    main()
