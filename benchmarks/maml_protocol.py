"""The MAML paper's half-cheetah protocol end to end: wall-clock and env steps/s.

500 meta-iterations × 40 tasks × 20 trajectories per rollout, horizon 200, one inner VPG
step (α = 0.1), pre- and post-adaptation rollouts, TRPO meta-update, [100, 100] ReLU
policy (Finn et al. 2017, §5.3 and appendix). That is 40 × (20 + 20) × 200 = 320,000
env steps per meta-iteration and 160 M in all. (The issue's "about 80 M" counts one of
the two rollouts.) The run is the trainer's own: ``train`` with chunks of iterations,
metrics written, a checkpoint at the end; the wall-clock includes compilation.

    python benchmarks/maml_protocol.py                      # the paper's sizes (a GPU)
    python benchmarks/maml_protocol.py --iterations 2 --meta-batch-size 2 --episodes 2 \\
        --horizon 20                                        # a smoke run on a CPU
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from jaxmeta import algorithms, envs
from jaxmeta.bench import device_info, versions
from jaxmeta.train import TrainOptions, train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--meta-batch-size", type=int, default=40)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--horizon", type=int, default=200)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--chunk", type=int, default=10)
    p.add_argument("--mesh", default="")
    p.add_argument("--out", default="benchmarks/results/maml_protocol.json")
    args = p.parse_args()
    family = envs.make("halfcheetah_vel", horizon=args.horizon)
    cfg = algorithms.MetaConfig(meta_batch_size=args.meta_batch_size,
                                inner_episodes=args.episodes, outer_episodes=args.episodes)
    learner = algorithms.make("maml", family, cfg)
    options = TrainOptions(iterations=args.iterations, seeds=args.seeds, chunk=args.chunk,
                           progress=True, mesh=args.mesh)
    run_dir = Path(tempfile.mkdtemp(prefix="maml_protocol_"))
    t0 = time.perf_counter()
    _, records = train(learner, run_dir, options)
    wall = time.perf_counter() - t0
    steps = (args.seeds * args.iterations * args.meta_batch_size * args.horizon
             * (cfg.inner_steps * args.episodes + args.episodes))
    last = [r for r in records if r["iteration"] == args.iterations - 1]
    result = {"date": time.strftime("%Y-%m-%d"), "device": device_info(),
              "versions": versions(), "args": vars(args), "wall_s": wall,
              "env_steps": steps, "env_steps_per_s": steps / wall,
              "final_post_return": sum(r["post_return"] for r in last) / len(last),
              "first_pre_return": records[0]["pre_return"], "run_dir": str(run_dir)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
