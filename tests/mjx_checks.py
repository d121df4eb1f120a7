"""The checks every MJX family must pass, parameterized over a group of family names.

``tests/test_mjx_*.py`` each call :func:`define` with a group, so pytest-xdist's
``--dist loadfile`` spreads the (compile-heavy) groups over workers. Every check of a
family reuses one compiled rollout (``mjx_harness.rollout_fn``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from jaxmeta.envs.mjx_base import MJXFamily
from tests import mjx_harness as H

# Tracking tolerance against C MuJoCo over STEPS control steps (float32 MJX vs float64 C):
# max |Δqpos| ≤ QPOS_TOL and max |Δqvel| ≤ QVEL_REL · (1 + max |qvel|). Contact-free
# models (reachers) and the wheeled robot track to ~1e-6; legged robots to ~1e-3 in qpos
# (a contact impulse landing one float32 rounding apart moves qvel by ~1.5 %).
QPOS_TOL = 1e-2
QVEL_REL = 0.05


def expected_reward(name: str, fam: MJXFamily, before, after, action, target) -> float:
    """The reward of one transition, written out from each family's docstring equation."""
    m = fam.mj_model
    ctrl = np.clip(np.asarray(action, np.float64), m.actuator_ctrlrange[:, 0],
                   m.actuator_ctrlrange[:, 1])
    a2 = float(np.sum(ctrl**2))
    dt = m.opt.timestep * fam.frame_skip
    q0, q1 = np.asarray(before.qpos, np.float64), np.asarray(after.qpos, np.float64)
    vx = (q1[0] - q0[0]) / dt
    tip = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "fingertip")
    if name.startswith("halfcheetah_vel"):
        return -abs(vx - target[0]) - 0.05 * a2
    if name == "halfcheetah_dir":
        return target[0] * vx - 0.05 * a2
    if name.startswith("ant_") and name not in ("ant_target", "ant_ring"):
        f = np.asarray(after._impl.cfrc_ext, np.float64)
        contact = 5e-4 * np.sum(np.clip(f, -1, 1) ** 2)
        vxy = (q1[:2] - q0[:2]) / dt
        if name.startswith("ant_dir"):
            return target[0] * vx - 0.005 * a2 - contact + 0.05
        if name == "ant_vel":  # MAML-RL's +1 alive bonus
            return -abs(vx - target[0]) + 1.0 - 0.005 * a2 - contact + 0.05
        if name == "ant_vel_wide":
            return -abs(vx - target[0]) - 0.005 * a2 - contact + 0.05
        if name == "ant_vel2d":
            return -np.linalg.norm(vxy - target) - 0.005 * a2 - contact + 0.05
        if name == "ant_goal":
            return -np.sum(np.abs(q1[:2] - target)) - 0.1 * a2 - contact
    if name.startswith("humanoid"):
        f = np.asarray(after._impl.cfrc_ext, np.float64)
        contact = min(5e-7 * np.sum(f**2), 10.0)
        v = (np.asarray(after.subtree_com[0]) - np.asarray(before.subtree_com[0]))[0] / dt
        if name == "humanoid_dir":
            return 1.25 * target[0] * v + 5.0 - 0.1 * a2 - contact
        return -1.25 * abs(v - target[0]) + 5.0 - 0.1 * a2 - contact
    if name in ("hopper_rand", "walker_rand"):
        return vx + 1.0 - 1e-3 * a2
    # TESP: llan-ml/tesp main_train.py ctrl_cost_coeff 1e-3 times ½‖a‖² (mujoco_env.py)
    if name in ("reacher2_target", "reacher4_target"):
        return -np.linalg.norm(np.asarray(after.xpos[tip, :2]) - target) - 1e-3 * 0.5 * a2
    if name in ("wheeled_goal", "ant_target"):
        return -np.linalg.norm(q1[:2] - target) - 1e-3 * 0.5 * a2
    if name == "ant_ring":
        return 10.0 * float(np.linalg.norm(q1[:2] - target) <= 0.5) - 0.005
    if name == "reacher_sparse":
        return float(np.linalg.norm(np.asarray(after.xpos[tip, :2]) - target) <= 0.05)
    raise KeyError(f"no reward equation written for {name}")


def _valid_steps(states, b: int) -> int:
    """Control steps up to and including the one that ended the episode."""
    done = np.asarray(states.done[:, b])
    return int(np.argmax(done > 0)) + 1 if done.any() else len(done)


def define(names: list[str]) -> dict:
    """Test functions for the MJX families ``names`` (insert into a test module's globals)."""
    param = pytest.mark.parametrize("name", names)

    @param
    def test_tracks_c_mujoco(name):
        fam = H.family(name)
        tasks, _, actions, s0, states, _ = H.standard_run(name)
        sim_tasks = H.physics_tasks(name, tasks)
        for b in range(H.BATCH):
            c = H.c_rollout(fam, sim_tasks, b, s0.physics.qpos[b], s0.physics.qvel[b],
                            actions[:, b])
            steps = _valid_steps(states, b)
            assert steps == H.STEPS, f"{name}: episode ended after {steps} < {H.STEPS} steps"
            dq = np.abs(c["qpos"][:steps] - states.physics.qpos[:steps, b]).max()
            dv = np.abs(c["qvel"][:steps] - states.physics.qvel[:steps, b]).max()
            scale = 1.0 + np.abs(c["qvel"][:steps]).max()
            assert dq <= QPOS_TOL, f"{name}[{b}]: qpos drifts {dq:.2e} from C MuJoCo"
            assert dv <= QVEL_REL * scale, f"{name}[{b}]: qvel drifts {dv:.2e} (scale {scale})"

    @param
    def test_reward_matches_equation(name):
        fam = H.family(name)
        tasks, _, actions, s0, states, (reward, obs, term) = H.standard_run(name)
        if H.program_owner(name) == name:  # what step() returned is what the hooks give
            for b in range(H.BATCH):
                n = _valid_steps(states, b)
                np.testing.assert_allclose(states.reward[:n, b], reward[:n, b], rtol=1e-5,
                                           atol=1e-5)
                np.testing.assert_allclose(states.obs[:n, b], obs[:n, b], rtol=1e-5, atol=1e-5)
                # absorbing after the end: no reward, frozen physics
                assert np.all(states.reward[n:, b] == 0.0)
                assert np.all(states.physics.qpos[n:, b] == states.physics.qpos[n - 1, b])
        for b in range(H.BATCH):
            target = np.asarray(tasks.target[b], np.float64)
            steps = _valid_steps(states, b)
            t_idx = np.arange(H.STEPS)
            ended = np.maximum(term[:, b], (t_idx + 1 >= fam.horizon).astype(np.float32))
            np.testing.assert_array_equal(states.done[:steps, b], ended[:steps])
            for t in range(steps):
                before = H.take(s0.physics, b) if t == 0 else H.take(states.physics, t - 1, b)
                after = H.take(states.physics, t, b)
                want = expected_reward(name, fam, before, after, actions[t, b], target)
                assert float(reward[t, b]) == pytest.approx(want, rel=1e-4, abs=1e-4), (name, b, t)

    @param
    def test_api_shapes_no_nan_no_recompile(name):
        fam = H.family(name)
        tasks, keys, actions, _, states, (reward, obs, _) = H.standard_run(name)
        assert obs.shape == (H.STEPS, H.BATCH, fam.obs_size)
        assert obs.dtype == np.float32 and reward.dtype == np.float32
        assert reward.shape == (H.STEPS, H.BATCH)
        assert np.all(np.isfinite(obs)) and np.all(np.isfinite(reward))
        assert np.all(np.isfinite(states.physics.qpos))
        if H.program_owner(name) != name:
            # a member of a physics group: trace its own reset/step with its own tasks
            s = jax.eval_shape(jax.vmap(fam.reset), keys, tasks)
            nxt = jax.eval_shape(jax.vmap(fam.step), s, actions[0], tasks)
            assert nxt.obs.shape == (H.BATCH, fam.obs_size) and nxt.obs.dtype == jnp.float32
            assert nxt.reward.shape == nxt.done.shape == (H.BATCH,)
        else:
            assert states.obs.shape == (H.STEPS, H.BATCH, fam.obs_size)
            assert states.obs.dtype == np.float32
        feats = fam.task_features(jax.tree.map(lambda x: x[0], tasks))
        assert feats.shape == (fam.task_feature_size,)
        # second calls with other tasks and actions reuse the compiled programs
        tasks2 = fam.sample_tasks(jax.random.PRNGKey(7), H.BATCH, "test")
        actions2 = H.random_actions(name, seed=3, scale=1.0)
        fn = H.rollout_fn(name)
        s0b, states2 = fn(jax.random.split(jax.random.PRNGKey(8), H.BATCH),
                          H.physics_tasks(name, tasks2), actions2)
        hooks2 = H.run_hooks(name, tasks2, actions2, *jax.device_get((s0b, states2)))
        assert all(np.all(np.isfinite(np.asarray(x))) for x in hooks2)
        assert fn._cache_size() == 1, f"{name}: the second call recompiled"
        assert H.hooks_fn(name)._cache_size() == 1
        # where full-scale torques end an episode early (humanoid, walker), it stays ended:
        # no reward and frozen physics afterwards
        for b in range(H.BATCH):
            n = _valid_steps(states2, b)
            assert np.all(np.asarray(states2.reward[n:, b]) == 0.0)
            q = np.asarray(states2.physics.qpos[:, b])
            assert np.all(q[n:] == q[n - 1])
        if fam.name.startswith("humanoid"):  # it does fall, and that ends the episode
            assert min(_valid_steps(states2, b) for b in range(H.BATCH)) < H.STEPS
        # the agent never observes the task: another target gives the same observations
        moved = tasks.replace(target=tasks.target + 0.5)
        _, obs_moved, _ = H.run_hooks(name, moved, actions, *H.standard_run(name)[3:5])
        np.testing.assert_array_equal(obs_moved, obs)

    return {f.__name__: f for f in (test_tracks_c_mujoco, test_reward_matches_equation,
                                     test_api_shapes_no_nan_no_recompile)}


def dynamics_differ_and_match(name: str) -> None:
    """Two tasks with different dynamics diverge under the same actions; equal ones don't."""
    fam = H.family(name)
    nominal = fam.sample_tasks(jax.random.PRNGKey(1), 1, "train")
    shifted = fam.sample_tasks(jax.random.PRNGKey(1), 1, "ood")
    shifted = shifted.replace(target=nominal.target)  # same reward, other dynamics
    pair = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), nominal, shifted)
    same = jax.tree.map(lambda a: jnp.concatenate([a, a]), nominal)
    key = jax.random.split(jax.random.PRNGKey(2), 1)
    keys = jnp.concatenate([key, key])
    a = H.random_actions(name)[:, :1]
    actions = jnp.concatenate([a, a], axis=1)
    fn = H.rollout_fn(name)
    _, diff = fn(keys, pair, actions)
    _, eq = fn(keys, same, actions)
    q_diff, q_eq = np.asarray(diff.physics.qpos), np.asarray(eq.physics.qpos)
    assert np.abs(q_diff[:, 0] - q_diff[:, 1]).max() > 1e-3, f"{name}: dynamics had no effect"
    np.testing.assert_array_equal(q_eq[:, 0], q_eq[:, 1])
