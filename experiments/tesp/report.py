"""Figures and table of TESP's experiments from the JSON files ``run.py`` wrote.

For every ``<family>_<scale>.json``: ``<family>_<scale>.png``, the layout of TESP's Fig. 4
(one panel per split D, D′, D″; one line per method; mean ± std over seeds of the return
after 3 fast-updates vs meta-updates). For ``<family>_ablation_<scale>.json`` the same
layout with TESP and V1–V5 (Fig. 5). ``results_<scale>.md`` gets a table of final returns.

    python experiments/tesp/report.py [--dir experiments/tesp/results] [--scale small]
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
LABELS = {"tesp": "TESP", "maml": "MAML", "meta_sgd": "Meta-SGD", "adaptsv": "AdaptSV",
          "tesp_v1": "V1 (buffer keeps all)", "tesp_v2": "V2 (policy fast-updated)",
          "tesp_v3": "V3 (η = 0)", "tesp_v4": "V4 (α = 0)", "tesp_v5": "V5 (fixed rate)"}


def final_stats(method: dict, split: str, which: str = "post") -> tuple[float, float]:
    """(mean, std) over seeds of the last evaluation's return."""
    last = np.asarray(method[which][split][-1])
    return float(last.mean()), float(last.std())


def figure(result: dict, path: Path) -> None:
    """One panel per split, one line per method, mean ± std over seeds."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), sharey=False)
    for ax, split in zip(axes, SPLIT_TITLES, strict=True):
        for name, m in result["methods"].items():
            its = np.asarray(m["iterations"])
            v = np.asarray(m["post"][split])  # [evals, seeds]
            mean, std = v.mean(axis=1), v.std(axis=1)
            ax.plot(its, mean, marker="o", ms=3, label=LABELS.get(name, name))
            ax.fill_between(its, mean - std, mean + std, alpha=0.15)
        ax.set_title(SPLIT_TITLES[split])
        ax.set_xlabel("meta-updates")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"return after {result['adapt_steps']} fast-updates")
    axes[-1].legend(fontsize=8)
    s = result["settings"]
    kind = "ablations (Fig. 5 layout)" if "_ablation" in path.stem else "Fig. 4 layout"
    fig.suptitle(f"{result['family']}, {result['scale']} scale, {kind}: {s['seeds']} seeds "
                 f"(mean ± std), {s['eval_tasks']} tasks per split, horizon {s['horizon']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(results: dict[str, dict]) -> str:
    """Markdown: final return after adaptation (and before it) per method and split."""
    lines = []
    for stem, r in sorted(results.items()):
        s = r["settings"]
        cmds = "; ".join(f"`{c}`" for c in r.get("commands") or [r["command"]])
        lines += [f"### {stem}", "",
                  f"{cmds} — {r['device']}, jax {r['jax']}, {r['date']}; "
                  f"{s['seeds']} seeds × {s['iterations']} meta-updates, {s['eval_tasks']} "
                  f"tasks per split, horizon {s['horizon']}. Mean ± std over seeds of the "
                  f"return after {r['adapt_steps']} fast-updates (before adaptation in "
                  "brackets: the warm-up with h = 0 for TESP, the initial z for AdaptSV, θ for "
                  "MAML/Meta-SGD).",
                  "", "| method | D | D′ | D″ | D − D″ |", "|---|---|---|---|---|"]
        for name, m in r["methods"].items():
            cells = []
            for split in SPLIT_TITLES:
                mu, sd = final_stats(m, split)
                pre, _ = final_stats(m, split, "pre")
                cells.append(f"{mu:.1f} ± {sd:.1f} ({pre:.1f})")
            gap = final_stats(m, "train")[0] - final_stats(m, "ood")[0]
            lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + f" | {gap:.1f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default="experiments/tesp/results")
    p.add_argument("--scale", default="small")
    args = p.parse_args(argv)
    d = Path(args.dir)
    results = {f.stem: json.loads(f.read_text()) for f in sorted(d.glob(f"*_{args.scale}.json"))}
    if not results:
        raise SystemExit(f"no *_{args.scale}.json in {d}; run experiments/tesp/run.py first")
    for stem, r in results.items():
        figure(r, d / f"{stem}.png")
    md = d / f"results_{args.scale}.md"
    md.write_text(f"# TESP experiments, {args.scale} scale\n\n" + table(results))
    print(f"wrote {len(results)} figure(s) and {md}")


if __name__ == "__main__":
    main()
