"""Task families: rewards from their equations, split geometry, API, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmeta import envs
from jaxmeta.rollout import rollout

KEY = jax.random.PRNGKey(0)


def first(tree):
    return jax.tree.map(lambda x: x[0], tree)


def test_navigation_dynamics_and_reward_equation():
    fam = envs.make("navigation2d")
    task = envs.NavTask(goal=jnp.array([0.3, -0.2]))
    s = fam.reset(KEY, task)
    np.testing.assert_array_equal(s.obs, [0.0, 0.0])
    s = fam.step(s, jnp.array([0.5, -0.05]), task)  # x clipped to 0.1
    np.testing.assert_allclose(s.obs, [0.1, -0.05], rtol=1e-6)
    assert float(s.reward) == pytest.approx(-np.hypot(0.1 - 0.3, -0.05 + 0.2), rel=1e-6)
    assert int(s.t) == 1 and float(s.done) == 0.0


def test_navigation_episode_lasts_horizon():
    fam = envs.make("navigation2d", horizon=7)
    task = first(fam.sample_tasks(KEY, 1))
    traj = rollout(fam, lambda o: (jnp.zeros(2), jnp.zeros(2)), task, KEY, 3)
    assert traj.reward.shape == (3, 7)
    np.testing.assert_array_equal(traj.mask, 1.0)
    np.testing.assert_array_equal(traj.done[:, -1], 1.0)
    # rewards recomputed from the stored observations (positions)
    pos_next = jnp.concatenate([traj.obs[:, 1:], (traj.obs[:, -1] + jnp.clip(
        traj.action[:, -1], -0.1, 0.1))[:, None]], axis=1)
    np.testing.assert_allclose(traj.reward, -jnp.linalg.norm(pos_next - task.goal, axis=-1),
                               rtol=1e-5, atol=1e-6)


def test_sparse_reward_follows_pearls_rule_at_the_radius():
    """PEARL's sparse point robot: r = 1 − d for d ≤ 0.2 (boundary included), else 0."""
    fam = envs.make("navigation2d_sparse")
    task = envs.NavTask(goal=jnp.array([0.0, 0.0]))
    for d in [0.0, 0.1, 0.19999, 0.20001, 0.5]:  # float32: 0.2 itself rounds either side
        want = 1.0 - d if d <= 0.2 else 0.0
        got = float(fam.reward(jnp.array([d, 0.0]), task))
        assert got == pytest.approx(want, abs=1e-6), d
    # just inside pays ~0.8, just outside nothing: the step at the radius is 0.8, not 1.8
    inside, outside = (float(fam.reward(jnp.array([0.0, r]), task)) for r in (0.199, 0.201))
    assert inside == pytest.approx(0.801, abs=1e-6) and outside == 0.0


def test_split_geometry():
    fam = envs.make("navigation2d")
    train = fam.sample_tasks(KEY, 500, "train").goal
    test = fam.sample_tasks(KEY, 500, "test").goal
    ood = fam.sample_tasks(KEY, 500, "ood").goal
    assert np.all(np.abs(train) <= 0.5) and np.all(np.abs(test) <= 0.5)
    assert not np.allclose(train, test)  # independent draws
    r = np.linalg.norm(ood, axis=-1)
    assert np.all((r > 0.75) & (r < 1.0))
    np.testing.assert_array_equal(train, fam.sample_tasks(KEY, 500, "train").goal)
    sparse = envs.make("navigation2d_sparse")
    g = sparse.sample_tasks(KEY, 200, "train").goal
    np.testing.assert_allclose(np.linalg.norm(g, axis=-1), 1.0, rtol=1e-5)
    assert np.all(g[:, 1] >= -1e-6)
    assert np.all(sparse.sample_tasks(KEY, 200, "ood").goal[:, 1] <= 1e-6)


# MJX families get the same checks through one shared compiled rollout each
# (tests/mjx_checks.py); here every pure-JAX family, plus one MJX family, goes through
# jaxmeta.rollout (horizon shortened: compile time does not depend on it).
ROLLOUT_API = [n for n in envs.names() if not isinstance(envs.make(n), envs.MJXFamily)]


@pytest.mark.parametrize("name", ROLLOUT_API + ["reacher2_target"])
def test_api_every_family(name):
    fam = envs.make(name, horizon=12) if name == "reacher2_target" else envs.make(name)
    tasks = fam.sample_tasks(KEY, 4)
    assert fam.task_features(first(tasks)).shape == (fam.task_feature_size,)
    traces = []

    def run(tasks, keys):
        traces.append(1)
        pol = lambda o: (jnp.zeros(fam.action_size), jnp.zeros(fam.action_size))
        return jax.vmap(lambda t, k: rollout(fam, pol, t, k, 2))(tasks, keys)

    run_j = jax.jit(run)
    traj = run_j(tasks, jax.random.split(KEY, 4))
    traj = run_j(tasks, jax.random.split(jax.random.PRNGKey(1), 4))
    assert len(traces) == 1  # no recompilation
    assert traj.obs.shape == (4, 2, fam.horizon, fam.obs_size)
    assert traj.obs.dtype == jnp.float32 and traj.reward.dtype == jnp.float32
    assert np.all(np.isfinite(traj.reward)) and np.all(np.isfinite(traj.obs))


def test_bad_input_is_refused_with_clear_messages():
    with pytest.raises(ValueError, match="navigation2d.*navigation2d_sparse"):
        envs.make("nope")
    fam = envs.make("navigation2d")
    with pytest.raises(ValueError, match="split"):
        fam.sample_tasks(KEY, 3, "validation")
    with pytest.raises(ValueError, match="n must be a positive integer"):
        fam.sample_tasks(KEY, 0)
    with pytest.raises(ValueError, match="horizon"):
        envs.make("navigation2d", horizon=-1)
    with pytest.raises(ValueError, match="bad overrides"):
        envs.make("navigation2d", bogus=1)
    task = first(fam.sample_tasks(KEY, 1))
    with pytest.raises(ValueError, match=r"action must have shape \(2,\)"):
        jax.jit(lambda a: fam.step(fam.reset(KEY, task), a, task))(jnp.zeros(3))
