"""Renders one PNG frame per task family into ``docs/envs/`` (``make renders``).

MJX families: the C MuJoCo model of the family (same MJCF, same options) after a few
random control steps from ``reset``, with the task's target drawn as a red marker where
the task has one. Pure-JAX families: a matplotlib sketch of their goal distributions (the
gridworld: its cells, the start and the candidate goal cells).

Needs an OpenGL context: ``MUJOCO_GL=egl`` (set below unless already set) works headless.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import jax  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from jaxmeta import envs  # noqa: E402
from jaxmeta.envs.mjx_base import MJXFamily  # noqa: E402

TOP_DOWN = ("reacher2_target", "reacher4_target", "reacher_sparse")
DISTANCE = {"half_cheetah.xml": 3.5, "ant.xml": 4.0, "humanoid.xml": 4.5, "hopper.xml": 3.5,
            "walker2d.xml": 3.5, "wheeled.xml": 2.0}


def render_mjx(fam: MJXFamily, path: str, steps: int = 10, size=(480, 640)) -> None:
    task = jax.tree.map(lambda x: np.asarray(x[0]), fam.sample_tasks(jax.random.PRNGKey(0), 1))
    state = jax.jit(fam.reset)(jax.random.PRNGKey(1), task)
    m = fam.mj_model
    d = mujoco.MjData(m)
    d.qpos[:] = np.asarray(state.physics.qpos)
    d.qvel[:] = np.asarray(state.physics.qvel)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        d.ctrl[:] = rng.uniform(m.actuator_ctrlrange[:, 0], m.actuator_ctrlrange[:, 1]) * 0.3
        for _ in range(fam.frame_skip):
            mujoco.mj_step(m, d)
    target = np.asarray(task.target)
    has_goal = fam.goal_position
    cam = mujoco.MjvCamera()
    cam.lookat[:] = d.subtree_com[1] if fam.name not in TOP_DOWN else (0.0, 0.0, 0.0)
    if has_goal and fam.name not in TOP_DOWN:
        cam.lookat[:2] = (d.subtree_com[1][:2] + target) / 2
    cam.distance = DISTANCE.get(fam.xml, 3.5) if fam.name not in TOP_DOWN else 3.6
    if has_goal and fam.name not in TOP_DOWN:
        cam.distance = max(cam.distance, 1.2 * np.linalg.norm(target) + 1.5)
    cam.azimuth = 90.0
    cam.elevation = -20.0 if fam.name not in TOP_DOWN else -89.0
    renderer = mujoco.Renderer(m, *size)
    try:
        renderer.update_scene(d, cam)
        if has_goal:
            scn = renderer.scene
            g = scn.geoms[scn.ngeom]
            radius = 0.05 if fam.name in TOP_DOWN else 0.15
            mujoco.mjv_initGeom(g, mujoco.mjtGeom.mjGEOM_SPHERE, np.array([radius, 0, 0]),
                np.array([target[0], target[1], 0.05]), np.eye(3).ravel(),
                np.array([0.9, 0.1, 0.1, 1.0], np.float32))
            scn.ngeom += 1
        img = renderer.render()
    finally:
        renderer.close()
    plt.imsave(path, img)


def render_navigation(fam, path: str) -> None:
    fig, ax = plt.subplots(figsize=(4, 4))
    for split, colour in (("train", "tab:blue"), ("ood", "tab:red")):
        goals = np.asarray(fam.sample_tasks(jax.random.PRNGKey(0), 200, split).goal)
        ax.scatter(goals[:, 0], goals[:, 1], s=6, c=colour, label=f"{split} goals")
    ax.scatter([0], [0], marker="*", s=150, c="k", label="start")
    ax.set_aspect("equal")
    ax.set_title(fam.name)
    ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def render_gridworld(fam, path: str) -> None:
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(4, 4))
    goals = {tuple(g) for g in fam.goals.tolist()}
    for x in range(fam.size):
        for y in range(fam.size):
            colour = "tab:blue" if (x, y) in goals else "0.85"
            ax.add_patch(Rectangle((x, y), 1, 1, facecolor=colour, alpha=0.35, edgecolor="k"))
    ax.scatter([0.5], [0.5], marker="*", s=250, c="k", label="start", zorder=3)
    ax.add_patch(Rectangle((0, 0), 0, 0, facecolor="tab:blue", alpha=0.35,
                           label=f"candidate goals ({len(goals)}, uniform)"))
    ax.set_xlim(0, fam.size)
    ax.set_ylim(0, fam.size)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{fam.name}: {fam.size}×{fam.size}, {fam.horizon} steps")
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.02), fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="docs/envs")
    p.add_argument("names", nargs="*", help="families to render (default: all)")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in args.names or envs.names():
        fam = envs.make(name)
        path = os.path.join(args.out, f"{name}.png")
        if isinstance(fam, MJXFamily):
            render_mjx(fam, path)
        elif name == "gridworld":
            render_gridworld(fam, path)
        else:
            render_navigation(fam, path)
        print("wrote", path)


if __name__ == "__main__":
    main()
