"""TESP (Lan et al. 2019): the episode buffer, the embedding, the fast-update, the
meta-gradient, the ablation switches, and learning on 2D navigation."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxmeta import algorithms
from jaxmeta.algorithms.tesp import (
    PRESETS,
    TESPConfig,
    apply_preset,
    buffer_init,
    buffer_insert,
    build_tesp,
    paper_config,
)
from jaxmeta.evaluate import evaluate
from jaxmeta.rollout import Trajectory, episode_returns
from jaxmeta.train import TrainOptions, train
from tests.helpers import TINY_TESP, tiny_family

KEY = jax.random.PRNGKey(0)


@functools.cache
def built(preset: str = "tesp", **overrides):
    cfg = apply_preset(preset, dataclasses.replace(TINY_TESP, **overrides))
    return build_tesp(tiny_family(), cfg)


@functools.cache
def sampled(preset: str = "tesp", **overrides):
    """(learner, parts, params, batches) of one sampled meta-batch."""
    learner, parts = built(preset, **overrides)
    params = learner.init(KEY).params
    _, batches = jax.jit(parts.sample_batches)(params, jax.random.PRNGKey(1))
    return learner, parts, params, batches


def _task(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


# --- the episode buffer ---------------------------------------------------------------------


def _fake_episodes(key, n, horizon=4):
    """n episodes whose obs carry an id and whose returns are random."""
    ids = jax.random.randint(key, (n,), 0, 10**6).astype(jnp.float32)
    r = jax.random.normal(jax.random.fold_in(key, 1), (n, horizon))
    return Trajectory(obs=jnp.broadcast_to(ids[:, None, None], (n, horizon, 1)),
                      action=jnp.zeros((n, horizon, 1)), reward=r, done=jnp.zeros((n, horizon)),
                      mask=jnp.ones((n, horizon)), logp=jnp.zeros((n, horizon)))


def _reference_best(batches_of_returns, m):
    """Python reference of Eq. 3-4: after each insertion keep the best m by return."""
    kept, out = [], []
    for rets in batches_of_returns:
        kept = sorted(kept + list(rets), reverse=True)[:m]
        out.append(kept)
    return out


def test_buffer_keeps_best_m_per_task_under_vmap():
    tasks, inserts, n, m = 5, 4, 6, 3
    keys = jax.random.split(KEY, tasks * inserts).reshape(tasks, inserts, 2)
    eps = jax.vmap(jax.vmap(lambda k: _fake_episodes(k, n)))(keys)  # [tasks, inserts, n, ...]

    def fill(ep):
        buf = buffer_init(m, _task(ep, 0))

        def body(b, e):
            b = buffer_insert(b, e)
            return b, b

        return jax.lax.scan(body, buf, ep)[1]

    bufs = jax.jit(jax.vmap(fill))(eps)  # leaves [tasks, inserts, m, ...]
    rets = np.asarray(episode_returns(eps))
    for t in range(tasks):
        ref = _reference_best(rets[t], m)
        for i in range(inserts):
            got = np.asarray(bufs.ret[t, i])
            np.testing.assert_allclose(got, ref[i], rtol=1e-6)
            # the stored episodes are the ones with those returns (ids travel with them)
            ids = np.asarray(bufs.traj.obs[t, i, :, 0, 0])
            all_ids = np.asarray(eps.obs[t, : i + 1, :, 0, 0]).ravel()
            all_rets = rets[t, : i + 1].ravel()
            for k in range(m):
                np.testing.assert_allclose(all_rets[all_ids == ids[k]], got[k], rtol=1e-6)
            assert np.all(np.asarray(bufs.valid[t, i]) == 1)


def test_sampled_buffers_follow_warmup_and_fast_updates():
    """B⁰ = S_M(warm-up), B^k = S_M(B^{k-1} ∪ τ^k), per task of a vmapped meta-batch."""
    learner, _, _, b = sampled()
    m = learner.config.buffer_size
    for t in range(learner.config.meta_batch_size):
        seq = [np.asarray(episode_returns(_task(b.warm, t)))]
        seq += [np.asarray(episode_returns(_task(b.inner, t)))[k]
                for k in range(learner.config.fast_updates)]
        ref = _reference_best(seq, m)
        got = np.asarray(b.buffers.ret[t])  # [K+1, M]
        assert got.shape == (learner.config.fast_updates + 1, m)
        for k in range(len(ref)):
            np.testing.assert_allclose(got[k], ref[k], rtol=1e-6)


def test_v1_buffer_keeps_every_episode():
    learner, _, _, b = sampled("tesp_v1")
    n, k = learner.config.inner_episodes, learner.config.fast_updates
    valid = np.asarray(b.buffers.valid[0])  # [K+1, capacity]
    assert valid.shape == (k + 1, n * (k + 1))
    np.testing.assert_array_equal(valid.sum(axis=1), n * np.arange(1, k + 2))
    all_rets = np.concatenate([episode_returns(_task(b.warm, 0))]
                              + [episode_returns(_task(b.inner, 0))[j] for j in range(k)])
    np.testing.assert_allclose(np.sort(np.asarray(b.buffers.ret[0, -1])), np.sort(all_rets),
                               rtol=1e-6)


# --- the embedding and the fast-update ------------------------------------------------------


@pytest.mark.parametrize("preset", ["tesp", "tesp_v1"])
def test_embedding_is_mean_of_encoder_over_buffer(preset):
    learner, parts, params, b = sampled(preset)
    for k in (0, learner.config.fast_updates):
        buf = jax.tree.map(lambda x: x[0, k], b.buffers)
        h = parts.embedding(params, {"encoder": params["encoder"]}, buf)
        gs = [parts.encoder.episode(params["encoder"], jax.tree.map(lambda x: x[j], buf.traj))
              for j in range(buf.ret.shape[0]) if buf.valid[j] > 0]
        np.testing.assert_allclose(h, np.mean(gs, axis=0), rtol=1e-5, atol=1e-6)
    # h^{K+1} of the outer episodes is the embedding of θ^{K+1}_TE on B^K
    fast, h = parts.adapted(params, _task(b, 0))
    np.testing.assert_allclose(h, b.h[0], rtol=1e-5, atol=1e-6)


def test_encoder_skips_steps_after_termination():
    _, parts, params, b = sampled()
    ep = jax.tree.map(lambda x: x[0, 0, 0], b.buffers.traj)  # one episode [T, ...]
    cut = ep._replace(mask=ep.mask.at[5:].set(0.0))
    junk = cut._replace(obs=cut.obs.at[5:].set(99.0), reward=cut.reward.at[5:].set(-99.0))
    g = parts.encoder.episode
    np.testing.assert_allclose(g(params["encoder"], cut), g(params["encoder"], junk), rtol=1e-6)
    assert not np.allclose(g(params["encoder"], cut), g(params["encoder"], ep))


def _moved(a, b):
    return float(jnp.max(jnp.abs(ravel_pytree(a)[0] - ravel_pytree(b)[0])))


def test_fast_updates_move_the_encoder_not_the_policy():
    learner, parts, params, b = sampled()
    fast, _ = parts.adapted(params, _task(b, 0))
    assert set(fast) == {"encoder"}
    assert _moved(fast["encoder"], params["encoder"]) > 0
    state = learner.init(KEY)
    task = _task(tiny_family().sample_tasks(KEY, 1, "test"), 0)
    out = learner.adapt(state, task, KEY, 2)
    assert _moved(out.params["policy"], state.params["policy"]) == 0


def test_alpha_zero_freezes_the_encoder():
    """V4 (α = 0): the fast-updates leave θ_TE exactly where it was."""
    _, parts, params, b = sampled("tesp_v4")
    fast, _ = parts.adapted(params, _task(b, 0))
    assert _moved(fast["encoder"], params["encoder"]) == 0
    assert "inner" in params and not jax.tree.leaves(params["inner"])  # nothing learned


def test_v2_fast_updates_the_policy_too():
    learner, parts, params, b = sampled("tesp_v2")
    fast, _ = parts.adapted(params, _task(b, 0))
    assert set(fast) == {"encoder", "policy"}
    assert _moved(fast["policy"], params["policy"]) > 0
    assert _moved(fast["encoder"], params["encoder"]) > 0
    state = learner.init(KEY)
    task = _task(tiny_family().sample_tasks(KEY, 1, "test"), 0)
    assert _moved(learner.adapt(state, task, KEY, 2).params["policy"], state.params["policy"]) > 0


def test_v5_uses_one_fixed_rate_and_tesp_learns_per_parameter_rates():
    _, _, params, _ = sampled("tesp_v5")
    assert not jax.tree.leaves(params["inner"])
    _, _, params, _ = sampled()
    lr = ravel_pytree(params["inner"].lr)[0]
    assert lr.shape == ravel_pytree(params["encoder"])[0].shape
    np.testing.assert_allclose(lr, TINY_TESP.inner_lr)


def test_adaptsv_adapts_one_task_variable():
    _, parts, params, b = sampled("adaptsv")
    assert "encoder" not in params and params["z"].shape == (TINY_TESP.embedding_size,)
    fast, h = parts.adapted(params, _task(b, 0))
    assert set(fast) == {"z"} and _moved(fast["z"], params["z"]) > 0
    np.testing.assert_array_equal(h, fast["z"])


# --- the meta-update ------------------------------------------------------------------------


def test_regulariser_gradient_is_eta_times_two_h():
    """Eq. 10's η mean_i ‖h_i^{K+1}‖² adds η · mean_i 2 h_i to the gradient of the encoder's
    output bias (h is affine in it, with unit slope, also through first-order fast-updates);
    with η = 0 nothing is added."""
    eta = 0.5
    _, parts, params, b = sampled(eta=eta)
    _, parts0 = built(eta=0.0)  # sampling does not depend on η: reuse the batches
    g = jax.jit(jax.grad(parts.meta_loss))(params, b)
    g0 = jax.jit(jax.grad(parts0.meta_loss))(params, b)
    diff = g["encoder"]["out"]["bias"] - g0["encoder"]["out"]["bias"]
    expected = eta * 2 * b.h.mean(axis=0)
    assert float(jnp.abs(expected).max()) > 1e-3
    np.testing.assert_allclose(diff, expected, rtol=1e-4, atol=1e-6)
    # the regulariser also reaches the rest of the encoder and the learned rates
    d_enc = _moved(g["encoder"]["gru"], g0["encoder"]["gru"])
    d_lr = _moved(g["inner"], g0["inner"])
    assert d_enc > 0 and d_lr > 0
    assert _moved(g["policy"], g0["policy"]) == 0


def test_second_order_meta_gradient_matches_finite_differences():
    """With the sampled episodes and buffers held fixed, the meta-objective is a smooth
    deterministic function of θ = {θ_TE, α, θ_policy}; the second-order gradient (through
    K = 2 fast-updates) matches central differences along random directions, in float64.
    The first-order gradient does not (it drops ∂θ^{k+1}/∂θ^k − I)."""
    _, parts2, params, batches = sampled(inner_lr=0.5, meta_gradient="second_order")
    _, parts1 = built(inner_lr=0.5)
    with jax.enable_x64(True):
        to64 = functools.partial(jax.tree.map, lambda x: x.astype(jnp.float64)
                                 if jnp.issubdtype(x.dtype, jnp.floating) else x)
        params, batches = to64(params), to64(batches)
        flat, unravel = ravel_pytree(params)
        f = jax.jit(lambda x: parts2.meta_loss(unravel(x), batches))
        grad2 = jax.jit(jax.grad(f))(flat)
        grad1 = jax.jit(jax.grad(lambda x: parts1.meta_loss(unravel(x), batches)))(flat)
        assert grad2.dtype == jnp.float64
        eps = 1e-5
        errs2, errs1 = [], []
        for i in range(4):
            d = jax.random.normal(jax.random.PRNGKey(10 + i), flat.shape, jnp.float64)
            d = d / jnp.linalg.norm(d)
            fd = (f(flat + eps * d) - f(flat - eps * d)) / (2 * eps)
            errs2.append(abs(float(grad2 @ d - fd)) / (abs(float(fd)) + 1e-8))
            errs1.append(abs(float(grad1 @ d - fd)) / (abs(float(fd)) + 1e-8))
    print("relative error along 4 directions: second-order", errs2, "first-order", errs1)
    assert max(errs2) < 1e-5, errs2
    assert max(errs1) > 1e-3, errs1


def test_meta_update_changes_all_three_parts():
    learner, _ = built()
    state = learner.init(KEY)
    new, m = jax.jit(learner.update)(state)
    for k in ("policy", "encoder", "inner"):
        assert _moved(new.params[k], state.params[k]) > 0, k
    assert m["returns_by_step"].shape == (TINY_TESP.fast_updates + 2,)
    assert np.isfinite(float(m["embedding_norm"]))


# --- configuration --------------------------------------------------------------------------


def test_presets_and_bad_configs():
    assert set(PRESETS) <= set(algorithms.names())
    assert apply_preset("tesp_v3", TESPConfig()).eta == 0
    assert algorithms.make("tesp_v4", tiny_family(), TINY_TESP).config.inner_lr == 0
    with pytest.raises(ValueError, match="unknown TESP preset 'v9'.*adaptsv.*tesp_v5"):
        apply_preset("v9", TESPConfig())
    with pytest.raises(ValueError, match="buffer_size=20 must be <= inner_episodes=8"):
        TESPConfig(buffer_size=20, inner_episodes=8)
    TESPConfig(buffer="all", buffer_size=20, inner_episodes=8)  # V1 ignores M
    # the supplement's sizes per family
    assert paper_config().hidden_sizes == (256, 256) and paper_config().embedding_size == 8
    assert paper_config("reacher4_target").embedding_size == 16
    assert paper_config("ant_target").hidden_sizes == (512, 512)
    assert paper_config("ant_target").embedding_size == 32
    p = paper_config()
    assert (p.buffer_size, p.fast_updates, p.inner_lr, p.ppo_clip, p.gae_lambda) == (
        16, 3, 0.001, 0.15, 0.97)
    with pytest.raises(ValueError, match=r"adapt='policy'.*encoder.*variable"):
        TESPConfig(adapt="policy")
    with pytest.raises(ValueError, match="eta must be >= 0"):
        TESPConfig(eta=-1.0)
    with pytest.raises(ValueError, match="gru_size must be a positive integer"):
        TESPConfig(gru_size=0)


# --- learning -------------------------------------------------------------------------------


def test_tesp_learns_to_adapt_on_navigation(tmp_path):
    """2D navigation, horizon 25, 10 tasks x 10 episodes per rollout, M = 5, 40
    meta-updates (Adam 3e-3), 2 vmapped seeds; 20 held-out ``test`` tasks.

    Observed when written (CPU, jax 0.10.2): warm-up return (h = 0) ≈ −9.9, after 3
    fast-updates ≈ −3.3 (every seed). Margin: the adapted return recovers at least 40 % of
    the warm-up cost on every seed, and each fast-update helps on average.
    """
    cfg = TESPConfig(hidden_sizes=(32, 32), gru_size=32, meta_batch_size=10, inner_episodes=10,
                     outer_episodes=10, eval_episodes=10, buffer_size=5, outer_lr=3e-3)
    learner = algorithms.make("tesp", tiny_family(25), cfg)
    states, _ = train(learner, tmp_path, TrainOptions(iterations=40, seeds=2, chunk=10,
                                                      progress=False))
    res = evaluate(learner, states, jax.random.PRNGKey(123), "test", 20, 3)
    per_seed = np.asarray(res["per_seed"])  # [seeds, 4]
    pre, post = per_seed[:, 0], per_seed[:, -1]
    assert np.all(post > pre + 0.4 * np.abs(pre)), per_seed
    assert np.all(np.diff(per_seed.mean(axis=0)) > 0), per_seed
