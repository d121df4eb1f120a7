"""Raw simulator throughput of every task family: env steps/s of ``jit(vmap(step))``.

For each family and batch size B: one jitted program resets B environments (B tasks of
the ``train`` split) and runs S control steps of ``vmap(step)`` with uniform random actions
in [−1, 1] drawn inside the program (``lax.scan``; no host round-trips). Compile time is
measured separately (lower + compile); after a warm-up call, the steady state is the
median of ``--repeats`` timed calls (``jaxmeta.bench.bench_raw_sim``). Throughput =
B·S / median time. Results go to ``benchmarks/results/env_throughput.json``.

    python benchmarks/env_throughput.py                     # every family, B = 1, 64, 1024
    python benchmarks/env_throughput.py --names ant_dir --batches 64
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform

import jax
import jax.numpy as jnp
import mujoco

from jaxmeta import envs
from jaxmeta.bench import bench_raw_sim

DEFAULT_STEPS = {1: 200, 64: 50, 1024: 10}


def measure(name: str, batch: int, steps: int, repeats: int) -> dict:
    """Compile time and median steady-state env steps/s of one family at one batch size."""
    row = bench_raw_sim(name, batch, steps, repeats)
    row["compile_s"] = round(row["compile_s"], 2)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--names", nargs="*", default=None, help="families (default: all)")
    p.add_argument("--batches", nargs="*", type=int, default=[1, 64, 1024])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results/env_throughput.json")
    args = p.parse_args()
    rows = []
    for name in args.names or envs.names():
        for batch in args.batches:
            steps = DEFAULT_STEPS.get(batch, 20)
            try:
                row = measure(name, batch, steps, args.repeats)
            except Exception as e:  # out of memory at large batches: record and move on
                row = {"family": name, "batch": batch, "error": f"{type(e).__name__}: {e}"[:200]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    meta = {
        "date": datetime.date.today().isoformat(),
        "device": str(jax.devices()[0].device_kind), "device_count": jax.device_count(),
        "platform": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "jax": jax.__version__, "mujoco": mujoco.__version__,
        "x64": bool(jnp.zeros(()).dtype == jnp.float64),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
