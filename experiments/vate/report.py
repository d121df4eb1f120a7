"""Figures and table of seed 003's experiments (VATE) from a JSON file ``run.py`` wrote.

Next to ``<family>_<scale>.json`` (``<stem>``):

* ``fig_<stem>.png``: seed 003's gridworld figure: one panel per episode of the trial, the
  evaluation return in that episode against env steps per seed (or updates), mean ± std
  over seeds; RL² and VATE drawn bold, the ablations thin; the Bayes-optimal and oracle
  returns of that episode dashed, where the JSON has them (the gridworld);
* ``ablations_<stem>.png``: the same layout with VATE and its ablations only (when the
  JSON has any ablation);
* ``results_<stem>.md``: the final evaluation's return per episode, mean ± std over
  seeds, the gain from episode 1 to 2, wall time and env steps, and the references.

    python experiments/vate/report.py --results experiments/vate/results/gridworld_small.json
        [--x steps|updates]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxmeta.experiment import env_steps_per_seed  # noqa: E402

LABELS = {"rl2": "RL²", "vate": "VATE", "vate_past_decoding": "VATE, past decoding",
          "vate_no_rl_grad": "VATE, no RL gradient into encoder", "varibad": "variBAD"}
COLORS = {"rl2": "C0", "vate": "C3", "vate_past_decoding": "C2", "vate_no_rl_grad": "C4",
          "varibad": "C1"}
MAIN = ("rl2", "vate")
ABLATIONS = ("vate", "vate_past_decoding", "vate_no_rl_grad", "varibad")
# label, colour, line style (Bayes-optimal and oracle coincide from episode 2 on)
REFERENCES = {"bayes_optimal": ("Bayes-optimal", "k", "--"), "oracle": ("oracle", "0.45", ":")}
TITLES = {"gridworld": "gridworld 5×5", "halfcheetah_vel": "half-cheetah, goal velocity"}


def returns(method: dict) -> np.ndarray:
    """``[evals, seeds, episodes]``: every evaluation's return per seed and episode."""
    return np.asarray(method["returns"], dtype=float)


def final_stats(method: dict) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) over seeds of the last evaluation's return, one per episode."""
    last = returns(method)[-1]
    return last.mean(axis=0), last.std(axis=0)


def gain_stats(method: dict) -> tuple[float, float]:
    """(mean, std) over seeds of episode 2's minus episode 1's return, last evaluation."""
    last = returns(method)[-1]
    gain = last[:, 1] - last[:, 0]
    return float(gain.mean()), float(gain.std())


def seeds(result: dict, method: dict) -> int:
    """How many seeds ``method`` trained (``env_steps_per_iteration`` counts them all)."""
    return int(result["settings"].get("seeds", returns(method).shape[1]))


def env_steps(result: dict, method: dict) -> np.ndarray:
    """Env steps per seed at every evaluation (iterations × steps per update / seeds)."""
    return env_steps_per_seed(method, method["iterations"], seeds(result, method))


def episode_panels(result: dict, names: list[str], path: Path, x: str = "steps",
                   faint: tuple[str, ...] = ()) -> None:
    """One panel per episode of the trial; one line per method (mean ± std over seeds),
    the methods in ``faint`` thin and without a band; the references dashed."""
    methods = {n: result["methods"][n] for n in names}
    episodes = returns(next(iter(methods.values()))).shape[-1]
    fig, axes = plt.subplots(1, episodes, figsize=(4.6 * episodes, 3.8), sharey=True,
                             squeeze=False)
    for e, ax in enumerate(axes[0]):
        for i, (name, m) in enumerate(methods.items()):
            xs = env_steps(result, m) if x == "steps" else np.asarray(m["iterations"])
            v = returns(m)[:, :, e]
            mean, std = v.mean(axis=1), v.std(axis=1)
            color = COLORS.get(name, f"C{i + 5}")
            light = name in faint
            ax.plot(xs, mean, marker="o", ms=2 if light else 3, lw=1 if light else 2,
                    alpha=0.55 if light else 1.0, color=color, zorder=2 if light else 3,
                    label=LABELS.get(name, name))
            if not light:
                ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.15)
        for key, (label, color, ls) in REFERENCES.items():
            if result.get(key) is not None:
                ax.axhline(result[key][e], ls=ls, lw=1.4, color=color, label=label)
        ax.set_title(f"episode {e + 1}")
        ax.set_xlabel("env steps per seed" if x == "steps" else "updates")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"return in the episode ({result.get('split', 'test')} tasks)")
    axes[0][-1].legend(fontsize=7)
    s = result["settings"]
    fig.suptitle(f"{TITLES.get(result['family'], result['family'])}, {result['scale']} "
                 f"scale: mean ± std over {s.get('seeds', '?')} seeds, "
                 f"{s.get('eval_tasks', '?')} tasks per evaluation", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figures(result: dict, out_dir: Path, stem: str, x: str = "steps") -> list[Path]:
    """``fig_<stem>.png`` (every method, RL² and VATE bold) and, when there are
    ablations, ``ablations_<stem>.png``; returns the paths written."""
    names = list(result["methods"])
    if not names:
        return []
    main = out_dir / f"fig_{stem}.png"
    episode_panels(result, names, main, x, faint=tuple(n for n in names if n not in MAIN))
    written = [main]
    abl = [n for n in ABLATIONS if n in result["methods"]]
    if any(n != "vate" for n in abl):
        written.append(out_dir / f"ablations_{stem}.png")
        episode_panels(result, abl, written[-1], x)
    return written


def _steps(n: float) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n:,.0f}"


def table(result: dict) -> str:
    """Markdown: the final evaluation per method and the references."""
    s = result["settings"]
    first = next(iter(result["methods"].values()), None)
    episodes = returns(first).shape[-1] if first else len(result.get("oracle") or [])
    cmds = "; ".join(f"`{c}`" for c in result.get("commands") or [])
    its = {m["iterations"][-1] for m in result["methods"].values()}
    head = (f"{cmds} — {result.get('device', '?')}, jax {result.get('jax', '?')}, "
            f"{result.get('date', '?')}, {result.get('physics', '?')}; {s.get('seeds', '?')} "
            f"seeds × {s.get('iterations', '?')} updates of {s.get('meta_batch_size', '?')} "
            f"tasks, trials of {s.get('episodes', episodes)} episodes. Return in each episode "
            f"of the trial on {s.get('eval_tasks', '?')} `{result.get('split', 'test')}` "
            f"tasks at the last evaluation (update {', '.join(str(i) for i in sorted(its))}), "
            "mean ± std over seeds; gain = episode 2 − episode 1 per seed. Wall time: each "
            "run over its invocations, compilation and evaluations included. Env steps: "
            "per seed, to the last evaluation.")
    gain = episodes >= 2
    cols = [f"ep{e + 1}" for e in range(episodes)] + (["ep2 − ep1"] if gain else []) + [
        "wall time (min)", "env steps"]
    lines = [f"### {result['family']}_{result['scale']}", "", head, "",
             "| method | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name, m in result["methods"].items():
        mean, std = final_stats(m)
        cells = [f"{mu:.2f} ± {sd:.2f}" for mu, sd in zip(mean, std, strict=True)]
        if gain:
            g, gs = gain_stats(m)
            cells.append(f"{g:+.2f} ± {gs:.2f}")
        wall = m.get("wall_seconds")
        cells += ["—" if wall is None else f"{wall / 60:.1f}",
                  _steps(env_steps(result, m)[-1])]
        lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    for key, (label, _, _) in REFERENCES.items():
        ref = result.get(key)
        if ref is None:
            continue
        cells = [f"{v:.2f}" for v in ref] + ([f"{ref[1] - ref[0]:+.2f}"] if gain else [])
        lines.append(f"| {label} (exact) | " + " | ".join(cells + ["—", "—"]) + " |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="experiments/vate/results/gridworld_small.json",
                   help="a JSON file run.py wrote")
    p.add_argument("--x", choices=("steps", "updates"), default="steps",
                   help="x axis: env steps per seed, or updates")
    args = p.parse_args(argv)
    path = Path(args.results)
    if not path.exists():
        raise SystemExit(f"no {path}; run experiments/vate/run.py first")
    result = json.loads(path.read_text())
    if not result.get("methods"):
        raise SystemExit(f"{path} has no methods yet")
    stem = path.stem
    written = figures(result, path.parent, stem, args.x)
    md = path.parent / f"results_{stem}.md"
    md.write_text(f"# VATE experiments: {stem}\n\n" + table(result))
    print("wrote " + ", ".join(str(w) for w in [*written, md]))


if __name__ == "__main__":
    main()
