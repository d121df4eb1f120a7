"""The gridworld family (variBAD's GridNavi) and its exact Bayes-optimal reference."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmeta import envs
from jaxmeta.envs.gridworld import GridTask, Gridworld
from jaxmeta.envs.gridworld_bayes import (
    bayes_optimal_counts,
    bayes_optimal_returns,
    oracle_returns,
)

KEY = jax.random.PRNGKey(0)
STAY, UP, RIGHT, DOWN, LEFT = range(5)


def go(fam, cell, k, goal=(4, 4), vector=None):
    task = GridTask(goal=jnp.asarray(goal, jnp.int32))
    s = fam.reset(KEY, task).replace(physics=jnp.asarray(cell, jnp.int32))
    a = jax.nn.one_hot(k, 5) if vector is None else jnp.asarray(vector, jnp.float32)
    return fam.step(s, a, task)


def test_each_action_walls_and_argmax_of_any_vector():
    fam = envs.make("gridworld")
    assert fam.discrete_actions and fam.describe()["discrete_actions"]
    assert not envs.make("navigation2d").discrete_actions
    for k, want in [(STAY, (2, 2)), (UP, (2, 3)), (RIGHT, (3, 2)), (DOWN, (2, 1)),
                    (LEFT, (1, 2))]:
        s = go(fam, (2, 2), k)
        np.testing.assert_array_equal(s.physics, want)
        np.testing.assert_array_equal(s.obs, np.asarray(want, np.float32))
    for cell, k in [((0, 0), DOWN), ((0, 0), LEFT), ((4, 4), UP), ((4, 4), RIGHT)]:
        np.testing.assert_array_equal(go(fam, cell, k).physics, cell)  # wall: stay put
    s = go(fam, (2, 2), None, vector=[-0.3, 0.1, 2.5, -4.0, 0.0])  # argmax = right
    np.testing.assert_array_equal(s.physics, (3, 2))


def test_reward_is_for_the_cell_after_the_move_and_time_limit():
    fam = envs.make("gridworld", horizon=4)
    assert fam.reward_levels == (-0.1, 1.0)
    assert float(go(fam, (3, 4), RIGHT).reward) == pytest.approx(1.0)
    assert float(go(fam, (4, 4), STAY).reward) == pytest.approx(1.0)
    assert float(go(fam, (4, 4), LEFT).reward) == pytest.approx(-0.1)  # left the goal
    task = GridTask(goal=jnp.asarray([2, 2], jnp.int32))
    assert float(fam.reward(jnp.asarray([2.0, 2.0]), task)) == pytest.approx(1.0)
    s = fam.reset(KEY, task)
    np.testing.assert_array_equal(s.obs, [0.0, 0.0])
    for t in range(1, 5):
        s = fam.step(s, jax.nn.one_hot(UP, 5), task)
        assert float(s.done) == (1.0 if t == 4 else 0.0) and int(s.t) == t
    custom = Gridworld(goal_reward=2.0, step_cost=0.5)
    assert float(go(custom, (0, 0), UP).reward) == -0.5 and custom.reward_levels == (-0.5, 2.0)


def test_cells_and_cell_index_agree():
    fam = envs.make("gridworld")
    cells = fam.cells()
    assert cells.shape == (25, 2) and cells.dtype == jnp.float32
    np.testing.assert_array_equal(fam.cell_index(cells), np.arange(25))
    np.testing.assert_array_equal(cells[7], [1.0, 2.0])  # x·5 + y, as variBAD's task_to_id


def test_goal_distribution_excludes_the_start_block_and_is_uniform():
    fam = envs.make("gridworld")
    near = {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert len(fam.goals) == 21 and not near & {tuple(g) for g in fam.goals.tolist()}
    n = 21_000
    goals = np.asarray(fam.sample_tasks(KEY, n, "train").goal)
    seen = {tuple(g) for g in goals.tolist()}
    assert seen == {tuple(g) for g in fam.goals.tolist()}
    counts = np.asarray([np.sum(np.all(goals == g, axis=1)) for g in fam.goals])
    assert np.all(np.abs(counts - n / 21) < 5 * np.sqrt(n / 21))  # 5 binomial sigmas
    test, ood = (np.asarray(fam.sample_tasks(KEY, 200, s).goal) for s in ("test", "ood"))
    assert not np.array_equal(goals[:200], test) and not np.array_equal(test, ood)
    assert {tuple(g) for g in ood.tolist()} <= seen  # no ood region on this grid
    np.testing.assert_array_equal(fam.task_features(GridTask(goal=jnp.asarray([3, 1]))),
                                  [3.0, 1.0])


def test_bad_input_names_the_field():
    for kw, field in [({"size": 0}, "size"), ({"horizon": 0}, "horizon"),
                      ({"goal_reward": 0.0}, "goal_reward"), ({"step_cost": -1.0}, "step_cost"),
                      ({"exclude_near_start": "yes"}, "exclude_near_start"),
                      ({"size": 2}, "size=2")]:
        with pytest.raises(ValueError, match=field):
            envs.make("gridworld", **kw)
    assert len(envs.make("gridworld", size=2, exclude_near_start=False).goals) == 4
    with pytest.raises(ValueError, match="episodes"):
        bayes_optimal_returns({"size": 3}, 0)
    with pytest.raises(ValueError, match="size=8"):
        bayes_optimal_returns({"size": 8}, 1)


# --- the Bayes-optimal planner against brute force over every open-loop plan --------------


def brute_force(size, horizon, episodes, exclude, r=10, c=1):
    """Σ_g of each episode's return (integer units: reward r on the goal, −c elsewhere),
    for every plan; returns (best total, lexicographically largest per-episode vector
    among the best). A plan is one action sequence per episode, followed while the goal is
    unseen (observations are deterministic until then); once seen, the agent acts
    optimally with the goal known (computed by value iteration, not assumed)."""
    goals = [(x, y) for x in range(size) for y in range(size)
             if not (exclude and x <= 1 and y <= 1)]
    moves = [(0, 0), (0, 1), (1, 0), (0, -1), (-1, 0)]
    step = lambda p, a: (min(max(p[0] + moves[a][0], 0), size - 1),
                         min(max(p[1] + moves[a][1], 0), size - 1))
    cells = [(x, y) for x in range(size) for y in range(size)]

    def known_value(g):  # V[n][p]: best return of n steps from p with g known
        v = [{p: 0 for p in cells}]
        for _ in range(horizon):
            v.append({p: max((r if step(p, a) == g else -c) + v[-1][step(p, a)]
                             for a in range(5)) for p in cells})
        return v

    seqs = list(itertools.product(range(5), repeat=horizon))
    # per sequence and goal: the episode's return if g is first seen in it (None if not)
    hit = np.full((len(seqs), len(goals)), np.iinfo(np.int64).min, np.int64)
    for g_i, g in enumerate(goals):
        v = known_value(g)
        for s_i, seq in enumerate(seqs):
            p = (0, 0)
            for t, a in enumerate(seq, start=1):
                p = step(p, a)
                if p == g:
                    hit[s_i, g_i] = -c * (t - 1) + r + v[horizon - t][g]
                    break
    later = np.asarray([known_value(g)[horizon][(0, 0)] for g in goals])
    plans = np.indices((len(seqs),) * episodes).reshape(episodes, -1)
    seen = np.zeros((plans.shape[1], len(goals)), bool)
    per_episode = []
    for e in range(episodes):
        h = hit[plans[e]]
        found = h != np.iinfo(np.int64).min
        ret = np.where(seen, later, np.where(found, h, -c * horizon))
        per_episode.append(ret.sum(axis=1))
        seen |= found
    per_episode = np.stack(per_episode, axis=1)
    total = per_episode.sum(axis=1)
    best = per_episode[total == total.max()]
    lex = max(map(tuple, best.tolist()))
    return int(total.max()), lex, len(goals)


@pytest.mark.parametrize("size, horizon, episodes, exclude", [
    (3, 4, 2, True), (3, 3, 3, True), (3, 3, 2, False), (2, 3, 3, False), (3, 5, 1, True)])
def test_planner_equals_brute_force_over_all_plans(size, horizon, episodes, exclude):
    spec = {"size": size, "horizon": horizon, "exclude_near_start": exclude}
    total, lex, n = brute_force(size, horizon, episodes, exclude)
    got = bayes_optimal_returns(spec, episodes)  # goal_reward 1, step_cost 0.1: units of 0.1
    assert got.sum() == pytest.approx(total / (10 * n), abs=1e-9)
    np.testing.assert_allclose(got, np.asarray(lex) / (10 * n), atol=1e-9)
    oracle = oracle_returns(spec, episodes)
    assert oracle.sum() >= got.sum() - 1e-12 and np.all(oracle >= got - 1e-12)


def test_paper_grid_first_episode_meets_its_upper_bound():
    """5×5, H = 15: step 1 finds nothing (the start's neighbours are excluded) and each later
    step at most one cell, so S_1 ≤ Σ_{t=2}^{15} (16 − t) = 105; the planner reaches it."""
    assert bayes_optimal_counts({"horizon": 15}, 1) == (105,)
    np.testing.assert_allclose(bayes_optimal_returns({"horizon": 15}, 1), [4.0])


@pytest.mark.slow
def test_paper_grid_second_episode_meets_the_oracle():
    """After episode 1 no goal can pay more than with it known: S_e ≤ oracle = 240. With 2
    episodes the planner reaches (105, 240), so every goal is found by the end of episode 2
    and the 3- and 4-episode optima are (105, 240, 240[, 240]) (~9 s)."""
    spec = {"horizon": 15}
    assert bayes_optimal_counts(spec, 2) == (105, 240)
    np.testing.assert_allclose(bayes_optimal_returns(spec, 2), [4.0, 1.1 * 240 / 21 - 1.5])
    np.testing.assert_allclose(oracle_returns(spec, 2), 1.1 * 240 / 21 - 1.5)
