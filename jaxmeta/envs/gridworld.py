"""The 5×5 gridworld of variBAD (Zintgraf et al. 2020, §5; seed 003).

Reference code: lmzintgraf/varibad ``environments/navigation/gridworld.py`` (``GridNavi``,
commit 57e1795): start (0, 0); ``possible_goals`` = every cell minus (0, 0), (0, 1),
(1, 0), (1, 1); actions 0 noop, 1 up (y + 1), 2 right (x + 1), 3 down (y − 1), 4 left
(x − 1), clipped at the walls; reward +1 if the cell *after* the move is the goal, else
−0.1; 15 steps per episode; ``max_rollouts_per_task`` = 4 episodes per task
(``config/gridworld/args_grid_varibad.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmeta.config import check_bool, check_positive, check_range
from jaxmeta.envs.base import EnvState, TaskFamily, check_split, split_key

Array = jax.Array

# (dx, dy) of actions 0..4: noop, up, right, down, left (variBAD's ``state_transition``)
MOVES = ((0, 0), (0, 1), (1, 0), (0, -1), (-1, 0))
ACTION_NAMES = ("stay", "up", "right", "down", "left")


def candidate_cells(size: int, exclude_near_start: bool = True) -> np.ndarray:
    """The goal cells (x, y), int32 ``[M, 2]`` in ``cell_index`` order: every cell, minus
    the start (0, 0) and its neighbours (0, 1), (1, 0), (1, 1) when ``exclude_near_start``."""
    cells = [(x, y) for x in range(size) for y in range(size)
             if not (exclude_near_start and x <= 1 and y <= 1)]
    return np.asarray(cells, np.int32).reshape(-1, 2)


@struct.dataclass
class GridTask:
    """A gridworld task: the goal cell (x, y), int32 ``[2]`` (``[n, 2]`` when batched)."""

    goal: Array


class Gridworld(TaskFamily):
    """Gridworld navigation to a hidden goal cell (variBAD's GridNavi, 5×5, 15 steps).

    * State: the agent's cell p_t = (x, y) ∈ {0..size−1}², int32 in ``state.physics``;
      p_0 = (0, 0), the bottom-left corner. Observation: p_t as float32 ``[2]`` (raw cell
      coordinates, as the reference).
    * Actions: discrete, k ∈ {0 stay, 1 up, 2 right, 3 down, 4 left}, given as a vector
      a ∈ R⁵ and executed as k = argmax(a) (a one-hot, or any vector: a Gaussian policy's
      sample runs unchanged). p_{t+1} = clip(p_t + Δ_k, 0, size − 1); a move into a wall
      leaves the agent in place. Deterministic.
    * Reward, on the cell after the move: r_t = goal_reward (1) if p_{t+1} = g, else
      −step_cost (−0.1). ``reward_levels`` = (−step_cost, goal_reward). No termination:
      episodes last exactly ``horizon`` = 15 steps.
    * Splits: g uniform over ``candidate_cells`` (21 cells on 5×5: all but the 2×2 block
      around the start), from split-specific keys. There are no out-of-distribution goals
      on this grid, so ``ood`` is the same distribution as ``train``/``test``.
    * ``task_features(task) = g`` as float32.
    """

    name = "gridworld"
    obs_size = 2
    action_size = 5
    discrete_actions = True

    def __init__(self, size: int = 5, horizon: int = 15, goal_reward: float = 1.0,
                 step_cost: float = 0.1, exclude_near_start: bool = True):
        check_positive("size", size)
        check_positive("horizon", horizon)
        check_range("goal_reward", goal_reward, lo=0, lo_open=True)
        check_range("step_cost", step_cost, lo=0)
        check_bool("exclude_near_start", exclude_near_start)
        goals = candidate_cells(size, exclude_near_start)
        if len(goals) == 0:
            raise ValueError(f"size={size} with exclude_near_start=True leaves no goal cell "
                             "(the 2×2 block around the start is excluded); use size >= 3 "
                             "or exclude_near_start=False")
        self.size = size
        self.horizon = horizon
        self.goal_reward = float(goal_reward)
        self.step_cost = float(step_cost)
        self.exclude_near_start = exclude_near_start
        self.goals = goals
        self.reward_levels = (-self.step_cost, self.goal_reward)

    @property
    def num_cells(self) -> int:
        """Cells of the grid, size²."""
        return self.size * self.size

    def cell_index(self, cell: Array) -> Array:
        """Index x·size + y of a cell ``[..., 2]`` (the reference's ``task_to_id``)."""
        cell = jnp.asarray(cell).astype(jnp.int32)
        return cell[..., 0] * self.size + cell[..., 1]

    def cells(self) -> Array:
        """Every cell as an observation, float32 ``[size², 2]``, row i = cell with index i."""
        i = jnp.arange(self.num_cells)
        return jnp.stack([i // self.size, i % self.size], axis=-1).astype(jnp.float32)

    def sample_tasks(self, key: Array, n: int, split: str = "train") -> GridTask:
        check_positive("n", n)
        check_split(split)
        idx = jax.random.randint(split_key(key, split), (n,), 0, len(self.goals))
        return GridTask(goal=jnp.asarray(self.goals)[idx])

    def reset(self, key: Array, task: GridTask) -> EnvState:
        del key  # deterministic start in the corner
        cell = jnp.zeros((2,), jnp.int32)
        return EnvState(obs=cell.astype(jnp.float32), reward=jnp.zeros(()),
                        done=jnp.zeros(()), t=jnp.zeros((), jnp.int32), physics=cell)

    def reward(self, cell: Array, task: GridTask) -> Array:
        """r = goal_reward if the cell is the goal, else −step_cost."""
        on_goal = jnp.all(jnp.asarray(cell).astype(jnp.int32) == task.goal)
        return jnp.where(on_goal, self.goal_reward, -self.step_cost).astype(jnp.float32)

    def move(self, cell: Array, k: Array) -> Array:
        """p' = clip(p + Δ_k, 0, size − 1) for action index ``k``."""
        return jnp.clip(cell + jnp.asarray(MOVES, jnp.int32)[k], 0, self.size - 1)

    def step(self, state: EnvState, action: Array, task: GridTask) -> EnvState:
        self.check_action(action)
        cell = self.move(state.physics, jnp.argmax(action))
        t = state.t + 1
        done = (t >= self.horizon).astype(jnp.float32)
        return EnvState(obs=cell.astype(jnp.float32), reward=self.reward(cell, task),
                        done=done, t=t, physics=cell)

    def task_features(self, task: GridTask) -> Array:
        return jnp.asarray(task.goal).astype(jnp.float32)

    def describe(self) -> dict:
        return {**super().describe(), "size": self.size, "num_goals": len(self.goals)}
