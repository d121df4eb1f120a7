"""Figure and table of the meta-gradient experiment from a JSON file ``run.py`` wrote.

Next to ``<family>_<scale>.json`` (``<stem>``):

* ``fig_<stem>.png``: left, the held-out-task return against env steps per seed, mean ±
  std over seeds, one line per method; right, the learned γ and λ of every seed against
  the env steps (the fixed methods' η as dashed lines);
* ``results_<stem>.md``: per method, the held-out return at the last evaluation and the
  mean over the second half of the evaluations (less noisy), the final (γ, λ), env steps
  and wall time; and the learned-minus-fixed differences with every seed's sign.

    python experiments/seed002/metagrad/report.py \
        --results experiments/seed002/metagrad/results/<stem>.json
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxmeta.experiment import env_steps_per_seed, report_main  # noqa: E402

LABELS = {"metagrad": "meta-gradient (γ, λ learned)", "fixed": "fixed at η₀",
          "fixed_ref": "fixed at η̄"}
COLORS = {"metagrad": "C3", "fixed": "C0", "fixed_ref": "C2"}
TITLES = {"navigation2d": "2D navigation (task-aware A2C)",
          "halfcheetah_vel": "half-cheetah velocity (task-aware A2C)"}


def returns(method: dict) -> np.ndarray:
    """``[evals, seeds]``: the held-out return at every evaluation (no adaptation)."""
    return np.asarray(method["returns"], dtype=float)[:, :, 0]


def env_steps(method: dict, iterations) -> np.ndarray:
    """Env steps per seed after ``iterations`` updates (the initial batch included)."""
    return env_steps_per_seed(method, iterations, int(method["settings"]["seeds"]))


def late(method: dict) -> np.ndarray:
    """``[seeds]``: the mean held-out return over the second half of the evaluations."""
    r = returns(method)
    return r[len(r) // 2:].mean(axis=0)


def figure(result: dict, path: Path) -> None:
    """``path``: held-out return (left; zoomed on the evaluations after training began)
    and η (right) against env steps per seed."""
    fig, (ax, ax_eta) = plt.subplots(1, 2, figsize=(10, 3.9))
    low, high = np.inf, -np.inf  # the y-range of the trained evaluations (not iteration 0)
    for name, m in result["methods"].items():
        xs, r = env_steps(m, m["iterations"]), returns(m)
        mean, std = r.mean(axis=1), r.std(axis=1)
        if len(mean) > 1:
            low, high = min(low, (mean - std)[1:].min()), max(high, (mean + std)[1:].max())
        ax.plot(xs, mean, marker="o", ms=3, lw=2, color=COLORS.get(name),
                label=LABELS.get(name, name))
        ax.fill_between(xs, mean - std, mean + std, color=COLORS.get(name), alpha=0.15)
        eta = m["eta"]
        ex = env_steps(m, eta["iterations"])
        for key, style in (("gamma", "-"), ("lambda", ":")):
            v = np.asarray(eta[key], dtype=float)  # [points, seeds]
            if name == "metagrad":
                for sd in range(v.shape[1]):
                    ax_eta.plot(ex, v[:, sd], style, color="C3" if key == "gamma" else "C1",
                                lw=1.2, label=f"learned {'γ' if key == 'gamma' else 'λ'}"
                                if sd == 0 else None)
            else:
                ax_eta.axhline(v[0, 0], ls="--", lw=0.8, color=COLORS.get(name),
                               label=f"{LABELS.get(name, name)}: {key} {v[0, 0]:.2f}")
    if np.isfinite(low) and high > low:
        pad = 0.1 * (high - low)
        ax.set_ylim(low - pad, high + pad)  # the untrained start falls below: see the table
    ax.set_xlabel("env steps per seed")
    ax.set_ylabel(f"return on held-out tasks ({result.get('split', 'test')})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax_eta.set_xlabel("env steps per seed")
    ax_eta.set_ylabel("γ (solid), λ (dotted)")
    ax_eta.legend(fontsize=7)
    ax_eta.grid(alpha=0.3)
    s = result["settings"]
    fig.suptitle(f"{TITLES.get(result['family'], result['family'])}, {result['scale']} "
                 f"scale: mean ± std over {s['seeds']} seeds, {s['eval_tasks']} tasks",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _steps(n: float) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def table(result: dict) -> str:
    """Markdown: per method the final and late held-out return, the final η, the budget;
    then learned minus each fixed baseline, per seed."""
    s = result["settings"]
    cmds = "; ".join(f"`{c}`" for c in result.get("commands") or [])
    lines = [f"### {result['family']}_{result['scale']}", "",
             f"{cmds} — {result.get('device', '?')}, jax {result.get('jax', '?')}, "
             f"{result.get('date', '?')}, {result.get('physics', '?')}; {s['seeds']} seeds, "
             f"{s['eval_tasks']} held-out tasks per evaluation, no adaptation step; mean ± "
             "std over seeds. *Late*: the mean over the second half of the evaluations.", "",
             "| method | final return | late return | final γ | final λ | env steps/seed | "
             "wall time (min) |", "|---|---|---|---|---|---|---|"]
    for name, m in result["methods"].items():
        r, lt = returns(m)[-1], late(m)
        g, lam = np.asarray(m["eta"]["gamma"][-1]), np.asarray(m["eta"]["lambda"][-1])
        lines.append(f"| {LABELS.get(name, name)} | {r.mean():.2f} ± {r.std():.2f} | "
                     f"{lt.mean():.2f} ± {lt.std():.2f} | {g.mean():.3f} ± {g.std():.3f} | "
                     f"{lam.mean():.3f} ± {lam.std():.3f} | "
                     f"{_steps(env_steps(m, [m['iterations'][-1]])[0])} | "
                     f"{m['wall_seconds'] / 60:.1f} |")
    learned = result["methods"].get("metagrad")
    rows = []
    for name in ("fixed", "fixed_ref"):
        m = result["methods"].get(name)
        if learned is None or m is None:
            continue
        d_final = returns(learned)[-1] - returns(m)[-1]
        d_late = late(learned) - late(m)
        rows.append(f"| {LABELS[name]} | {d_final.mean():+.2f} "
                    f"({', '.join(f'{x:+.2f}' for x in d_final)}) | {d_late.mean():+.2f} "
                    f"({', '.join(f'{x:+.2f}' for x in d_late)}) |")
    if rows:
        lines += ["", "Learned η minus each fixed η (same seeds; per seed in brackets):", "",
                  "| baseline | final | late |", "|---|---|---|", *rows]
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    report_main(argv, __doc__, "experiments/seed002/metagrad/results/navigation2d_small.json",
                "experiments/seed002/metagrad/run.py", "Meta-gradient RL experiment", figure, table)


if __name__ == "__main__":
    main()
