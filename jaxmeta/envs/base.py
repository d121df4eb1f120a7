"""Task-family protocol shared by every environment in jaxmeta.

A *task family* is a distribution over MDPs that share observation space, action
space and horizon. A *task* is a small pytree of parameters (a goal, a velocity, a
friction scale). Environments are pure functions of ``(state, action, task)``, so a
batch of tasks is just ``jax.vmap`` over the task argument.
"""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

Array = jax.Array
Task = Any

SPLITS = ("train", "test", "ood")


@struct.dataclass
class EnvState:
    """State of one environment instance (one episode of one task).

    Attributes:
      obs: observation after the last transition, shape ``[obs_size]``.
      reward: reward of the last transition, shape ``()``.
      done: 1.0 once the episode has ended (time limit or termination), shape ``()``.
      t: number of steps taken in this episode, int32 shape ``()``.
      physics: family-specific simulator state (a position, an ``mjx.Data``, ...).
    """

    obs: Array
    reward: Array
    done: Array
    t: Array
    physics: Any


class EnvSpec(NamedTuple):
    """How a family was built: ``envs.make(name, **overrides)`` (set by the registry)."""

    name: str
    overrides: dict


def check_split(split: str) -> str:
    """Validates a split name, raising ``ValueError`` that names the field."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not a valid split; choose one of {list(SPLITS)}")
    return split


def sample_annulus(key: Array, n: int, r_min: float, r_max: float, theta_min: float = 0.0,
                   theta_max: float = 2 * jnp.pi) -> Array:
    """``n`` points uniform by area in the sector r_min < ρ < r_max, θ ∈ [θmin, θmax).

    Returns shape ``[n, 2]``; r_min = 0 gives a disc.
    """
    k_r, k_t = jax.random.split(key)
    rho = jnp.sqrt(jax.random.uniform(k_r, (n,), minval=r_min**2, maxval=r_max**2))
    theta = jax.random.uniform(k_t, (n,), minval=theta_min, maxval=theta_max)
    return jnp.stack([rho * jnp.cos(theta), rho * jnp.sin(theta)], axis=-1)


def sample_signed(key: Array, n: int, lo: float, hi: float, dim: int = 1) -> Array:
    """Values with |v| ~ U[lo, hi] and a random sign per component, shape ``[n, dim]``."""
    k_m, k_s = jax.random.split(key)
    mag = jax.random.uniform(k_m, (n, dim), minval=lo, maxval=hi)
    return mag * jnp.where(jax.random.bernoulli(k_s, 0.5, (n, dim)), 1.0, -1.0)


def split_key(key: Array, split: str) -> Array:
    """Derives a split-specific key so train/test/ood draws never share randomness."""
    return jax.random.fold_in(key, SPLITS.index(check_split(split)))


class TaskFamily(abc.ABC):
    """Base class of task families.

    Subclasses set ``name``, ``obs_size``, ``action_size``, ``horizon`` (and
    ``discrete_actions = True`` when actions are one-hot vectors of length ``action_size``
    whose argmax ``step`` executes) and implement
    ``sample_tasks``, ``reset``, ``step`` and ``task_features``. All methods are pure
    and jit/vmap-able; ``sample_tasks`` takes a static Python ``n``.
    """

    name: str = "base"
    obs_size: int
    action_size: int
    horizon: int
    # actions are one-hot vectors of length action_size; step executes the argmax
    discrete_actions: bool = False
    # set by ``envs.make``: how to rebuild this family (``None``: built some other way)
    env_spec: EnvSpec | None = None

    @abc.abstractmethod
    def sample_tasks(self, key: Array, n: int, split: str = "train") -> Task:
        """Samples ``n`` tasks (leading axis ``n``) from ``split``."""

    @abc.abstractmethod
    def reset(self, key: Array, task: Task) -> EnvState:
        """Starts an episode of one task."""

    @abc.abstractmethod
    def step(self, state: EnvState, action: Array, task: Task) -> EnvState:
        """Advances one environment by one control step."""

    @abc.abstractmethod
    def task_features(self, task: Task) -> Array:
        """The vector an oracle policy may observe about ``task``, shape ``[d]``."""

    @property
    def task_feature_size(self) -> int:
        """Length of ``task_features`` (computed abstractly, nothing runs)."""

        def features_of_one(key):
            tasks = self.sample_tasks(key, 1, "train")
            return self.task_features(jax.tree.map(lambda x: x[0], tasks))

        return int(jax.eval_shape(features_of_one, jax.random.PRNGKey(0)).shape[0])

    def action_bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The box ``(low, high)`` (numpy, ``[action_size]``) that ``step`` clips continuous
        actions to, so that a squashed policy (SAC's tanh) can be scaled onto it;
        ``None`` when the family has no such box (discrete actions)."""
        return None

    def dense_reward(self, state: EnvState, task: Task) -> Array:
        """A dense counterpart of the reward of the transition that led to ``state``, for
        learners that train a critic on a shaped signal while their policy or context
        sees ``state.reward`` (PEARL on sparse navigation). Default: ``state.reward``
        itself; sparse families override it."""
        del task
        return state.reward

    def check_action(self, action: Array) -> None:
        """Raises at trace time when ``action`` does not have shape ``[action_size]``."""
        if jnp.shape(action) != (self.action_size,):
            raise ValueError(
                f"{self.name}: action must have shape ({self.action_size},) for one env "
                f"(vmap for batches), got {jnp.shape(action)}"
            )

    def describe(self) -> dict[str, Any]:
        """Sizes, horizon and splits, for listings."""
        return {
            "name": self.name,
            "obs_size": self.obs_size,
            "action_size": self.action_size,
            "horizon": self.horizon,
            "discrete_actions": self.discrete_actions,
            "splits": list(SPLITS),
            "summary": (type(self).__doc__ or "").strip().split("\n")[0],
        }
