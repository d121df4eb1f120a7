"""Target-reaching MJX families: TESP's four agents and the behaviour-prior sparse tasks.

TESP (§5.1 and its supplement): horizon 200, r = −‖x − x_target‖₂ − 0.001‖a‖² with x the
end effector (reachers) or the body (wheeled robot, ant) after the step. 100 training
targets fixed per ``task_seed`` with r_min < ρ < R1 (``train``); ``test`` draws fresh
targets in the same region (D′); ``ood`` draws from the annulus R1 < ρ < R2 (D″). All
draws are uniform by area. The reachers start along +x, the wheeled robot and the ant at
the origin.

Radii: the reachers use the paper's r_min = 0.2, R1 = 1.1, R2 = 1.5 (the arms reach 1.6).
The wheeled robot and the ant use them scaled by 2 (0.4, 2.2, 3.0): both move at about
0.5–1 m/s, so a 10 s episode reaches every ``ood`` target with time to spare, about the
same margin as a reacher has over its 4 s episode.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco

from jaxmeta.envs.base import sample_annulus
from jaxmeta.envs.mjx_base import MJXFamily, MJXTask

Array = jax.Array


class _TargetReaching(MJXFamily):
    """Shared TESP target-reaching logic; subclasses define the agent and ``effector``."""

    radii = (0.2, 1.1, 1.5)
    action_cost = 0.001
    reset_noise = 0.0
    target_kind = "goal_xy"

    def __init__(self, horizon: int = 200, num_train_tasks: int | None = 100, **kwargs):
        super().__init__(horizon=horizon, num_train_tasks=num_train_tasks, **kwargs)

    def draw_tasks(self, key, n, split):
        r_min, r1, r2 = self.radii
        lo, hi = (r1, r2) if split == "ood" else (r_min, r1)
        return MJXTask(target=sample_annulus(key, n, lo, hi))

    def effector(self, data) -> Array:
        """xy position whose distance to the target is penalised."""
        return data.qpos[:2]

    def reward(self, before, after, ctrl, task):
        return (-jnp.linalg.norm(self.effector(after) - task.target)
                - self.action_cost * jnp.sum(ctrl**2))

    def describe(self):
        out = super().describe()
        out["radii"] = {"train/test": self.radii[:2], "ood": self.radii[1:]}
        return out


class _Reacher(_TargetReaching):
    """Planar n-link arm (``assets/reacherN.xml``): obs = [cos q, sin q, q̇, x_ee] (3n + 2).

    dt = 0.01 × 2 = 0.02 s (200 steps = 4 s); no contacts (only the joint limits), Newton,
    1 iteration, 4 line-search steps. The arm starts exactly along +x, at rest.
    """

    frame_skip = 2
    iterations = 1  # no contacts: one Newton iteration resolves the joint limits
    ls_iterations = 4

    def setup(self):
        self.tip = mujoco.mj_name2id(self.mj_model, mujoco.mjtObj.mjOBJ_BODY, "fingertip")

    def effector(self, data):
        return data.xpos[self.tip, :2]

    def observe(self, data, task):
        q = data.qpos
        return jnp.concatenate([jnp.cos(q), jnp.sin(q), data.qvel, self.effector(data)])


class Reacher2Target(_Reacher):
    """2-link reacher (links 0.8 + 0.8 m), action 2 torques in [−1, 1], obs 8.

    r = −‖x_ee − g‖₂ − 0.001‖a‖²; ``train`` 100 fixed targets 0.2 < ρ < 1.1, ``test``
    fresh ones there, ``ood`` 1.1 < ρ < 1.5. Horizon 200.
    """

    name = "reacher2_target"
    xml = "reacher2.xml"


class Reacher4Target(_Reacher):
    """4-link reacher (4 × 0.4 m links), action 4 torques in [−1, 1], obs 14.

    Reward and splits as ``reacher2_target``.
    """

    name = "reacher4_target"
    xml = "reacher4.xml"


class WheeledGoal(_TargetReaching):
    """Two-wheeled differential-drive robot (``assets/wheeled.xml``) driving to a target.

    obs = [x, y, cos ψ, sin ψ, ẋ, ẏ, ψ̇, ω_left, ω_right] (9) with ψ the heading;
    action = 2 wheel torques in [−1, 1]. dt = 0.01 × 5 = 0.05 s (200 steps = 10 s);
    Newton, 4 iterations, 8 line-search steps (1 iteration lets the chassis bounce off
    the floor). Starts at the origin facing +x, at rest.
    r = −‖p_xy − g‖₂ − 0.001‖a‖²; ``train`` 100 fixed targets 0.4 < ρ < 2.2, ``test``
    fresh ones there, ``ood`` 2.2 < ρ < 3.0.
    """

    name = "wheeled_goal"
    xml = "wheeled.xml"
    frame_skip = 5
    radii = (0.4, 2.2, 3.0)

    def observe(self, data, task):
        w, x, y, z = data.qpos[3], data.qpos[4], data.qpos[5], data.qpos[6]
        heading = jnp.arctan2(2 * (w * z + x * y), 1 - 2 * (y**2 + z**2))
        return jnp.concatenate([data.qpos[:2], jnp.stack([jnp.cos(heading), jnp.sin(heading)]),
                                data.qvel[:2], data.qvel[5:6], data.qvel[6:8]])


class AntTarget(_TargetReaching):
    """Ant (brax's ``ant.xml``) walking to a target: r = −‖p_xy − g‖₂ − 0.001‖a‖².

    obs = [qpos, qvel] (29, includes the torso position); action 8 in [−1, 1];
    dt = 0.01 × 5 = 0.05 s; Newton, 4 iterations, 8 line-search steps (as every ant
    family, see ``jaxmeta.envs.locomotion``). Starts at the
    origin (x = y = 0) with U(±0.1) noise on the other coordinates and 0.1·N(0, 1) on
    velocities. ``train`` 100 fixed targets 0.4 < ρ < 2.2, ``test`` fresh ones there,
    ``ood`` 2.2 < ρ < 3.0.
    """

    name = "ant_target"
    xml = "ant.xml"
    frame_skip = 5
    radii = (0.4, 2.2, 3.0)
    reset_noise = 0.1

    def init_qpos_qvel(self, key):
        qpos, qvel = super().init_qpos_qvel(key)
        return qpos.at[:2].set(0.0), qvel

    def observe(self, data, task):
        return jnp.concatenate([data.qpos, data.qvel])


class AntRing(AntTarget):
    """Go To Ring (behaviour-prior paper, appendix D) with the ant.

    Target g at angle α ~ U[0, 2π) and radius ρ ~ U[3, 7]. Reward
    r = 10·1[‖p_xy − g‖₂ ≤ 0.5] − 0.005: +10 on reaching the target (within 0.5 m,
    our choice; the paper does not state it), which ends the episode, and the −0.005
    per-step penalty the paper calls "immobility". 10 s at 20 steps/s: dt = 0.05 s,
    horizon 200. ``train``: 100 fixed tasks (the paper's number); ``test`` fresh ones;
    ``ood`` radius ρ ~ U[7, 9] (further than any training target). obs as ``ant_target``.
    """

    name = "ant_ring"
    reach_radius = 0.5
    ring = (3.0, 7.0)
    ood_ring = (7.0, 9.0)

    def draw_tasks(self, key, n, split):
        k_a, k_r = jax.random.split(key)
        lo, hi = self.ood_ring if split == "ood" else self.ring
        alpha = jax.random.uniform(k_a, (n,), minval=0.0, maxval=2 * jnp.pi)
        rho = jax.random.uniform(k_r, (n,), minval=lo, maxval=hi)
        return MJXTask(target=jnp.stack([rho * jnp.cos(alpha), rho * jnp.sin(alpha)], -1))

    def reached(self, data, task) -> Array:
        """Whether the torso is within ``reach_radius`` of the target."""
        return jnp.linalg.norm(data.qpos[:2] - task.target) <= self.reach_radius

    def reward(self, before, after, ctrl, task):
        return 10.0 * self.reached(after, task).astype(jnp.float32) - 0.005

    def terminated(self, data, task):
        return self.reached(data, task).astype(jnp.float32)

    def describe(self):
        out = super().describe()
        out["radii"] = {"train/test": self.ring, "ood": self.ood_ring}
        return out


class ReacherSparse(Reacher2Target):
    """Sparse reaching (the behaviour-prior paper's Reach, on the 2-link planar arm).

    r = 1[‖x_ee − g‖₂ ≤ 0.05] every step; no termination. 10 s at 25 steps/s:
    dt = 0.01 × 4 = 0.04 s, horizon 250. Targets as ``reacher2_target``: ``train`` 100
    fixed targets 0.2 < ρ < 1.1, ``test`` fresh ones there, ``ood`` 1.1 < ρ < 1.5.
    """

    name = "reacher_sparse"
    frame_skip = 4
    success_radius = 0.05

    def __init__(self, horizon: int = 250, **kwargs):
        super().__init__(horizon=horizon, **kwargs)

    def reward(self, before, after, ctrl, task):
        d = jnp.linalg.norm(self.effector(after) - task.target)
        return (d <= self.success_radius).astype(jnp.float32)
