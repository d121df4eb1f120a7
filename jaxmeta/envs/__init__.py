"""Task families and their registry: ``make(name, **overrides)`` and ``names()``."""

from __future__ import annotations

from collections.abc import Callable

from jaxmeta.config import check_choice
from jaxmeta.envs.base import SPLITS, EnvSpec, EnvState, TaskFamily, check_split
from jaxmeta.envs.gridworld import GridTask, Gridworld
from jaxmeta.envs.locomotion import (
    AntDir,
    AntDirCrippled,
    AntDirLowFriction,
    AntGoal,
    AntVel,
    AntVel2D,
    AntVelWide,
    HalfCheetahDir,
    HalfCheetahVel,
    HalfCheetahVelPEARL,
    HalfCheetahVelWide,
    HumanoidDir,
    HumanoidVel,
    HumanoidVelWide,
)
from jaxmeta.envs.mjx_base import Dynamics, MJXFamily, MJXTask
from jaxmeta.envs.navigation import Navigation2D, Navigation2DSparse, NavTask
from jaxmeta.envs.rand_params import HopperRandParams, Walker2dRandParams
from jaxmeta.envs.reach import (
    AntRing,
    AntTarget,
    Reacher2Target,
    Reacher4Target,
    ReacherSparse,
    WheeledGoal,
)
from jaxmeta.envs.wrappers import DenseReward, FixedTask, Wrapper, brax_env

_PURE_JAX = (Navigation2D, Navigation2DSparse, Gridworld)
_MJX = (
    HalfCheetahVel, HalfCheetahVelPEARL, HalfCheetahVelWide, HalfCheetahDir,
    AntDir, AntDirLowFriction, AntDirCrippled, AntVel, AntVelWide, AntVel2D, AntGoal,
    HumanoidDir, HumanoidVel, HumanoidVelWide,
    WheeledGoal, AntTarget, Reacher2Target, Reacher4Target,
    AntRing, ReacherSparse,
    HopperRandParams, Walker2dRandParams,
)
_REGISTRY: dict[str, Callable[..., TaskFamily]] = {cls.name: cls for cls in _PURE_JAX + _MJX}
REWARDS = ("env", "dense")  # make(..., reward=): the family's own, or its dense_reward


def register(name: str, constructor: Callable[..., TaskFamily]) -> None:
    """Adds a family constructor under ``name`` (refuses to overwrite)."""
    if name in _REGISTRY:
        raise ValueError(f"task family {name!r} is already registered")
    _REGISTRY[name] = constructor


def names() -> list[str]:
    """Registered task-family names, sorted."""
    return sorted(_REGISTRY)


def has_mujoco_model(name: str) -> bool:
    """Whether the registered family ``name`` is simulated by MuJoCo (takes ``physics=``)."""
    c = _REGISTRY.get(name)
    return isinstance(c, type) and issubclass(c, MJXFamily)


def make(name: str, **overrides) -> TaskFamily:
    """Builds the task family ``name`` with constructor ``overrides`` (e.g. ``horizon=50``).

    MuJoCo families take ``physics=`` (``"auto"``, ``"mjx"``, ``"mujoco"``); the family's
    ``env_spec`` records the resolved one, so a run rebuilt from it simulates the same way.

    Every family takes ``reward=``: ``"env"`` (default, its own reward) or ``"dense"``, its
    :meth:`~jaxmeta.envs.base.TaskFamily.dense_reward` as the reward (:class:`DenseReward`;
    −distance on sparse navigation): a registered variant for meta-training on a shaped
    signal and testing on the family's own, which a run rebuilds by name.

    Raises:
      ValueError: unknown name (the message lists the registered ones) or a bad override.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown env {name!r}; registered envs: {', '.join(names())}")
    if "physics" in overrides and not has_mujoco_model(name):
        with_model = [n for n in names() if has_mujoco_model(n)]
        raise ValueError(f"env {name!r} has no MuJoCo model, so physics= does not apply to it; "
                         f"the families with one: {', '.join(with_model)}")
    reward = overrides.pop("reward", "env")
    check_choice("reward", reward, REWARDS)
    try:
        family = _REGISTRY[name](**overrides)
    except TypeError as e:  # unknown keyword
        raise ValueError(f"bad overrides for env {name!r}: {e}") from None
    recorded = dict(overrides)
    if isinstance(family, MJXFamily):  # the resolved simulator, so a rebuild uses the same
        recorded["physics"] = family.physics
    if reward == "dense":
        family, recorded["reward"] = DenseReward(family), reward
    family.env_spec = EnvSpec(name, recorded)
    return family


__all__ = ["REWARDS", "SPLITS", "DenseReward", "Dynamics", "EnvSpec", "EnvState", "FixedTask",
           "GridTask", "Gridworld", "MJXFamily", "MJXTask", "NavTask", "TaskFamily", "Wrapper",
           "brax_env", "check_split", "has_mujoco_model", "make", "names", "register"]
