"""Wrap, don't fork: families built from other families, and a family task as a brax Env.

* :class:`Wrapper`: delegates every part of the protocol to the wrapped family;
  subclasses override only what they change.
* :class:`FixedTask`: a family restricted to one task (for single-task trainers).
* :class:`DenseReward`: the family with its reward replaced by its ``dense_reward`` (for
  meta-training on a shaped signal and testing on the sparse one: MAESN does it inside,
  ``envs.make(name, reward="dense")`` registers it so that a run rebuilds by name).
* :func:`brax_env`: one task of a family as a ``brax.envs.base.Env`` (same model, same
  step), for comparing with brax's trainers.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxmeta.envs.base import EnvState, TaskFamily, check_split

Array = jax.Array


class Wrapper(TaskFamily):
    """A family that behaves like ``family`` except where a subclass overrides it.

    Sizes, horizon and name come from the wrapped family; attributes it has beyond the
    protocol (``dt``, ``mj_model``, ...) are reachable through the wrapper. A wrapper is not
    in the registry, so ``env_spec`` is ``None``: a run on it cannot be rebuilt by name.
    """

    def __init__(self, family: TaskFamily):
        self.family = family

    def __getattr__(self, name: str) -> Any:  # only called for attributes not found here
        if name == "family":
            raise AttributeError(name)
        return getattr(self.family, name)

    @property
    def name(self) -> str:
        return self.family.name

    @property
    def obs_size(self) -> int:
        return self.family.obs_size

    @property
    def action_size(self) -> int:
        return self.family.action_size

    @property
    def horizon(self) -> int:
        return self.family.horizon

    def sample_tasks(self, key: Array, n: int, split: str = "train") -> Any:
        return self.family.sample_tasks(key, n, split)

    def reset(self, key: Array, task: Any) -> EnvState:
        return self.family.reset(key, task)

    def step(self, state: EnvState, action: Array, task: Any) -> EnvState:
        return self.family.step(state, action, task)

    def task_features(self, task: Any) -> Array:
        return self.family.task_features(task)

    def action_bounds(self) -> Any:
        return self.family.action_bounds()

    def dense_reward(self, state: EnvState, task: Any) -> Array:
        return self.family.dense_reward(state, task)

    def describe(self) -> dict[str, Any]:
        return {**self.family.describe(), "wrapper": type(self).__name__}


class FixedTask(Wrapper):
    """``family`` restricted to one task: every split samples ``task``."""

    def __init__(self, family: TaskFamily, task: Any):
        super().__init__(family)
        self.task = task

    def sample_tasks(self, key: Array, n: int, split: str = "train") -> Any:
        check_split(split)
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), self.task)


class DenseReward(Wrapper):
    """``family`` whose reward is ``family.dense_reward`` (−distance on sparse navigation;
    the reward itself on families without a sparse variant). Everything else, including the
    done flag, is the wrapped family's."""

    def step(self, state: EnvState, action: Array, task: Any) -> EnvState:
        nxt = self.family.step(state, action, task)
        return nxt.replace(reward=self.family.dense_reward(nxt, task))


def brax_env(family: TaskFamily, task: Any, action_box: tuple[Any, Any] | None = None):
    """One task of ``family`` as a ``brax.envs.base.Env`` (same model, same step). With
    ``action_box = (low, high)``, actions in [−1, 1] (a squashed policy's, Brax SAC's) are
    scaled onto that box first, as jaxmeta's SAC scales its own."""
    from brax.envs.base import Env, State

    class TaskEnv(Env):
        @property
        def observation_size(self):
            return family.obs_size

        @property
        def action_size(self):
            return family.action_size

        @property
        def backend(self):
            return "mjx"

        def reset(self, rng):
            s = family.reset(rng, task)
            return State(pipeline_state=s, obs=s.obs, reward=s.reward, done=s.done,
                         metrics={}, info={})

        def step(self, state, action):
            if action_box is not None:
                low, high = action_box
                action = low + 0.5 * (action + 1.0) * (high - low)
            s = family.step(state.pipeline_state, action, task)
            return state.replace(pipeline_state=s, obs=s.obs, reward=s.reward, done=s.done)

    return TaskEnv()
