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

STEPS = 100  # control steps simulated per test rollout
BATCH = 3  # tasks per rollout


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


# ------------------------------------------------------------------ the C backend
@functools.cache
def c_physics(name: str):
    """``name``'s C backend (:class:`jaxmeta.envs.cmujoco.CPhysics`), one thread."""
    return envs.make(name, physics="mujoco", threads=1).c_physics


def c_rows(name: str, physics) -> np.ndarray:
    """MJX states ``[..., ]`` as C MuJoCo ``mjSTATE_INTEGRATION`` rows (uint32 bits):
    qpos, qvel, the solver's warm start and the time; the rest at the model's defaults."""
    cp = c_physics(name)
    m = cp.model
    qpos, qvel = np.asarray(physics.qpos), np.asarray(physics.qvel)
    warm, time = np.asarray(physics.qacc_warmstart), np.asarray(physics.time)
    lead = qpos.shape[:-1]
    d = mujoco.MjData(m)
    rows = np.empty(lead + (cp.nstate,), np.float64)
    for i in np.ndindex(*lead):
        d.qpos[:], d.qvel[:], d.qacc_warmstart[:], d.time = qpos[i], qvel[i], warm[i], time[i]
        mujoco.mj_getState(m, d, rows[i], mujoco.mjtState.mjSTATE_INTEGRATION)
    return rows.view(np.uint32)


def c_dynamics(tasks, lead: tuple) -> tuple:
    """``tasks``' dynamics scales ``[B, ...]`` broadcast to ``lead + [B, ...]``."""
    from jaxmeta.envs.cmujoco import dynamics_scales
    return tuple(np.broadcast_to(np.asarray(x), lead + np.shape(x))
                 for x in dynamics_scales(tasks.dynamics))


def c_step_from_mjx(name: str, tasks, s0, states, actions):
    """Every control step of a recorded MJX run re-simulated by the C backend from the MJX
    state before it (so no drift accumulates), ``[T, B, ...]``; and each step's C
    "before" state: C's own step t−1 from the MJX state before that (as
    :func:`c_steps`), then C's step t from there (``after2``), for rewards computed
    wholly on C data. Returns (after, before, after2) as ``CData`` of numpy arrays."""
    fam = family(name)
    sim_tasks = physics_tasks(name, tasks)
    prev = jax.tree.map(lambda a, b: np.concatenate([np.asarray(a)[None], np.asarray(b)[:-1]]),
                        s0.physics, states.physics)
    ctrl = np.clip(np.asarray(actions), np.asarray(fam.ctrl_low), np.asarray(fam.ctrl_high))
    lead = ctrl.shape[:-1]
    cp = c_physics(name)
    dyn = c_dynamics(sim_tasks, lead[:1])
    after = cp.step_host(c_rows(name, prev), ctrl, dyn)
    # before step t: C's step t-1 from the MJX state before it; before step 0: the reset
    reset = cp.reset_host(np.asarray(s0.physics.qpos, np.float64)[None],
                          np.asarray(s0.physics.qvel, np.float64)[None],
                          c_dynamics(sim_tasks, (1,)))
    before = jax.tree.map(lambda r, a: np.concatenate([r, a[:-1]]), reset, after)
    after2 = cp.step_host(before.state, ctrl, dyn)
    return after, before, after2


def contact_free(name: str) -> bool:
    """Whether no two geoms of ``name``'s model can touch (contype/conaffinity, no pairs)."""
    m = family(name).mj_model
    if m.npair:
        return False
    t, a = m.geom_contype, m.geom_conaffinity
    return not np.any((t[:, None] & a[None, :]) | (a[:, None] & t[None, :]))


@functools.cache
def c_hooks_fn(name: str):
    """jit of ``name``'s observe and reward on C-backend data ``[T, B]``."""
    fam = family(name)

    def one(before, after, after2, ctrl, task):
        return fam.observe(after, task), fam.reward(before, after2, ctrl, task)

    return jax.jit(jax.vmap(jax.vmap(one), in_axes=(0, 0, 0, 0, None)))


def c_obs_reward(name: str, tasks, actions, before, after, after2):
    """``name``'s observation of each C step from the MJX state (``after``) and its reward
    computed wholly on C data (``before`` → ``after2``), ``[T, B, ...]``."""
    fam = family(name)
    ctrl = np.clip(np.asarray(actions), np.asarray(fam.ctrl_low), np.asarray(fam.ctrl_high))
    return jax.device_get(c_hooks_fn(name)(before, after, after2, ctrl, tasks))


def mj_step_reference(name: str, tasks, s0, states, actions, t: int, b: int) -> dict:
    """Control step ``t`` of episode ``b`` by plain ``mj_step`` calls from the MJX state before
    it (the C backend's model and dynamics), as float32 fields."""
    cp = c_physics(name)
    sim = physics_tasks(name, tasks)
    m = copy.deepcopy(cp.model)
    if sim.dynamics is not None:
        dyn = jax.tree.map(lambda x: np.asarray(x[b]), sim.dynamics)
        m = apply_dynamics_numpy(m, dyn)
        sub = m.body_mass.copy()
        for body in range(m.nbody - 1, 0, -1):
            sub[m.body_parentid[body]] += sub[body]
        m.body_subtreemass[:] = sub
    prev = take(s0.physics, b) if t == 0 else take(states.physics, t - 1, b)
    row = c_rows(name, prev).view(np.float64)
    d = mujoco.MjData(m)
    mujoco.mj_setState(m, d, row, mujoco.mjtState.mjSTATE_INTEGRATION)
    d.ctrl[:] = np.clip(np.asarray(actions[t, b], np.float64), m.actuator_ctrlrange[:, 0],
                        m.actuator_ctrlrange[:, 1])
    for _ in range(cp.frame_skip):
        mujoco.mj_step(m, d)
    return {k: np.asarray(getattr(d, k), np.float32)
            for k in ("qpos", "qvel", "xpos", "subtree_com", "cfrc_ext")}
