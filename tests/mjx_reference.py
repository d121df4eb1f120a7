"""Independent references of every MJX family's reward and termination, in numpy, on
C MuJoCo data (``mujoco.MjData`` after ``mj_step``; contact wrenches ``cfrc_ext`` after
``mj_rnePostConstraint``).

Each entry is written from the family's docstring equation and the paper or reference
code it cites, never from the family's ``reward``/``terminated``. They follow the code as
it is today; when a family's definition changes, change its entry in :data:`REWARD` /
:data:`TERMINATED`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import mujoco
import numpy as np

FIELDS = ("qpos", "qvel", "xpos", "subtree_com", "cfrc_ext")


def snapshot(d: mujoco.MjData) -> dict[str, np.ndarray]:
    """What the references read of a C state (float64 copies)."""
    return {k: np.array(getattr(d, k), np.float64) for k in FIELDS}


class CStep(NamedTuple):
    """One control step simulated by C MuJoCo.

    Attributes:
      model: the C model of the task (dynamics scales applied).
      before, after: :func:`snapshot` of the state before and after the control step.
      ctrl: the action clipped to the actuators' control range.
      dt: the control step, timestep × frame_skip (s).
      target: the task's target (velocity, direction or xy goal; empty for rand_params).
    """

    model: mujoco.MjModel
    before: dict
    after: dict
    ctrl: np.ndarray
    dt: float
    target: np.ndarray

    def body(self, name: str) -> int:
        return mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, name)


# --- shared terms ---------------------------------------------------------------------------


def a2(s: CStep) -> float:
    """‖a‖² of the clipped action."""
    return float(np.sum(s.ctrl**2))


def root_velocity(s: CStep) -> np.ndarray:
    """(x, y) velocity of the root over the control step: Δqpos[:2] / dt (MAML-RL's
    finite difference of the torso position; for planar models only [0] is x)."""
    return (s.after["qpos"][:2] - s.before["qpos"][:2]) / s.dt


def com_velocity_x(s: CStep) -> float:
    """x velocity of the whole-body centre of mass (the world body's subtree), as gym's
    humanoid: Δ com_x / dt."""
    return float(s.after["subtree_com"][0, 0] - s.before["subtree_com"][0, 0]) / s.dt


def ant_contact(s: CStep) -> float:
    """MAML-RL / PEARL ant: 0.5·10⁻³ Σ clip(F_ext, −1, 1)² over every body's wrench."""
    return 0.5e-3 * float(np.sum(np.clip(s.after["cfrc_ext"], -1.0, 1.0) ** 2))


def humanoid_contact(s: CStep) -> float:
    """gym humanoid: min(5·10⁻⁷ Σ F_ext², 10)."""
    return min(5e-7 * float(np.sum(s.after["cfrc_ext"] ** 2)), 10.0)


def fingertip_distance(s: CStep) -> float:
    return float(np.linalg.norm(s.after["xpos"][s.body("fingertip"), :2] - s.target))


def torso_distance(s: CStep) -> float:
    return float(np.linalg.norm(s.after["qpos"][:2] - s.target))


# --- rewards (one entry per family) ---------------------------------------------------------

def _cheetah_vel(s):  # MAML §5.3: −|v − v*| − 0.5·10⁻¹‖a‖²
    return -abs(root_velocity(s)[0] - s.target[0]) - 0.05 * a2(s)


def _cheetah_dir(s):  # MAML forward/backward: d·v − 0.05‖a‖²
    return s.target[0] * root_velocity(s)[0] - 0.05 * a2(s)


def _ant_vel(s):  # MAML-RL ant_env_rand.py: −|v − v*| + 1 − 0.005‖a‖² − contact + 0.05
    return -abs(root_velocity(s)[0] - s.target[0]) + 1.0 - 0.005 * a2(s) - ant_contact(s) + 0.05


def _ant_vel_wide(s):  # the model-based variant: no +1 alive bonus
    return -abs(root_velocity(s)[0] - s.target[0]) - 0.005 * a2(s) - ant_contact(s) + 0.05


def _ant_dir(s):  # MAML-RL AntDirEnv: d·v − 0.005‖a‖² − contact + 0.05
    return s.target[0] * root_velocity(s)[0] - 0.005 * a2(s) - ant_contact(s) + 0.05


def _ant_vel2d(s):  # 2-D goal velocity: −‖v_xy − v*‖₂, ant costs, + 0.05
    return (-float(np.linalg.norm(root_velocity(s) - s.target)) - 0.005 * a2(s)
            - ant_contact(s) + 0.05)


def _ant_goal(s):  # PEARL ant-goal: −‖p_xy − g‖₁ − 0.1‖a‖² − contact
    return (-float(np.sum(np.abs(s.after["qpos"][:2] - s.target))) - 0.1 * a2(s)
            - ant_contact(s))


def _humanoid_dir(s):  # 1.25·d·v_com + 5 − 0.1‖a‖² − contact
    return 1.25 * s.target[0] * com_velocity_x(s) + 5.0 - 0.1 * a2(s) - humanoid_contact(s)


def _humanoid_vel(s):  # −1.25|v_com − v*| + 5 − 0.1‖a‖² − contact
    return (-1.25 * abs(com_velocity_x(s) - s.target[0]) + 5.0 - 0.1 * a2(s)
            - humanoid_contact(s))


def _rand_params(s):  # gym hopper/walker: Δx/dt + 1 − 10⁻³‖a‖²
    return root_velocity(s)[0] + 1.0 - 1e-3 * a2(s)


def _reacher_target(s):  # llan-ml/tesp: −‖x_ee − g‖₂ − 10⁻³·½‖a‖²
    return -fingertip_distance(s) - 1e-3 * 0.5 * a2(s)


def _body_target(s):  # llan-ml/tesp wheeled robot and ant: −‖p_xy − g‖₂ − 10⁻³·½‖a‖²
    return -torso_distance(s) - 1e-3 * 0.5 * a2(s)


def _ant_ring(s):  # behaviour-prior Go To Ring: +10 within 0.5 m, −0.005 every step
    return 10.0 * float(torso_distance(s) <= 0.5) - 0.005


def _reacher_sparse(s):  # behaviour-prior Reach: 1 within 0.05 m of the target
    return float(fingertip_distance(s) <= 0.05)


REWARD: dict[str, Callable[[CStep], float]] = {
    "halfcheetah_vel": _cheetah_vel, "halfcheetah_vel_wide": _cheetah_vel,
    "halfcheetah_dir": _cheetah_dir,
    "ant_vel": _ant_vel, "ant_vel_wide": _ant_vel_wide, "ant_vel2d": _ant_vel2d,
    "ant_goal": _ant_goal,
    "ant_dir": _ant_dir, "ant_dir_low_friction": _ant_dir, "ant_dir_crippled": _ant_dir,
    "humanoid_dir": _humanoid_dir, "humanoid_vel": _humanoid_vel,
    "humanoid_vel_wide": _humanoid_vel,
    "hopper_rand": _rand_params, "walker_rand": _rand_params,
    "reacher2_target": _reacher_target, "reacher4_target": _reacher_target,
    "wheeled_goal": _body_target, "ant_target": _body_target,
    "ant_ring": _ant_ring, "reacher_sparse": _reacher_sparse,
}


# --- terminations (families not listed never end early) -------------------------------------

def _humanoid_fell(s):  # gym humanoid: torso height outside (1, 2)
    z = s.after["qpos"][2]
    return not 1.0 < z < 2.0


def _hopper_unhealthy(s):  # gym Hopper: z > 0.7, |θ| < 0.2, |qpos[2:]|, |qvel| < 100
    z, angle = s.after["xpos"][s.body("torso"), 2], s.after["qpos"][2]
    state = np.concatenate([s.after["qpos"][2:], s.after["qvel"]])
    return not (z > 0.7 and abs(angle) < 0.2 and np.all(np.abs(state) < 100.0))


def _walker_unhealthy(s):  # gym Walker2d: 0.8 < z < 2, −1 < θ < 1
    z, angle = s.after["xpos"][s.body("torso"), 2], s.after["qpos"][2]
    return not (0.8 < z < 2.0 and -1.0 < angle < 1.0)


def _ring_reached(s):
    return torso_distance(s) <= 0.5


def _maml_ant_height(s):  # MAML-RL ant_env_rand*.py: notdone = 0.2 <= z <= 1.0
    z = s.after["qpos"][2]
    return not 0.2 <= z <= 1.0


def _arrived(radius, effector):  # llan-ml/tesp: done when the distance < radius (strict)
    return lambda s: effector(s) < radius


def _tesp_ant_done(s):  # llan-ml/tesp ant.py: arrival < 0.03, z outside [0.15, 0.45] (×2.5
    z = s.after["qpos"][2]  # for brax's larger ant), or a non-finite state
    finite = np.all(np.isfinite(s.after["qpos"])) and np.all(np.isfinite(s.after["qvel"]))
    return torso_distance(s) < 0.03 or not 0.375 <= z <= 1.125 or not finite


TERMINATED: dict[str, Callable[[CStep], bool]] = {
    "humanoid_dir": _humanoid_fell, "humanoid_vel": _humanoid_fell,
    "humanoid_vel_wide": _humanoid_fell,
    "hopper_rand": _hopper_unhealthy, "walker_rand": _walker_unhealthy,
    "ant_ring": _ring_reached,
    "ant_vel": _maml_ant_height, "ant_dir": _maml_ant_height,
    "ant_dir_low_friction": _maml_ant_height, "ant_dir_crippled": _maml_ant_height,
    "reacher2_target": _arrived(0.06, fingertip_distance),
    "reacher4_target": _arrived(0.11, fingertip_distance),
    "wheeled_goal": _arrived(0.02, torso_distance), "ant_target": _tesp_ant_done,
}


def terminated(name: str, s: CStep) -> bool:
    return bool(TERMINATED.get(name, lambda _: False)(s))
