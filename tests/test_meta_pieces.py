"""The pieces methods are wired from, each used alone: the fast-adaptation scan and its
differentiable replay, the estimators' objective, and the outer steps as values."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from jaxmeta import config as config_lib
from jaxmeta.meta import estimators, outer, replay
from jaxmeta.meta import inner as inner_lib
from jaxmeta.meta.policy import blind_policy, log_prob
from jaxmeta.meta.sampling import Episodes, PGAdaptation, episodes_kl
from jaxmeta.nets import gaussian_kl
from jaxmeta.rollout import Trajectory
from tests.helpers import tiny_family

KEY = jax.random.PRNGKey(0)


def pg(lr=0.5, optimizer="sgd"):
    fam = tiny_family()
    spec = blind_policy(fam, config_lib.PolicyConfig(hidden_sizes=(8,)))
    return PGAdaptation(fam, spec, inner_lib.optimizer(optimizer, lr),
                        config_lib.ReturnsConfig(), 3, True), spec


def test_replay_reproduces_the_sampled_fast_updates():
    """Re-running the K inner steps from the stored episodes gives the θ_{K+1} that the
    no-gradient scan reached, and the summed log-probabilities of the inner episodes."""
    adapt, spec = pg()
    task = jax.tree.map(lambda x: x[0], tiny_family().sample_tasks(KEY, 1))
    theta0 = spec.policy.init(KEY)
    opt_state = adapt.opt.init(theta0)
    theta_k, (trajs, advs) = jax.jit(lambda t: adapt.run(t, opt_state, task,
                                                         jax.random.split(KEY, 3)))(theta0)
    for remat in (False, True):
        again, logp = adapt.replay(theta0, opt_state, task, trajs, advs, False, remat)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                     again, theta_k)
    # Σ_k log P(τ_k | θ_k): θ_1 = θ0, θ_2, θ_3 are the intermediate iterates
    thetas = [theta0]
    for k in range(2):
        step = jax.tree.map(lambda x: x[k], (trajs, advs))
        thetas.append(inner_lib.inner_step(lambda t: adapt.loss(t, task, *step), adapt.opt,
                                           thetas[-1], opt_state))
    want = sum(float(jnp.sum(log_prob(spec.fn(th, task), jax.tree.map(lambda x: x[k], trajs))
                             * trajs.mask[k])) for k, th in enumerate(thetas))
    np.testing.assert_allclose(logp, want, rtol=1e-5)


def test_first_order_replay_passes_the_outer_gradient_straight_through():
    """First order: ∂θ_{K+1}/∂θ = I (the inner gradients are constants); second order is not."""
    adapt, spec = pg(lr=2.0)
    task = jax.tree.map(lambda x: x[0], tiny_family().sample_tasks(KEY, 1))
    theta0 = spec.policy.init(KEY)
    opt_state = adapt.opt.init(theta0)
    _, (trajs, advs) = adapt.run(theta0, opt_state, task, jax.random.split(KEY, 2))
    flat, unravel = ravel_pytree(theta0)
    v = jax.random.normal(KEY, flat.shape)

    def out(x, first_order):
        th, _ = adapt.replay(unravel(x), opt_state, task, trajs, advs, first_order)
        return ravel_pytree(th)[0] @ v

    np.testing.assert_allclose(jax.grad(out)(flat, True), v, rtol=1e-5, atol=1e-6)
    assert not np.allclose(jax.grad(out)(flat, False), v, atol=1e-4)


def test_generic_replay_with_a_closed_form():
    """fast ← fast · a_k over data a = [2, 3, 4]: fast_3 = 24 fast_0, d/dfast_0 = 24."""
    f = lambda x: replay.replay(lambda fast, a: fast * a, x, jnp.array([2.0, 3.0, 4.0]))[0]
    assert float(f(1.5)) == 36.0 and float(jax.grad(f)(1.5)) == 24.0


def test_dice_objective_has_value_of_the_surrogate_and_the_score_gradient():
    est = estimators.make("dice")
    surr, logp, j = jnp.array([1.0, 2.0, 3.0]), jnp.array([0.1, 0.2, 0.3]), jnp.array(
        [1.0, 4.0, 10.0])
    assert float(estimators.meta_objective(est, surr, logp, j)) == pytest.approx(2.0)
    b = estimators.leave_one_out_baseline(j)
    np.testing.assert_allclose(b, [7.0, 5.5, 2.5])
    g = jax.grad(lambda lp: estimators.meta_objective(est, surr, lp, j))(logp)
    np.testing.assert_allclose(g, -(j - b) / 3, rtol=1e-6)
    g2 = jax.grad(lambda lp: estimators.meta_objective(estimators.make("second_order"), surr,
                                                        lp, j))(logp)
    np.testing.assert_array_equal(g2, 0.0)


def _gaussian_problem():
    """Fit a diagonal Gaussian's mean to a target: loss, KL to the start, its two parts."""
    target = jnp.array([1.0, -2.0])
    p0 = {"mean": jnp.zeros(2), "log_std": jnp.zeros(2)}
    loss = lambda p: jnp.sum((p["mean"] - target) ** 2)
    dist = lambda p: (p["mean"], p["log_std"])
    kl_of = lambda d: gaussian_kl(p0["mean"], p0["log_std"], *d)
    return p0, outer.Objective(loss=loss, kl=lambda p: kl_of(dist(p)), dist=dist,
                               kl_of_dist=kl_of)


def test_outer_steps_are_values_that_minimise_an_objective():
    p0, objective = _gaussian_problem()
    step = outer.ppo(optax.sgd(0.1), epochs=5, clip=0.2)
    p, _, m = step.step(p0, step.init(p0), objective)
    assert float(objective.loss(p)) < float(objective.loss(p0)) == float(m["loss"])
    assert set(m) == {"loss", "grad_norm", "kl"} and float(m["kl"]) > 0
    trpo = outer.trpo(max_kl=0.01, cg_iters=5)
    p, state, m = trpo.step(p0, trpo.init(p0), objective)
    assert state == () and 0 < float(m["kl"]) <= 0.01 + 1e-6 and float(m["step_fraction"]) > 0
    assert float(objective.loss(p)) < float(objective.loss(p0))
    # the surrogates they bring: PPO clips the ratio, TRPO does not
    logp, old, adv, mask = jnp.log(jnp.array([2.0])), jnp.zeros(1), jnp.ones(1), jnp.ones(1)
    assert float(step.surrogate(logp, old, adv, mask)) == pytest.approx(-1.2)
    assert float(trpo.surrogate(logp, old, adv, mask)) == pytest.approx(-2.0)
    with pytest.raises(ValueError, match="outer='sgd'.*trpo.*ppo"):
        outer.from_config("sgd", config_lib.PPOConfig(), config_lib.TRPOConfig())


def test_ppo_epochs_keeps_each_epochs_aux_before_its_step():
    loss = lambda p: (jnp.sum(p ** 2), {"p": p})
    (p, _), (losses, _, aux) = outer.ppo_epochs(loss, optax.sgd(0.25), jnp.array([2.0]),
                                               optax.sgd(0.25).init(jnp.array([2.0])), 3,
                                               has_aux=True)
    np.testing.assert_allclose(aux["p"][:, 0], [2.0, 1.0, 0.5])  # p ← p − 0.25·2p
    np.testing.assert_allclose(losses, [4.0, 1.0, 0.25])
    np.testing.assert_allclose(p, [0.25])


def test_episodes_kl_is_the_mean_over_tasks_of_the_per_step_kl_on_valid_steps():
    rng = np.random.default_rng(0)
    shape = (2, 3, 4)  # tasks, episodes, steps
    old_mean, new_mean = rng.normal(size=shape + (2,)), rng.normal(size=shape + (2,))
    old_ls, new_ls = rng.normal(size=shape + (2,)) * 0.3, rng.normal(size=shape + (2,)) * 0.3
    mask = np.ones(shape)
    mask[0, :, 3:] = 0  # task 0's episodes end after 3 steps
    z = np.zeros(shape)
    traj = Trajectory(obs=z[..., None], action=old_mean, reward=z, done=z, mask=mask, logp=z)
    outer = Episodes(traj, z, old_mean, old_ls)
    kl = np.sum(new_ls - old_ls + (np.exp(2 * old_ls) + (old_mean - new_mean) ** 2)
                / (2 * np.exp(2 * new_ls)) - 0.5, -1)  # KL(old ‖ new) per step
    want = np.mean([(kl[i] * mask[i]).sum() / mask[i].sum() for i in range(2)])
    np.testing.assert_allclose(episodes_kl(outer, (new_mean, new_ls)), want, rtol=1e-5)
