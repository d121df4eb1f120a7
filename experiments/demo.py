"""`make demo`: MAML on 2D navigation with several vmapped seeds, on a CPU, in minutes.

Trains MAML, the pretrained baseline and the goal-observing oracle (same budget, same
tasks per iteration), then fast-adapts them, and a random initialisation, to held-out
``test`` tasks and prints the return before and after each adaptation step (the MAML
paper's Fig. 2 comparison). Writes
``OUT/<algo>/`` runs (usable with ``python -m jaxmeta eval|plot``), learning curves and an
adaptation plot.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax

from jaxmeta import algorithms, envs, runs
from jaxmeta.evaluation import evaluate
from jaxmeta.plot import plot_run
from jaxmeta.trainer import TrainOptions, train

# the same sizes for every method; the baselines' multi-task PPO gets a larger rate
SIZES = dict(hidden_sizes=(32, 32), meta_batch_size=10, inner_episodes=10, outer_episodes=10,
             eval_episodes=10)
BASELINE_LR = 3e-3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--horizon", type=int, default=100)
    p.add_argument("--eval-tasks", type=int, default=40)
    args = p.parse_args()
    out = Path(args.out)
    family = envs.make("navigation2d", horizon=args.horizon)
    opts = TrainOptions(iterations=args.iterations, seeds=args.seeds, chunk=10,
                        checkpoint_every=args.iterations)
    results = {}
    t0 = time.time()
    for algo in ("maml", "pretrained", "oracle", "random_init"):
        lr = {} if algo == "maml" else {"ppo_lr": BASELINE_LR}
        learner = algorithms.make(algo, family, algorithms.config_with(algo, **SIZES, **lr))
        if algo == "random_init":  # nothing to train: evaluate the initialisations
            states = runs.initial_states(learner, 0, args.seeds)
        else:
            run_dir = out / algo
            runs.clear(run_dir)
            print(f"[{time.time() - t0:5.0f}s] training {algo} ({args.seeds} seeds x "
                  f"{args.iterations} meta-iterations)")
            states, _ = train(learner, run_dir, opts)
            plot_run(run_dir, title=f"{algo} on navigation2d ({args.seeds} seeds)")
        results[algo] = evaluate(learner, states, jax.random.PRNGKey(2024), "test",
                                 args.eval_tasks, 3)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    plot_adaptation(results, out / "adaptation.png")

    print(f"\nheld-out test tasks ({args.eval_tasks}), mean over {args.seeds} seeds "
          "(± std over seeds); return = sum of -distance over the episode")
    print(f"{'method':<12} {'before':>16} " + " ".join(f"{'step ' + str(i):>16}"
                                                     for i in (1, 2, 3)))
    for algo, r in results.items():
        cells = [f"{r['pre_adapt_return']:8.2f} ± {r['pre_adapt_return_std']:5.2f}"]
        cells += [f"{m:8.2f} ± {s:5.2f}" for m, s in zip(r["post_adapt_return"],
                                                       r["post_adapt_return_std"], strict=True)]
        print(f"{algo:<12} " + " ".join(f"{c:>16}" for c in cells))
    print(f"\ntotal {time.time() - t0:.0f}s; runs, curves and adaptation.png in {out}/")


def plot_adaptation(results: dict, path: Path) -> None:
    """Return vs number of adaptation steps, one line per method (mean ± std over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5, 4))
    for algo, r in results.items():
        per_seed = np.asarray(r["per_seed"])
        x = np.arange(per_seed.shape[1])
        ax.errorbar(x, per_seed.mean(0), yerr=per_seed.std(0), marker="o", capsize=3,
                    label=algo)
    ax.set_xlabel("gradient steps on the new task")
    ax.set_ylabel("mean episode return (held-out tasks)")
    ax.set_title("2D navigation: adaptation to new goals")
    ax.set_xticks(range(4))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
