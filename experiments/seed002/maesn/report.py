"""Figure and table of the MAESN experiment from a JSON file ``run.py`` wrote.

Next to ``<stem>.json``:

* ``fig_<stem>.png``: left, the sparse return on held-out goals before adaptation and
  after each adaptation step (mean ± std over seeds), one line per method; middle, the
  dense training return after the fast-updates against meta-iterations; right, seed 0's
  episodes on one held-out goal before adaptation: one latent z ~ N(0, I) per episode for
  MAESN, the action noise for MAML.
* ``results_<stem>.md``: per method, the sparse return before and after every step, the
  gain of the last step over the start with every seed's value, and the wall time.

    python experiments/seed002/maesn/report.py \
        --results experiments/seed002/maesn/results/navigation2d_sparse_small.json
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxmeta.experiment import report_main  # noqa: E402

LABELS = {"maesn": "MAESN (latent adapted)", "maesn_policy": "MAESN (latent + θ adapted)",
          "latent_space": "LatentSpace", "maml": "MAML"}
COLORS = {"maesn": "C3", "maesn_policy": "C1", "latent_space": "C2", "maml": "C0"}


def per_seed(method: dict) -> np.ndarray:
    """``[seeds, 1 + adapt_steps]``: the sparse held-out return before and after each step."""
    return np.asarray(method["evaluation"]["per_seed"], dtype=float)


def figure(result: dict, path: Path) -> None:
    """``path``: sparse return against adaptation steps, the dense training curve, and seed 0's
    episodes before adaptation (see the module docstring)."""
    fig, (ax, ax_train, ax_exp) = plt.subplots(1, 3, figsize=(14, 4))
    for name, m in result["methods"].items():
        r = per_seed(m)
        steps = np.arange(r.shape[1])
        mean, std = r.mean(0), r.std(0)
        ax.plot(steps, mean, marker="o", lw=2, color=COLORS.get(name),
                label=LABELS.get(name, name))
        ax.fill_between(steps, mean - std, mean + std, color=COLORS.get(name), alpha=0.12)
        tc = m["train_curve"]
        post = np.asarray(tc["post_return"], dtype=float).mean(1)
        ax_train.plot(tc["iterations"], post, lw=1.2, color=COLORS.get(name),
                      label=LABELS.get(name, name))
    ax.set(xlabel="adaptation steps on the sparse reward", ylabel="sparse return",
           title="held-out goals (test), mean ± std over seeds")
    ax.legend(fontsize=8)
    ax_train.set(xlabel="meta-iteration", ylabel="dense return after fast-updates",
                 title="meta-training (dense reward −d)")
    theta = np.linspace(0, np.pi, 100)
    ax_exp.plot(np.cos(theta), np.sin(theta), color="0.8", lw=1)
    noise = {"maesn": "one z per episode", "maml": "action noise"}
    for name, style in (("maesn", "-"), ("maml", "--")):
        if name not in result["methods"]:
            continue
        ex = result["methods"][name]["exploration"]
        for i, xy in enumerate(np.asarray(ex["positions"])):
            ax_exp.plot(xy[:, 0], xy[:, 1], style, color=COLORS[name], lw=1, alpha=0.8,
                        label=f"{LABELS[name]}: {noise[name]}" if i == 0 else None)
        goal = ex["goal"]
        ax_exp.add_patch(plt.Circle(goal, 0.2, color="k", fill=False, lw=1))
    ax_exp.set(aspect="equal", xlim=(-1.3, 1.3), ylim=(-0.4, 1.3),
               title="before adaptation: seed 0, one held-out goal")
    ax_exp.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(result: dict) -> str:
    """The markdown table: per method, the sparse return before and after each step and every
    seed's gain."""
    lines = ["| method | before | after each step | last − before (mean) | per seed | wall s |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, m in result["methods"].items():
        r = per_seed(m)
        gain = r[:, -1] - r[:, 0]
        lines.append(
            f"| {LABELS.get(name, name)} | {r[:, 0].mean():.3f} ± {r[:, 0].std():.3f} | "
            + ", ".join(f"{x:.3f}" for x in r[:, 1:].mean(0))
            + f" | {gain.mean():+.3f} | " + ", ".join(f"{g:+.2f}" for g in gain)
            + f" | {m['wall_seconds']:.0f} |")
    s = result.get("settings", {})
    lines.append(f"\n{s.get('seeds')} seeds, {s.get('iterations')} meta-iterations, "
                 f"{s.get('eval_tasks')} held-out goals, {s.get('adapt_steps')} adaptation "
                 "steps; returns are the sparse reward's (1 − d within 0.2 of the goal).")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    """Draws and tabulates ``--results`` (a JSON file run.py wrote)."""
    report_main(argv, __doc__,
                "experiments/seed002/maesn/results/navigation2d_sparse_small.json",
                "experiments/seed002/maesn/run.py", "MAESN on sparse 2D navigation", figure,
                table)


if __name__ == "__main__":
    main()
