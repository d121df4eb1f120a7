"""Learning curves of a run from ``metrics.jsonl``: mean ± std over seeds, one curve per
sweep value; a second panel shows the evaluation rows (``evaluate_every``) when there are."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from jaxmeta import sweep
from jaxmeta.runs import read_metrics

CURVES = (("pre_return", "before adaptation"), ("post_return", "after adaptation"))


def load_metrics(run_dir: str | Path) -> list[dict]:
    """Reads ``metrics.jsonl`` of a run."""
    return read_metrics(run_dir)


def point_label(row: dict) -> str:
    """The sweep point of a row (``""`` without a sweep)."""
    return sweep.label(row.get("sweep", {}))


def curves(records: list[dict], key: str, point: str | None = None,
           split: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(iterations, mean over seeds, std over seeds) of metric ``key`` in the training rows
    (or the evaluation rows of ``split``), of sweep point ``point`` when given. A vector
    metric contributes its last entry (e.g. the return after the last adaptation step)."""
    by_it: dict[int, list[float]] = defaultdict(list)
    for r in records:
        if (key in r and r.get("split") == split
                and (point is None or point_label(r) == point)):
            by_it[r["iteration"]].append(float(np.ravel(r[key])[-1]))
    its = np.array(sorted(by_it))
    vals = [np.asarray(by_it[i], float) for i in its]
    return its, np.array([v.mean() for v in vals]), np.array([v.std() for v in vals])


def plot_run(run_dir: str | Path, out: str | Path | None = None, title: str | None = None
             ) -> Path:
    """Writes a PNG of the learning curves of ``run_dir`` (default ``run_dir/curves.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    records = load_metrics(run_dir)
    out = Path(out) if out else run_dir / "curves.png"
    points = list(dict.fromkeys(point_label(r) for r in records))
    splits = list(dict.fromkeys(r["split"] for r in records if "split" in r))
    fig, axes = plt.subplots(1, 2 if splits else 1, figsize=(12 if splits else 6, 4),
                             squeeze=False)

    def draw(ax, its, mean, std, label):
        if len(its):
            ax.plot(its, mean, marker="o" if len(its) < 30 else None, ms=3, label=label)
            ax.fill_between(its, mean - std, mean + std, alpha=0.2)

    for point in points:
        for key, what in CURVES:
            draw(axes[0, 0], *curves(records, key, point), " ".join(x for x in (what, point) if x))
        for split in splits:
            draw(axes[0, 1], *curves(records, "post_adapt_return", point, split),
                 " ".join(x for x in (split, point) if x))
    seeds = len({r["seed"] for r in records})
    axes[0, 0].set_ylabel("mean episode return (train tasks)")
    axes[0, 0].set_title(title or f"{run_dir.name} (mean ± std over {seeds} seeds)")
    if splits:
        axes[0, 1].set_ylabel("return after the last adaptation step")
        axes[0, 1].set_title("evaluation on held-out tasks")
    for ax in axes[0]:
        ax.set_xlabel("meta-iteration")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
