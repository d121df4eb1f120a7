"""MJX checks for the target-reaching families (TESP agents, Go To Ring, sparse reacher)."""

import jax
import jax.numpy as jnp
import numpy as np

from tests import mjx_checks
from tests import mjx_harness as H

globals().update(mjx_checks.define([
    "reacher2_target", "reacher4_target", "wheeled_goal", "ant_target", "ant_ring",
    "reacher_sparse",
]))


def _run_with_targets(name, targets):
    fam = H.family(name)
    tasks = fam.sample_tasks(jax.random.PRNGKey(1), H.BATCH, "train")
    tasks = tasks.replace(target=jnp.asarray(targets, jnp.float32))
    keys = jax.random.split(jax.random.PRNGKey(2), H.BATCH)
    _, states = H.rollout_fn(name)(keys, tasks, 0.0 * H.random_actions(name))
    return jax.device_get(states)


def test_ant_ring_success_pays_ten_and_ends_the_episode():
    # target on the ant's start (reached at once) vs far away (never reached)
    states = _run_with_targets("ant_ring", [[0.0, 0.0], [6.0, 0.0], [6.0, 0.0]])
    assert states.reward[0, 0] == np.float32(10.0 - 0.005) and states.done[0, 0] == 1.0
    assert np.all(states.reward[1:, 0] == 0.0)  # absorbing after success
    assert np.allclose(states.reward[:, 1], -0.005) and np.all(states.done[:-1, 1] == 0.0)


def test_reacher_sparse_pays_one_inside_the_radius():
    # the fingertip starts at (1.7, 0); a zero velocity command keeps it there
    states = _run_with_targets("reacher_sparse", [[1.7, 0.0], [1.7, 0.06], [1.7, 0.06]])
    assert np.all(states.reward[:, 0] == 1.0)
    assert np.all(states.reward[:, 1] == 0.0)
