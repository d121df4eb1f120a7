"""Figures and table of TESP's experiments from the JSON files ``run.py`` wrote.

For every ``<family>_<scale>.json``: ``<family>_<scale>.png``, the layout of TESP's Fig. 4
(one panel per split D, D′, D″; one line per method; mean ± std over seeds of R after 3
fast-updates vs meta-updates). R is the paper's return (§5.2): the distance term only; the
tables give the full return (with the action cost, what the learners optimise) beside it.
Results written before R was recorded (no ``post_R``) show the full return, and say so.
For ``<family>_ablation_<scale>.json`` the same layout with TESP and V1–V5 (Fig. 5).
``results_<scale>.md`` gets a table of final returns.

    python experiments/tesp/report.py [--dir experiments/tesp/results] [--scale small]
        [--best K]

Aggregation over seeds: mean ± std over all seeds (default), or ``--best K``: TESP's
Fig. 4 reports the best 3 of 10 seeds. The K seeds are chosen per method by their final
return on the training split D (so the choice never looks at D′ or D″), and every split
then shows those seeds' mean ± std. Tables and figures say which aggregation they show.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

SPLIT_TITLES = {"train": "D (training tasks)", "test": "D′ (novel, same distribution)",
                "ood": "D″ (novel, out of distribution)"}
# results written before ``run.py`` recorded the simulator all ran on MJX
SIMULATORS = {"mjx": "MJX", "mujoco": "C MuJoCo"}
LABELS = {"tesp": "TESP", "maml": "MAML", "meta_sgd": "Meta-SGD", "adaptsv": "AdaptSV",
          "tesp_v1": "V1 (buffer keeps all)", "tesp_v2": "V2 (policy fast-updated)",
          "tesp_v3": "V3 (η = 0)", "tesp_v4": "V4 (α = 0)", "tesp_v5": "V5 (fixed rate)"}


def chosen_seeds(method: dict, best: int | None) -> np.ndarray:
    """Indices of the seeds to aggregate: all, or the ``best`` by final R on D (the full
    return where no R was recorded)."""
    final_train = np.asarray(method[main_key(method)]["train"][-1])
    if best is None or best >= len(final_train):
        return np.arange(len(final_train))
    return np.sort(np.argsort(-final_train, kind="stable")[:best])


def describe(best: int | None, seeds: int) -> str:
    if best is None or best >= seeds:
        return f"mean ± std over all {seeds} seeds"
    return f"mean ± std over the best {best} of {seeds} seeds (chosen by final return on D)"


def main_key(method: dict) -> str:
    """``post_R`` (the paper's R) where recorded, else ``post`` (the full return)."""
    return "post_R" if method.get("post_R") else "post"


def final_stats(method: dict, split: str, which: str = "post",
                best: int | None = None) -> tuple[float, float]:
    """(mean, std) over the chosen seeds of the last evaluation's return."""
    last = np.asarray(method[which][split][-1])[chosen_seeds(method, best)]
    return float(last.mean()), float(last.std())


def figure(result: dict, path: Path, best: int | None = None) -> None:
    """One panel per split, one line per method, mean ± std over the chosen seeds."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), sharey=False)
    for ax, split in zip(axes, SPLIT_TITLES, strict=True):
        for name, m in result["methods"].items():
            its = np.asarray(m["iterations"])
            v = np.asarray(m[main_key(m)][split])[:, chosen_seeds(m, best)]  # [evals, seeds]
            mean, std = v.mean(axis=1), v.std(axis=1)
            ax.plot(its, mean, marker="o", ms=3, label=LABELS.get(name, name))
            ax.fill_between(its, mean - std, mean + std, alpha=0.15)
        ax.set_title(SPLIT_TITLES[split])
        ax.set_xlabel("meta-updates")
        ax.grid(alpha=0.3)
    has_r = all(main_key(m) == "post_R" for m in result["methods"].values())
    what = "R (distance term only)" if has_r else "return (with action cost)"
    axes[0].set_ylabel(f"{what} after {result['adapt_steps']} fast-updates")
    axes[-1].legend(fontsize=8)
    s = result["settings"]
    kind = "ablations (Fig. 5 layout)" if "_ablation" in path.stem else "Fig. 4 layout"
    fig.suptitle(f"{result['family']}, {result['scale']} scale, {kind}: "
                 f"{describe(best, s['seeds'])}, {s['eval_tasks']} tasks per split, "
                 f"horizon {s['horizon']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(results: dict[str, dict], best: int | None = None) -> str:
    """Markdown: final return after adaptation (and before it) per method and split."""
    lines = []
    for stem, r in sorted(results.items()):
        s = r["settings"]
        cmds = "; ".join(f"`{c}`" for c in r.get("commands") or [r["command"]])
        lines += [f"### {stem}", "",
                  f"{cmds} — {r['device']}, jax {r['jax']}, {r['date']}, "
                  f"{SIMULATORS[r.get('physics', 'mjx')]}; "
                  f"{s['seeds']} seeds × {s['iterations']} meta-updates, {s['eval_tasks']} "
                  f"tasks per split, horizon {s['horizon']}. "
                  f"{describe(best, s['seeds']).capitalize()} of R, the paper's return "
                  "(§5.2: the distance term only), after "
                  f"{r['adapt_steps']} fast-updates (before adaptation in brackets: the "
                  "warm-up with h = 0 for TESP, the initial z for AdaptSV, θ for "
                  "MAML/Meta-SGD). Last column: the full return after adaptation (with the "
                  "action cost, what the learners optimise), D / D′ / D″. Where a run "
                  "recorded no R, the R columns show the full return (marked *).",
                  "", "| method | D | D′ | D″ | D − D″ | full return D / D′ / D″ |",
                  "|---|---|---|---|---|---|"]
        for name, m in r["methods"].items():
            post = main_key(m)
            pre_key, mark = ("pre_R", "") if post == "post_R" else ("pre", "*")
            cells = []
            for split in SPLIT_TITLES:
                mu, sd = final_stats(m, split, post, best=best)
                pre, _ = final_stats(m, split, pre_key, best=best)
                cells.append(f"{mu:.1f} ± {sd:.1f}{mark} ({pre:.1f})")
            gap = (final_stats(m, "train", post, best=best)[0]
                   - final_stats(m, "ood", post, best=best)[0])
            full = " / ".join(f"{final_stats(m, sp, best=best)[0]:.1f}" for sp in SPLIT_TITLES)
            lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells)
                         + f" | {gap:.1f} | {full} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default="experiments/tesp/results")
    p.add_argument("--scale", default="small")
    p.add_argument("--best", type=int, default=None, metavar="K",
                   help="aggregate the best K seeds by final return on D (TESP: 3 of 10)")
    args = p.parse_args(argv)
    if args.best is not None and args.best < 1:
        p.error(f"--best must be >= 1, got {args.best}")
    d = Path(args.dir)
    results = {f.stem: json.loads(f.read_text()) for f in sorted(d.glob(f"*_{args.scale}.json"))}
    if not results:
        raise SystemExit(f"no *_{args.scale}.json in {d}; run experiments/tesp/run.py first")
    suffix = "" if args.best is None else f"_best{args.best}"
    for stem, r in results.items():
        figure(r, d / f"{stem}{suffix}.png", args.best)
    md = d / f"results_{args.scale}{suffix}.md"
    md.write_text(f"# TESP experiments, {args.scale} scale\n\n" + table(results, args.best))
    print(f"wrote {len(results)} figure(s) and {md}")


if __name__ == "__main__":
    main()
