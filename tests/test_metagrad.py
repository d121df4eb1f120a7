"""Meta-gradient RL (jaxmeta.algorithms.metagrad): dη through one inner update against
finite differences of a hand-written reference, the update's meta-step, one program, bad
input. The learning test (γ moves, return kept) is in tests/test_learning.py."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxmeta import algorithms
from jaxmeta import config as config_lib
from jaxmeta.algorithms.metagrad import MetaGradConfig
from jaxmeta.meta.policy import feature_policy
from jaxmeta.nets import value_network
from jaxmeta.protocol import Sample
from jaxmeta.runs import compiled_init
from tests.helpers import tiny_config, tiny_family, tiny_learner

KEY = jax.random.PRNGKey(0)
LN_2PI_E = float(np.log(2 * np.pi) + 1.0)


def _to64(tree):
    return jax.tree.map(lambda x: x.astype(jnp.float64)
                        if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def _lambda_returns(r, done, v, gamma, lam):
    """G_t = r_t + γ(1 − d_t)[(1 − λ) v(s_{t+1}) + λ G_{t+1}], G_T = v(s_T) = 0: the
    recursive λ-return of the paper, one Python step at a time (episodes on axis 0)."""
    out, g_next, v_next = [], jnp.zeros(r.shape[0]), jnp.zeros(r.shape[0])
    for t in reversed(range(r.shape[1])):
        g = r[:, t] + gamma * (1 - done[:, t]) * ((1 - lam) * v_next + lam * g_next)
        out.append(g)
        g_next, v_next = g, v[:, t]
    return jnp.stack(out[::-1], axis=1)


def _normalize(x, mask):
    n = mask.sum()
    mean = (x * mask).sum() / n
    std = jnp.sqrt((((x - mean) * mask) ** 2).sum() / n)
    return (x - mean) / (std + 1e-8) * mask


def _reference(cfg, fam, eta, net, opt_state, batch, batch2, gamma_ref, lam_ref,
               held=None):
    """L̄(η) written out: the A2C loss on τ, one optimizer step, the policy-gradient loss
    of θ' on τ' with η̄. Returns (L̄, τ''s advantages); with ``held`` (those advantages
    at some η₀) L̄ uses them, so its derivative is the policy gradient ∂J̄/∂θ' · dθ'/dη
    the paper defines (the baseline v_θ' held constant)."""
    spec = feature_policy(fam, cfg.policy, 2 if cfg.eta.conditioned else 0,
                          lambda ctx: ctx[1] if cfg.eta.conditioned else jnp.zeros((0,)))
    value = value_network(spec.input_size, cfg.ac.value_hidden_sizes, cfg.ac.value_activation)

    def terms(net, traj, gamma, lam, held_adv=None):
        x = traj.obs
        if cfg.eta.conditioned:
            x = jnp.concatenate([x, jnp.broadcast_to(jnp.stack([gamma, lam]),
                                                     x.shape[:-1] + (2,))], -1)
        mean, log_std = spec.policy.apply(net["policy"], x)
        logp = (-0.5 * ((traj.action - mean) / jnp.exp(log_std)) ** 2 - log_std
                - 0.5 * np.log(2 * np.pi)).sum(-1)
        v = value.apply(net["value"], x)
        v_base = value.apply(jax.lax.stop_gradient(net["value"]), x)  # constant in θ only
        g = _lambda_returns(traj.reward, traj.done, v_base, gamma, lam)
        adv = _normalize(g - v_base, traj.mask) if held_adv is None else held_adv
        m = traj.mask.sum()
        pg = -(logp * adv * traj.mask).sum() / m
        vl = (((g - v) * traj.mask) ** 2).sum() / m
        ent = (net["policy"]["log_std"] + 0.5 * LN_2PI_E).sum()
        return pg, vl, ent, adv

    gamma, lam = jax.nn.sigmoid(eta["gamma"]), jax.nn.sigmoid(eta["lambda"])

    def inner(net):
        parts = [terms(net, jax.tree.map(lambda x: x[i], batch), gamma, lam)
                 for i in range(batch.reward.shape[0])]
        pg, vl, ent = (sum(p[j] for p in parts) / len(parts) for j in range(3))
        return pg + cfg.ac.value_coef * vl - cfg.ac.entropy_coef * ent

    grads = jax.grad(inner)(net)
    opt = (optax.sgd(cfg.ac.lr) if cfg.ac.optimizer == "sgd"
           else optax.adam(cfg.ac.lr, eps_root=1e-8))
    new = optax.apply_updates(net, opt.update(grads, opt_state, net)[0])
    n2 = batch2.reward.shape[0]
    outer = [terms(new, jax.tree.map(lambda x: x[i], batch2), gamma_ref, lam_ref,
                   None if held is None else held[i]) for i in range(n2)]
    return sum(o[0] for o in outer) / n2, jnp.stack([o[3] for o in outer])


@pytest.mark.parametrize("variant", ["sgd", "adam", "conditioned"])
def test_meta_gradient_matches_finite_differences_through_one_inner_update(variant):
    """dη of ``meta_loss`` (the gradient ``update`` steps along) equals central differences
    of the hand-written L̄(η) with τ''s advantages held, in float64, for plain SGD, Adam
    with moments from two earlier updates, and the η-conditioned agent; the values agree
    to 1e-8."""
    kw = dict(ac_optimizer="adam" if variant == "adam" else "sgd",
              eta_conditioned=variant == "conditioned", activation="tanh",
              ac_entropy_coef=0.01, ac_lr=0.05, eta_init_gamma=0.9, eta_init_lambda=0.8)
    learner = tiny_learner("metagrad", **kw)
    cfg = learner.config
    state = learner.init(KEY)
    for _ in range(2):
        state, _ = jax.jit(learner.update)(state)
    s = jax.jit(learner.sample)(state, jax.random.PRNGKey(1))
    with jax.enable_x64(True):
        state, s = _to64(state), _to64(s)
        net = {k: state.params[k] for k in ("policy", "value")}
        ref = jax.jit(lambda eta, held=None: _reference(
            cfg, tiny_family(), eta, net, state.opt_state["ac"], state.opt_state["batch"][1],
            s.batches, state.hyper["eta_ref_gamma"], state.hyper["eta_ref_lambda"], held))
        loss = jax.jit(lambda eta: learner.meta_loss({**state.params, "eta": eta}, state, s))
        eta = state.params["eta"]
        assert eta["gamma"].dtype == jnp.float64
        value, held = ref(eta)
        np.testing.assert_allclose(float(loss(eta)), float(value), rtol=1e-8)
        grad = jax.jit(jax.grad(loss))(eta)
        eps = 1e-5
        for name in ("gamma", "lambda"):
            up = {**eta, name: eta[name] + eps}
            down = {**eta, name: eta[name] - eps}
            fd = float(ref(up, held)[0] - ref(down, held)[0]) / (2 * eps)
            assert abs(fd) > 1e-7, (variant, name, fd)  # a real signal, not noise
            assert abs(float(grad[name]) - fd) <= 1e-6 * abs(fd) + 1e-12, (variant, name,
                                                                         float(grad[name]), fd)
        # θ is a constant of meta_loss (∂f/∂θ = 0): no gradient reaches it
        full = jax.grad(lambda p: learner.meta_loss(p, state, s))(state.params)
        assert all(float(jnp.abs(x).max()) == 0 for x in jax.tree.leaves(full["policy"]))


def test_update_steps_eta_along_the_meta_gradient_and_carries_the_next_batch():
    """One update: θ' is the inner step on the carried batch; the batch it collects (τ')
    is carried on; η takes one Adam step along ∇η meta_loss(τ') (float32 tolerance). SGD
    inner steps: Adam's first step is ≈ lr·sign(g), whose derivative in η is ≈ 0."""
    learner = tiny_learner("metagrad", eta_lr=0.01, ac_optimizer="sgd", ac_lr=0.05)
    state = learner.init(KEY)
    new, metrics = jax.jit(learner.update)(state)
    s2 = Sample(*new.opt_state["batch"])
    assert s2.env_steps() == learner.init_env_steps == 3 * 2 * 10
    g = jax.jit(jax.grad(learner.meta_loss))(state.params, state, s2)["eta"]
    np.testing.assert_allclose(float(metrics["eta_grad_norm"]), float(optax.tree.norm(g)),
                               rtol=1e-4)
    upd, _ = optax.adam(0.01).update(g, state.opt_state["eta"], state.params["eta"])
    want = optax.apply_updates(state.params["eta"], upd)
    for name in ("gamma", "lambda"):
        np.testing.assert_allclose(float(new.params["eta"][name]), float(want[name]),
                                   rtol=1e-5)
        assert float(new.params["eta"][name]) != float(state.params["eta"][name])
    np.testing.assert_allclose(float(metrics["gamma"]),
                               float(jax.nn.sigmoid(new.params["eta"]["gamma"])), rtol=1e-6)
    # the policy moved by the inner step, and the returns reported are τ''s
    assert not np.array_equal(new.params["policy"]["log_std"],
                              state.params["policy"]["log_std"])
    np.testing.assert_allclose(float(metrics["pre_return"]),
                               float(s2.batches.reward.sum(-1).mean()), rtol=1e-6)


def test_fixed_eta_baseline_keeps_gamma_and_lambda():
    fixed = tiny_learner("metagrad_fixed")
    assert fixed.config.eta.learn == "none"
    state = fixed.init(KEY)
    assert state.params["eta"] == {}
    new, m = jax.jit(fixed.update)(state)
    assert (float(m["gamma"]), float(m["lambda"])) == (np.float32(0.99), np.float32(0.95))
    assert float(m["eta_grad_norm"]) == 0.0


def test_learning_only_gamma_keeps_lambda_fixed_at_its_config_value():
    learner = tiny_learner("metagrad", eta_learn="gamma", eta_init_lambda=1.0, eta_lr=0.01)
    state = learner.init(KEY)
    assert set(state.params["eta"]) == {"gamma"}
    _, m = jax.jit(learner.update)(state)
    assert float(m["lambda"]) == 1.0 and float(m["gamma"]) != np.float32(0.99)


def test_conditioned_policy_acts_only_with_the_eta_it_sees():
    learner = tiny_learner("metagrad", eta_conditioned=True)
    fam = tiny_family()
    state = learner.init(KEY)
    task = jax.tree.map(lambda x: x[0], fam.sample_tasks(KEY, 1, "test"))
    adapted = learner.adapt(state, task, KEY, 0)
    np.testing.assert_allclose(np.asarray(adapted.params["eta_in"]), [0.99, 0.95], rtol=1e-6)
    assert learner.act(adapted.params, jnp.zeros(fam.obs_size), KEY, task).shape == (2,)
    with pytest.raises(ValueError, match="acts from adapt"):
        learner.act(state.params, jnp.zeros(fam.obs_size), KEY, task)


def test_bench_counts_its_batch_as_the_parallel_envs():
    from jaxmeta.bench.kinds import parallel_envs

    assert parallel_envs(tiny_learner("metagrad", ac_tasks=5, ac_episodes=4)) == 20


def test_update_is_one_program_that_does_not_grow_with_tasks_or_episodes():
    sizes = []
    for kw in ({}, {"ac_tasks": 5, "ac_episodes": 4}):
        learner = tiny_learner("metagrad", **kw)
        jaxpr = jax.make_jaxpr(learner.update)(learner.init(KEY))
        assert "callback" not in str(jaxpr)
        sizes.append(len(str(jaxpr).splitlines()))
    assert abs(sizes[0] - sizes[1]) <= 4, sizes


@pytest.mark.parametrize("overrides, match", [
    ({"eta_init_gamma": 1.0}, r"eta_init_gamma must satisfy 0 < eta_init_gamma < 1"),
    ({"eta_init_gamma": 0.0, "eta_learn": "lambda"}, r"0 < eta_init_gamma <= 1"),
    ({"eta_init_gamma": 1.5, "eta_learn": "none"}, r"eta_init_gamma <= 1, got 1.5"),
    ({"eta_init_lambda": 1.0}, r"eta_init_lambda must satisfy 0 < eta_init_lambda < 1"),
    ({"eta_ref_gamma": 0.0}, r"eta_ref_gamma"),
    ({"eta_learn": "beta"}, r"eta_learn='beta' is not valid; choose one of \['gamma_lambda'"),
    ({"ac_optimizer": "lion"}, r"ac_optimizer='lion' is not valid; choose one of \['sgd'"),
    ({"ac_tasks": 0}, r"ac_tasks must be a positive integer, got 0"),
    ({"ac_lr": -1.0}, r"ac_lr"),
    ({"eta_lr": float("nan")}, r"eta_lr must be a finite number"),
])
def test_bad_config_is_refused_naming_the_field(overrides, match):
    with pytest.raises(ValueError, match=match):
        tiny_config("metagrad", **overrides)


def test_gamma_of_one_is_allowed_when_it_is_not_learned():
    cfg = tiny_config("metagrad", eta_learn="lambda", eta_init_gamma=1.0)
    assert cfg.eta.init_gamma == 1.0
    assert dataclasses.replace(cfg.eta, learn="none").init_gamma == 1.0


def test_sweeping_the_initial_gamma_is_a_member_axis():
    learner = tiny_learner("metagrad")
    hyper = learner.default_hyper()
    hypers = jax.tree.map(lambda a, b: jnp.stack([a, b]), hyper,
                          {**hyper, "eta_init_gamma": jnp.float32(0.5)})
    states = compiled_init(learner.init)(jnp.stack([KEY, KEY]), hypers)
    g = jax.nn.sigmoid(states.params["eta"]["gamma"])
    np.testing.assert_allclose(np.asarray(g), [0.99, 0.5], rtol=1e-6)
    assert "eta_init_gamma" in config_lib.traced_names(MetaGradConfig)
    assert algorithms.entry("metagrad_fixed").preset == {"eta_learn": "none"}


def test_meta_gradient_moves_gamma_and_keeps_the_return_of_fixed_gamma(tmp_path):
    """Learning, through ``train``: task-aware A2C on ``navigation2d`` (horizon 20, 8 tasks
    × 2 episodes per batch, [32] networks, 150 iterations, 3 vmapped seeds), η starting at
    (γ, λ) = (0.9, 0.95), meta-rate 0.03. Every seed moves γ by more than 0.1 and does not
    lose return on 40 held-out goals against the same learner with η fixed (margin 0.3).
    Observed when written (seeds 0-2): γ 0.9 -> 0.46-0.61; the mean return of the last 20
    batches -3.1 vs -4.0 with γ fixed; the same with seeds 7-9."""
    from jaxmeta import envs
    from jaxmeta.evaluation import evaluate
    from jaxmeta.trainer import train

    fam = envs.make("navigation2d", horizon=20)
    out = {}
    for algo in ("metagrad", "metagrad_fixed"):
        cfg = config_lib.replace(MetaGradConfig(), hidden_sizes=(32,), ac_tasks=8,
                                 ac_episodes=2, ac_eval_episodes=4, observe_task=True,
                                 ac_value_hidden_sizes=(32,), ac_lr=0.003, eta_lr=0.03,
                                 eta_init_gamma=0.9)
        learner = algorithms.make(algo, fam, cfg)
        states, _ = train(learner, tmp_path / algo, iterations=150, seeds=3, chunk=150,
                          progress=False)
        res = evaluate(learner, states, jax.random.PRNGKey(123), "test", 40, 0)
        gamma = (np.asarray(jax.nn.sigmoid(states.params["eta"]["gamma"]))
                 if states.params["eta"] else np.full(3, 0.9))
        out[algo] = (np.asarray(res["per_seed"])[:, 0], gamma)
    (ret, gamma), (ret_fixed, _) = out["metagrad"], out["metagrad_fixed"]
    print(f"gamma {gamma}, held-out return {ret} vs fixed {ret_fixed}")
    assert np.all(np.abs(gamma - 0.9) > 0.1), gamma
    assert np.all(ret > ret_fixed - 0.3), (ret, ret_fixed)


def test_meta_gradient_through_adam_is_finite_where_a_parameter_had_no_gradient():
    """Adam's first step differentiated in η: parameters behind dead ReLUs have v̂ = 0,
    where d√v̂ is infinite (NaN dη before eps_root; this config found it)."""
    learner = tiny_learner("metagrad", ac_tasks=2, ac_episodes=1, ac_eval_episodes=1,
                           observe_task=True, eta_init_gamma=0.9)
    state = learner.init(KEY)
    grads = jax.grad(learner.meta_loss)(state.params, state, learner.sample(
        state, jax.random.PRNGKey(3)))
    assert all(np.isfinite(float(v)) and float(v) != 0 for v in grads["eta"].values()), grads
    _, m = jax.jit(learner.update)(state)
    assert all(np.isfinite(float(v)) for v in m.values()), m
