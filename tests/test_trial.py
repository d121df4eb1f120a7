"""Trials with memory (jaxmeta.meta.trial): input alignment, carry resets, returns, GAE,
and the trial buffer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmeta import envs
from jaxmeta.algorithms.rl2.config import RL2Config
from jaxmeta.algorithms.rl2.learner import rl2_agent
from jaxmeta.meta import buffer
from jaxmeta.meta.trial import (
    AgentOut,
    Prev,
    RecurrentAgent,
    check_trialable,
    recurrent_inputs,
    trial,
    trial_gae,
    unroll,
)
from jaxmeta.nets import GAUSSIAN
from jaxmeta.rollout import Trajectory, episode_returns

KEY = jax.random.PRNGKey(0)
FAM = envs.make("navigation2d", horizon=4)


def _hand_trial():
    """Two episodes of three steps, the first ending one step early (step 2 masked)."""
    action = jnp.arange(6, dtype=jnp.float32)[:, None] * jnp.ones((1, 2))
    reward = jnp.array([1.0, 2.0, 0.0, 4.0, 5.0, 6.0])
    done = jnp.array([0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    mask = jnp.array([1.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    return Trajectory(jnp.zeros((6, 2)), action, reward, done, mask, jnp.zeros(6))


def test_recurrent_inputs_are_the_previous_valid_step():
    prev = recurrent_inputs(_hand_trial())
    # step 0: zeros; step 3 (first of episode 2) sees step 1 (the last valid one), done = 1
    np.testing.assert_array_equal(prev.reward, [0, 1, 2, 2, 4, 5])
    np.testing.assert_array_equal(prev.done, [0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(prev.action[:, 0], [0, 0, 1, 1, 3, 4])


def _counting_agent():
    """carry = number of valid steps seen; value = carry; the action mean shows d_{t−1}."""
    def step(params, carry, obs, prev):
        carry = carry + 1.0
        return carry, AgentOut((jnp.full((2,), prev.done), jnp.full((2,), -20.0)), carry)

    return RecurrentAgent(lambda k: {}, lambda: jnp.zeros(()), step, GAUSSIAN)


def test_carry_runs_across_episodes_and_resets_only_at_the_trial_boundary():
    agent = _counting_agent()
    task = jax.tree.map(lambda x: x[0], FAM.sample_tasks(KEY, 1))
    keys = jax.random.split(KEY, 2)
    batch, (carry, _) = jax.vmap(lambda k: trial(FAM, agent, {}, task, k, 3))(keys)
    # one counter over the 3 × 4 steps of each trial, restarting at 1 in the second trial
    np.testing.assert_array_equal(batch.value.reshape(2, -1), np.tile(np.arange(1, 13), (2, 1)))
    np.testing.assert_array_equal(carry, [12, 12])
    # the environment resets at each episode boundary (navigation starts at the origin)
    np.testing.assert_array_equal(batch.traj.obs[:, :, 0], 0.0)
    # the done flag reaches the first step of episodes 2 and 3 only (σ ≈ 0: action = mean)
    flag = np.asarray(batch.traj.action[0, :, :, 0]).round(3)
    np.testing.assert_array_equal(flag[:, 0], [0, 1, 1])
    np.testing.assert_array_equal(flag[:, 1:], 0)


def test_rollout_equals_unroll_and_an_off_by_one_flag_does_not():
    cfg = RL2Config(gru_size=8)
    agent = rl2_agent(FAM, cfg)
    params = agent.init(KEY)
    task = jax.tree.map(lambda x: x[0], FAM.sample_tasks(KEY, 1))
    t, _ = trial(FAM, agent, params, task, KEY, 3)
    flat = t.flat().traj
    prev = recurrent_inputs(flat)
    logp = lambda p: agent.dist.log_prob(unroll(agent, params, flat.obs, p, flat.mask).dist,
                                         flat.action)
    np.testing.assert_allclose(logp(prev), flat.logp, rtol=1e-5, atol=1e-5)
    # the classic bug: the done flag of the *current* step instead of the previous one
    wrong = prev._replace(done=flat.done)
    assert np.abs(np.asarray(logp(wrong) - flat.logp)).max() > 1e-3


def test_episode_returns_of_a_trial_sum_to_the_trial_return():
    agent = rl2_agent(FAM, RL2Config(gru_size=8))
    task = jax.tree.map(lambda x: x[0], FAM.sample_tasks(KEY, 1))
    t, _ = trial(FAM, agent, agent.init(KEY), task, KEY, 3)
    per_episode = episode_returns(t.traj)
    assert per_episode.shape == (3,)
    np.testing.assert_allclose(per_episode.sum(), jnp.sum(t.flat().traj.reward), rtol=1e-6)


def test_trial_gae_matches_numpy_and_skips_masked_steps():
    r = np.array([1.0, -0.5, 9.0, 2.0, 0.3])
    v = np.array([0.2, 0.4, 7.0, -0.1, 0.5])
    m = np.array([1.0, 1.0, 0.0, 1.0, 1.0])
    g, lam = 0.9, 0.8
    # numpy: drop the masked step, GAE over the rest, terminal only at the end
    idx = np.flatnonzero(m)
    rv, vv = r[idx], v[idx]
    adv, a = np.zeros(len(idx)), 0.0
    for i in reversed(range(len(idx))):
        nv = vv[i + 1] if i + 1 < len(idx) else 0.0
        a = rv[i] + g * nv - vv[i] + g * lam * a
        adv[i] = a
    expect = np.zeros(5)
    expect[idx] = adv
    np.testing.assert_allclose(trial_gae(jnp.array(r), jnp.array(v), jnp.array(m), g, lam),
                               expect, rtol=1e-6)


def test_trial_buffer_wraps_and_samples_filled_slots():
    agent = rl2_agent(FAM, RL2Config(gru_size=4))
    task = jax.tree.map(lambda x: x[0], FAM.sample_tasks(KEY, 1))
    one = trial(FAM, agent, agent.init(KEY), task, KEY, 2)[0].flat()
    buf = buffer.init(one, 3)
    mark = lambda i: jax.tree.map(lambda x: jnp.stack([x] * 2), one)._replace(
        value=jnp.full((2, one.value.shape[0]), float(i)))
    buf = buffer.add(buf, mark(1))
    assert int(buf.size) == 2 and int(buf.write) == 2
    got = buffer.sample(buf, KEY, 50)
    assert set(np.unique(got.value)) == {1.0}  # never the empty third slot
    buf = buffer.add(buf, mark(2))
    assert int(buf.size) == 3 and int(buf.write) == 1
    np.testing.assert_array_equal(buf.data.value[:, 0], [2, 1, 2])  # slot 0 overwritten
    with pytest.raises(ValueError, match="capacity 3"):
        buffer.add(buf, jax.tree.map(lambda x: jnp.stack([x] * 4), one))


def test_untrialable_families_are_refused():
    with pytest.raises(ValueError, match="trial_episodes must be a positive integer"):
        check_trialable(FAM, 0)
    with pytest.raises(ValueError, match="not a TaskFamily"):
        check_trialable(object(), 2)
    with pytest.raises(ValueError, match="steps per trial"):
        check_trialable(envs.make("navigation2d", horizon=5000), 5)


def test_prev_vector_layout():
    p = Prev(jnp.array([1.0, 2.0]), jnp.array(3.0), jnp.array(1.0))
    np.testing.assert_array_equal(p.vector(), [1, 2, 3, 1])
