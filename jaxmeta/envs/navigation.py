"""2D point navigation (MAML §5.3 / Finn et al. 2017; sparse variant as in PEARL)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmeta.config import check_positive, check_range
from jaxmeta.envs.base import EnvState, TaskFamily, check_split, sample_annulus, split_key

Array = jax.Array


@struct.dataclass
class NavTask:
    """A navigation task: the goal position, shape ``[2]`` (``[n, 2]`` when batched)."""

    goal: Array


class Navigation2D(TaskFamily):
    """Point agent in the plane that must reach a hidden goal (MAML, 2D navigation).

    * State/observation: the position p_t ∈ R², starting at the origin.
    * Action: a velocity, clipped to [-max_speed, max_speed]² (max_speed = 0.1):
      p_{t+1} = p_t + clip(a_t).
    * Reward: r_t = -‖p_{t+1} − g‖₂, the negative Euclidean distance to the goal *after*
      the move (the form used by the reference MAML-RL code; the survey's text says
      "squared distance"). No termination: episodes last exactly ``horizon`` = 100 steps.
    * Splits: ``train`` and ``test`` draw g ~ U[-0.5, 0.5]² (independent streams);
      ``ood`` draws g uniformly by area from the annulus 0.75 < ‖g‖ < 1.0, which lies
      entirely outside the training square (its corners are at radius √0.5 ≈ 0.707).
    * ``task_features(task) = g``.
    """

    name = "navigation2d"
    obs_size = 2
    action_size = 2

    def __init__(self, horizon: int = 100, max_speed: float = 0.1, goal_range: float = 0.5,
                 ood_radii: tuple[float, float] = (0.75, 1.0)):
        check_positive("horizon", horizon)
        check_range("max_speed", max_speed, lo=0, lo_open=True)
        check_range("goal_range", goal_range, lo=0, lo_open=True)
        if not isinstance(ood_radii, tuple | list) or len(ood_radii) != 2:
            raise ValueError(f"ood_radii must be a pair (r_min, r_max), got {ood_radii!r}")
        for r in ood_radii:
            check_range("ood_radii", r, lo=0, lo_open=True)
        if not goal_range * 2**0.5 < ood_radii[0] < ood_radii[1]:
            raise ValueError(
                f"ood_radii={ood_radii!r} must satisfy goal_range·√2 < r_min < r_max so that "
                "the ood annulus lies outside the training square"
            )
        self.horizon = horizon
        self.max_speed = max_speed
        self.goal_range = goal_range
        self.ood_radii = tuple(ood_radii)

    def sample_tasks(self, key: Array, n: int, split: str = "train") -> NavTask:
        check_positive("n", n)
        check_split(split)
        key = split_key(key, split)
        if split == "ood":
            goal = sample_annulus(key, n, *self.ood_radii)
        else:
            goal = jax.random.uniform(key, (n, 2), minval=-self.goal_range, maxval=self.goal_range)
        return NavTask(goal=goal)

    def reset(self, key: Array, task: NavTask) -> EnvState:
        del key  # deterministic start at the origin
        pos = jnp.zeros((2,), jnp.float32)
        return EnvState(obs=pos, reward=jnp.zeros(()), done=jnp.zeros(()),
                        t=jnp.zeros((), jnp.int32), physics=pos)

    def reward(self, pos: Array, task: NavTask) -> Array:
        """r = -‖p − g‖₂ evaluated at the post-move position."""
        return -jnp.linalg.norm(pos - task.goal)

    def step(self, state: EnvState, action: Array, task: NavTask) -> EnvState:
        self.check_action(action)
        pos = state.physics + jnp.clip(action, -self.max_speed, self.max_speed)
        t = state.t + 1
        done = (t >= self.horizon).astype(jnp.float32)
        return EnvState(obs=pos, reward=self.reward(pos, task), done=done, t=t, physics=pos)

    def task_features(self, task: NavTask) -> Array:
        return task.goal

    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Each velocity component is clipped to [−max_speed, max_speed]."""
        high = np.full((self.action_size,), self.max_speed, np.float32)
        return -high, high


class Navigation2DSparse(Navigation2D):
    """Sparse-reward point navigation to goals on a half circle (PEARL's sparse point robot).

    * Dynamics and observation as :class:`Navigation2D`; horizon 20 by default.
    * Goals: g = (cos θ, sin θ) with θ ~ U[0, π] for ``train``/``test``; ``ood`` draws
      θ ~ U[π, 2π] (the mirrored lower half circle, never seen in training).
    * Reward: with d = ‖p_{t+1} − g‖₂,  r_t = 1 − d if d ≤ 0.2 else 0 — zero everywhere
      except inside the goal radius 0.2 (boundary included). PEARL's ``SparsePointEnv``
      (katerakelly/oyster, ``point_robot.py``) masks the dense reward −d to the goal radius
      (``sparsify_rewards``) and adds 1 there.
    * :meth:`dense_reward` is that dense reward −d, which PEARL's critic trains on while
      its encoder reads the sparse one.
    * ``envs.make("navigation2d_sparse", reward="dense")`` makes −d the reward itself (the
      registry's :class:`~jaxmeta.envs.wrappers.DenseReward`): the same goals, for
      meta-training a learner on the shaped signal and testing it on the sparse one.
    """

    name = "navigation2d_sparse"

    def __init__(self, horizon: int = 20, max_speed: float = 0.1, goal_radius: float = 0.2,
                 radius: float = 1.0):
        check_positive("horizon", horizon)
        check_range("max_speed", max_speed, lo=0, lo_open=True)
        check_range("goal_radius", goal_radius, lo=0, lo_open=True)
        check_range("radius", radius, lo=0, lo_open=True)
        self.horizon = horizon
        self.max_speed = max_speed
        self.goal_radius = goal_radius
        self.radius = radius

    def sample_tasks(self, key: Array, n: int, split: str = "train") -> NavTask:
        check_positive("n", n)
        check_split(split)
        key = split_key(key, split)
        lo, hi = (jnp.pi, 2 * jnp.pi) if split == "ood" else (0.0, jnp.pi)
        theta = jax.random.uniform(key, (n,), minval=lo, maxval=hi)
        goal = self.radius * jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=-1)
        return NavTask(goal=goal)

    def reward(self, pos: Array, task: NavTask) -> Array:
        """r = 1 − d inside the goal radius (d ≤ 0.2), else 0."""
        d = jnp.linalg.norm(pos - task.goal)
        return jnp.where(d <= self.goal_radius, 1.0 - d, 0.0)

    def dense_reward(self, state: EnvState, task: NavTask) -> Array:
        """−d, the distance to the goal after the move (the reward before sparsifying)."""
        return -jnp.linalg.norm(state.physics - task.goal)
