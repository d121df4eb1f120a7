"""Learning curves of a run: mean ± std over seeds of the logged returns."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

CURVES = (("pre_return", "before adaptation"), ("post_return", "after adaptation"))


def load_metrics(run_dir: str | Path) -> list[dict]:
    """Reads ``metrics.jsonl`` of a run."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def curves(records: list[dict], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(iterations, mean over seeds, std over seeds) of metric ``key``."""
    by_it: dict[int, list[float]] = defaultdict(list)
    for r in records:
        if key in r:
            by_it[r["iteration"]].append(r[key])
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
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in CURVES:
        its, mean, std = curves(records, key)
        if len(its):
            ax.plot(its, mean, label=label)
            ax.fill_between(its, mean - std, mean + std, alpha=0.25)
    seeds = len({r["seed"] for r in records})
    ax.set_xlabel("meta-iteration")
    ax.set_ylabel("mean episode return (train tasks)")
    ax.set_title(title or f"{run_dir.name} (mean ± std over {seeds} seeds)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
