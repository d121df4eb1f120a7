"""TESP's target-reaching families against the authors' reference code (llan-ml/tesp,
``tesp/envs/mujoco/{reacher,reacher_4_link,wheeled,ant}.py``, ``assets/*.xml``,
``tesp/envs/reset_wrapper.py``, ``tesp/main_train.py``), evaluated on hand-built states:
nothing here compiles a physics step."""

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from mujoco import mjx

from jaxmeta import envs
from jaxmeta.envs.mjx_base import MJXTask
from jaxmeta.envs.reach import spaced_pool
from tests import mjx_harness as H

ARRIVAL = {"reacher2_target": 0.06, "reacher4_target": 0.11, "wheeled_goal": 0.02,
           "ant_target": 0.03}


def task(xy):
    return MJXTask(target=jnp.asarray(xy, jnp.float32), dynamics=None)


def at(fam, qpos):
    """mjx.Data with ``qpos`` and the kinematics (xpos) computed by C MuJoCo."""
    d = mujoco.MjData(fam.mj_model)
    d.qpos[:] = qpos
    mujoco.mj_kinematics(fam.mj_model, d)
    data = mjx.make_data(fam.model)
    return data.replace(qpos=jnp.asarray(d.qpos, jnp.float32),
                        xpos=jnp.asarray(d.xpos, jnp.float32))


def effector_xy(fam, qpos):
    d = mujoco.MjData(fam.mj_model)
    d.qpos[:] = qpos
    mujoco.mj_kinematics(fam.mj_model, d)
    if fam.name.startswith("reacher"):
        return d.xpos[mujoco.mj_name2id(fam.mj_model, mujoco.mjtObj.mjOBJ_BODY, "fingertip"), :2]
    return d.qpos[:2].copy()


def nominal_qpos(fam):
    if fam.name == "ant_target":
        return np.array(fam.init_qpos_qvel(jax.random.PRNGKey(0))[0], np.float64)
    return np.array(fam.mj_model.qpos0)


@pytest.mark.parametrize("name", sorted(ARRIVAL))
def test_episode_ends_on_arrival_and_reward_equation(name):
    fam = H.family(name)
    q = nominal_qpos(fam)
    x = effector_xy(fam, q)
    data = at(fam, q)
    r = ARRIVAL[name]
    assert fam.arrival_radius == r
    # strictly inside ends it; on the radius and beyond does not (reference: norm < r)
    for d, ends in [(0.0, 1.0), (0.5 * r, 1.0), (0.99 * r, 1.0), (1.01 * r, 0.0), (0.5, 0.0)]:
        g = x + np.array([0.6, 0.8]) * d
        assert float(fam.terminated(data, task(g))) == ends, (name, d)
    # r = −‖x − g‖ − 1e-3 · ½‖clip(a)‖² (ctrl_cost_coeff 1e-3, calculate_ctrl_cost ½‖a‖²)
    g = x + np.array([0.3, -0.4])
    a = np.linspace(-1.5, 1.5, fam.action_size)
    want = -0.5 - 1e-3 * 0.5 * np.sum(np.clip(a, -1, 1) ** 2)
    got = float(fam.reward(data, data, jnp.clip(jnp.asarray(a), fam.ctrl_low, fam.ctrl_high),
                           task(g)))
    assert got == pytest.approx(want, rel=1e-5)
    assert float(fam.distance_reward(data, task(g))) == pytest.approx(-0.5, rel=1e-5)
    assert float(fam.action_cost_term(jnp.asarray(a))) == pytest.approx(-0.5 - want, rel=1e-5)


def test_ant_height_rule_and_deterministic_start():
    fam = H.family("ant_target")
    q0, v0 = fam.init_qpos_qvel(jax.random.PRNGKey(0))
    q1, v1 = fam.init_qpos_qvel(jax.random.PRNGKey(1))
    np.testing.assert_array_equal(q0, q1)
    np.testing.assert_array_equal(v0, v1)
    np.testing.assert_allclose(q0, [0, 0, 0.625, 1, 0, 0, 0, 0, 1, 0, -1, 0, -1, 0, 1])
    assert not np.any(v0)
    far = task([1.0, 0.0])
    # the reference's [0.15, 0.45] for its 0.4-scale ant, ×2.5 for brax's full-size one
    for z, ends in [(0.1, 1.0), (0.3749, 1.0), (0.375, 0.0), (0.625, 0.0), (1.125, 0.0),
                    (1.1251, 1.0), (1.5, 1.0)]:
        q = np.array(q0, np.float64)
        q[2] = z
        assert float(fam.terminated(at(fam, q), far)) == ends, z
    q = np.array(q0, np.float64)
    q[5] = np.nan
    assert float(fam.terminated(at(fam, q), far)) == 1.0


def test_reference_reacher_geometry_and_actuators():
    fam = H.family("reacher2_target")
    m = fam.mj_model
    assert fam.dt == pytest.approx(0.05) and m.opt.timestep == pytest.approx(0.01)
    np.testing.assert_allclose(effector_xy(fam, np.zeros(2)), [1.7, 0.0], atol=1e-12)
    np.testing.assert_allclose(effector_xy(fam, [0.0, np.pi / 2]), [0.75, 0.95], atol=1e-9)
    assert m.body_mass.sum() == pytest.approx(24.0, abs=1e-5)
    np.testing.assert_allclose(m.dof_armature, 1.0)
    np.testing.assert_allclose(m.dof_damping, 1.0)
    np.testing.assert_allclose(m.jnt_range[1], np.deg2rad([-160, 160]), rtol=1e-6)
    # velocity servo: force = kv (100 a − q̇) with kv = 1 and a ∈ [−1, 1]
    d = mujoco.MjData(m)
    d.qvel[:] = [3.0, -2.0]
    d.ctrl[:] = [0.5, -1.0]
    mujoco.mj_forward(m, d)
    np.testing.assert_allclose(d.actuator_force, [100 * 0.5 - 3.0, -100.0 + 2.0])
    np.testing.assert_array_equal(m.actuator_ctrlrange, [[-1, 1], [-1, 1]])


def test_spaced_pool_is_deterministic_and_spaced():
    def draw(k, n):
        return jax.random.uniform(k, (n, 2))

    a = spaced_pool(draw, jax.random.PRNGKey(3), 30, 0.12)
    np.testing.assert_array_equal(a, spaced_pool(draw, jax.random.PRNGKey(3), 30, 0.12))
    gaps = np.linalg.norm(a[:, None] - a[None], axis=-1) + 9 * np.eye(30)
    assert gaps.min() >= 0.12
    with pytest.raises(ValueError, match="found only"):
        spaced_pool(draw, jax.random.PRNGKey(3), 500, 0.3, max_rounds=2)
    # the pool is made once per family and is the same for a new instance
    # (first asked for inside a jit trace, as a trainer does: the pool is still concrete)
    fam = envs.make("wheeled_goal", task_seed=5)
    jitted = jax.jit(lambda k: fam.sample_tasks(k, 100, "train").target)(jax.random.PRNGKey(0))
    pool = np.asarray(envs.make("wheeled_goal", task_seed=5).train_tasks().target)
    np.testing.assert_array_equal(fam.train_tasks().target, pool)
    assert {tuple(t) for t in np.asarray(jitted)} <= {tuple(t) for t in pool}


def test_ant_ring_and_reacher_sparse_keep_their_own_rules():
    ring = H.family("ant_ring")
    q = np.array(ring.qpos0, np.float64)
    q[2] = 0.75  # above TESP's 0.45: no height rule here
    data = at(ring, q)
    assert float(ring.terminated(data, task([0.4, 0.0]))) == 1.0  # within its 0.5
    assert float(ring.terminated(data, task([0.6, 0.0]))) == 0.0
    q0, _ = ring.init_qpos_qvel(jax.random.PRNGKey(0))
    assert not np.allclose(q0, ring.init_qpos_qvel(jax.random.PRNGKey(1))[0])  # noisy reset
    sparse = H.family("reacher_sparse")
    d = at(sparse, np.zeros(2))
    assert float(sparse.terminated(d, task([1.7, 0.0]))) == 0.0  # never ends early
    assert float(sparse.reward(d, d, jnp.zeros(2), task([1.7, 0.04]))) == 1.0
    assert float(sparse.reward(d, d, jnp.zeros(2), task([1.7, 0.06]))) == 0.0
