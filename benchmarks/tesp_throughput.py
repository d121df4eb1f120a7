"""Meta-training throughput of TESP vs MAML on ``reacher2_target`` at the small preset.

Uses exactly the configs of ``experiments/tesp/run.py --scale small`` (horizon 50, 3
vmapped seeds, 8 tasks x 8 episodes per rollout, K = 3, first-order, PPO). Counts every
simulated env step of a meta-iteration: TESP samples N warm-up + K·N fast-update + N
post-adaptation episodes per task, MAML K·N + N. Compilation is excluded (reported
separately); the median over repeats of the trainer's program (``jit(scan(vmap(update)))``)
is reported. For TESP, the time of the sampling alone (warm-up, fast-updates, buffers,
outer rollouts; no meta-update) is also measured.

Usage: python benchmarks/tesp_throughput.py [--iterations 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

import jax

from jaxmeta import algorithms, envs
from jaxmeta.algorithms.tesp import build_tesp
from jaxmeta.bench import compile_timed, time_calls, trainer_program

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments" / "tesp"))
import run as tesp_run  # noqa: E402

FAMILY = "reacher2_target"


def bench(method: str, iterations: int, repeats: int) -> dict:
    """Env steps/s of ``method`` (``tesp`` or ``maml``) at the small preset; for TESP also
    the time of its sampling half alone."""
    s = tesp_run.scale_settings("small", FAMILY)
    family = envs.make(FAMILY, horizon=s["horizon"])
    cfg = tesp_run.method_config(method, s)
    learner = algorithms.make(method, family, cfg)
    compiled, states, compile_s = trainer_program(learner, s["seeds"], iterations)
    timing = time_calls(compiled, (states,), repeats)
    n, k = s["episodes"], tesp_run.ADAPT_STEPS
    per_task = (n + k * n + n) if method == "tesp" else (k * n + n)
    steps = s["seeds"] * iterations * s["meta_batch_size"] * family.horizon * per_task
    row = {"method": method, "seeds": s["seeds"], "iterations_per_call": iterations,
           "parallel_envs": s["seeds"] * s["meta_batch_size"] * n,
           "env_steps_per_call": steps, **timing,
           "env_steps_per_s": steps / timing["median_s"], "compile_chunk_s": compile_s}
    if method == "tesp":
        _, parts = build_tesp(family, cfg)
        keys = jax.random.split(jax.random.PRNGKey(1), s["seeds"])
        sample, _ = compile_timed(jax.vmap(parts.sample_batches), states.params, keys)
        st = time_calls(sample, (states.params, keys), repeats)
        row["sampling_only_s_per_iteration"] = st["median_s"]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results/tesp_throughput.json")
    args = p.parse_args()
    rows = [bench(m, args.iterations, args.repeats) for m in ("tesp", "maml")]
    meta = {"device": jax.devices()[0].device_kind, "device_count": jax.device_count(),
            "jax": jax.__version__, "platform": platform.platform(),
            "date": datetime.date.today().isoformat(), "family": FAMILY, "scale": "small"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print("| method | parallel envs | env steps / s | s / meta-iteration (all seeds) | "
          "compile (chunk) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        it = r["median_s"] / r["iterations_per_call"]
        print(f"| {r['method']} | {r['parallel_envs']} | {r['env_steps_per_s']:,.0f} | "
              f"{it:.2f} (min {r['min_s'] / r['iterations_per_call']:.2f}) | "
              f"{r['compile_chunk_s']:.0f} s |")
    tesp = rows[0]
    print(f"TESP sampling alone: {tesp['sampling_only_s_per_iteration']:.2f} s / iteration")


if __name__ == "__main__":
    main()
