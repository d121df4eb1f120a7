"""Figure and table of the PEARL experiment from a JSON file ``run.py`` wrote.

Next to ``<family>_<scale>.json`` (``<stem>``):

* ``fig_<stem>.png``: PEARL's Fig. 3 layout: held-out-task return after adaptation
  (left) and before it (right) against env steps per seed on a log axis, mean ± std over
  seeds, one line per method (PEARL's curve starts after its initial replay filling);
* ``results_<stem>.md``: the last evaluation per method, the env steps and wall time, and
  the sample-efficiency claim: the env steps PEARL needed to reach each on-policy
  method's final adapted return, and the ratio.

    python experiments/pearl/report.py --results experiments/pearl/results/<stem>.json
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxmeta.experiment import env_steps_per_seed, report_main  # noqa: E402

LABELS = {"pearl": "PEARL", "maml": "MAML (TRPO)", "rl2": "RL²"}
COLORS = {"pearl": "C3", "maml": "C0", "rl2": "C2"}
TITLES = {"navigation2d_sparse": "sparse 2D navigation",
          "halfcheetah_vel_pearl": "half-cheetah velocity (PEARL's U[0, 3], 100/30 tasks)"}
ON_POLICY = ("maml", "rl2")


def returns(method: dict) -> np.ndarray:
    """``[evals, seeds, 1 + adaptation steps]``."""
    return np.asarray(method["returns"], dtype=float)


def seeds(method: dict) -> int:
    """How many seeds ``method`` trained (its env-step counts are over all of them)."""
    return int(method["settings"]["seeds"])


def env_steps(method: dict) -> np.ndarray:
    """Env steps per seed at every evaluation: the updates' plus the initial filling."""
    return env_steps_per_seed(method, method["iterations"], seeds(method))


def adapted(method: dict) -> np.ndarray:
    """``[evals, seeds]``: the return after the whole adaptation."""
    return returns(method)[:, :, -1]


def steps_to_reach(method: dict, level: float) -> float | None:
    """Env steps per seed at the first evaluation after training began (iteration > 0:
    an untrained policy reaching ``level`` says nothing of sample efficiency) whose mean
    adapted return is at least ``level`` (``None`` if none is)."""
    mean = adapted(method).mean(axis=1)
    trained = np.asarray(method["iterations"]) > 0
    hit = np.nonzero((mean >= level) & trained)[0]
    return None if hit.size == 0 else float(env_steps(method)[hit[0]])


def figure(result: dict, path: Path) -> None:
    """``path``: the adapted (left) and pre-adaptation (right) return against env steps
    per seed on a log axis, one line per method, mean ± std over seeds."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.9), sharey=True)
    for ax, (title, col) in zip(axes, (("after adaptation", -1), ("before adaptation", 0)),
                                strict=True):
        for name, m in result["methods"].items():
            xs, v = env_steps(m), returns(m)[:, :, col]
            keep = xs > 0  # a log axis has no 0 (the untrained evaluation of on-policy runs)
            mean, std = v.mean(axis=1)[keep], v.std(axis=1)[keep]
            color = COLORS.get(name)
            ax.plot(xs[keep], mean, marker="o", ms=3, lw=2, color=color,
                    label=LABELS.get(name, name))
            ax.fill_between(xs[keep], mean - std, mean + std, color=color, alpha=0.15)
        ax.set_xscale("log")
        ax.set_xlabel("env steps per seed (meta-training)")
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(f"return on held-out tasks ({result.get('split', 'test')})")
    axes[0].legend(fontsize=8)
    s = result["settings"]
    fig.suptitle(f"{TITLES.get(result['family'], result['family'])}, {result['scale']} "
                 f"scale: mean ± std over {s['seeds']} seeds, {s['eval_tasks']} tasks",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _steps(n: float | None) -> str:
    if n is None:
        return "—"
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def table(result: dict) -> str:
    """Markdown: the final evaluation per method, then PEARL's steps to each on-policy
    method's final adapted return."""
    s = result["settings"]
    cmds = "; ".join(f"`{c}`" for c in result.get("commands") or [])
    lines = [f"### {result['family']}_{result['scale']}", "",
             f"{cmds} — {result.get('device', '?')}, jax {result.get('jax', '?')}, "
             f"{result.get('date', '?')}, {result.get('physics', '?')}; {s['seeds']} seeds, "
             f"{s['eval_tasks']} held-out tasks per evaluation; mean ± std over seeds at the "
             "last evaluation. Adaptation: PEARL and RL² over "
             f"{s['adapt_episodes']} episodes (the last one's return), MAML one gradient "
             "step. Env steps per seed, PEARL's initial filling included.", "",
             "| method | before adaptation | after adaptation | updates | env steps | "
             "wall time (min) |", "|---|---|---|---|---|---|"]
    for name, m in result["methods"].items():
        last = returns(m)[-1]
        pre, post = last[:, 0], last[:, -1]
        lines.append(f"| {LABELS.get(name, name)} | {pre.mean():.2f} ± {pre.std():.2f} | "
                     f"{post.mean():.2f} ± {post.std():.2f} | {m['iterations'][-1]} | "
                     f"{_steps(env_steps(m)[-1])} | {m['wall_seconds'] / 60:.1f} |")
    pearl = result["methods"].get("pearl")
    rows = []
    for name in ON_POLICY:
        m = result["methods"].get(name)
        if pearl is None or m is None:
            continue
        level = float(adapted(m)[-1].mean())
        reach = steps_to_reach(pearl, level)
        ratio = "—" if reach is None else f"{env_steps(m)[-1] / reach:.0f}×"
        rows.append(f"| {LABELS[name]} | {level:.2f} | {_steps(env_steps(m)[-1])} | "
                    f"{_steps(reach)} | {ratio} |")
    if rows:
        lines += ["", "PEARL's env steps to reach each on-policy method's final adapted "
                  "return, at its first evaluation after training began (— : not within "
                  "its run):", "",
                  "| on-policy method | its final return | its env steps | PEARL's steps "
                  "to reach it | fewer steps |", "|---|---|---|---|---|", *rows]
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    report_main(argv, __doc__, "experiments/pearl/results/navigation2d_sparse_small.json",
                "experiments/pearl/run.py", "PEARL experiment", figure, table)


if __name__ == "__main__":
    main()
