"""Figure and table of the EPG experiment from a JSON file ``run.py`` wrote.

Next to ``<stem>.json``:

* ``fig_<stem>.png``: left, the ES fitness (members' mean and best, mean over seeds)
  against generations; middle and right, the return of fresh policies trained on held-out
  goals (``test``, then ``ood``) against inner updates: the evolved loss against the
  policy-gradient loss with the same schedule (mean ± std over seeds).
* ``results_<stem>.md``: per method and split, the return before training and after the
  last inner update, the area under the curve (mean over updates), and every seed's final.

    python experiments/seed002/epg/report.py \
        --results experiments/seed002/epg/results/navigation2d_small.json
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxmeta.experiment import report_main  # noqa: E402

LABELS = {"epg": "evolved loss L_φ (EPG)", "pg": "policy-gradient loss (same schedule)"}
COLORS = {"epg": "C3", "pg": "C0"}
SPLITS = {"test": "held-out goals (in distribution)",
          "ood": "out of distribution (0.75 < ‖g‖ < 1)"}


def curve(method: dict, split: str) -> np.ndarray:
    """``[seeds, 1 + updates]``: return before and after each inner update."""
    return np.asarray(method["evaluation"][split]["per_seed"], dtype=float)


def figure(result: dict, path: Path) -> None:
    """``path``: the ES fitness, and fresh-policy training curves on ``test`` and ``ood``
    goals (see the module docstring)."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    epg = result["methods"].get("epg")
    if epg is not None:
        f = epg["fitness"]
        for key, style in (("fitness_mean", "-"), ("fitness_max", ":")):
            v = np.asarray(f[key], dtype=float).mean(1)
            axes[0].plot(f["iterations"], v, style, color="C3",
                         label="members' mean" if key == "fitness_mean" else "best member")
    axes[0].set(xlabel="ES generation", ylabel="fitness (final return of inner runs)",
                title="EPG's evolution strategy (mean over seeds)")
    axes[0].legend(fontsize=8)
    for ax, split in zip(axes[1:], SPLITS, strict=True):
        for name, m in result["methods"].items():
            r = curve(m, split)
            x = np.arange(r.shape[1])
            ax.plot(x, r.mean(0), marker="o", ms=3, color=COLORS.get(name),
                    label=LABELS.get(name, name))
            ax.fill_between(x, r.mean(0) - r.std(0), r.mean(0) + r.std(0),
                            color=COLORS.get(name), alpha=0.15)
        ax.set(xlabel="inner updates of a fresh policy", ylabel="return",
               title=SPLITS[split])
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(result: dict) -> str:
    """The markdown table: per method and split, returns before and after training, and the
    ES fitness at the start and the end."""
    lines = ["| method | split | before | after last update | mean over updates | "
             "per seed (last) |", "| --- | --- | --- | --- | --- | --- |"]
    for name, m in result["methods"].items():
        for split in SPLITS:
            r = curve(m, split)
            lines.append(f"| {LABELS.get(name, name)} | {split} | {r[:, 0].mean():.2f} | "
                         f"{r[:, -1].mean():.2f} ± {r[:, -1].std():.2f} | "
                         f"{r[:, 1:].mean():.2f} | "
                         + ", ".join(f"{x:.2f}" for x in r[:, -1]) + " |")
    epg = result["methods"].get("epg")
    if epg is not None:
        f = np.asarray(epg["fitness"]["fitness_mean"], dtype=float)
        k = max(1, len(f) // 10)
        lines.append(f"\nES fitness (members' mean): first {k} generations "
                     f"{f[:k].mean():.2f}, last {k} {f[-k:].mean():.2f}; per seed "
                     + ", ".join(f"{a:.2f} → {b:.2f}" for a, b in zip(
                         f[:k].mean(0), f[-k:].mean(0), strict=True)))
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    """Draws and tabulates ``--results`` (a JSON file run.py wrote)."""
    report_main(argv, __doc__, "experiments/seed002/epg/results/navigation2d_small.json",
                "experiments/seed002/epg/run.py", "EPG on 2D navigation", figure, table)


if __name__ == "__main__":
    main()
