"""MJX-simulated task families: one ``mjx.Model`` per family, tasks as pytrees.

:class:`MJXFamily` turns an MJCF model plus a reward into a :class:`TaskFamily`:

* ``reset``/``step`` are pure functions of ``(state, action, task)``; ``state.physics`` is
  the ``mjx.Data`` (or, with ``physics="mujoco"``, a :class:`~jaxmeta.envs.cmujoco.CData`
  with the fields the hooks read, simulated by MuJoCo's C engine). A control step clips
  the action to the actuators' ``ctrlrange`` and runs ``frame_skip`` physics steps.
* Dynamics shifts live in the task: ``task.dynamics`` (a :class:`Dynamics`, or ``None``)
  holds multiplicative scales that :meth:`MJXFamily.model_for` applies to ``mjx.Model``
  fields (``body_mass``/``body_inertia``, ``dof_damping``, ``geom_friction``,
  ``actuator_gear``) inside the step. Under ``vmap`` over tasks only the replaced fields
  get a batch axis, so a batch of tasks with different frictions is one XLA program.
* After the episode ends (termination or time limit) the state is absorbing: physics is
  frozen and rewards are 0, so nothing after ``done`` can turn into NaN.
* Families with a *fixed training set* (TESP's 100 targets, ``num_train_tasks``) draw
  ``train`` tasks from a pool generated from ``task_seed``; ``test``/``ood`` are fresh.
"""

from __future__ import annotations

import abc
import copy
import importlib.resources
import os
import re
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from flax import struct
from mujoco import mjx

from jaxmeta.config import check_positive
from jaxmeta.envs.base import EnvState, TaskFamily, check_split, split_key
from jaxmeta.envs.cmujoco import CPhysics

Array = jax.Array

ASSETS = os.path.join(os.path.dirname(__file__), "assets")


def asset_path(name: str) -> str:
    """Path of an MJCF file: jaxmeta's own ``assets/`` first, else brax's bundled assets."""
    own = os.path.join(ASSETS, name)
    if os.path.exists(own):
        return own
    return str(importlib.resources.files("brax") / "envs" / "assets" / name)


@struct.dataclass
class Dynamics:
    """Per-task multiplicative scales of simulator parameters (1 = the nominal model).

    Attributes:
      body_mass: scales ``body_mass`` of each body, ``[nbody]``.
      body_inertia: scales each component of each body's diagonal inertia,
        ``[nbody, 3]`` (drawn independently of the mass, as rand_param_envs does).
      dof_damping: scales ``dof_damping``, ``[nv]``.
      geom_friction: scales each of a geom's three friction coefficients (sliding,
        torsional, rolling), ``[ngeom, 3]``.
      actuator_gear: scales each actuator's gear (0 disables it), ``[nu]``.
    """

    body_mass: Array
    body_inertia: Array
    dof_damping: Array
    geom_friction: Array
    actuator_gear: Array

    def flat(self) -> Array:
        """All scales in one vector (what an oracle may observe about the dynamics)."""
        def rows(x):  # [..., n, 3] -> [..., 3n]
            return x.reshape(x.shape[:-2] + (-1,))
        return jnp.concatenate([self.body_mass, rows(self.body_inertia), self.dof_damping,
                                rows(self.geom_friction), self.actuator_gear], axis=-1)


def nominal_dynamics(mj_model: mujoco.MjModel, n: int | None = None) -> Dynamics:
    """All-ones scales for ``mj_model`` (with a leading axis ``n`` when given)."""
    lead = () if n is None else (n,)
    return Dynamics(
        body_mass=jnp.ones(lead + (mj_model.nbody,)),
        body_inertia=jnp.ones(lead + (mj_model.nbody, 3)),
        dof_damping=jnp.ones(lead + (mj_model.nv,)),
        geom_friction=jnp.ones(lead + (mj_model.ngeom, 3)),
        actuator_gear=jnp.ones(lead + (mj_model.nu,)),
    )


def apply_dynamics_numpy(mj_model: mujoco.MjModel, dyn: Dynamics) -> mujoco.MjModel:
    """A copy of the C ``MjModel`` with ``dyn`` applied (the reference for tests)."""
    m = copy.deepcopy(mj_model)
    m.body_mass[:] = mj_model.body_mass * np.asarray(dyn.body_mass)
    m.body_inertia[:] = mj_model.body_inertia * np.asarray(dyn.body_inertia)
    m.dof_damping[:] = mj_model.dof_damping * np.asarray(dyn.dof_damping)
    m.geom_friction[:] = mj_model.geom_friction * np.asarray(dyn.geom_friction)
    m.actuator_gear[:] = mj_model.actuator_gear * np.asarray(dyn.actuator_gear)[:, None]
    return m


# The simulators an MJX family can run on (``physics=``); ``auto`` resolves per backend.
PHYSICS = ("auto", "mjx", "mujoco")


def resolve_physics(physics: str) -> str:
    """``physics`` as ``"mjx"`` or ``"mujoco"``: ``auto`` is C MuJoCo when JAX's default
    backend is the CPU, MJX on an accelerator (unknown names list the choices)."""
    if physics not in PHYSICS:
        raise ValueError(f"physics={physics!r} is unknown; choose one of {list(PHYSICS)}")
    if physics == "auto":
        return "mujoco" if jax.default_backend() == "cpu" else "mjx"
    return physics


# What ``MJXTask.target`` holds, per family (``MJXFamily.target_kind``).
TARGET_KINDS = {
    "velocity": "goal velocity v* in m/s: forward [1], or (v_x, v_y) [2]",
    "direction": "direction d = ±1 along x [1]",
    "goal_xy": "goal position (x, y) in the world, in m [2]",
    "none": "no target [0]: the task is its dynamics",
}


@struct.dataclass
class MJXTask:
    """A task of an MJX family.

    Attributes:
      target: what the reward asks for; its meaning is the family's ``target_kind``
        (:data:`TARGET_KINDS`): a goal velocity ``[1]`` or ``[2]`` (m/s), a direction ``±1``
        ``[1]``, a goal xy position in the world ``[2]`` (m), or nothing ``[0]``.
      dynamics: per-task simulator scales (:class:`Dynamics`), or ``None`` when the family
        never changes the dynamics.
    """

    target: Array
    dynamics: Any = None


# An acceleration-stage sensor makes ``mj_step`` run ``mj_rnePostConstraint`` (which fills
# ``cfrc_ext``); on the world body it measures nothing and changes no dynamics.
_ACC_SENSOR = '<sensor><framelinacc objtype="body" objname="world"/></sensor>'


def load_model(path: str, solver: str = "newton", iterations: int = 4, ls_iterations: int = 8,
               eulerdamp: bool = False, contact_sensor: bool = False) -> mujoco.MjModel:
    """Loads an MJCF file and sets the solver options the family documents.

    A ``settotalmass`` compiler attribute (brax's half-cheetah has one; MuJoCo deprecates
    it, warns, and writes ``MUJOCO_LOG.TXT``) is applied after compiling instead, with
    ``mj_setTotalmass`` and ``mj_setConst``: the model is the same, field for field.
    ``contact_sensor`` adds one acceleration sensor so that C MuJoCo's ``mj_step`` computes
    ``cfrc_ext`` (the C backend's model for families with ``contact_forces``).
    """
    with open(path) as f:
        xml = f.read()
    total = re.search(r'\s+settotalmass="([^"]+)"', xml)
    if total is None and not contact_sensor:
        m = mujoco.MjModel.from_xml_path(path)
    else:
        if total is not None:
            xml = xml.replace(total.group(0), "")
        if contact_sensor:
            xml = xml.replace("</mujoco>", _ACC_SENSOR + "</mujoco>")
        m = mujoco.MjModel.from_xml_string(xml)
    if total is not None:
        mujoco.mj_setTotalmass(m, float(total.group(1)))
        mujoco.mj_setConst(m, mujoco.MjData(m))
    solvers = {"newton": mujoco.mjtSolver.mjSOL_NEWTON, "cg": mujoco.mjtSolver.mjSOL_CG}
    if solver not in solvers:
        raise ValueError(f"solver={solver!r} is unknown; choose one of {sorted(solvers)}")
    m.opt.solver = solvers[solver]
    m.opt.iterations = iterations
    m.opt.ls_iterations = ls_iterations
    if not eulerdamp:
        m.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_EULERDAMP
    return m


class MJXFamily(TaskFamily):
    """Base class of MJX families.

    Subclasses set ``name``, ``xml``, the solver options, ``frame_skip`` and implement
    :meth:`observe`, :meth:`reward` and :meth:`draw_tasks`; optionally
    :meth:`terminated` and :meth:`init_qpos_qvel`.

    Constructor arguments common to all MJX families:
      horizon: control steps per episode.
      num_train_tasks: when set, ``train`` draws from a fixed pool of this many tasks made
        from ``task_seed`` (TESP's fixed training targets); ``None`` samples ``train``
        afresh from the distribution every call (MAML's velocity tasks).
      num_test_tasks: when set, ``test`` draws from a fixed pool of this many tasks
        (PEARL's 30 held-out velocities), made from ``task_seed`` apart from the
        training pool; ``None`` samples ``test`` afresh.
      task_seed: seed of the fixed pools.
      iterations, ls_iterations: override the family's solver iterations (``None`` keeps
        the documented default). Fewer is faster and drifts further from a converged
        solve: brax's ant setting (1, 4) runs 2.8× faster than ours (4, 8) on a CPU but
        leaves C MuJoCo by 0.35 in qpos within 20 control steps.
      physics: the simulator, one of :data:`PHYSICS`: ``"mjx"`` (MJX, inside the XLA
        program), ``"mujoco"`` (MuJoCo's C engine through a callback,
        :mod:`jaxmeta.envs.cmujoco`; 5-9x faster on a CPU and nothing to compile) or
        ``"auto"`` (``mujoco`` when JAX's default backend is the CPU, else ``mjx``). The
        resolved name is ``self.physics`` (what ``envs.make`` records).
      threads: threads of the C backend (``None``: every CPU); results do not depend on it.
    """

    xml: str
    frame_skip: int
    solver: str = "newton"
    # 4 Newton iterations / 8 line-search steps: with brax's 1/4, contact-rich models leave
    # C MuJoCo within 20 control steps (docs/envs.md). Contact-free models may lower it.
    iterations: int = 4
    ls_iterations: int = 8
    reset_noise: float = 0.1
    contact_forces: bool = False  # run rne_postconstraint so cfrc_ext is filled
    target_kind: str  # what MJXTask.target means: a key of TARGET_KINDS

    def __init__(self, horizon: int = 200, num_train_tasks: int | None = None,
                 task_seed: int = 0, num_test_tasks: int | None = None,
                 iterations: int | None = None, ls_iterations: int | None = None,
                 physics: str = "auto", threads: int | None = None):
        check_positive("horizon", horizon)
        self.physics = resolve_physics(physics)
        if iterations is not None:
            check_positive("iterations", iterations)
            self.iterations = iterations
        if ls_iterations is not None:
            check_positive("ls_iterations", ls_iterations)
            self.ls_iterations = ls_iterations
        for name, n in (("num_train_tasks", num_train_tasks),
                        ("num_test_tasks", num_test_tasks)):
            if n is not None:
                check_positive(name, n)
        if not isinstance(task_seed, int):
            raise ValueError(f"task_seed must be an int, got {task_seed!r}")
        self.horizon = horizon
        self.num_train_tasks = num_train_tasks
        self.num_test_tasks = num_test_tasks
        self.task_seed = task_seed
        self.mj_model = load_model(asset_path(self.xml), self.solver, self.iterations,
                                   self.ls_iterations)
        self.model = mjx.put_model(self.mj_model)
        self.c_physics = None
        if self.physics == "mujoco":
            c_model = load_model(asset_path(self.xml), self.solver, self.iterations,
                                 self.ls_iterations, contact_sensor=self.contact_forces)
            self.c_physics = CPhysics(c_model, self.frame_skip, threads)
        self.dt = float(self.mj_model.opt.timestep) * self.frame_skip
        self.action_size = int(self.mj_model.nu)
        self.ctrl_low = jnp.asarray(self.mj_model.actuator_ctrlrange[:, 0], jnp.float32)
        self.ctrl_high = jnp.asarray(self.mj_model.actuator_ctrlrange[:, 1], jnp.float32)
        self.qpos0 = jnp.asarray(self._init_qpos(), jnp.float32)
        self.setup()
        self.obs_size = int(jax.eval_shape(
            lambda: self.observe(mjx.make_data(self.model), self._example_task())).shape[0])

    # ----------------------------------------------------------------- subclass hooks
    def setup(self) -> None:
        """Called once the model is loaded, before ``obs_size`` is computed (look up ids)."""

    @abc.abstractmethod
    def draw_tasks(self, key: Array, n: int, split: str) -> MJXTask:
        """Samples ``n`` tasks of ``split`` from the task distribution (no pooling)."""

    @abc.abstractmethod
    def observe(self, data: mjx.Data, task: MJXTask) -> Array:
        """Observation of ``data`` (must not reveal the task)."""

    @abc.abstractmethod
    def reward(self, before: mjx.Data, after: mjx.Data, ctrl: Array, task: MJXTask) -> Array:
        """Reward of the transition ``before → after`` under the clipped control ``ctrl``."""

    def terminated(self, data: mjx.Data, task: MJXTask) -> Array:
        """1.0 where the episode ends early (default: never)."""
        del data, task
        return jnp.zeros(())

    def _init_qpos(self) -> np.ndarray:
        """Nominal initial ``qpos`` (brax's ``init_qpos`` custom numeric when present)."""
        m = self.mj_model
        for i in range(m.nnumeric):
            if m.numeric(i).name == "init_qpos" and m.numeric(i).data.size == m.nq:
                return np.array(m.numeric(i).data)
        return np.array(m.qpos0)

    def init_qpos_qvel(self, key: Array) -> tuple[Array, Array]:
        """Initial state: nominal pose + U(±noise) on qpos, noise·N(0, 1) on qvel."""
        k1, k2 = jax.random.split(key)
        nq, nv = self.mj_model.nq, self.mj_model.nv
        s = self.reset_noise
        qpos = self.qpos0 + jax.random.uniform(k1, (nq,), minval=-s, maxval=s)
        qvel = s * jax.random.normal(k2, (nv,))
        return qpos, qvel

    def _example_task(self) -> MJXTask:
        return jax.tree.map(lambda x: x[0], self.draw_tasks(jax.random.PRNGKey(0), 1, "train"))

    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The actuators' control range (``step`` clips actions to it)."""
        r = np.asarray(self.mj_model.actuator_ctrlrange, np.float32)
        return r[:, 0].copy(), r[:, 1].copy()

    @property
    def goal_position(self) -> bool:
        """Whether ``task.target`` is an xy position in the world (renders draw it)."""
        return self.target_kind == "goal_xy"

    # ------------------------------------------------------------------ the protocol
    def sample_tasks(self, key: Array, n: int, split: str = "train") -> MJXTask:
        check_positive("n", n)
        check_split(split)
        pooled = {"train": self.num_train_tasks, "test": self.num_test_tasks}.get(split)
        if pooled is not None:
            pool = self.train_tasks() if split == "train" else self.test_tasks()
            idx = jax.random.choice(split_key(key, split), pooled, (n,), replace=n > pooled)
            return jax.tree.map(lambda x: x[idx], pool)
        return self.draw_tasks(split_key(key, split), n, split)

    def train_tasks(self) -> MJXTask:
        """The fixed training pool (``num_train_tasks`` tasks from ``task_seed``)."""
        if self.num_train_tasks is None:
            raise ValueError(f"{self.name} has no fixed training set (num_train_tasks=None)")
        key = split_key(jax.random.PRNGKey(self.task_seed), "train")
        return self.draw_tasks(key, self.num_train_tasks, "train")

    def test_tasks(self) -> MJXTask:
        """The fixed held-out pool (``num_test_tasks`` tasks from ``task_seed``)."""
        if self.num_test_tasks is None:
            raise ValueError(f"{self.name} has no fixed test set (num_test_tasks=None)")
        key = split_key(jax.random.PRNGKey(self.task_seed), "test")
        return self.draw_tasks(key, self.num_test_tasks, "test")

    def model_for(self, task: MJXTask) -> mjx.Model:
        """The ``mjx.Model`` of ``task``: nominal, or with its dynamics scales applied."""
        dyn = task.dynamics
        if dyn is None:
            return self.model
        m = self.model
        return m.replace(
            body_mass=m.body_mass * dyn.body_mass,
            body_inertia=m.body_inertia * dyn.body_inertia,
            dof_damping=m.dof_damping * dyn.dof_damping,
            geom_friction=m.geom_friction * dyn.geom_friction,
            actuator_gear=m.actuator_gear * dyn.actuator_gear[:, None],
        )

    def physics_step(self, model: mjx.Model, data: mjx.Data, ctrl: Array) -> mjx.Data:
        """``frame_skip`` MJX steps under constant ``ctrl``."""
        data = data.replace(ctrl=ctrl)
        data = jax.lax.fori_loop(0, self.frame_skip, lambda _, d: mjx.step(model, d), data)
        if self.contact_forces:
            data = mjx.rne_postconstraint(model, data)
        return data

    def reset(self, key: Array, task: MJXTask) -> EnvState:
        qpos, qvel = self.init_qpos_qvel(key)
        if self.c_physics is not None:
            data = self.c_physics.reset(qpos, qvel, task.dynamics)
        else:
            data = mjx.make_data(self.model).replace(qpos=qpos, qvel=qvel)
            data = mjx.forward(self.model_for(task), data)
        zero = jnp.zeros(())
        return EnvState(obs=self.observe(data, task), reward=zero, done=zero,
                        t=jnp.zeros((), jnp.int32), physics=data)

    def step(self, state: EnvState, action: Array, task: MJXTask) -> EnvState:
        self.check_action(action)
        ctrl = jnp.clip(action, self.ctrl_low, self.ctrl_high)
        if self.c_physics is not None:
            data = self.c_physics.step(state.physics, ctrl, task.dynamics)
        else:
            data = self.physics_step(self.model_for(task), state.physics, ctrl)
        t = state.t + 1
        done = jnp.maximum(self.terminated(data, task), (t >= self.horizon).astype(jnp.float32))
        new = EnvState(obs=self.observe(data, task), reward=self.reward(state.physics, data,
                                                                          ctrl, task),
                       done=done, t=t, physics=data)
        frozen = state.replace(reward=jnp.zeros(()))
        ended = state.done > 0
        return jax.tree.map(lambda old, nxt: jnp.where(ended, old, nxt), frozen, new)

    def task_features(self, task: MJXTask) -> Array:
        return jnp.atleast_1d(task.target)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        opt = self.mj_model.opt
        out.update(
            physics=self.physics, dt=self.dt, frame_skip=self.frame_skip,
            timestep=float(opt.timestep),
            solver=f"{self.solver}(iterations={self.iterations}, "
                   f"ls_iterations={self.ls_iterations})",
            model=os.path.basename(self.xml),
            train_pool=self.num_train_tasks,
            test_pool=self.num_test_tasks,
            target=f"{self.target_kind}: {TARGET_KINDS[self.target_kind]}",
        )
        return out


# --------------------------------------------------------------------- state helpers
def cfrc_ext(data: mjx.Data) -> Array:
    """External contact wrenches per body ``[nbody, 6]`` (needs ``contact_forces=True``)."""
    impl = getattr(data, "_impl", None)
    return impl.cfrc_ext if impl is not None and hasattr(impl, "cfrc_ext") else data.cfrc_ext
