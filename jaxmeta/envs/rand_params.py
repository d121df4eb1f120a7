"""Randomized physical parameters: hopper and walker (the rand_param_envs protocol used by
MAML-RL, ProMP and EPG). The task is its dynamics (``MJXTask.target`` is empty)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmeta.envs.base import sample_signed
from jaxmeta.envs.mjx_base import Dynamics, MJXFamily, MJXTask


class _RandParams(MJXFamily):
    """Randomized physical parameters (the rand_param_envs protocol used by MAML/ProMP/EPG).

    Per task, every component drawn independently with its own u ~ U[−3, 3], as
    rand_param_envs' ``sample_tasks`` does: each body's mass × 1.5ᵘ, each of the three
    components of each body's inertia × 1.5ᵘ, each dof's damping × 1.3ᵘ, each of the three
    friction coefficients of each geom × 1.5ᵘ (the world body keeps scale 1; it is fixed,
    so its scale has no effect). ``ood`` draws |u| ~ U[3, 4] with a random sign per
    component, i.e. lighter/heavier, stiffer/looser than anything trained on.

    Reward (gym): r = (x_{t+1} − x_t)/dt + 1 − 10⁻³‖a‖²; termination by gym's health check.
    ``task_features`` = all scales (:meth:`Dynamics.flat`).
    """

    target_kind = "none"
    frame_skip = 4
    reset_noise = 0.005
    log_limit = 3.0
    ood_limits = (3.0, 4.0)

    def _log_scales(self, key, shape, split):
        if split == "ood":
            return sample_signed(key, shape[0], *self.ood_limits, dim=shape[1])
        return jax.random.uniform(key, shape, minval=-self.log_limit, maxval=self.log_limit)

    def draw_tasks(self, key, n, split):
        m = self.mj_model
        k_m, k_i, k_d, k_f = jax.random.split(key, 4)
        mass = 1.5 ** self._log_scales(k_m, (n, m.nbody), split)
        inertia = 1.5 ** self._log_scales(k_i, (n, m.nbody * 3), split)
        friction = 1.5 ** self._log_scales(k_f, (n, m.ngeom * 3), split)
        dyn = Dynamics(
            body_mass=mass.at[:, 0].set(1.0),
            body_inertia=inertia.reshape(n, m.nbody, 3).at[:, 0].set(1.0),
            dof_damping=1.3 ** self._log_scales(k_d, (n, m.nv), split),
            geom_friction=friction.reshape(n, m.ngeom, 3),
            actuator_gear=jnp.ones((n, m.nu)),
        )
        return MJXTask(target=jnp.zeros((n, 0)), dynamics=dyn)

    def observe(self, data, task):
        return jnp.concatenate([data.qpos[1:], jnp.clip(data.qvel, -10.0, 10.0)])

    def reward(self, before, after, ctrl, task):
        v = (after.qpos[0] - before.qpos[0]) / self.dt
        return v + 1.0 - 1e-3 * jnp.sum(ctrl**2)

    def task_features(self, task):
        return task.dynamics.flat()


class HopperRandParams(_RandParams):
    """Hopper (brax's ``hopper.xml``) with randomized dynamics (see :class:`_RandParams`).

    obs = [qpos[1:], clip(qvel, ±10)] (11); action 3 in [−1, 1]; dt = 0.002 × 4 = 0.008 s;
    Newton, 4 iterations, 8 line-search steps. Initial state: U(±0.005) noise. Terminates
    unless the torso height z > 0.7, |θ| < 0.2 and every |qpos[2:]|, |qvel| < 100 (gym Hopper).
    """

    name = "hopper_rand"
    xml = "hopper.xml"

    def terminated(self, data, task):
        z, angle = data.xpos[1, 2], data.qpos[2]
        finite = jnp.all(jnp.abs(jnp.concatenate([data.qpos[2:], data.qvel])) < 100.0)
        healthy = (z > 0.7) & (jnp.abs(angle) < 0.2) & finite
        return 1.0 - healthy.astype(jnp.float32)


class Walker2dRandParams(_RandParams):
    """Walker2d (brax's ``walker2d.xml``) with randomized dynamics (see :class:`_RandParams`).

    obs = [qpos[1:], clip(qvel, ±10)] (17); action 6 in [−1, 1]; dt = 0.002 × 4 = 0.008 s;
    Newton, 4 iterations, 8 line-search steps. Terminates unless the torso height 0.8 < z < 2.0 and
    −1 < θ < 1 (gym Walker2d).
    """

    name = "walker_rand"
    xml = "walker2d.xml"

    def terminated(self, data, task):
        z, angle = data.xpos[1, 2], data.qpos[2]
        healthy = (z > 0.8) & (z < 2.0) & (angle > -1.0) & (angle < 1.0)
        return 1.0 - healthy.astype(jnp.float32)
