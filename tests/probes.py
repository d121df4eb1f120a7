"""Probe task families with known answers, for tests."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxmeta.envs.base import EnvState, TaskFamily


@struct.dataclass
class BanditTask:
    goal: jax.Array  # [1]


class GaussianBandit(TaskFamily):
    """One-step problem: observation [1], action a ∈ R, reward −(a − g)², then done.

    For a Gaussian policy N(μ, σ²) the expected return is −((μ − g)² + σ²) in closed form,
    which makes post-adaptation objectives computable without sampling the outer episode.
    """

    name = "gaussian_bandit"
    obs_size = 1
    action_size = 1
    horizon = 1

    def __init__(self, goal: float = 1.0, spread: float = 0.0):
        self.goal, self.spread = goal, spread

    def sample_tasks(self, key, n, split="train"):
        g = self.goal + self.spread * jax.random.uniform(key, (n, 1), minval=-1, maxval=1)
        return BanditTask(goal=g)

    def reset(self, key, task):
        return EnvState(obs=jnp.ones((1,)), reward=jnp.zeros(()), done=jnp.zeros(()),
                        t=jnp.zeros((), jnp.int32), physics=jnp.zeros(()))

    def step(self, state, action, task):
        self.check_action(action)
        r = -jnp.sum((action - task.goal) ** 2)
        return EnvState(obs=state.obs, reward=r, done=jnp.ones(()), t=state.t + 1,
                        physics=state.physics)

    def task_features(self, task):
        return task.goal
