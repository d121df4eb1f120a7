"""``physics="mujoco"``: MuJoCo's C engine behind an MJX family's own reset/step.

On a CPU, MuJoCo's C engine steps the families' models 5–9× faster than MJX and starts at
once (no XLA program of the physics to compile). :class:`CPhysics` runs the physics of a
whole batch of environments in C from inside a compiled program:

* ``jax.pure_callback`` with ``vmap_method="broadcast_all"``: under ``vmap`` over tasks,
  episodes and seeds the callback gets the whole batch at once, ``[*batch, ...]``.
* The batch is stepped by :class:`mujoco.batch.Batch` (MuJoCo's threaded batch of
  simulations over one model; per-simulation model fields for per-task dynamics).
  ``mujoco.batch`` steps each simulation from its full integration state
  (``mjSTATE_INTEGRATION``: qpos, qvel, act, the solver's warm start, ctrl, ...) and is
  bit-identical to a loop of ``mj_step`` on one ``MjData`` per simulation at any thread
  count, so results do not depend on ``threads``.
* The state that crosses the callback is that state row, carried losslessly as the bits of
  its float64 numbers (``CData.state``, uint32, since JAX runs in float32 here): same state
  in, same state out. Nothing else is kept between calls, so a step is a pure function.
* Derived quantities the families' hooks read come back in float32 with the exact meaning
  they have in MJX (computed before the last substep's integration, as ``mj_step`` leaves
  them): ``xpos``, ``subtree_com`` and, for families with ``contact_forces``, ``cfrc_ext``
  (the C model gets one extra acceleration sensor, on the world body, so that ``mj_step``
  runs ``mj_rnePostConstraint``; sensors do not change the dynamics).

Per-task dynamics (:class:`~jaxmeta.envs.mjx_base.Dynamics`) are written into the batch's
per-simulation model fields before each call, as ``MJXFamily.model_for`` replaces them in
``mjx.Model`` (no ``mj_setConst``, as there). The callback is not differentiable: taking a
derivative through it raises an error that names the backend.
"""

from __future__ import annotations

import math
import os
import threading

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from flax import struct
from mujoco import batch as mjbatch

Array = jax.Array

INTEGRATION = mujoco.mjtState.mjSTATE_INTEGRATION.value
_DERIVED = ("xpos", "subtree_com", "cfrc_ext")  # derived MjData fields CData carries

# The dynamics fields of a task (``Dynamics``), each with its number of trailing axes.
_DYNAMICS = {"body_mass": 1, "body_inertia": 2, "dof_damping": 1, "geom_friction": 2,
             "actuator_gear": 1}


@struct.dataclass
class CData:
    """An environment's physics under ``physics="mujoco"`` (``EnvState.physics``).

    Attributes:
      state: MuJoCo's ``mjSTATE_INTEGRATION`` state row as the bits of its float64 numbers,
        ``uint32[2 · nstate]`` (view it as float64 to use it with ``mj_setState``).
      qpos, qvel: float32 copies of the state's positions and velocities.
      xpos, subtree_com: bodies' positions and subtree centres of mass ``[nbody, 3]``.
      cfrc_ext: external contact wrenches ``[nbody, 6]`` (zeros unless the family has
        ``contact_forces``).

    Family hooks (``observe``, ``reward``, ``terminated``) may read these fields; an
    ``mjx.Data`` field outside them is not computed by this backend.
    """

    state: Array
    qpos: Array
    qvel: Array
    xpos: Array
    subtree_com: Array
    cfrc_ext: Array

    def state64(self) -> np.ndarray:
        """The state row(s) as float64 numbers, ``[..., nstate]`` (host side)."""
        return np.ascontiguousarray(np.asarray(self.state)).view(np.float64)


def default_threads() -> int:
    """Threads of the C batch: ``JAXMETA_MUJOCO_THREADS`` if set, else every CPU."""
    env = os.environ.get("JAXMETA_MUJOCO_THREADS")
    return int(env) if env else (os.cpu_count() or 1)


def dynamics_scales(dynamics) -> tuple:
    """A task's :class:`~jaxmeta.envs.mjx_base.Dynamics` as the tuple the host functions
    take (empty for ``None``)."""
    if dynamics is None:
        return ()
    return tuple(getattr(dynamics, f) for f in _DYNAMICS)


def _not_differentiable(*_):
    raise ValueError(
        "physics='mujoco' steps MuJoCo's C engine through jax.pure_callback, which has no "
        "derivative; a method that differentiates through the simulator needs "
        "physics='mjx' (e.g. --env-arg physics=mjx)")


class CPhysics:
    """Reset and step of one family's model in C, as pure functions of JAX arrays.

    Args:
      mj_model: the family's C model, with an acceleration sensor when ``cfrc_ext`` is
        needed (see :func:`jaxmeta.envs.mjx_base.load_model`).
      frame_skip: ``mj_step`` calls per control step.
      threads: threads of the C batch (``None``: :func:`default_threads`); results do not
        depend on it.
    """

    def __init__(self, mj_model: mujoco.MjModel, frame_skip: int, threads: int | None = None):
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive int, got {threads!r}")
        self.model = mj_model
        self.frame_skip = frame_skip
        self.threads = default_threads() if threads is None else threads
        self.nstate = mujoco.mj_stateSize(mj_model, INTEGRATION)
        self._batches: dict[int, mjbatch.Batch] = {}
        self._lock = threading.Lock()  # a Batch must not be used by two threads at once
        m = mj_model
        nb = m.nbody
        self.out_shapes = CData(
            state=jax.ShapeDtypeStruct((2 * self.nstate,), jnp.uint32),
            qpos=jax.ShapeDtypeStruct((m.nq,), jnp.float32),
            qvel=jax.ShapeDtypeStruct((m.nv,), jnp.float32),
            xpos=jax.ShapeDtypeStruct((nb, 3), jnp.float32),
            subtree_com=jax.ShapeDtypeStruct((nb, 3), jnp.float32),
            cfrc_ext=jax.ShapeDtypeStruct((nb, 6), jnp.float32),
        )
        self._reset = self._callback(self.reset_host)
        self._step = self._callback(self.step_host)

    # ------------------------------------------------------------------- JAX side
    def reset(self, qpos: Array, qvel: Array, dynamics) -> CData:
        """The state at ``qpos``, ``qvel`` (model defaults otherwise), after ``mj_forward``."""
        return self._reset(qpos, qvel, dynamics_scales(dynamics))

    def step(self, data: CData, ctrl: Array, dynamics) -> CData:
        """``frame_skip`` ``mj_step`` calls under constant ``ctrl`` from ``data.state``."""
        return self._step(data.state, ctrl, dynamics_scales(dynamics))

    def _callback(self, host):
        shapes = self.out_shapes

        def call(first, second, dyn):
            lead = jnp.shape(second)[:-1]
            out = jax.tree.map(lambda s: jax.ShapeDtypeStruct(lead + s.shape, s.dtype), shapes)
            return jax.pure_callback(host, out, first, second, dyn,
                                     vmap_method="broadcast_all")

        fn = jax.custom_jvp(call)
        fn.defjvp(_not_differentiable)
        return fn

    # ------------------------------------------------------------------ host side
    def _batch(self, n: int) -> mjbatch.Batch:
        if n not in self._batches:
            b = mjbatch.Batch(self.model, n, nthread=self.threads)
            for name in _DERIVED:  # outputs are copied out only once bound: bind before use
                b.bind(name)
            self._batches[n] = b
        return self._batches[n]

    def _set_dynamics(self, b: mjbatch.Batch, dyn: tuple, n: int) -> None:
        for (name, axes), scale in zip(_DYNAMICS.items(), dyn, strict=True):
            s = np.asarray(scale)
            s = s.reshape((n,) + s.shape[s.ndim - axes:])
            if name == "actuator_gear":  # one scale per actuator, on all 6 gear entries
                s = s[..., None]
            b.expand(name)[:] = getattr(self.model, name) * s
        # subtree masses follow the scaled masses (C's subtree_com divides by them; MJX sums
        # body_mass afresh): no other constant derived from the masses is refreshed, as in
        # MJX's model_for and rand_param_envs
        mass = b.expanded("body_mass")
        sub = mass.copy()
        for body in range(self.model.nbody - 1, 0, -1):
            sub[:, self.model.body_parentid[body]] += sub[:, body]
        b.expand("body_subtreemass")[:] = sub

    def _outputs(self, b: mjbatch.Batch, lead: tuple) -> CData:
        def f32(name, shape):
            return np.asarray(b.bind(name), np.float32).reshape(lead + shape)

        m = self.model
        return CData(
            state=b.state.copy().view(np.uint32).reshape(lead + (2 * self.nstate,)),
            qpos=f32("qpos", (m.nq,)), qvel=f32("qvel", (m.nv,)),
            xpos=f32("xpos", (m.nbody, 3)), subtree_com=f32("subtree_com", (m.nbody, 3)),
            cfrc_ext=f32("cfrc_ext", (m.nbody, 6)),
        )

    def _run(self, lead: tuple, dyn: tuple, simulate) -> CData:
        """``simulate(batch, n)`` on the batch of ``n = prod(lead)`` simulations with the
        dynamics ``dyn`` in place; the outputs shaped ``lead + ...``."""
        n = math.prod(lead)
        with self._lock:
            b = self._batch(n)
            if dyn:
                self._set_dynamics(b, dyn, n)
            simulate(b, n)
            return self._outputs(b, lead)

    def reset_host(self, qpos, qvel, dyn: tuple) -> CData:
        """What :meth:`reset`'s callback runs, on numpy arrays ``[*batch, ...]``; ``dyn`` is
        the tuple of dynamics scales (empty for none)."""

        def simulate(b, n):
            b.reset(stage=mujoco.mjtStage.mjSTAGE_NONE.value)
            b.bind("qpos")[:] = np.asarray(qpos, np.float64).reshape(n, -1)
            b.bind("qvel")[:] = np.asarray(qvel, np.float64).reshape(n, -1)
            b.forward()

        return self._run(np.shape(qpos)[:-1], dyn, simulate)

    def step_host(self, state, ctrl, dyn: tuple) -> CData:
        """What :meth:`step`'s callback runs, on numpy arrays ``[*batch, ...]`` (state rows as
        uint32 bits, ``ctrl``, the dynamics scales); also the tests' entry point."""

        def simulate(b, n):
            b.state[:] = np.ascontiguousarray(state).reshape(n, -1).view(np.float64)
            b.bind("ctrl")[:] = np.asarray(ctrl, np.float64).reshape(n, -1)
            b.step(nstep=self.frame_skip)

        return self._run(np.shape(ctrl)[:-1], dyn, simulate)
