"""Meta-gradients against finite differences of the post-adaptation objective.

Probe: a one-step Gaussian bandit (reward −(a − g)²), tiny tanh network. The objective
whose gradient MAML's exact estimator targets is

    f(θ) = E_{ε ~ N(0, I)} [ J(θ + α ĝ(θ, ε)) ],  J(θ') = −((μ_θ' − g)² + σ_θ'²),

with ĝ the VPG gradient of the n inner samples a_e = μ_θ + σ_θ ε_e (no baseline). The
expectation over ε is taken with a fixed set of 400k noise draws (common random numbers),
so f is a smooth deterministic function and central differences along random directions
are the reference. The estimators are stochastic (they sample episodes), so we average
many independent estimates and compare within 4 standard errors (+3 % for the Monte-Carlo
error of the reference).

The estimate is what ``update`` ascends: −∇ ``learner.meta_loss`` on ``learner.sample``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxmeta import algorithms
from jaxmeta import config as config_lib
from jaxmeta.meta.policy import blind_policy
from jaxmeta.nets import gaussian_log_prob
from tests.probes import GaussianBandit

GOAL, ALPHA, N_INNER = 0.5, 0.05, 16
FAM = GaussianBandit(goal=GOAL)
CFG = config_lib.replace(
    algorithms.MAMLConfig(), hidden_sizes=(4,), activation="tanh", init_std=0.5,
    meta_batch_size=2000, inner_episodes=N_INNER, outer_episodes=16, inner_lr=ALPHA,
    baseline="none", inner_normalize_advantages=False, gamma=1.0, gae_lambda=1.0,
    outer="trpo")
REPLICATES = 20


def learner_of(algo="maml", **overrides):
    return algorithms.make(algo, FAM, config_lib.replace(CFG, **overrides))


def meta_gradient(learner):
    """``(state, key) -> estimate`` of ∇ of the return: −∇ meta_loss on a fresh sample."""

    def estimate(state, key):
        s = learner.sample(state, key)
        g = jax.grad(learner.meta_loss)(state.params, state, s)
        return jax.tree.map(jnp.negative, g)

    return estimate


@pytest.fixture(scope="module")
def setup():
    learner = learner_of()
    state = learner.init(jax.random.PRNGKey(3))
    pol = blind_policy(FAM, CFG.policy).policy
    flat0, unravel = ravel_pytree(state.params["policy"])
    obs = jnp.ones((1,))

    def post_adaptation(flat, eps):
        th = unravel(flat)

        def one(e):
            mu, ls = pol.apply(th, obs)
            a = jax.lax.stop_gradient(mu + jnp.exp(ls) * e[:, None])  # samples (FD moves them)
            r = -jnp.sum((a - GOAL) ** 2, -1)

            def surr(t2):
                m2, l2 = pol.apply(t2, obs)
                return jnp.mean(gaussian_log_prob(m2, l2, a) * r)

            th2 = jax.tree.map(lambda p, g: p + ALPHA * g, th, jax.grad(surr)(th))
            m3, l3 = pol.apply(th2, obs)
            return -(jnp.sum((m3 - GOAL) ** 2) + jnp.sum(jnp.exp(2 * l3)))

        return jnp.mean(jax.vmap(one)(eps))

    f = jax.jit(post_adaptation)
    eps = jax.random.normal(jax.random.PRNGKey(9), (400_000, N_INNER))
    v = np.random.default_rng(0).normal(size=(4, flat0.size)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    h = 1e-2
    fd = np.array([(f(flat0 + h * d, eps) - f(flat0 - h * d, eps)) / (2 * h) for d in v])
    return state, v, fd


def _estimate(state, v, estimator):
    grad_fn = meta_gradient(learner_of(meta_gradient=estimator))
    g = jax.jit(lambda k: ravel_pytree(grad_fn(state, k)["policy"])[0])
    ests = np.stack([np.asarray(g(jax.random.PRNGKey(100 + r))) for r in range(REPLICATES)])
    proj = ests @ v.T
    return proj.mean(0), proj.std(0) / np.sqrt(REPLICATES)


def test_dice_meta_gradient_matches_finite_differences(setup):
    state, v, fd = setup
    mean, se = _estimate(state, v, "dice")
    assert np.all(np.abs(mean - fd) < 4 * se + 0.03 * np.abs(fd)), (mean, fd, se)


@pytest.mark.parametrize("estimator", ["second_order", "first_order"])
def test_biased_estimators_differ_from_finite_differences(setup, estimator):
    """Dropping the score term (``second_order``, MAML's original "hessian" estimator) or
    all second-order terms (first-order MAML) changes the meta-gradient measurably."""
    state, v, fd = setup
    mean, se = _estimate(state, v, estimator)
    z = np.abs(mean - fd) / (se + 0.03 * np.abs(fd))
    assert z.max() > 10, (mean, fd, se)


def test_estimators_agree_without_adaptation_and_differ_with_it(setup):
    """Where the estimators must agree and where they must not, on the bandit probe.

    α = 0: θ' = θ, so ``first_order`` and ``second_order`` are the same function of a sample,
    and DiCE's score term −(Ĵ − b)·∇log P(τ_inner) has mean 0 (the outer episodes do not
    depend on the inner ones): all three estimate ∇J(θ) of the closed-form return
    J = −((μ − g)² + σ²). α = 0.05: ``second_order`` keeps ∂θ'/∂θ − I (it differs from
    ``first_order`` on every sample), and the score term no longer averages out (DiCE minus
    ``second_order``, paired on the same samples, is many standard errors from 0).

    Measured when written (20 replicates × 2000 tasks, 4 directions; the same at XLA's
    default flags and at optimisation level 0): at α = 0 the paired DiCE − second_order
    means lie within 1.4 standard errors of 0 and both estimates within 1.4 of ∇J; at
    α = 0.05 the paired difference is 10 to 55 standard errors from 0, and second_order
    differs from first_order by ≥ 21 % of its norm on every sample.
    """
    state, v, _ = setup
    pol = blind_policy(FAM, CFG.policy).policy
    flat0, unravel = ravel_pytree(state.params["policy"])

    def closed_form(flat):
        mu, log_std = pol.apply(unravel(flat), jnp.ones((1,)))
        return -(jnp.sum((mu - GOAL) ** 2) + jnp.sum(jnp.exp(2 * log_std)))

    true = np.asarray(jax.grad(closed_form)(flat0)) @ v.T
    names = ("first_order", "second_order", "dice")

    def flat_estimate(name):
        g = meta_gradient(learner_of(meta_gradient=name))
        return jax.jit(lambda st, k: ravel_pytree(g(st, k)["policy"])[0])

    fns = {n: flat_estimate(n) for n in names}

    def estimates(alpha):
        st = state.replace(hyper={**state.hyper, "inner_lr": jnp.float32(alpha)})
        keys = [jax.random.PRNGKey(200 + r) for r in range(REPLICATES)]
        return {n: np.stack([np.asarray(f(st, k)) for k in keys]) for n, f in fns.items()}

    def z_of(x):  # |mean| / standard error of replicates [R, P] projected on v
        p = x @ v.T
        return np.abs(p.mean(0)) / (p.std(0) / np.sqrt(REPLICATES))

    e0 = estimates(0.0)
    np.testing.assert_allclose(e0["first_order"], e0["second_order"], rtol=1e-5, atol=1e-6)
    for n in ("second_order", "dice"):
        p = e0[n] @ v.T
        se = p.std(0) / np.sqrt(REPLICATES)
        print(f"α=0: {n} − ∇J in standard errors {(p.mean(0) - true) / se}")
        assert np.all(np.abs(p.mean(0) - true) < 4 * se + 0.03 * np.abs(true)), (n, p.mean(0),
                                                                                 true, se)
    z0 = z_of(e0["dice"] - e0["second_order"])
    e1 = estimates(ALPHA)
    z1 = z_of(e1["dice"] - e1["second_order"])
    rel = np.linalg.norm(e1["second_order"] - e1["first_order"], axis=1) / np.linalg.norm(
        e1["second_order"], axis=1)
    print(f"α=0: dice−second_order z {z0}; α={ALPHA}: z {z1}; "
          f"|second−first|/|second| ≥ {rel.min():.3f}")
    assert np.all(z0 < 4), z0
    assert z1.max() > 10, z1
    assert rel.min() > 1e-2, rel


def test_remat_gives_the_same_meta_gradient():
    kw = dict(meta_batch_size=8, inner_steps=3, meta_gradient="dice")
    g_plain = meta_gradient(learner_of(**kw))
    learner = learner_of(remat=True, **kw)
    g_remat = meta_gradient(learner)
    state = learner.init(jax.random.PRNGKey(0))
    a = ravel_pytree(jax.jit(g_plain)(state, jax.random.PRNGKey(1)))[0]
    b = ravel_pytree(jax.jit(g_remat)(state, jax.random.PRNGKey(1)))[0]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_meta_sgd_learning_rates_receive_meta_gradient():
    learner = learner_of("meta_sgd", meta_batch_size=8, meta_gradient="first_order")
    state = learner.init(jax.random.PRNGKey(0))
    g = meta_gradient(learner)(state, jax.random.PRNGKey(1))
    lr_grad = ravel_pytree(g["inner"].lr)[0]
    assert lr_grad.shape == ravel_pytree(state.params["policy"])[0].shape
    assert float(jnp.abs(lr_grad).sum()) > 0


# --- second_order (MAML's default) against finite differences, inner episodes held fixed ----
#
# ``second_order`` differentiates one function: the meta-objective with the sampled inner
# and outer episodes (and their advantages) held fixed, θ_{K+1}(θ) replayed from them. The
# reference below writes that function out by hand (K plain-SGD VPG steps on normalised
# advantages, then the outer surrogate on τ' summed over time, mean over tasks), in float64,
# and takes central differences of it. K = 2 and T = 10 (navigation2d, no early ends), so a
# missing ·T or a replay that skipped a step would change the value and the slope.


def _reference_meta_loss(apply, surrogate, alpha, k_steps, theta0, sample):
    """(meta-objective, ratios π_{θ_{K+1}}/π_old on τ' [B, E', T]) of a sample, with the
    stored episodes as constants."""

    def logp(theta, traj):
        mu, log_std = apply(theta, traj.obs)
        z = (traj.action - mu) * jnp.exp(-log_std)
        return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)

    def normalised(a, m):
        n = m.sum()
        mean = (a * m).sum() / n
        return (a - mean) / (jnp.sqrt((((a - mean) * m) ** 2).sum() / n) + 1e-8) * m

    terms, ratios = [], []
    for i in range(sample.tasks.goal.shape[0]):
        b = jax.tree.map(lambda x, i=i: x[i], sample.batches)
        theta = theta0
        for k in range(k_steps):
            tr = jax.tree.map(lambda x, k=k: x[k], b.inner)
            adv = normalised(b.inner_adv[k], tr.mask)

            def inner_loss(t, tr=tr, adv=adv):
                return -(logp(t, tr) * adv * tr.mask).sum() / tr.mask.sum()

            theta = jax.tree.map(lambda p, g: p - alpha * g, theta, jax.grad(inner_loss)(theta))
        o = b.outer.traj
        ratio = jnp.exp(logp(theta, o) - o.logp)
        per_step = surrogate(ratio, b.outer.adv)
        # a mean over the valid steps times the steps per episode: the time-summed surrogate
        terms.append(-(per_step * o.mask).sum() / o.mask.shape[0])
        ratios.append(ratio)
    return jnp.mean(jnp.stack(terms)), jnp.stack(ratios)


def _to64(tree):
    return jax.tree.map(lambda x: x.astype(jnp.float64)
                        if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


@pytest.mark.parametrize("outer", ["trpo", "ppo"])
def test_second_order_meta_gradient_matches_finite_differences(outer):
    """−∇ meta_loss of ``second_order`` is the gradient of the hand-written meta-objective
    above: equal values, and directional derivatives equal to central differences along 4
    random unit directions. ``first_order`` drops ∂θ_{k+1}/∂θ_k − I and misses them.

    The point of evaluation is the sampling θ moved by 0.2 along a random unit direction,
    so that π_{θ_{K+1}} differs from the policy that sampled τ': TRPO's importance weights
    are not 1 and PPO clips some of them (checked: 5-50 % of the steps, none within 1e-3 of
    a kink of the clipped surrogate, where central differences would straddle it).

    Tolerance: in float64 a central difference with step ε = 1e-5 errs by ~ε²·|f'''|
    (≈1e-10 relative here) plus rounding ~1e-16·|f|/ε (≈1e-12), so a relative error beyond
    1e-6 is a wrong gradient. Measured when written (XLA's default flags and
    --xla_backend_optimization_level=0 alike): ≤ 3e-8 for TRPO, ≤ 7e-10 for PPO; the
    first-order gradient is off by 1.1 to 500 relative.
    """
    from tests.helpers import tiny_family, tiny_learner

    alpha, k_steps, clip = 0.5, 2, 0.2
    # tanh: with ReLU the inner gradient jumps where a unit's pre-activation crosses 0, so
    # θ_{K+1}(θ) and the objective are only piecewise smooth (central differences blow up)
    kw = dict(outer=outer, inner_steps=k_steps, inner_lr=alpha, ppo_clip=clip,
              activation="tanh")
    learner = tiny_learner("maml", meta_gradient="second_order", **kw)
    first = tiny_learner("maml", meta_gradient="first_order", **kw)
    assert learner.config.inner.normalize_advantages and learner.family.horizon == 10
    state = learner.init(jax.random.PRNGKey(0))
    s = jax.jit(learner.sample)(state, jax.random.PRNGKey(1))
    clip = float(state.hyper["ppo_clip"])  # the float32 value the learner clips with
    if outer == "trpo":
        surrogate = lambda r, a: r * a
    else:
        surrogate = lambda r, a: jnp.minimum(r * a, jnp.clip(r, 1 - clip, 1 + clip) * a)
    apply = blind_policy(tiny_family(), learner.config.policy).policy.apply
    with jax.enable_x64(True):
        state, s = _to64(state), _to64(s)
        flat, unravel = ravel_pytree(state.params)
        shift = jax.random.normal(jax.random.PRNGKey(99), flat.shape, jnp.float64)
        x0 = flat + 0.2 * shift / jnp.linalg.norm(shift)
        ref = jax.jit(lambda x: _reference_meta_loss(apply, surrogate, alpha, k_steps,
                                                     unravel(x)["policy"], s))
        loss = jax.jit(lambda x: learner.meta_loss(unravel(x), state, s))
        g2 = jax.jit(jax.grad(loss))(x0)
        g1 = jax.jit(jax.grad(lambda x: first.meta_loss(unravel(x), state, s)))(x0)
        assert g2.dtype == jnp.float64
        value, ratio = ref(x0)
        np.testing.assert_allclose(float(loss(x0)), float(value), rtol=1e-10)
        if outer == "ppo":
            ratio = np.asarray(ratio)
            assert 0.05 < np.mean(np.abs(ratio - 1) > clip) < 0.5, ratio
            assert np.min(np.abs(np.abs(ratio - 1) - clip)) > 1e-3
        eps, err2, err1 = 1e-5, [], []
        for i in range(4):
            d = jax.random.normal(jax.random.PRNGKey(20 + i), flat.shape, jnp.float64)
            d = d / jnp.linalg.norm(d)
            fd = float(ref(x0 + eps * d)[0] - ref(x0 - eps * d)[0]) / (2 * eps)
            err2.append(abs(float(g2 @ d) - fd) / abs(fd))
            err1.append(abs(float(g1 @ d) - fd) / abs(fd))
    print(f"{outer}: relative error along 4 directions: second_order {err2}, "
          f"first_order {err1}")
    assert max(err2) < 1e-6, err2
    assert min(err1) > 1e-2, err1
