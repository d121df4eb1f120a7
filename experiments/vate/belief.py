"""VATE's belief on the gridworld, step by step through one trial (seed 003's picture).

Loads a trained VATE (or ablation / variBAD) run, draws one ``test`` task, and runs one
trial of ``trial_episodes`` episodes with the agent acting greedily. The encoder is re-run
over the trial stream: at step t its posterior q(m | τ:t) has read s_t and (a_{t−1},
r_{t−1}) — the reward on reaching s_t. Every cell c is decoded under the posterior mean
μ_t: with the gridworld's Bernoulli decoder on s_{t+1} that is P(goal at c | μ_t) (with a
Gaussian decoder, the decoded reward). One small heat-map per step, one row per episode:
the agent's cell s_t (white dot), its path in the episode so far, the goal (red square).

    python experiments/vate/belief.py --run runs/vate/gridworld_small/vate \\
        --out experiments/vate/results/belief_gridworld.png [--task-seed 0] [--member 0]
        [--goal X,Y] [--step N]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from jaxmeta.algorithms.vate import decoded_rewards  # noqa: E402
from jaxmeta.algorithms.vate.vae import vate_agent  # noqa: E402
from jaxmeta.evaluation import load_run  # noqa: E402
from jaxmeta.meta.trial import recurrent_inputs, trial, unroll  # noqa: E402
from jaxmeta.rollout import episode_returns  # noqa: E402


class BeliefTrial(NamedTuple):
    """One greedy trial and the decoded belief at every step (numpy, episode-major).

    Attributes:
      goal: the task's goal cell (x, y), ``[2]``.
      cells: the agent's cell s_t at every step, ``[E, T, 2]``.
      next_cells: s_{t+1}, ``[E, T, 2]``.
      belief: the decoded value of every cell (in ``cell_index`` order) under μ_t,
        ``[E, T, size²]``.
      returns: each episode's return, ``[E]``.
    """

    goal: np.ndarray
    cells: np.ndarray
    next_cells: np.ndarray
    belief: np.ndarray
    returns: np.ndarray


def grid_image(values, size: int) -> np.ndarray:
    """Per-cell values in ``cell_index`` order (index x·size + y) as an image ``[y, x]``:
    with ``imshow(origin="lower")`` cell (0, 0) is drawn bottom-left, x to the right."""
    return np.asarray(values).reshape(size, size).T


def episode_path(cells: np.ndarray, t: int) -> np.ndarray:
    """The cells s_0..s_t of one episode ``[T, 2]`` (the path drawn in panel t)."""
    return np.asarray(cells)[: t + 1]


def member_params(states: Any, member: int) -> Any:
    """One member's parameters out of vmapped learner states (leading member axis)."""
    n = jax.tree.leaves(states.params)[0].shape[0]
    if not 0 <= member < n:
        raise ValueError(f"member must be in [0, {n}), got {member}")
    return jax.tree.map(lambda x: x[member], states.params)


def check_belief_run(learner, params) -> None:
    """Refuses a run the picture cannot be drawn for (``ValueError`` saying why)."""
    if not (isinstance(params, dict) and "decoder" in params):
        raise ValueError(f"{learner.name} has no decoder: the belief picture needs a VATE "
                         "run (vate, its ablations or varibad)")
    if "reward" not in params["decoder"]:
        raise ValueError("the run decodes no reward (decoder='transition')")
    if not hasattr(learner.family, "cells"):
        raise ValueError(f"{learner.family.name} has no cells(): the picture is for the "
                         "gridworld")


def belief_trial(learner, params, task, key: jax.Array) -> BeliefTrial:
    """One greedy trial of ``task`` and the decoded reward of every cell at every step."""
    family, cfg = learner.family, learner.config
    episodes = cfg.trial.trial_episodes
    acting = vate_agent(family, cfg)
    tr, _ = trial(family, acting, params["agent"], task, key, episodes, greedy=True)
    flat = tr.flat().traj
    outs = unroll(acting, params["agent"], flat.obs, recurrent_inputs(flat), flat.mask)
    mu = outs.extra[0]  # [N, L]
    cells = family.cells()
    c = cells.shape[0]
    obs0 = jnp.zeros((c, family.obs_size), jnp.float32)
    act0 = jnp.zeros((c, family.action_size), jnp.float32)
    belief = jax.vmap(lambda m: decoded_rewards(learner, params, m, obs0, act0, cells))(mu)
    e, t = tr.traj.reward.shape[:2]
    return BeliefTrial(goal=np.asarray(task.goal),
                       cells=np.asarray(tr.traj.obs).astype(int),
                       next_cells=np.asarray(tr.next_obs).astype(int),
                       belief=np.asarray(belief).reshape(e, t, c),
                       returns=np.asarray(episode_returns(tr.traj)))


def pick_task(family, seed: int, goal: tuple[int, int] | None = None):
    """Task 0 of ``family.sample_tasks(PRNGKey(seed), 1, "test")`` (one task, batch axis
    dropped), or the gridworld task with ``goal``."""
    tasks = family.sample_tasks(jax.random.PRNGKey(seed), 1, "test")
    task = jax.tree.map(lambda x: x[0], tasks)
    if goal is not None:
        task = task.replace(goal=jnp.asarray(goal, jnp.int32))
    return task


def draw(bt: BeliefTrial, size: int, path: Path, title: str, label: str,
         vmax: float | None = 1.0) -> None:
    """The grid of heat-maps: one row per episode, one column per step, one colour scale."""
    e, t = bt.cells.shape[:2]
    lo = 0.0 if vmax == 1.0 else float(bt.belief.min())
    hi = float(bt.belief.max()) if vmax is None else vmax
    fig, axes = plt.subplots(e, t, figsize=(1.05 * t + 1.2, 1.2 * e + 0.9), squeeze=False)
    im = None
    for i in range(e):
        for j in range(t):
            ax = axes[i][j]
            im = ax.imshow(grid_image(bt.belief[i, j], size), origin="lower", vmin=lo,
                           vmax=hi, cmap="viridis")
            gx, gy = bt.goal
            ax.add_patch(Rectangle((gx - 0.5, gy - 0.5), 1, 1, fill=False, ec="red", lw=1.5))
            p = episode_path(bt.cells[i], j)
            ax.plot(p[:, 0], p[:, 1], "-", color="white", lw=0.8, alpha=0.8)
            ax.plot(p[-1, 0], p[-1, 1], "o", color="white", mec="black", ms=4, mew=0.6)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"t={j}", fontsize=7)
        axes[i][0].set_ylabel(f"ep. {i + 1}\nR={bt.returns[i]:.1f}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.04, right=0.93, top=0.86, bottom=0.03, wspace=0.08,
                        hspace=0.12)
    cax = fig.add_axes([0.945, 0.1, 0.01, 0.7])
    fig.colorbar(im, cax=cax).set_label(label, fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _goal(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    x, y = (int(v) for v in text.split(","))
    return x, y


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a VATE run directory (gridworld)")
    p.add_argument("--out", default="experiments/vate/results/belief_gridworld.png")
    p.add_argument("--task-seed", type=int, default=0, help="which test task to draw")
    p.add_argument("--goal", default=None, metavar="X,Y", help="this goal instead")
    p.add_argument("--member", type=int, default=0, help="which seed of the run")
    p.add_argument("--step", type=int, default=None, help="checkpoint (default: latest)")
    p.add_argument("--trial-seed", type=int, default=0, help="the trial's key")
    args = p.parse_args(argv)
    learner, states, desc, step = load_run(args.run, args.step)
    params = member_params(states, args.member)
    check_belief_run(learner, params)
    family = learner.family
    task = pick_task(family, args.task_seed, _goal(args.goal))
    bt = belief_trial(learner, params, task, jax.random.PRNGKey(args.trial_seed))
    bern = learner.config.reward_likelihood == "bernoulli"
    rets = ", ".join(f"{r:.1f}" for r in bt.returns)
    title = (f"{desc['algo']}, iteration {step}, member {args.member} ({args.run}): greedy "
             f"trial on test goal ({bt.goal[0]}, {bt.goal[1]}), returns per episode {rets}\n"
             "colour: " + ("P(goal at cell | μ_t)" if bern else "decoded reward at cell | μ_t")
             + " (μ_t has read r_{t−1}, the reward on reaching s_t); dot: agent at s_t; "
             "line: path this episode; red: goal")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    draw(bt, family.size, out, title, "P(goal | μ_t)" if bern else "decoded reward",
         1.0 if bern else None)
    print(f"wrote {out} (returns per episode {rets})")


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
