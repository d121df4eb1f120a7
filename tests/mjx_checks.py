"""The checks every MJX family must pass, parameterized over a group of family names.

``tests/test_mjx_*.py`` each call :func:`define` with a group, so pytest-xdist's
``--dist loadfile`` spreads the (compile-heavy) groups over workers. Every check of a
family reuses one compiled rollout (``mjx_harness.rollout_fn``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmeta.envs.mjx_base import cfrc_ext
from tests import mjx_harness as H
from tests import mjx_reference as R

# Tracking against C MuJoCo. Every control step of the shared MJX runs (standard and
# full-scale: 2 x 3 episodes of up to 100 control steps, the falls of the hopper, walker,
# humanoid and ants included) is re-simulated by C MuJoCo (the C backend, which equals a
# loop of mj_step bit for bit: checked below) from the MJX state before it, so float32
# rounding does not compound chaotically; positions, velocities, body positions, subtree
# centres of mass, contact wrenches, observations and rewards are compared. Measured when
# written (float32 MJX against float64 C, one control step): contact-free reachers
# |dqpos| <= 1e-6 and |dqvel| <= 1e-6 (1 + max|qvel|); models with contacts |dqpos| <= 5e-5
# (half-cheetah), |dqvel| <= 1e-4 (1 + max|qvel|), body positions <= 5e-6, cfrc_ext
# <= 1e-5 (1 + max|cfrc_ext|). The tolerances are those with a margin of ~5x; a contact
# that one engine finds and the other misses moves qvel by percents and fails them.
CONTACT_FREE = dict(qpos=1e-5, qvel=1e-5, pos=1e-5, obs=1e-5)
WITH_CONTACTS = dict(qpos=2e-4, qvel=5e-4, pos=2e-4, obs=5e-4, cfrc=1e-4)
MIN_TRACKED = 100  # control steps compared per family (episodes end at falls)

# Rewards against the numpy references of tests/mjx_reference.py on C MuJoCo's simulation of
# the same control step from the MJX state (mjx_harness.c_steps: two C control steps per
# reward, so no drift accumulates). Measured when written over the standard and the
# full-scale runs of every family: ≤ 2·10⁻⁵ (cheetah, humanoid and ant included: float32
# MJX against float64 C over two control steps, contacts agreeing to the same order). A
# missing survival bonus (0.05) or a wrong dt moves some reward of a run by ≥ 10⁻².
REWARD_ABS = 1e-4
REWARD_REL = 1e-4


def _valid_steps(states, b: int) -> int:
    """Control steps up to and including the one that ended the episode."""
    done = np.asarray(states.done[:, b])
    return int(np.argmax(done > 0)) + 1 if done.any() else len(done)


def define(names: list[str]) -> dict:
    """Test functions for the MJX families ``names`` (insert into a test module's globals)."""
    param = pytest.mark.parametrize("name", names)

    @param
    def test_tracks_c_mujoco(name):
        """MJX against C MuJoCo (and the C backend against MJX) over every control step of
        both shared runs: physics, derived positions, contact forces, observations and
        rewards, each step from the same MJX state (tolerances above)."""
        fam = H.family(name)
        tol = CONTACT_FREE if H.contact_free(name) else WITH_CONTACTS
        tracked = 0
        tasks, _, actions, s0, states, hooks = H.standard_run(name)
        runs = ((tasks, actions, s0, states, hooks), H.full_scale_run(name))
        c_runs = [H.c_step_from_mjx(name, tk, first, traj, acts)
                  for tk, acts, first, traj, _ in runs]
        for (tasks, actions, _, states, hooks), (after, before, after2) in zip(
                runs, c_runs, strict=True):
            mjx_reward, mjx_obs = hooks[:2]  # name's own, on its physics group's MJX states
            obs, reward = H.c_obs_reward(name, tasks, actions, before, after, after2)
            mjx = states.physics
            for b in range(H.BATCH):
                n = _valid_steps(states, b)
                tracked += n

                def close(what, got, want, atol, scale=1.0):
                    err = np.abs(np.asarray(got)[:n, b] - np.asarray(want)[:n, b]).max()
                    assert err <= atol * scale, (
                        f"{name}[{b}]: {what} differs from C MuJoCo by {err:.2e} "
                        f"(tolerance {atol * scale:.2e})")

                close("qpos", mjx.qpos, after.qpos, tol["qpos"])
                close("qvel", mjx.qvel, after.qvel, tol["qvel"],
                      1 + np.abs(after.qvel[:n, b]).max())
                close("xpos", mjx.xpos, after.xpos, tol["pos"])
                close("subtree_com", mjx.subtree_com, after.subtree_com, tol["pos"])
                if fam.contact_forces:
                    close("cfrc_ext", cfrc_ext(mjx), after.cfrc_ext, tol["cfrc"],
                          1 + np.abs(after.cfrc_ext[:n, b]).max())
                close("observation", mjx_obs, obs, tol["obs"],
                      1 + np.abs(obs[:n, b]).max())
                close("reward", mjx_reward, reward, REWARD_ABS,
                      1 + np.abs(reward[:n, b]).max() * REWARD_REL / REWARD_ABS)
        assert tracked >= MIN_TRACKED, f"{name}: only {tracked} control steps compared"
        # the C backend is C MuJoCo: equal to mj_step from the same state, bit for bit
        tasks, actions, s0, states, _ = runs[0]
        after = c_runs[0][0]
        for t, b in ((0, 0), (1, 1), (H.STEPS // 2, 2)):
            if t < _valid_steps(states, b):
                ref = H.mj_step_reference(name, tasks, s0, states, actions, t, b)
                for k, v in ref.items():
                    np.testing.assert_array_equal(np.asarray(getattr(after, k))[t, b], v,
                                                  err_msg=f"{name}: C backend {k}")

    @param
    def test_reward_and_termination_match_c_mujoco(name):
        """MJX's rewards and episode ends equal the numpy references (``mjx_reference``:
        each family's equation and health rule, written apart from its hooks) evaluated on
        C MuJoCo's simulation of every control step; on the standard run (no early ends)
        and on a full-scale run, where the hopper, walker and humanoid fall."""
        fam = H.family(name)
        tasks, _, actions, s0, states, (reward, obs, term) = H.standard_run(name)
        owner = H.program_owner(name) == name
        if owner:  # what step() returned is what the hooks give
            for b in range(H.BATCH):
                n = _valid_steps(states, b)
                np.testing.assert_allclose(states.reward[:n, b], reward[:n, b], rtol=1e-5,
                                           atol=1e-5)
                np.testing.assert_allclose(states.obs[:n, b], obs[:n, b], rtol=1e-5, atol=1e-5)
                late = (np.arange(H.STEPS) + 1 >= fam.horizon).astype(np.float32)
                np.testing.assert_array_equal(states.done[:n, b], np.maximum(term[:, b], late)[:n])
                # absorbing after the end: no reward, frozen physics
                assert np.all(states.reward[n:, b] == 0.0)
                assert np.all(states.physics.qpos[n:, b] == states.physics.qpos[n - 1, b])
        ends = 0
        standard = (tasks, actions, s0, states, (reward, obs, term))
        late = (np.arange(H.STEPS) + 1 >= fam.horizon).astype(np.float32)
        for tk, acts, first, traj, hooks in (standard, H.full_scale_run(name)):
            # a member's reward and episode end on its group's physics (its own rules, e.g.
            # ant_vel's height rule, evaluated on the states the group simulated)
            got = traj.reward if owner else hooks[0]
            done = traj.done if owner else np.maximum(hooks[2], late[:, None])
            for b in range(H.BATCH):
                n = _valid_steps(traj, b)
                cs = H.c_steps(name, tk, b, first, traj, acts, n)
                want = [R.REWARD[name](c) for c in cs]
                np.testing.assert_allclose(got[:n, b], want, rtol=REWARD_REL, atol=REWARD_ABS,
                                           err_msg=f"{name}[{b}]: reward")
                ended = [R.terminated(name, c) or t + 1 >= fam.horizon for t, c in enumerate(cs)]
                np.testing.assert_array_equal(done[:n, b], np.asarray(ended, np.float32),
                                              err_msg=f"{name}[{b}]: episode ends")
                ends += sum(ended)
        # the falls the full-scale run must show (arrival rules are checked on hand-built
        # states in tests/test_tesp_rules.py: random actions rarely arrive)
        if name.startswith(("hopper", "walker", "humanoid")):
            assert ends > 0, f"{name}: the full-scale run never exercised the health rule"

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
        _, _, _, states2, hooks2 = H.full_scale_run(name)
        fn = H.rollout_fn(name)
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

    return {f.__name__: f for f in (test_tracks_c_mujoco,
                                     test_reward_and_termination_match_c_mujoco,
                                     test_api_shapes_no_nan_no_recompile)}


def dynamics_differ_and_match(name: str) -> None:
    """Two tasks with different dynamics diverge under the same actions; equal ones don't.
    (One call of the shared program, whose batch is H.BATCH = 3: nominal, shifted, nominal.)"""
    fam = H.family(name)
    nominal = fam.sample_tasks(jax.random.PRNGKey(1), 1, "train")
    shifted = fam.sample_tasks(jax.random.PRNGKey(1), 1, "ood")
    shifted = shifted.replace(target=nominal.target)  # same reward, other dynamics
    tasks = jax.tree.map(lambda a, b: jnp.concatenate([a, b, a]), nominal, shifted)
    keys = jnp.concatenate([jax.random.split(jax.random.PRNGKey(2), 1)] * H.BATCH)
    actions = jnp.repeat(H.random_actions(name)[:, :1], H.BATCH, axis=1)
    _, states = H.rollout_fn(name)(keys, tasks, actions)
    q = np.asarray(states.physics.qpos)
    assert np.abs(q[:, 0] - q[:, 1]).max() > 1e-3, f"{name}: dynamics had no effect"
    np.testing.assert_array_equal(q[:, 0], q[:, 2])
