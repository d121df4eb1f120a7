"""The benchmark suite: ``python -m jaxmeta bench [--preset NAME]``.

* :mod:`~jaxmeta.bench.timing`: compile apart, warm up, median of timed calls.
* :mod:`~jaxmeta.bench.kinds`: the kinds of rows (raw simulator, meta-training against the
  raw simulator, sweeps, compile, second-order memory, a training run end to end).
* :mod:`~jaxmeta.bench.brax_ppo`: Brax's PPO against jaxmeta's oracle (imported only then).
* :mod:`~jaxmeta.bench.suites`: :class:`~jaxmeta.bench.suites.Suite` and the presets
  (``quick``, ``full``, ``maml_throughput``, ``tesp_throughput``, ``env_throughput``,
  ``maml_protocol``).
* :mod:`~jaxmeta.bench.report`: metadata (device, versions, date, sizes), markdown tables
  for ``benchmarks/RESULTS.md``, the sweep PNG.

Every run writes ``benchmarks/results/bench_<preset>_..._<family>_<platform>_<date>.json``
and, with ``--record``, its tables into ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from jaxmeta import algorithms, envs
from jaxmeta import config as config_lib
from jaxmeta.bench.report import KINDS, markdown, plot_sweep, record
from jaxmeta.bench.suites import PRESETS, Suite, config_for, run_suite, suite_family


def _set(items: list[str]) -> dict:
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects FIELD=VALUE, got {item!r}")
        for algo in algorithms.names():  # parse with the first config class that has it
            cls = algorithms.config_class(algo)
            if name in config_lib.flat_fields(cls):
                out[name] = config_lib.parse_value(cls, name, value)
                break
        else:
            raise ValueError(f"--set {name}: no algorithm config has a field {name!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m jaxmeta bench``: run a suite, write JSON + PNG (+ RESULTS.md)."""
    p = argparse.ArgumentParser(prog="python -m jaxmeta bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="full", help=f"one of {list(PRESETS)}")
    p.add_argument("--quick", action="store_true", help="the same as --preset quick")
    p.add_argument("--kinds", default=None, help=f"subset of {','.join(KINDS)} (default: the "
                   "preset's)")
    p.add_argument("--family", default=None, help="override the suite's main family")
    p.add_argument("--horizon", type=int, default=None, help="override its horizon")
    p.add_argument("--algos", default=None,
                   help="comma-separated algorithms for the per-algorithm rows")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--iterations", type=int, default=None,
                   help="meta-iterations per timed call (protocol: of the whole run)")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a config field for every algorithm that has it, e.g. "
                        "--set meta_batch_size=2")
    p.add_argument("--out", default="benchmarks/results", help="folder for JSON and PNG")
    p.add_argument("--record", default=None, metavar="RESULTS_MD",
                   help="also put the markdown tables into this file (benchmarks/RESULTS.md)")
    p.add_argument("--run-dir", default="runs/bench_protocol",
                   help="protocol: where the training run goes (one folder per algorithm)")
    p.add_argument("--resume", action="store_true", help="protocol: resume that run")
    p.add_argument("--physics", default=None,
                   help="comma-separated simulators of the MuJoCo families, each run side by "
                        "side: auto, mjx, mujoco (default: the preset's)")
    args = p.parse_args(argv)
    preset = "quick" if args.quick else args.preset
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {list(PRESETS)}")
    suite: Suite = PRESETS[preset]
    changes = {k: getattr(args, k) for k in ("family", "horizon", "seeds", "iterations",
                                             "repeats") if getattr(args, k) is not None}
    if args.family is not None and args.family not in envs.names():
        raise ValueError(f"unknown family {args.family!r}; choose from {envs.names()}")
    if args.algos is not None:
        algos = tuple(a for a in args.algos.split(",") if a)
        bad = [a for a in algos if a not in algorithms.names()]
        if bad:
            raise ValueError(f"unknown algo(s) {bad}; choose from {algorithms.names()}")
        changes.update(algos=algos, compile_algos=algos)
    if args.physics is not None:
        changes["physics"] = tuple(x for x in args.physics.split(",") if x)
    suite = dataclasses.replace(suite, **changes, sizes={**suite.sizes, **_set(args.set)})
    for algo in set(suite.algos) | set(suite.compile_algos):
        config_for(algo, suite.sizes)  # refuse bad sizes before anything compiles
    kinds = tuple(k for k in args.kinds.split(",") if k) if args.kinds else suite.kinds
    t0 = time.perf_counter()
    result = run_suite(suite, kinds, run_dir=args.run_dir, resume=args.resume)
    result["meta"].update(preset=preset, wall_s=time.perf_counter() - t0)
    d = result["meta"]["device"]
    part = "" if set(kinds) == set(suite.kinds) else f" ({', '.join(kinds)})"
    family = suite_family(suite, kinds)
    tag = "_".join([preset, *([] if not part else ["-".join(kinds)]), family, d["platform"],
                    result["meta"]["date"]])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bench_{tag}.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    png = plot_sweep(result, out / f"sweep_{tag}.png")
    label = f"{preset} suite{part}, {family}, {d['device_kind']} x{d['device_count']}"
    section = markdown(result, label)
    print(section)
    if args.record:
        record(Path(args.record), label, section)
    print(f"wrote {out / f'bench_{tag}.json'}" + (f" and {png}" if png else "")
          + f" in {result['meta']['wall_s']:.0f} s")
    return 0


__all__ = ["PRESETS", "Suite", "config_for", "main", "run_suite"]
