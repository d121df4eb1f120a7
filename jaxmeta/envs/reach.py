"""Target-reaching MJX families: TESP's four agents and the behaviour-prior sparse tasks.

TESP (§5.1 and its supplement) with the authors' reference code (llan-ml/tesp,
``tesp/envs/mujoco/*.py``, ``tesp/envs/reset_wrapper.py``, ``tesp/main_train.py``) where
the paper leaves a number out; ``docs/envs.md`` lists each number with its file.

* Reward r = −‖x − g‖₂ − c·½‖a‖² with x the fingertip (reachers) or the body (wheeled
  robot, ant) after the step, a ∈ [−1, 1]ⁿ the clipped action and c = 10⁻³ (the reference's
  ``ctrl_cost_coeff`` times its ``calculate_ctrl_cost``, ½‖a‖²): ``action_cost`` = 5·10⁻⁴.
  :meth:`_TargetReaching.distance_reward` and :meth:`_TargetReaching.action_cost_term`
  split it; TESP's reported R counts the distance term only.
* An episode ends on arrival, ‖x − g‖ < ``arrival_radius`` (strictly), and for the ant
  also when its torso height leaves the reference's [0.15, 0.45] (scaled ×2.5 to brax's
  larger ant, see ``ANT_SCALE``) or the state is not finite.
* Targets are uniform by area in 0.2 < ρ < 1.1 (``train``: a pool of 100 fixed per
  ``task_seed``; ``test``: fresh ones) and 1.1 < ρ < 1.5 (``ood``), for all four agents.
  The pool keeps its targets at least ``min_spacing`` apart (:meth:`train_tasks`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from jaxmeta.envs.base import sample_annulus, split_key
from jaxmeta.envs.mjx_base import MJXFamily, MJXTask

Array = jax.Array


def spaced_pool(draw, key: Array, n: int, spacing: float, max_rounds: int = 100) -> np.ndarray:
    """``n`` points from ``draw(key, m) -> [m, 2]``, pairwise at least ``spacing`` apart.

    Rejection in a fixed order: candidates come in rounds of ``4n`` from
    ``jax.random.fold_in(key, round)``; each is kept if it lies ``spacing`` or more from
    every point kept before it (the reference's sequential rule,
    ``tesp/envs/reset_wrapper.py``). A function of ``key`` alone, so the pool is the same
    on every call and machine. Raises ``ValueError`` when ``n`` such points are not found.
    """
    kept = np.zeros((0, 2))
    for r in range(max_rounds):
        with jax.ensure_compile_time_eval():
            cand = np.asarray(draw(jax.random.fold_in(key, r), 4 * n), np.float64)
        for c in cand:
            if kept.shape[0] == 0 or np.min(np.linalg.norm(kept - c, axis=1)) >= spacing:
                kept = np.concatenate([kept, c[None]])
                if kept.shape[0] == n:
                    return kept
    raise ValueError(f"found only {kept.shape[0]} of {n} targets {spacing} apart; lower "
                     "num_train_tasks or the spacing")


class _TargetReaching(MJXFamily):
    """Shared TESP target-reaching logic; subclasses define the agent and ``effector``."""

    radii = (0.2, 1.1, 1.5)  # r_min, R1, R2
    action_cost = 5e-4  # 10⁻³ · ½‖a‖²
    arrival_radius: float | None = 0.06
    min_spacing: float | None = 0.1
    reset_noise = 0.0
    target_kind = "goal_xy"

    def __init__(self, horizon: int = 200, num_train_tasks: int | None = 100, **kwargs):
        super().__init__(horizon=horizon, num_train_tasks=num_train_tasks, **kwargs)
        self._pool = None

    def draw_tasks(self, key, n, split):
        r_min, r1, r2 = self.radii
        lo, hi = (r1, r2) if split == "ood" else (r_min, r1)
        return MJXTask(target=sample_annulus(key, n, lo, hi))

    def train_tasks(self) -> MJXTask:
        """The fixed pool: ``num_train_tasks`` targets from ``task_seed``, at least
        ``min_spacing`` apart (:func:`spaced_pool`); made once, then reused."""
        if self.min_spacing is None or self.num_train_tasks is None:
            return super().train_tasks()
        if self._pool is None:  # concrete even when first asked for inside a jit trace
            with jax.ensure_compile_time_eval():
                key = split_key(jax.random.PRNGKey(self.task_seed), "train")
                pts = spaced_pool(lambda k, m: self.draw_tasks(k, m, "train").target, key,
                                  self.num_train_tasks, self.min_spacing)
            self._pool = pts.astype(np.float32)
        return MJXTask(target=jnp.asarray(self._pool))

    def effector(self, data) -> Array:
        """xy position whose distance to the target is penalised."""
        return data.qpos[:2]

    def distance(self, data, task) -> Array:
        """‖x − g‖₂ of the effector to the target."""
        return jnp.linalg.norm(self.effector(data) - task.target)

    def distance_reward(self, data, task) -> Array:
        """The distance term −‖x − g‖₂ of the reward (all TESP's reported R counts)."""
        return -self.distance(data, task)

    def action_cost_term(self, ctrl) -> Array:
        """The action cost ``action_cost``·‖a‖² of the clipped action (reward = distance
        term − this). Accepts ``[..., nu]``; clips to the ``ctrlrange`` itself, so the
        unclipped actions of a :class:`~jaxmeta.rollout.Trajectory` can be passed."""
        a = jnp.clip(ctrl, self.ctrl_low, self.ctrl_high)
        return self.action_cost * jnp.sum(a**2, axis=-1)

    def reward(self, before, after, ctrl, task):
        return self.distance_reward(after, task) - self.action_cost_term(ctrl)

    def terminated(self, data, task):
        if self.arrival_radius is None:
            return jnp.zeros(())
        return (self.distance(data, task) < self.arrival_radius).astype(jnp.float32)

    def describe(self):
        out = super().describe()
        out["radii"] = {"train/test": self.radii[:2], "ood": self.radii[1:]}
        out["arrival_radius"] = self.arrival_radius
        out["min_spacing"] = self.min_spacing
        return out


class _Reacher(_TargetReaching):
    """Planar n-link arm (``assets/reacherN.xml``): obs = [cos q, sin q, q̇, x_ee] (3n + 2).

    No contacts (only the joint limits), Newton, 1 iteration, 4 line-search steps. The arm
    starts exactly along +x, at rest.
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
    """The TESP authors' 2-link reacher (links 0.75 m, fingertip 0.95 m past the elbow:
    reach 1.7 m), velocity servos (force = 100·a − q̇, a ∈ [−1, 1]²), obs 8.

    dt = 0.01 × 5 = 0.05 s (200 steps = 10 s). r = −‖x_ee − g‖₂ − 5·10⁻⁴‖a‖²; ends when
    ‖x_ee − g‖ < 0.06. ``train`` 100 fixed targets 0.2 < ρ < 1.1 at least 0.1 apart,
    ``test`` fresh ones there, ``ood`` 1.1 < ρ < 1.5.
    """

    name = "reacher2_target"
    xml = "reacher2.xml"
    frame_skip = 5


class Reacher4Target(_Reacher):
    """4-link reacher (4 × 0.4 m links, torque motors), action 4 in [−1, 1], obs 14.

    dt = 0.01 × 2 = 0.02 s. Reward and splits as ``reacher2_target``, except the
    reference's arrival radius and pool spacing for this arm: 0.11.
    """

    name = "reacher4_target"
    xml = "reacher4.xml"
    arrival_radius = 0.11
    min_spacing = 0.11


class WheeledGoal(_TargetReaching):
    """Two-wheeled differential-drive robot (``assets/wheeled.xml``) driving to a target.

    obs = [x, y, cos ψ, sin ψ, ẋ, ẏ, ψ̇, ω_left, ω_right] (9) with ψ the heading;
    action = 2 wheel torques in [−1, 1]. dt = 0.01 × 5 = 0.05 s (200 steps = 10 s);
    Newton, 4 iterations, 8 line-search steps (1 iteration lets the chassis bounce off
    the floor). Starts at the origin facing +x, at rest.
    r = −‖p_xy − g‖₂ − 5·10⁻⁴‖a‖²; ends when ‖p_xy − g‖ < 0.02. Targets as the reachers'.
    """

    name = "wheeled_goal"
    xml = "wheeled.xml"
    frame_skip = 5
    arrival_radius = 0.02

    def observe(self, data, task):
        w, x, y, z = data.qpos[3], data.qpos[4], data.qpos[5], data.qpos[6]
        heading = jnp.arctan2(2 * (w * z + x * y), 1 - 2 * (y**2 + z**2))
        return jnp.concatenate([data.qpos[:2], jnp.stack([jnp.cos(heading), jnp.sin(heading)]),
                                data.qvel[:2], data.qvel[5:6], data.qvel[6:8]])


# The reference ant's initial pose (llan-ml/tesp ``tesp/envs/mujoco/assets/ant.xml``,
# custom numeric ``init_qpos``): upright, hips 0, ankles bent ±1 rad onto the floor, torso
# at 0.25. That ant is gym's scaled by 0.4 (torso radius 0.1, legs 0.16·√2); ours is
# brax's full-size one (0.25, 0.4·√2), on which 0.25 sinks the feet 0.3 m into the floor.
# So the two heights scale by ANT_SCALE = 2.5: start 0.625, healthy band [0.375, 1.125]
# for the reference's [0.15, 0.45]. brax's ant has the same joints in the same order.
ANT_SCALE = 2.5
ANT_TESP_QPOS = (0.0, 0.0, 0.25 * ANT_SCALE, 1.0, 0.0, 0.0, 0.0,
                 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0)


class AntTarget(_TargetReaching):
    """Ant (brax's ``ant.xml``) walking to a target: r = −‖p_xy − g‖₂ − 5·10⁻⁴‖a‖².

    obs = [qpos, qvel] (29, includes the torso position); action 8 in [−1, 1];
    dt = 0.01 × 5 = 0.05 s; Newton, 4 iterations, 8 line-search steps (as every ant
    family, see ``jaxmeta.envs.locomotion``). Starts from the reference's deterministic
    pose (``ANT_TESP_QPOS``, heights scaled to this larger ant) at rest. Ends when
    ‖p_xy − g‖ < 0.03, when the torso height leaves [0.375, 1.125] (the reference's
    [0.15, 0.45] × ``ANT_SCALE``), or when the state is not finite. Targets as the
    reachers'.
    """

    name = "ant_target"
    xml = "ant.xml"
    frame_skip = 5
    arrival_radius = 0.03
    healthy_z = (0.15 * ANT_SCALE, 0.45 * ANT_SCALE)

    def init_qpos_qvel(self, key):
        del key
        return jnp.asarray(ANT_TESP_QPOS, jnp.float32), jnp.zeros(self.mj_model.nv)

    def terminated(self, data, task):
        lo, hi = self.healthy_z
        z = data.qpos[2]
        finite = jnp.all(jnp.isfinite(data.qpos)) & jnp.all(jnp.isfinite(data.qvel))
        healthy = finite & (z >= lo) & (z <= hi)
        return jnp.maximum(super().terminated(data, task), 1.0 - healthy.astype(jnp.float32))

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
    # its own rules, not TESP's: success ends it (``terminated``), no height rule, no
    # pool spacing, and the noisy reset of the other ant families
    arrival_radius = None
    healthy_z = None
    min_spacing = None
    reset_noise = 0.1
    ring = (3.0, 7.0)
    ood_ring = (7.0, 9.0)

    def draw_tasks(self, key, n, split):
        k_a, k_r = jax.random.split(key)
        lo, hi = self.ood_ring if split == "ood" else self.ring
        alpha = jax.random.uniform(k_a, (n,), minval=0.0, maxval=2 * jnp.pi)
        rho = jax.random.uniform(k_r, (n,), minval=lo, maxval=hi)
        return MJXTask(target=jnp.stack([rho * jnp.cos(alpha), rho * jnp.sin(alpha)], -1))

    def init_qpos_qvel(self, key):
        qpos, qvel = MJXFamily.init_qpos_qvel(self, key)
        return qpos.at[:2].set(0.0), qvel

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

    r = 1[‖x_ee − g‖₂ ≤ 0.05] every step; no termination (a sparse reward needs the
    whole episode to count the time spent at the target). 10 s at 25 steps/s:
    dt = 0.01 × 4 = 0.04 s, horizon 250. The arm is ``reacher2_target``'s (since the TESP
    reacher follows its reference: reach 1.7 m, velocity servos); the targets are its
    regions without the pool spacing: ``train`` 100 fixed targets 0.2 < ρ < 1.1, ``test``
    fresh ones there, ``ood`` 1.1 < ρ < 1.5.
    """

    name = "reacher_sparse"
    frame_skip = 4
    success_radius = 0.05
    arrival_radius = None
    min_spacing = None

    def __init__(self, horizon: int = 250, **kwargs):
        super().__init__(horizon=horizon, **kwargs)

    def reward(self, before, after, ctrl, task):
        d = jnp.linalg.norm(self.effector(after) - task.target)
        return (d <= self.success_radius).astype(jnp.float32)
