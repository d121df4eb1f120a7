"""Returns, advantages and objectives against numpy / hand-computed references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmeta import nets, rl

R = np.array([1.0, -2.0, 0.5, 3.0, 1.5], np.float32)
DONE = np.array([0, 0, 1, 0, 0], np.float32)  # an episode ends after step 2
V = np.array([0.3, -0.1, 0.7, 1.2, 0.4, 0.9], np.float32)  # V(s_0..s_5)
GAMMA, LAM = 0.9, 0.8


def np_returns(r, done, gamma):
    g, out = 0.0, np.zeros_like(r)
    for t in reversed(range(len(r))):
        g = r[t] + gamma * (1 - done[t]) * g
        out[t] = g
    return out


def np_gae(r, done, v, gamma, lam):
    adv, a = np.zeros_like(r), 0.0
    for t in reversed(range(len(r))):
        nonterm = 1 - done[t]
        delta = r[t] + gamma * nonterm * v[t + 1] - v[t]
        a = delta + gamma * lam * nonterm * a
        adv[t] = a
    return adv


@pytest.mark.parametrize("transform", ["plain", "jit"])
def test_discounted_returns_match_numpy(transform):
    fn = rl.discounted_returns if transform == "plain" else jax.jit(rl.discounted_returns)
    got = fn(jnp.asarray(R), jnp.asarray(GAMMA * (1 - DONE)))
    np.testing.assert_allclose(got, np_returns(R, DONE, GAMMA), rtol=1e-6)
    # hand-computed: G_2 = 0.5 (episode ends), G_1 = -2 + 0.9 * 0.5
    assert got[2] == pytest.approx(0.5) and got[1] == pytest.approx(-1.55)


def test_gae_matches_numpy_and_vmaps():
    disc = jnp.asarray(GAMMA * (1 - DONE))
    got = rl.gae_advantages(jnp.asarray(R), disc, jnp.asarray(V[:-1]), jnp.asarray(V[1:]), LAM)
    np.testing.assert_allclose(got, np_gae(R, DONE, V, GAMMA, LAM), rtol=1e-5, atol=1e-6)
    batch = jax.vmap(rl.gae_advantages, in_axes=(0, 0, 0, 0, None))(
        jnp.stack([R, R[::-1]]), jnp.stack([disc, disc]), jnp.stack([V[:-1]] * 2),
        jnp.stack([V[1:]] * 2), LAM)
    np.testing.assert_allclose(batch[0], got)
    np.testing.assert_allclose(batch[1], np_gae(R[::-1], DONE, V, GAMMA, LAM), rtol=1e-5,
                               atol=1e-6)


def test_gae_with_lambda_one_is_returns_minus_values():
    disc = jnp.asarray(GAMMA * (1 - DONE))
    v_tp1 = jnp.asarray(V[1:] * (1 - DONE)).at[-1].set(0.0)  # stream ends: no bootstrap
    adv = rl.gae_advantages(jnp.asarray(R), disc, jnp.asarray(V[:-1]), v_tp1, 1.0)
    np.testing.assert_allclose(adv, np_returns(R, DONE, GAMMA) - V[:-1], rtol=1e-5, atol=1e-6)


def test_linear_baseline_matches_numpy_least_squares():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(3, 7, 2)).astype(np.float32)
    ret = rng.normal(size=(3, 7)).astype(np.float32)
    mask = np.ones((3, 7), np.float32)
    got = rl.fit_linear_baseline(jnp.asarray(obs), jnp.asarray(ret), jnp.asarray(mask), 7,
                                 reg=0.0)
    t = np.arange(7) / 7
    phi = np.concatenate([obs, obs**2, np.broadcast_to(np.stack([t, t**2, t**3, np.ones(7)],
                                                                -1), (3, 7, 4))], -1)
    w, *_ = np.linalg.lstsq(phi.reshape(-1, 8), ret.reshape(-1), rcond=None)
    np.testing.assert_allclose(got, phi @ w, rtol=1e-3, atol=1e-3)


def test_policy_gradient_objectives_hand_computed():
    logp = jnp.array([-1.0, -0.5, -2.0])
    logp_old = jnp.array([-1.0, -1.0, -1.0])
    adv = jnp.array([1.0, 2.0, -1.0])
    mask = jnp.array([1.0, 1.0, 0.0])  # last step is padding
    # VPG: -mean(logp * A) over valid steps = -((-1)(1) + (-0.5)(2)) / 2 = 1.0
    assert float(rl.vpg_loss(logp, adv, mask)) == pytest.approx(1.0)
    # ratios = [1, e^0.5]; TRPO surrogate = -(1*1 + e^0.5*2)/2
    assert float(rl.surrogate_loss(logp, logp_old, adv, mask)) == pytest.approx(
        -(1 + 2 * np.exp(0.5)) / 2, rel=1e-6)
    # PPO with ε = 0.2: second ratio clipped to 1.2 -> -(1 + 2.4)/2 = -1.7
    assert float(rl.ppo_clip_loss(logp, logp_old, adv, mask, 0.2)) == pytest.approx(-1.7)
    # negative advantage with ratio below 1-ε: min picks the unclipped (pessimistic) term
    got = rl.ppo_clip_loss(jnp.array([-2.0]), jnp.array([-1.0]), jnp.array([-1.0]),
                           jnp.array([1.0]), 0.2)
    assert float(got) == pytest.approx(0.8)  # -min(e^-1 * -1, 0.8 * -1) = 0.8


def test_vpg_gradient_is_score_times_advantage():
    mean, log_std, a = jnp.array([0.2]), jnp.array([0.1]), jnp.array([[0.5], [-0.3]])
    adv = jnp.array([1.5, -0.5])

    def loss(mu):
        lp = nets.gaussian_log_prob(mu, log_std, a)
        return rl.vpg_loss(lp, adv, jnp.ones(2))

    sigma2 = np.exp(2 * 0.1)
    expected = -np.mean(((np.array([0.5, -0.3]) - 0.2) / sigma2) * np.array([1.5, -0.5]))
    assert float(jax.grad(loss)(mean)[0]) == pytest.approx(expected, rel=1e-5)


def test_gaussian_helpers_match_closed_forms():
    m, ls, a = jnp.array([0.5, -1.0]), jnp.array([0.2, -0.3]), jnp.array([0.1, 0.4])
    s = np.exp(np.array([0.2, -0.3]))
    ref = np.sum(-0.5 * ((np.array([0.1, 0.4]) - np.array([0.5, -1.0])) / s) ** 2
                 - np.log(s) - 0.5 * np.log(2 * np.pi))
    assert float(nets.gaussian_log_prob(m, ls, a)) == pytest.approx(ref, rel=1e-6)
    assert float(nets.gaussian_kl(m, ls, m, ls)) == pytest.approx(0.0, abs=1e-7)
    # KL(N(0,1) || N(1,1)) = 0.5 per dim
    assert float(nets.gaussian_kl(jnp.zeros(1), jnp.zeros(1), jnp.ones(1), jnp.zeros(1))) == \
        pytest.approx(0.5)
    assert float(nets.gaussian_entropy(jnp.zeros(1))) == pytest.approx(
        0.5 * np.log(2 * np.pi * np.e))


def test_conjugate_gradient_solves_spd_system():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(6, 6))
    a = jnp.asarray(m @ m.T + 6 * np.eye(6), jnp.float32)
    b = jnp.asarray(rng.normal(size=6), jnp.float32)
    x = rl.conjugate_gradient(lambda v: a @ v, b, iters=20)
    np.testing.assert_allclose(a @ x, b, rtol=1e-4, atol=1e-4)


def test_trpo_step_respects_kl_and_improves_quadratic():
    """Quadratic loss, quadratic 'KL' ½ xᵀFx: the natural step lands on the KL boundary."""
    f = jnp.diag(jnp.array([1.0, 4.0]))
    target = jnp.array([3.0, -2.0])
    params = {"x": jnp.zeros(2)}
    loss_fn = lambda p: jnp.sum((p["x"] - target) ** 2)
    kl_fn = lambda p: 0.5 * p["x"] @ f @ p["x"]
    new, info = rl.trpo_step(params, loss_fn, kl_fn, max_kl=0.01, damping=0.0, cg_iters=5)
    assert float(info.kl) <= 0.01 + 1e-6
    assert float(info.loss_after) < float(info.loss_before)
    # full natural step: s ∝ F⁻¹ g, scaled so ½ sᵀFs = δ (accepted at fraction 1)
    g = 2 * target
    s = jnp.linalg.solve(f, g)
    s = s * jnp.sqrt(2 * 0.01 / (s @ f @ s))
    np.testing.assert_allclose(new["x"], s, rtol=1e-4)
    assert float(info.step_fraction) == pytest.approx(1.0)


def test_trpo_gauss_newton_fisher_matches_forward_over_reverse():
    """Factorising KL = kl_of_dist ∘ dist_fn gives the same step as differentiating KL."""
    rng = np.random.default_rng(2)
    obs = jnp.asarray(rng.normal(size=(16, 3)), jnp.float32)
    act = jnp.asarray(rng.normal(size=(16, 2)), jnp.float32)
    adv = jnp.asarray(rng.normal(size=16), jnp.float32)
    params = {"w": jnp.asarray(rng.normal(size=(3, 2)) * 0.5, jnp.float32),
              "log_std": jnp.asarray([-0.2, 0.1], jnp.float32)}

    def dist_fn(p):  # a nonlinear "policy"
        return jnp.tanh(obs @ p["w"]), jnp.broadcast_to(p["log_std"], (16, 2))

    old = jax.tree.map(jax.lax.stop_gradient, dist_fn(params))
    logp_old = nets.gaussian_log_prob(*old, act)
    kl_of_dist = lambda d: jnp.mean(nets.gaussian_kl(*old, *d))
    kl_fn = lambda p: kl_of_dist(dist_fn(p))
    loss_fn = lambda p: rl.surrogate_loss(nets.gaussian_log_prob(*dist_fn(p), act), logp_old,
                                          adv, jnp.ones(16))
    a, info_a = rl.trpo_step(params, loss_fn, kl_fn, max_kl=0.02, cg_iters=8)
    b, info_b = rl.trpo_step(params, loss_fn, kl_fn, max_kl=0.02, cg_iters=8, dist_fn=dist_fn,
                             kl_of_dist=kl_of_dist)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)
    assert float(info_b.loss_after) < float(info_b.loss_before)
    assert 0 < float(info_b.kl) <= 0.02
