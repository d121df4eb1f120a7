"""Figures and table of MAML's half-cheetah experiment from the JSON files ``run.py`` wrote.

* ``fig5_<scale>.png``: the layout of the MAML paper's Fig. 5 (one panel per family; the
  return on held-out tasks after 0, 1, 2, 3 gradient steps, one line per method, mean ±
  std over seeds, at the last evaluation);
* ``curves_<scale>.png``: the same return after 0 and after 1 gradient step against
  meta-iterations, one panel per family;
* ``results_<scale>.md``: the numbers, the commands, and each run's settings.

    python experiments/maml/report.py [--dir experiments/maml/results] [--scale small]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

LABELS = {"maml": "MAML", "pretrained": "pretrained", "random_init": "random",
          "oracle": "oracle"}
TITLES = {"halfcheetah_vel": "half-cheetah, goal velocity",
          "halfcheetah_dir": "half-cheetah, forward/backward"}
SIMULATORS = {"mjx": "MJX", "mujoco": "C MuJoCo"}


def final(method: dict) -> np.ndarray:
    """``[seeds, steps + 1]``: the last evaluation's return after 0..K gradient steps."""
    return np.asarray(method["returns"][-1], dtype=float)


def fig5(results: list[dict], path: Path) -> None:
    """Return after 0..K gradient steps at the end of training, one panel per family."""
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, r in zip(axes[0], results, strict=True):
        for name, m in r["methods"].items():
            v = final(m)
            steps = np.arange(v.shape[1])
            ax.errorbar(steps, v.mean(0), yerr=v.std(0), marker="o", capsize=3,
                        label=LABELS.get(name, name))
        ax.set_xticks(np.arange(r["adapt_steps"] + 1))
        ax.set_xlabel("number of gradient steps")
        ax.set_title(f"{TITLES.get(r['family'], r['family'])}: {_sizes(r)}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"average return on {results[0]['settings']['eval_tasks']} "
                          "held-out tasks")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(f"MAML Fig. 5 layout, {results[0]['scale']} scale (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves(results: list[dict], path: Path) -> None:
    """Return after 0 (dashed) and 1 (solid) gradient steps vs meta-iterations."""
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, r in zip(axes[0], results, strict=True):
        for i, (name, m) in enumerate(r["methods"].items()):
            if name == "random_init":
                continue  # not trained: its two evaluations are the same parameters
            its = np.asarray(m["iterations"])
            v = np.asarray(m["returns"], dtype=float)  # [evals, seeds, steps + 1]
            color = f"C{i}"
            for k, style in ((0, "--"), (1, "-")):
                mean, std = v[:, :, k].mean(1), v[:, :, k].std(1)
                ax.plot(its, mean, style, color=color, marker="o", ms=3,
                        label=f"{LABELS.get(name, name)}, {k} step{'s' * (k != 1)}")
                ax.fill_between(its, mean - std, mean + std, color=color, alpha=0.1)
        ax.set_xlabel("meta-iterations")
        ax.set_title(TITLES.get(r["family"], r["family"]), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("average return on held-out tasks")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sizes(r: dict) -> str:
    s = r["settings"]
    return (f"{s['iterations']} it × {s['meta_batch_size']} tasks × {s['episodes']} traj, "
            f"H {s['horizon']}, {s['seeds']} seeds")


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f}"


def table(results: list[dict]) -> str:
    """Markdown: the return after 0..K steps per method (mean ± std over seeds)."""
    lines = []
    for r in results:
        k = r["adapt_steps"]
        cmds = "; ".join(f"`{c}`" for c in r["commands"])
        walls = [m["wall_seconds"] for m in r["methods"].values() if m.get("wall_seconds")]
        partial = f" **Partial: {r['partial']}.**" if r.get("partial") else ""
        lines += [f"### {r['family']}", "",
                  f"{cmds} — {r['device']}, jax {r['jax']}, {r['date']}, "
                  f"{SIMULATORS[r['physics']]}; {_sizes(r)}; evaluated on "
                  f"{r['settings']['eval_tasks']} `{r['split']}` tasks, "
                  f"{r['settings']['episodes']} trajectories per gradient step. "
                  + (f"{sum(walls) / 60:.1f} min for all methods (wall-clock of each run over its "
                     "invocations, including compilation and evaluations)." if walls else "")
                  + partial, "",
                  "| method | " + " | ".join(f"{i} steps" if i != 1 else "1 step"
                                            for i in range(k + 1)) + " | min |",
                  "|---|" + "---|" * (k + 2)]
        for name, m in r["methods"].items():
            v = final(m)
            cells = [f"{mu:.1f} ± {sd:.1f}" for mu, sd in zip(v.mean(0), v.std(0),
                                                              strict=True)]
            lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells)
                         + f" | {_minutes(m.get('wall_seconds'))} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default="experiments/maml/results")
    p.add_argument("--scale", default="small")
    args = p.parse_args(argv)
    d = Path(args.dir)
    results = [json.loads(f.read_text()) for f in sorted(d.glob(f"*_{args.scale}.json"),
                                                         reverse=True)]  # vel, then dir
    if not results:
        raise SystemExit(f"no *_{args.scale}.json in {d}; run experiments/maml/run.py first")
    fig5(results, d / f"fig5_{args.scale}.png")
    curves(results, d / f"curves_{args.scale}.png")
    md = d / f"results_{args.scale}.md"
    md.write_text(f"# MAML half-cheetah experiments, {args.scale} scale\n\n" + table(results))
    print(f"wrote {d / f'fig5_{args.scale}.png'}, {d / f'curves_{args.scale}.png'} and {md}")


if __name__ == "__main__":
    main()
