"""Shared, cached pieces for the MJX family tests (compiling MJX steps is the slow part).

One compiled ``rollout`` per family serves every test of that family: tracking against
C MuJoCo, reward equations, dynamics batches and the API checks.
"""

from __future__ import annotations

import copy
import functools

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from jaxmeta import envs
from jaxmeta.envs.mjx_base import MJXFamily, apply_dynamics_numpy
from tests import mjx_reference as R

STEPS = 20  # control steps simulated per test rollout
BATCH = 2  # tasks per rollout


@functools.cache
def family(name: str):
    """``name`` simulated by MJX (these tests check MJX against C MuJoCo)."""
    return envs.make(name, physics="mjx") if envs.has_mujoco_model(name) else envs.make(name)


def _has_dynamics(fam) -> bool:
    return getattr(fam.sample_tasks(jax.random.PRNGKey(0), 1), "dynamics", None) is not None


def _physics_signature(fam):
    """What decides a family's simulated trajectory (the reward and observation aside)."""
    cls = type(fam)
    methods = ("reset", "step", "physics_step", "model_for", "init_qpos_qvel", "terminated")
    attrs = ("xml", "frame_skip", "iterations", "ls_iterations", "contact_forces",
             "reset_noise", "horizon")
    return (tuple(getattr(cls, m, None) for m in methods)
            + tuple(getattr(fam, a, None) for a in attrs) + (_has_dynamics(fam),))


@functools.cache
def program_owner(name: str) -> str:
    """The first registered family that simulates exactly like ``name``.

    Families of one physics group (e.g. ``ant_vel``, ``ant_vel2d``, ``ant_goal``: same
    model, options, reset and termination, no dynamics shifts) differ only in their
    ``reward``/``observe`` hooks. The tests compile one rollout per group and evaluate
    every member's hooks on it, which halves the MJX compile time of the suite.
    """
    sig = _physics_signature(family(name))
    return next(n for n in envs.names() if _physics_signature(family(n)) == sig)


def rollout_fn(name: str):
    """jit(reset + scan over STEPS of vmap(step)) of ``name``'s physics group."""
    return _rollout_fn(program_owner(name))


@functools.cache
def _rollout_fn(name: str):
    fam = family(name)

    def run(keys, tasks, actions):
        s0 = jax.vmap(fam.reset)(keys, tasks)

        def body(s, a):
            nxt = jax.vmap(fam.step)(s, a, tasks)
            return nxt, nxt

        _, states = jax.lax.scan(body, s0, actions)
        return s0, states

    return jax.jit(run)


@functools.cache
def hooks_fn(name: str):
    """jit of ``name``'s reward/observe/terminated over a recorded [T, B] trajectory."""
    fam = family(name)

    def one(before, after, ctrl, task):
        return fam.reward(before, after, ctrl, task), fam.observe(after, task), \
            fam.terminated(after, task)

    over_batch = jax.vmap(one)
    return jax.jit(jax.vmap(over_batch, in_axes=(0, 0, 0, None)))


def physics_tasks(name: str, tasks):
    """``tasks`` if the group's program accepts them, else the group owner's (same physics)."""
    owner = program_owner(name)
    if owner == name:
        return tasks
    ref = family(owner).sample_tasks(jax.random.PRNGKey(1), BATCH, "train")
    same = (jax.tree.structure(ref) == jax.tree.structure(tasks) and all(
        a.shape == b.shape for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(tasks),
                                           strict=True)))
    if same:
        return tasks
    assert not _has_dynamics(family(name)), name  # physics must not depend on the task
    return ref


def run_hooks(name: str, tasks, actions, s0, states):
    """``name``'s (reward, obs, terminated) on a recorded trajectory, each ``[T, B, ...]``."""
    before = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b[:-1]]), s0.physics,
                          states.physics)
    fam = family(name)
    ctrl = jnp.clip(actions, fam.ctrl_low, fam.ctrl_high) if isinstance(fam, MJXFamily) \
        else actions
    return jax.device_get(hooks_fn(name)(before, states.physics, ctrl, tasks))


# Action scale of the shared rollouts. The humanoid and the walker fall within 20
# control steps under full random torques; the tracking test wants 20 steps before
# termination, so their standard actions are gentler (falls are exercised in the API
# test, which uses full-scale actions).
GENTLE = {"humanoid.xml": 0.15, "walker2d.xml": 0.25}


def random_actions(name: str, seed: int = 0, scale: float | None = None) -> jax.Array:
    fam = family(name)
    if scale is None:
        scale = GENTLE.get(getattr(fam, "xml", None), 1.0)
    key = jax.random.PRNGKey(seed)
    return scale * jax.random.uniform(key, (STEPS, BATCH, fam.action_size), minval=-1.2,
                                      maxval=1.2)


def standard_tasks(name: str):
    """Two tasks of ``name``: ``train`` ones, the second from ``ood`` when the family shifts
    dynamics there (low friction, a crippled leg, ...), so tracking covers shifted models."""
    fam = family(name)
    tasks = fam.sample_tasks(jax.random.PRNGKey(1), BATCH, "train")
    if _has_dynamics(fam):
        ood = fam.sample_tasks(jax.random.PRNGKey(1), BATCH, "ood")
        tasks = jax.tree.map(lambda a, b: a.at[1:].set(b[1:]), tasks, ood)
    return tasks


@functools.cache
def standard_run(name: str):
    """The rollout every test of ``name`` shares: 2 tasks, random actions, and ``name``'s
    reward/observation/termination evaluated on it (``hooks``)."""
    tasks = standard_tasks(name)
    keys = jax.random.split(jax.random.PRNGKey(2), BATCH)
    actions = random_actions(name)
    s0, states = rollout_fn(name)(keys, physics_tasks(name, tasks), actions)
    s0, states = jax.device_get(s0), jax.device_get(states)
    hooks = run_hooks(name, tasks, actions, s0, states)
    return tasks, keys, actions, s0, states, hooks


@functools.cache
def full_scale_run(name: str):
    """A second run of the same compiled program: ``test`` tasks, full-scale random actions
    (the humanoid, walker and hopper fall within it). Returns (tasks, actions, s0, states,
    hooks) like :func:`standard_run` (no keys)."""
    fam = family(name)
    tasks = fam.sample_tasks(jax.random.PRNGKey(7), BATCH, "test")
    actions = random_actions(name, seed=3, scale=1.0)
    keys = jax.random.split(jax.random.PRNGKey(8), BATCH)
    s0, states = jax.device_get(rollout_fn(name)(keys, physics_tasks(name, tasks), actions))
    return tasks, actions, s0, states, run_hooks(name, tasks, actions, s0, states)


def c_model(fam: MJXFamily, task, b: int) -> mujoco.MjModel:
    """The C model of task ``b`` of a batch (dynamics scales applied as the family does)."""
    dyn = task.dynamics
    if dyn is None:
        return copy.deepcopy(fam.mj_model)
    return apply_dynamics_numpy(fam.mj_model, jax.tree.map(lambda x: np.asarray(x[b]), dyn))


def c_rollout(fam: MJXFamily, task, b: int, qpos0, qvel0, actions) -> dict[str, np.ndarray]:
    """Steps C MuJoCo (``mujoco.mj_step``) from the MJX initial state under ``actions``."""
    m = c_model(fam, task, b)
    d = mujoco.MjData(m)
    d.qpos[:] = np.asarray(qpos0, np.float64)
    d.qvel[:] = np.asarray(qvel0, np.float64)
    mujoco.mj_forward(m, d)
    lo, hi = m.actuator_ctrlrange[:, 0], m.actuator_ctrlrange[:, 1]
    out = {"qpos": [], "qvel": [], "xpos": [], "subtree_com": [], "cfrc_ext": []}
    for a in np.asarray(actions, np.float64):
        d.ctrl[:] = np.clip(a, lo, hi)
        for _ in range(fam.frame_skip):
            mujoco.mj_step(m, d)
        mujoco.mj_rnePostConstraint(m, d)
        for k in out:
            out[k].append(np.array(getattr(d, k)))
    return {k: np.stack(v) for k, v in out.items()}


def take(tree, *idx):
    return jax.tree.map(lambda x: np.asarray(x)[idx], tree)


def c_steps(name: str, tasks, b: int, s0, states, actions, n: int) -> list[R.CStep]:
    """The first ``n`` control steps of trajectory ``b`` simulated by C MuJoCo, each started
    from the MJX trajectory so that drift does not accumulate.

    A state left by ``mj_step`` holds positions (``xpos``, ``subtree_com``) computed before
    the last integration substep, as gym's reward reads them; so step t's "before" state is
    C's own step t−1 from the MJX state before it (qpos, qvel and the solver's warm start),
    and its "after" state C's step t from there: two control steps of C physics per
    reward. Step 0 starts from the reset state (``mj_forward``, as the reset does).

    ``tasks`` are ``name``'s own (their targets); the C model is the physics group's task.
    """
    fam = family(name)
    m = c_model(fam, physics_tasks(name, tasks), b)
    d = mujoco.MjData(m)
    lo, hi = m.actuator_ctrlrange[:, 0], m.actuator_ctrlrange[:, 1]
    target = np.asarray(tasks.target[b], np.float64)
    ctrl = np.clip(np.asarray(actions[:, b], np.float64), lo, hi)

    def load(t):  # the MJX state before control step t
        prev = take(s0.physics, b) if t == 0 else take(states.physics, t - 1, b)
        d.qpos[:], d.qvel[:] = prev.qpos, prev.qvel
        mujoco.mj_forward(m, d)
        mujoco.mj_rnePostConstraint(m, d)
        d.qacc_warmstart[:] = prev.qacc_warmstart

    def control(t):
        d.ctrl[:] = ctrl[t]
        for _ in range(fam.frame_skip):
            mujoco.mj_step(m, d)
        mujoco.mj_rnePostConstraint(m, d)

    out = []
    for t in range(n):
        load(max(t - 1, 0))
        if t > 0:
            control(t - 1)
        before = R.snapshot(d)
        control(t)
        out.append(R.CStep(m, before, R.snapshot(d), ctrl[t],
                           m.opt.timestep * fam.frame_skip, target))
    return out
