"""Dense-reward MJX locomotion families: goal velocity, direction and goal position.

The MAML-RL tasks (half-cheetah and ant velocity/direction), the model-based paper's
variants (wide velocity ranges, ant 2-D velocity, humanoid, positive→negative shifts,
low-friction and crippled ants).

Conventions shared by every family here (numbers per family in its docstring):

* The agent observes joint positions and velocities, never the task. Velocity and
  direction families drop the global x (and y) position, as gym does; goal families keep
  it, since the agent must know where it is.
* Forward velocity is a finite difference over one control step,
  v_x = (x_{t+1} − x_t) / dt with x the root (torso) position, as in the MAML-RL code;
  humanoids use the centre of mass (``subtree_com``), as gym does.
* ‖a‖² is the squared norm of the action after clipping to the control range.
* Contact cost uses the external contact wrenches F_ext = ``cfrc_ext`` (computed with
  ``mjx.rne_postconstraint``), clipped to [−1, 1] for the ant as in MAML-RL/PEARL.
* Horizon 200 control steps unless stated; there is no early termination except for the
  humanoid (torso height outside (1, 2)) and MAML-RL's ants ``ant_vel``/``ant_dir``
  (torso height outside [0.2, 1.0]). The randomized-dynamics hopper and walker are in
  :mod:`jaxmeta.envs.rand_params`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmeta.envs.base import sample_annulus, sample_signed
from jaxmeta.envs.mjx_base import (
    MJXFamily,
    MJXTask,
    cfrc_ext,
    nominal_dynamics,
)

Array = jax.Array


def _uniform(key: Array, n: int, lo: float, hi: float, dim: int = 1) -> Array:
    return jax.random.uniform(key, (n, dim), minval=lo, maxval=hi)


def _direction(key: Array, n: int) -> Array:
    return jnp.where(jax.random.bernoulli(key, 0.5, (n, 1)), 1.0, -1.0).astype(jnp.float32)


class _VelocityTasks:
    """Goal-velocity task sampling shared by cheetah, ant and humanoid families.

    ``train``/``test``: v* ~ U[velocity_range] per component (``velocity_dim`` of them).
    ``ood``: v* ~ U[ood_range], or, when ``ood_speed`` is set, |v*_i| ~ U[ood_speed] with
    a random sign per component.
    """

    target_kind = "velocity"
    velocity_range: tuple[float, float]
    ood_range: tuple[float, float] | None = None
    ood_speed: tuple[float, float] | None = None
    velocity_dim = 1

    def draw_tasks(self, key, n, split):
        d = self.velocity_dim
        if split != "ood":
            return MJXTask(target=_uniform(key, n, *self.velocity_range, dim=d))
        if self.ood_speed is not None:
            return MJXTask(target=sample_signed(key, n, *self.ood_speed, dim=d))
        return MJXTask(target=_uniform(key, n, *self.ood_range, dim=d))


class _DirectionTasks:
    """Direction tasks d = ±1 with probability ½ in every split (no held-out region)."""

    target_kind = "direction"

    def draw_tasks(self, key, n, split):
        return MJXTask(target=_direction(key, n))


# ------------------------------------------------------------------------ half-cheetah
class _Cheetah(MJXFamily):
    """Half-cheetah (brax's ``half_cheetah.xml``).

    obs = [qpos[1:], qvel] (17), action 6 in [−1, 1], dt = 0.01 × 5 = 0.05 s,
    Newton solver, 4 iterations, 8 line-search steps. Initial state: qpos U(±0.1),
    qvel 0.1·N(0, 1). Control cost 0.05‖a‖² (MAML-RL: 0.5·10⁻¹).
    """

    xml = "half_cheetah.xml"
    frame_skip = 5
    ctrl_cost = 0.05

    def observe(self, data, task):
        return jnp.concatenate([data.qpos[1:], data.qvel])

    def forward_velocity(self, before, after) -> Array:
        """v_x = (x_{t+1} − x_t)/dt of the root slide joint."""
        return (after.qpos[0] - before.qpos[0]) / self.dt


class HalfCheetahVel(_VelocityTasks, _Cheetah):
    """Goal velocity: r = −|v_x − v*| − 0.05‖a‖² (MAML §5.3).

    Splits: ``train``/``test`` v* ~ U[0, 2]; ``ood`` v* ~ U[−2, 0] (the model-based paper's
    positive→negative shift). ``task_features = [v*]``.
    """

    name = "halfcheetah_vel"
    velocity_range = (0.0, 2.0)
    ood_range = (-2.0, 0.0)

    def reward(self, before, after, ctrl, task):
        v = self.forward_velocity(before, after)
        return -jnp.abs(v - task.target[0]) - self.ctrl_cost * jnp.sum(ctrl**2)


class HalfCheetahVelPEARL(HalfCheetahVel):
    """PEARL's cheetah velocity (Rakelly et al. 2019; katerakelly/oyster ``HalfCheetahVelEnv``
    with ``cheetah-vel.json``): r = −|v_x − v*| − 0.05‖a‖² as in :class:`HalfCheetahVel`,
    v* ~ U[0, 3], fixed pools of 100 training and 30 test velocities, horizon 200.
    ``ood``: U[3, 4] afresh."""

    name = "halfcheetah_vel_pearl"
    velocity_range = (0.0, 3.0)
    ood_range = (3.0, 4.0)

    def __init__(self, horizon: int = 200, num_train_tasks: int | None = 100,
                 num_test_tasks: int | None = 30, **kwargs):
        super().__init__(horizon=horizon, num_train_tasks=num_train_tasks,
                         num_test_tasks=num_test_tasks, **kwargs)


class HalfCheetahVelWide(HalfCheetahVel):
    """Goal velocity over U[−2, 2]: r = −|v_x − v*| − 0.05‖a‖².

    Splits: ``train``/``test`` v* ~ U[−2, 2]; ``ood`` |v*| ~ U[2, 3] with a random sign
    (faster than anything trained on).
    """

    name = "halfcheetah_vel_wide"
    velocity_range = (-2.0, 2.0)
    ood_range = None
    ood_speed = (2.0, 3.0)


class HalfCheetahDir(_DirectionTasks, _Cheetah):
    """Direction: r = d·v_x − 0.05‖a‖² with d ∈ {−1, +1} (MAML forward/backward).

    Splits: all three draw d = ±1 with probability ½ (a binary task has no held-out
    region; ``ood`` is kept for a uniform API). ``task_features = [d]``.
    """

    name = "halfcheetah_dir"

    def reward(self, before, after, ctrl, task):
        v = self.forward_velocity(before, after)
        return task.target[0] * v - self.ctrl_cost * jnp.sum(ctrl**2)


# ------------------------------------------------------------------------------- ant
class _Ant(MJXFamily):
    """Ant (brax's ``ant.xml``, legs bent at brax's ``init_qpos``).

    obs = [qpos[2:], qvel] (27), or [qpos, qvel] (29) for goal families; action 8 in
    [−1, 1]; dt = 0.01 × 5 = 0.05 s; Newton solver, 4 iterations, 8 line-search steps.
    (brax's MJX setting of 1 iteration and 4 line-search steps drifts 0.35 in qpos from
    C MuJoCo within 20 control steps once the feet touch down; 4/8 tracks it to 10⁻⁴.)
    Initial state: qpos U(±0.1), qvel 0.1·N(0, 1).
    Shared reward terms (MAML-RL's ant): control 0.005‖a‖², contact
    5·10⁻⁴‖clip(F_ext, −1, 1)‖², survival +0.05; families may add an alive bonus and
    end the episode when the torso height leaves ``healthy_z``.

    Constructor flag ``contact_cost`` (default True): False drops the contact term (the
    model-based paper, seed 004, runs its ant tasks without it, footnote 4).
    """

    xml = "ant.xml"
    frame_skip = 5
    contact_forces = True
    ctrl_cost = 0.005
    contact_weight = 5e-4
    survive = 0.05
    alive_bonus = 0.0
    healthy_z: tuple[float, float] | None = None  # terminate when the torso z leaves it
    observe_xy = False
    # actuator order in ant.xml: hip_4, ankle_4, hip_1, ankle_1, hip_2, ankle_2, hip_3, ankle_3
    leg_actuators = ((0, 1), (2, 3), (4, 5), (6, 7))

    def __init__(self, contact_cost: bool = True, **kwargs):
        if not isinstance(contact_cost, bool):
            raise ValueError(f"contact_cost must be true or false, got {contact_cost!r}")
        self.contact_cost = contact_cost
        self.contact_forces = contact_cost  # cfrc_ext is read only by the contact term
        super().__init__(**kwargs)

    def observe(self, data, task):
        qpos = data.qpos if self.observe_xy else data.qpos[2:]
        return jnp.concatenate([qpos, data.qvel])

    def velocity(self, before, after) -> Array:
        """Torso velocity (v_x, v_y) over the control step."""
        return (after.qpos[:2] - before.qpos[:2]) / self.dt

    def costs(self, after, ctrl) -> Array:
        """0.005‖a‖² + 5·10⁻⁴‖clip(F_ext, −1, 1)‖² (the second only with contact_cost)."""
        cost = self.ctrl_cost * jnp.sum(ctrl**2)
        if self.contact_cost:
            cost = cost + self.contact_weight * jnp.sum(jnp.clip(cfrc_ext(after), -1.0, 1.0) ** 2)
        return cost

    def bonus(self) -> float:
        """Survival reward plus the alive bonus, paid every step."""
        return self.survive + self.alive_bonus

    def terminated(self, data, task):
        if self.healthy_z is None:
            return super().terminated(data, task)
        z, (lo, hi) = data.qpos[2], self.healthy_z
        return ((z < lo) | (z > hi)).astype(jnp.float32)


class AntVel(_VelocityTasks, _Ant):
    """Goal velocity (MAML-RL): r = −|v_x − v*| + 1 − 0.005‖a‖² − 5·10⁻⁴‖clip(F_ext)‖² + 0.05.

    As MAML-RL's ``ant_env_rand.py``: +1 alive bonus, and the episode ends when the torso
    height leaves [0.2, 1.0]. Splits: ``train``/``test`` v* ~ U[0, 3]; ``ood`` v* ~ U[−3, 0].
    """

    name = "ant_vel"
    velocity_range = (0.0, 3.0)
    ood_range = (-3.0, 0.0)
    alive_bonus = 1.0
    healthy_z = (0.2, 1.0)

    def reward(self, before, after, ctrl, task):
        v = self.velocity(before, after)[0]
        return -jnp.abs(v - task.target[0]) - self.costs(after, ctrl) + self.bonus()


class AntVelWide(AntVel):
    """Goal velocity over U[−3, 3] (the model-based paper's range); ``ood`` |v*| ~ U[3, 4].

    r = −|v_x − v*| − 0.005‖a‖² − 5·10⁻⁴‖clip(F_ext)‖² + 0.05, no early termination: the
    MAML-RL alive bonus and height rule are not part of this variant (seed 004 settles its
    own ant settings).
    """

    name = "ant_vel_wide"
    velocity_range = (-3.0, 3.0)
    ood_range = None
    ood_speed = (3.0, 4.0)
    alive_bonus = 0.0
    healthy_z = None


class AntVel2D(_VelocityTasks, _Ant):
    """2-D goal velocity: r = −‖v_xy − v*‖₂ − 0.005‖a‖² − 5·10⁻⁴‖clip(F_ext)‖² + 0.05.

    Splits: ``train``/``test`` v* ~ U[−3, 3]²; ``ood`` each component |v*_i| ~ U[3, 4]
    with a random sign.
    """

    name = "ant_vel2d"
    velocity_range = (-3.0, 3.0)
    ood_speed = (3.0, 4.0)
    velocity_dim = 2

    def reward(self, before, after, ctrl, task):
        v = self.velocity(before, after)
        return -jnp.linalg.norm(v - task.target) - self.costs(after, ctrl) + self.bonus()


class AntGoal(_Ant):
    """Goal position (PEARL's ant-goal): r = −‖p_xy − g‖₁ − 0.1‖a‖² − 5·10⁻⁴‖clip(F_ext)‖².

    p_xy is the torso position after the step; obs includes it (29). Splits:
    ``train``/``test`` g uniform by area in the disc ρ < 3; ``ood`` in the annulus 3 < ρ < 4.
    """

    name = "ant_goal"
    observe_xy = True
    target_kind = "goal_xy"
    ctrl_cost = 0.1

    def draw_tasks(self, key, n, split):
        lo, hi = (3.0, 4.0) if split == "ood" else (0.0, 3.0)
        return MJXTask(target=sample_annulus(key, n, lo, hi))

    def reward(self, before, after, ctrl, task):
        return -jnp.sum(jnp.abs(after.qpos[:2] - task.target)) - self.costs(after, ctrl)


class AntDir(_Ant):
    """Direction (forward/backward) with dynamics-shift ``ood`` splits (model-based §5.3).

    r = d·v_x − 0.005‖a‖² − 5·10⁻⁴‖clip(F_ext)‖² + 0.05, d ∈ {−1, +1}; as MAML-RL's
    ``ant_env_rand_direc.py`` the episode ends when the torso height leaves [0.2, 1.0]
    (that file has no +1 alive bonus, unlike ``ant_vel``'s).

    Every task carries a :class:`Dynamics`; ``train``/``test`` use the nominal ant.
    ``ood`` keeps d = ±1 and shifts the dynamics, chosen by ``ood_shift``:

    * ``"low_friction"``: every geom's friction coefficients × 0.5;
    * ``"crippled"``: one leg (uniform over the four, per task) disabled by setting its
      hip and ankle actuators' gear to 0;
    * ``"mixed"`` (``ant_dir``'s default): each ``ood`` task gets one of the two with
      probability ½.

    ``task_features = [d, mean friction scale, gear scale of the 8 actuators]`` (10).
    """

    target_kind = "direction"
    name = "ant_dir"
    healthy_z = (0.2, 1.0)
    OOD_SHIFTS = ("mixed", "low_friction", "crippled")

    def __init__(self, ood_shift: str = "mixed", **kwargs):
        if ood_shift not in self.OOD_SHIFTS:
            raise ValueError(f"ood_shift={ood_shift!r} is unknown; choose one of "
                             f"{list(self.OOD_SHIFTS)}")
        self.ood_shift = ood_shift
        super().__init__(**kwargs)

    def draw_tasks(self, key, n, split):
        k_dir, k_leg, k_kind = jax.random.split(key, 3)
        dyn = nominal_dynamics(self.mj_model, n)
        if split == "ood":
            low = jnp.full((n,), self.ood_shift == "low_friction")
            if self.ood_shift == "mixed":
                low = jax.random.bernoulli(k_kind, 0.5, (n,))
            friction = jnp.where(low[:, None, None], 0.5, 1.0) * dyn.geom_friction
            leg = jax.random.randint(k_leg, (n,), 0, 4)
            legs = jnp.asarray(self.leg_actuators)  # [4, 2]
            disabled = jnp.zeros((n, self.mj_model.nu)).at[
                jnp.arange(n)[:, None], legs[leg]].set(1.0)
            gear = jnp.where(low[:, None], 1.0, 1.0 - disabled)
            dyn = dyn.replace(geom_friction=friction, actuator_gear=gear)
        return MJXTask(target=_direction(k_dir, n), dynamics=dyn)

    def reward(self, before, after, ctrl, task):
        v = self.velocity(before, after)[0]
        return task.target[0] * v - self.costs(after, ctrl) + self.bonus()

    def task_features(self, task):
        dyn = task.dynamics
        return jnp.concatenate([task.target, jnp.mean(dyn.geom_friction, axis=(-2, -1))[..., None],
                                dyn.actuator_gear])


class AntDirLowFriction(AntDir):
    """``ant_dir`` whose ``ood`` split halves every friction coefficient."""

    name = "ant_dir_low_friction"

    def __init__(self, **kwargs):
        super().__init__(ood_shift="low_friction", **kwargs)


class AntDirCrippled(AntDir):
    """``ant_dir`` whose ``ood`` split disables one leg (its two actuators' gear set to 0)."""

    name = "ant_dir_crippled"

    def __init__(self, **kwargs):
        super().__init__(ood_shift="crippled", **kwargs)


# -------------------------------------------------------------------------- humanoid
class _Humanoid(MJXFamily):
    """Humanoid (brax's ``humanoid.xml``).

    obs = [qpos[2:], qvel] (45); action 17 in [−0.4, 0.4]; dt = 0.003 × 5 = 0.015 s;
    Newton solver, 4 iterations, 8 line-search steps (brax's 1/4 leaves C MuJoCo by
    2·10⁻² in qpos within 20 control steps; 4/8 tracks it to 10⁻⁵). Initial state:
    qpos U(±0.01), qvel 0.01·N(0, 1). Velocity of the centre of mass c (``subtree_com``
    of the world body): v = (c_{t+1} − c_t)/dt. Shared terms (gym/PEARL humanoid): alive
    bonus +5, control 0.1‖a‖², contact min(5·10⁻⁷‖F_ext‖², 10). The episode terminates
    when the torso height leaves (1.0, 2.0).
    """

    xml = "humanoid.xml"
    frame_skip = 5
    contact_forces = True
    reset_noise = 0.01
    alive_bonus = 5.0
    ctrl_cost = 0.1
    contact_cost = 5e-7

    def observe(self, data, task):
        return jnp.concatenate([data.qpos[2:], data.qvel])

    def com_velocity(self, before, after) -> Array:
        """Centre-of-mass velocity (v_x, v_y) over the control step."""
        return (after.subtree_com[0] - before.subtree_com[0])[:2] / self.dt

    def costs(self, after, ctrl) -> Array:
        contact = jnp.minimum(self.contact_cost * jnp.sum(cfrc_ext(after) ** 2), 10.0)
        return self.ctrl_cost * jnp.sum(ctrl**2) + contact

    def terminated(self, data, task):
        z = data.qpos[2]
        return ((z < 1.0) | (z > 2.0)).astype(jnp.float32)


class HumanoidDir(_DirectionTasks, _Humanoid):
    """Direction: r = 1.25·d·v_x + 5 − 0.1‖a‖² − min(5·10⁻⁷‖F_ext‖², 10), d = ±1.

    All splits draw d = ±1 (``ood`` kept for a uniform API).
    """

    name = "humanoid_dir"

    def reward(self, before, after, ctrl, task):
        v = self.com_velocity(before, after)[0]
        return 1.25 * task.target[0] * v + self.alive_bonus - self.costs(after, ctrl)


class HumanoidVel(_VelocityTasks, _Humanoid):
    """Goal velocity: r = −1.25|v_x − v*| + 5 − 0.1‖a‖² − min(5·10⁻⁷‖F_ext‖², 10).

    Splits: ``train``/``test`` v* ~ U[0, 1.5]; ``ood`` v* ~ U[−1.5, 0].
    """

    name = "humanoid_vel"
    velocity_range = (0.0, 1.5)
    ood_range = (-1.5, 0.0)

    def reward(self, before, after, ctrl, task):
        v = self.com_velocity(before, after)[0]
        return (-1.25 * jnp.abs(v - task.target[0]) + self.alive_bonus
                - self.costs(after, ctrl))


class HumanoidVelWide(HumanoidVel):
    """Goal velocity over U[−1.5, 1.5] (reward as ``humanoid_vel``); ``ood`` |v*| ~ U[1.5, 2]."""

    name = "humanoid_vel_wide"
    velocity_range = (-1.5, 1.5)
    ood_range = None
    ood_speed = (1.5, 2.0)
