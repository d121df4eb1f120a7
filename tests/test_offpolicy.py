"""Off-policy pieces: the device ring buffer, SAC's losses, PEARL's product of Gaussians,
the schedule's bad-input checks, and SAC/PEARL learning on navigation2d."""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmeta import algorithms, envs
from jaxmeta import config as config_lib
from jaxmeta.algorithms.pearl import PEARLConfig, context_features, product_of_gaussians
from jaxmeta.algorithms.sac import SACConfig, Transition, kl_to_unit
from jaxmeta.envs.wrappers import FixedTask
from jaxmeta.meta import buffer
from jaxmeta.rl import sac
from tests.helpers import tiny_config, tiny_family

KEY = jax.random.PRNGKey(0)


def _items(lo, n):
    """Items whose every field is its own index: {"x": [i, i], "y": i}."""
    i = jnp.arange(lo, lo + n, dtype=jnp.float32)
    return {"x": jnp.stack([i, i], -1), "y": i}


def test_ring_buffer_matches_a_python_reference():
    """Writes wrap around over the oldest slots exactly like a bounded deque, sampling only
    returns filled slots, and windows are consecutive in write order across the wrap."""
    cap = 5
    buf = buffer.init({"x": jnp.zeros(2), "y": jnp.zeros(())}, cap)
    ref = collections.deque(maxlen=cap)
    lo = 0
    for n in (2, 2, 3, 4, 1):
        buf = buffer.add(buf, _items(lo, n))
        ref.extend(range(lo, lo + n))
        lo += n
        assert int(buf.size) == len(ref)
        stored = set(np.asarray(buf.data["y"])[:int(buf.size)].tolist()) if int(
            buf.size) < cap else set(np.asarray(buf.data["y"]).tolist())
        assert stored == set(ref)
        got = buffer.sample(buf, jax.random.fold_in(KEY, lo), 200)
        assert set(np.asarray(got["y"]).tolist()) <= set(ref)
        np.testing.assert_array_equal(got["x"][:, 0], got["y"])
        if len(ref) < 3:
            continue
        win = buffer.sample_windows(buf, jax.random.fold_in(KEY, 1000 + lo), 50, 3)
        order = list(ref)
        for w in np.asarray(win["y"]):
            start = order.index(int(w[0]))
            assert w.tolist() == order[start:start + 3]  # consecutive, never past the newest
    assert len(set(np.asarray(buffer.sample(buf, KEY, 400)["y"]).tolist())) == cap
    empty = buffer.clear(buf)
    assert int(empty.size) == 0 and int(empty.write) == 0
    with pytest.raises(ValueError, match="6 items do not fit a buffer of capacity 5"):
        buffer.add(buf, _items(0, 6))


def test_per_task_buffers_are_isolated_under_vmap():
    """A stack of buffers (one per task) written under vmap keeps each task's items apart;
    ``sample_rows`` draws from the chosen tasks' filled slots only."""
    n_tasks, cap = 3, 4
    one = buffer.init({"x": jnp.zeros(2), "y": jnp.zeros(())}, cap)
    stack = jax.tree.map(lambda x: jnp.broadcast_to(x, (n_tasks,) + x.shape), one)
    # task t holds 100t, 100t+1, 100t+2
    batch = jax.vmap(lambda t: jax.tree.map(lambda x: x + 100.0 * t, _items(0, 3)))(
        jnp.arange(n_tasks))
    stack = jax.vmap(buffer.add)(stack, batch)
    stack = jax.vmap(buffer.add)(stack, jax.tree.map(lambda x: x[:, :1] + 10, batch))
    assert stack.size.tolist() == [4, 4, 4] and stack.capacity == cap
    rows = jnp.array([2, 0])
    got = np.asarray(buffer.sample_rows(stack, KEY, rows, 300)["y"])
    assert got.shape == (2, 300)
    assert set(got[0].tolist()) == {200, 201, 202, 210}
    assert set(got[1].tolist()) == {0, 1, 2, 10}


def test_tanh_gaussian_log_prob_is_the_change_of_variables():
    mean, log_std = jnp.array([0.3, -1.2]), jnp.array([-0.5, 0.2])
    a, logp = sac.tanh_gaussian_sample(KEY, mean, log_std)
    u = np.arctanh(np.asarray(a, np.float64))
    s = np.exp(np.asarray(log_std, np.float64))
    ref = np.sum(-0.5 * ((u - np.asarray(mean)) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)
                 - np.log(1 - np.tanh(u) ** 2))
    np.testing.assert_allclose(float(logp), ref, rtol=1e-4)


def test_sac_losses_against_hand_computed_values():
    r, d = jnp.array([1.0, -2.0]), jnp.array([0.0, 1.0])
    next_q = jnp.array([[3.0, 5.0], [4.0, 1.0]])  # twin target critics
    next_logp, alpha, gamma, scale = jnp.array([-1.0, 0.5]), 0.2, 0.9, 2.0
    y = sac.soft_target(r, d, next_q, next_logp, alpha, gamma, scale)
    # task 0: 2·1 + 0.9·(min(3, 4) − 0.2·(−1)) = 2 + 0.9·3.2; task 1 is terminal: 2·(−2)
    np.testing.assert_allclose(y, [2 + 0.9 * 3.2, -4.0], rtol=1e-6)
    q = jnp.array([[4.0, -4.0], [5.0, -3.0]])
    mask = jnp.array([1.0, 1.0])
    want = 0.5 * ((4 - 4.88) ** 2 + 0) / 2 + 0.5 * ((5 - 4.88) ** 2 + 1) / 2
    np.testing.assert_allclose(sac.critic_loss(q, y, mask), want, rtol=1e-5)
    # a masked transition does not count
    np.testing.assert_allclose(sac.critic_loss(q, y, jnp.array([1.0, 0.0])),
                               0.5 * (4 - 4.88) ** 2 + 0.5 * (5 - 4.88) ** 2, rtol=1e-5)
    logp = jnp.array([-1.0, -3.0])
    np.testing.assert_allclose(sac.actor_loss(logp, q, alpha, mask),
                               ((0.2 * -1 - 4) + (0.2 * -3 + 4)) / 2, rtol=1e-6)
    log_alpha = jnp.log(0.5)
    np.testing.assert_allclose(sac.temperature_loss(log_alpha, logp, -2.0, mask),
                               -np.log(0.5) * ((-1 - 2) + (-3 - 2)) / 2, rtol=1e-6)
    # the temperature's gradient raises α when the entropy is below the target
    g = jax.grad(lambda la: sac.temperature_loss(la, logp, 5.0, mask))(log_alpha)
    assert float(g) < 0  # −mean(logp + H̄) = −(−2 + 5) < 0: descending raises log α
    tgt = {"w": jnp.array([1.0, 2.0])}
    new = sac.polyak(tgt, {"w": jnp.array([3.0, 6.0])}, 0.25)
    np.testing.assert_allclose(new["w"], [1.5, 3.0])


def test_product_of_gaussians_and_kl_against_numpy():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(6, 3)).astype(np.float32)
    var = rng.uniform(0.2, 2.0, size=(6, 3)).astype(np.float32)
    w = np.array([1, 1, 0, 1, 0, 1], np.float32)
    m, v = product_of_gaussians(jnp.asarray(mu), jnp.asarray(var), jnp.asarray(w))
    keep = w > 0
    prec = np.sum(1 / var[keep], 0)
    np.testing.assert_allclose(v, 1 / prec, rtol=1e-5)
    np.testing.assert_allclose(m, np.sum(mu[keep] / var[keep], 0) / prec, rtol=1e-5)
    # no factor: the prior
    m0, v0 = product_of_gaussians(jnp.asarray(mu), jnp.asarray(var), jnp.zeros(6))
    np.testing.assert_array_equal(m0, 0.0)
    np.testing.assert_array_equal(v0, 1.0)
    kl = 0.5 * np.sum(var[0] + mu[0] ** 2 - 1 - np.log(var[0]))
    np.testing.assert_allclose(kl_to_unit(jnp.asarray(mu[0]), jnp.asarray(var[0])), kl,
                               rtol=1e-5)


def test_context_layouts_and_action_bounds():
    """A context transition is [s, a, r] or [s, a, r, s']; the squashed policy's actions
    land inside the family's box (navigation: ±max_speed; MuJoCo: the control range)."""
    t = Transition(obs=jnp.array([1.0, 2.0]), action=jnp.array([3.0]), reward=jnp.array(4.0),
                   next_obs=jnp.array([5.0, 6.0]), terminal=jnp.array(0.0),
                   mask=jnp.array(1.0), critic_reward=jnp.array(-7.0))
    np.testing.assert_array_equal(context_features(t, "sar"), [1, 2, 3, 4])
    np.testing.assert_array_equal(context_features(t, "sars"), [1, 2, 3, 4, 5, 6])
    low, high = envs.make("navigation2d", max_speed=0.3).action_bounds()
    np.testing.assert_allclose(high, [0.3, 0.3])
    np.testing.assert_array_equal(low, -high)
    cheetah = envs.make("halfcheetah_vel_pearl", physics="mujoco").action_bounds()
    np.testing.assert_array_equal(np.stack(cheetah), [[-1.0] * 6, [1.0] * 6])
    assert envs.make("gridworld").action_bounds() is None
    learner = algorithms.make("sac", envs.make("navigation2d", horizon=10, max_speed=0.3),
                              tiny_config("sac"))
    params = learner.init(KEY).params
    big = jnp.array([50.0, -50.0])  # far from the origin: the policy's mean saturates
    for k in range(8):
        a = np.asarray(learner.act(params, big * k, jax.random.PRNGKey(k)))
        assert np.all(np.abs(a) <= 0.3 + 1e-6), a


@pytest.mark.parametrize("edit, match", [
    (dict(capacity=8, batch_size=16), "batch_size=16 is more than capacity=8"),
    (dict(context_size=0), "context_size must be a positive integer"),
    (dict(kl_weight=-0.1), "kl_weight must satisfy 0 <= kl_weight"),
    (dict(context_layout="sarsa"), r"context_layout='sarsa' is not valid.*'sar', 'sars'"),
    (dict(meta_batch_size=4), "meta_batch_size=4 is more than num_train_tasks=3"),
    (dict(capacity=16, context_size=32, batch_size=8), "context_size=32 is more than capacity"),
    (dict(critic_reward="shaped"), r"critic_reward='shaped' is not valid.*'env', 'dense'"),
])
def test_bad_pearl_configs_are_refused(edit, match):
    with pytest.raises(ValueError, match=match):
        tiny_config("pearl", **edit)


def test_dense_critic_reward_on_sparse_navigation():
    """``critic_reward="dense"``: the buffers keep the sparse env reward (what the context
    and the returns read) and, beside it, −distance to the goal for the Bellman target;
    with ``env`` the two coincide."""
    fam = envs.make("navigation2d_sparse", horizon=10, max_speed=0.3)
    for mode in ("dense", "env"):
        learner = algorithms.make("pearl", fam, tiny_config("pearl", critic_reward=mode))
        mem = learner.init(KEY).opt_state["memory"]
        rl, tasks = mem["rl"], mem["tasks"]
        n = int(rl.size[0])
        tr = jax.tree.map(lambda x: np.asarray(x[:, :n]), rl.data)
        d = np.linalg.norm(tr.next_obs - np.asarray(tasks.goal)[:, None], axis=-1)
        np.testing.assert_allclose(tr.reward, np.where(d <= 0.2, 1 - d, 0.0), atol=1e-6)
        want = -d if mode == "dense" else tr.reward
        np.testing.assert_allclose(tr.critic_reward, want, atol=1e-6)
    task = jax.tree.map(lambda x: x[0], tasks)
    state = fam.step(fam.reset(KEY, task), jnp.array([0.1, 0.1]), task)
    assert envs.make("navigation2d").dense_reward(state, tasks) is state.reward  # default
    # a wrapper forwards the family's dense reward (not the base class's default)
    np.testing.assert_allclose(FixedTask(fam, task).dense_reward(state, task),
                               -np.linalg.norm(np.asarray(state.obs) - np.asarray(task.goal)),
                               rtol=1e-6)


def test_schedules_that_cannot_run_are_refused_before_tracing():
    fam = tiny_family()  # horizon 10
    with pytest.raises(ValueError, match="prior_steps=15 is not a whole number of episodes"):
        algorithms.make("pearl", fam, tiny_config("pearl", prior_steps=15))
    with pytest.raises(ValueError, match=r"initial_steps \(capacity\): 400 items do not fit"):
        algorithms.make("sac", fam, tiny_config("sac", initial_steps=400))
    with pytest.raises(ValueError, match="gridworld has discrete actions"):
        algorithms.make("sac", envs.make("gridworld"), SACConfig())


def _train(algo, family, cfg, iterations, seed):
    learner = algorithms.make(algo, family, cfg)
    run = jax.jit(lambda s: jax.lax.scan(lambda s, _: learner.update(s), s, None, iterations))
    state, metrics = run(jax.jit(learner.init)(jax.random.PRNGKey(seed)))
    return learner, state, metrics


@pytest.mark.slow
def test_sac_solves_a_fixed_goal_navigation_task():
    """Single-task SAC: the deterministic policy ends near the goal (a random policy's
    return is ≈ −8 on this 20-step task; reaching and staying costs ≈ −1)."""
    fam = envs.make("navigation2d", horizon=20)
    cfg = config_lib.replace(SACConfig(), hidden_sizes=(64, 64), num_train_tasks=1,
                             capacity=4000, initial_steps=100, prior_steps=40,
                             train_steps=100, batch_size=128, gamma=0.9)
    learner, state, metrics = _train("sac", fam, cfg, 80, seed=0)
    task = jax.tree.map(lambda x: x[0], state.opt_state["memory"]["tasks"])
    ret = learner.adapt(state, task, KEY, 0).returns[0]
    dist = float(jnp.linalg.norm(task.goal))
    assert float(metrics["pre_return"][0]) < -5.0  # it started far from it
    # the best return: move at 0.1 per step straight to the goal, then stay on it
    best = -sum(max(dist - 0.1 * t, 0.0) for t in range(1, 21))
    assert float(ret) > best - 1.0, (float(ret), best)


@pytest.mark.slow
def test_pearl_adapts_on_held_out_navigation_goals():
    """After meta-training on 20 goals, PEARL's return on 20 held-out goals improves from
    the prior's episode (z ~ N(0, I)) to the posterior's (z ~ q(z | that episode)), by
    more than 2.0 for every seed (≈ 5 in the tuning runs at this budget)."""
    fam = envs.make("navigation2d", horizon=20)
    cfg = config_lib.replace(PEARLConfig(), hidden_sizes=(64, 64), encoder_hidden_sizes=(64, 64),
                             num_train_tasks=20, capacity=2000, initial_steps=100,
                             tasks_per_iteration=4, prior_steps=40, extra_posterior_steps=40,
                             train_steps=200, batch_size=64, meta_batch_size=8,
                             context_size=32, reward_scale=20.0, gamma=0.9, actor_lr=1e-3,
                             critic_lr=1e-3, encoder_lr=1e-3)
    tasks = fam.sample_tasks(jax.random.PRNGKey(7), 20, "test")
    learner = algorithms.make("pearl", fam, cfg)
    seeds = jax.random.split(jax.random.PRNGKey(0), 2)  # two seeds, vmapped: one program
    # init one seed at a time, as the trainer does (a vmapped init batches the orthogonal
    # initialisers' QRs, which can deadlock jaxlib's CPU thread pool: runs.compiled_init)
    run = jax.jit(jax.vmap(lambda s: jax.lax.scan(
        lambda s, _: (learner.update(s)[0], None), s, None, 50)[0]))
    states = run(jax.jit(lambda ks: jax.lax.map(learner.init, ks))(seeds))
    keys = jax.random.split(jax.random.PRNGKey(100), 20)
    ret = jax.jit(jax.vmap(lambda st: jax.vmap(lambda t, k: learner.adapt(st, t, k, 2).returns)(
        tasks, keys)))(states)  # [seed, task, episode]
    pre, post = np.asarray(ret[:, :, 0].mean(1)), np.asarray(ret[:, :, 1:].mean((1, 2)))
    assert np.all(post - pre > 2.0), (pre, post)
