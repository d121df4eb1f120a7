"""Evolved Policy Gradients (jaxmeta.algorithms.epg): the ES step against evosax, the inner
step of a linear loss against the hand-written chain rule, learning, bad input, the
protocol (adapt/act/sample, vmap over seeds, one program, determinism)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from evosax.algorithms import Open_ES

from jaxmeta import config as config_lib
from jaxmeta import envs
from jaxmeta.algorithms.epg import EPGConfig, epg_pieces, make_epg
from jaxmeta.algorithms.epg.config import LossNetConfig
from jaxmeta.algorithms.epg.learner import orthogonal
from jaxmeta.algorithms.epg.loss_net import LossNet, receptive_field
from jaxmeta.config import ReturnsConfig
from jaxmeta.meta.sampling import advantages
from jaxmeta.protocol import env_steps_per_update
from jaxmeta.rollout import rollout
from jaxmeta.runs import compiled_init

KEY = jax.random.PRNGKey(0)

# navigation2d, horizon 10; 8 members x 4 tasks, inner runs of 2 updates x 2 episodes; a
# small convolutional loss. Every test that updates shares this learner's programs.
TINY = dict(hidden_sizes=(8,), init_std=0.2, es_population=8, es_tasks=4, es_sigma=0.1,
            es_lr=0.02, inner_updates=2, inner_episodes=2, inner_lr=0.1, eval_episodes=2,
            loss_conv_channels=(4,), loss_dilations=(1,), loss_context_size=4,
            loss_hidden_sizes=(8,), loss_memory_size=4)


@functools.cache
def family():
    return envs.make("navigation2d", horizon=10)


def config(**overrides):
    return config_lib.replace(EPGConfig(), **{**TINY, **overrides})


@functools.cache
def learner(**overrides):
    return make_epg(family(), config(**overrides))


@functools.cache
def jit_update(**overrides):
    return jax.jit(learner(**overrides).update)


@functools.cache
def held_out(num_tasks: int = 16):
    """state -> adapt returns [num_tasks, 3] on fixed test tasks and keys (2 updates)."""
    ler = learner()
    tasks = family().sample_tasks(jax.random.PRNGKey(99), num_tasks, "test")
    keys = jax.random.split(jax.random.PRNGKey(5), num_tasks)
    return jax.jit(lambda s: jax.vmap(lambda t, k: ler.adapt(s, t, k, 2))(tasks, keys))


def _run(seed: int, generations: int, **overrides):
    ler, up = learner(**overrides), jit_update(**overrides)
    state = ler.init(jax.random.PRNGKey(seed))
    history = []
    for _ in range(generations):
        state, m = up(state)
        history.append(m)
    return state, history


def test_es_step_is_evosax_open_es_tell():
    """The tell of ``update`` (``es_step``) is evosax's Open_ES tell with the config's
    population, σ, rate, antithetic sampling and centered ranks, bit for bit."""
    ler = learner()
    pieces = epg_pieces(family(), ler.config)
    state = ler.init(KEY)
    es = Open_ES(population_size=8, solution=state.params["phi"], optimizer=optax.adam(0.02),
                 std_schedule=optax.constant_schedule(0.1))
    ref0 = es.init(jax.random.PRNGKey(7), state.params["phi"], es.default_params)
    np.testing.assert_array_equal(ref0.mean, state.opt_state.mean)
    pop, _ = es.ask(jax.random.PRNGKey(1), state.opt_state, es.default_params)
    fitness = jnp.array([3.0, -1.0, 0.5, 2.0, -4.0, 1.5, 0.0, -2.5])
    want, _ = es.tell(jax.random.PRNGKey(2), pop, fitness, state.opt_state, es.default_params)
    got = pieces.es_step(state, pop, fitness, jax.random.PRNGKey(2))
    np.testing.assert_array_equal(got.mean, want.mean)
    np.testing.assert_array_equal(got.opt_state[0].nu, want.opt_state[0].nu)
    assert float(got.std) == np.float32(0.1)
    assert not np.array_equal(got.mean, state.opt_state.mean)
    # the ES descends: the mean moves toward the members evosax ranks best (lowest)
    flat = jax.vmap(lambda p: jax.flatten_util.ravel_pytree(p)[0])(pop)
    step = got.mean - state.opt_state.mean
    assert float(step @ (flat[4] - flat[0])) > 0


def test_fresh_policies_are_flax_orthogonal_inits_without_qr():
    """The QR-free orthogonal draw equals jax's orthogonal initialiser from the same key."""
    for shape, scale in (((2, 8), np.sqrt(2)), ((8, 2), 0.01), ((5, 5), 1.0)):
        want = jax.nn.initializers.orthogonal(scale)(KEY, shape)
        np.testing.assert_allclose(orthogonal(KEY, shape, scale), want, atol=1e-6)


@pytest.mark.parametrize("direction", ["future", "past"])
def test_per_step_context_sees_its_window_of_steps(direction):
    """The convolutions' per-step context c_t depends on x_s exactly for s in t..t+R−1
    (``future``) or t−R+1..t (``past``), R the receptive field (here 1 + 2·1 + 2·2 = 7)."""
    cfg = LossNetConfig(conv_channels=(3, 3), dilations=(1, 2), kernel_size=3,
                        context_size=2, direction=direction)
    r = receptive_field(cfg)
    assert r == 7
    net, T, F = LossNet(cfg), 12, 5
    x = jax.random.normal(KEY, (1, T, F))
    params = net.init(KEY, x, jnp.ones((1, T)))["params"]

    def context(x):
        _, inter = net.apply({"params": params}, x, jnp.ones((1, T)),
                             capture_intermediates=True, mutable=["intermediates"])
        return inter["intermediates"]["context"]["__call__"][0][0]  # [T, context_size]

    dep = np.abs(np.asarray(jax.jit(jax.jacobian(context))(x))).sum(axis=(1, 2, 4)) > 0
    t, s = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
    window = (s >= t) & (s < t + r) if direction == "future" else (s <= t) & (s > t - r)
    np.testing.assert_array_equal(dep, window)


def test_linear_loss_inner_step_is_the_hand_computed_chain_rule():
    """L = mean_t (w·x_t + b) with x_t = [s, a, r, d, m, μ_θ(s), log σ_θ, log π_θ(a|s)]:
    its gradient in (θ, memory) is w·∂x/∂(θ, memory) averaged over the valid steps, and one
    SGD inner step is (θ, memory) − lr·that."""
    fam = family()
    cfg = config(loss_kind="linear", inner_optimizer="sgd", inner_lr=0.3, inner_epochs=1)
    pieces = epg_pieces(fam, cfg)
    c = config_lib.bind(cfg, config_lib.hyper_of(cfg))
    phi = pieces.loss.init(KEY)
    w = phi["net"]["linear"]["kernel"][:, 0]
    assert w.shape == (2 + 3 * 2 + 3 + 4,)
    agent = pieces.agent_init(phi, jax.random.PRNGKey(1))
    task = jax.tree.map(lambda x: x[0], fam.sample_tasks(KEY, 1, "train"))
    traj = jax.jit(lambda ag: rollout(fam, pieces.spec.fn(ag["policy"], None), task,
                                      jax.random.PRNGKey(2), 2))(agent)
    adv = jax.jit(lambda t: advantages(t, ReturnsConfig(), fam.horizon))(traj)

    def features(ag):  # written out, independently of loss_net.step_features
        mean, log_std = pieces.spec.policy.apply(ag["policy"], traj.obs)
        logp = (-0.5 * ((traj.action - mean) / jnp.exp(log_std)) ** 2 - log_std
                - 0.5 * np.log(2 * np.pi)).sum(-1)
        dense = ag["memory"]["dense"]
        m = jnp.tanh(dense["kernel"][0] + dense["bias"])
        m = jnp.broadcast_to(m, traj.reward.shape + m.shape)
        x = jnp.concatenate([traj.obs, traj.action, traj.reward[..., None],
                             traj.done[..., None], m, mean, log_std, logp[..., None]], -1)
        return x * traj.mask[..., None]

    mask = traj.mask
    jac = jax.jit(jax.jacobian(features))(agent)
    hand = jax.tree.map(lambda j: jnp.einsum("etf...,f,et->...", j, w, mask) / mask.sum(), jac)
    value = float(((jax.jit(features)(agent) @ w) * mask).sum() / mask.sum()
                  + phi["net"]["linear"]["bias"][0])
    loss, grads = jax.jit(lambda ag: jax.value_and_grad(pieces.inner_loss)(
        ag, phi["net"], traj, adv, c))(agent)
    np.testing.assert_allclose(float(loss), value, rtol=1e-5)
    for g, h in zip(jax.tree.leaves(grads), jax.tree.leaves(hand), strict=True):
        np.testing.assert_allclose(g, h, rtol=1e-4, atol=1e-6)
    assert float(optax.tree.norm(grads["policy"])) > 0
    assert float(optax.tree.norm(grads["memory"])) > 0
    new, _, _ = jax.jit(lambda ag: pieces.inner_step(ag, optax.sgd(0.3).init(ag), phi["net"],
                                                     traj, adv, c))(agent)
    want = jax.tree.map(lambda a, h: a - 0.3 * h, agent, hand)
    for n, wv in zip(jax.tree.leaves(new), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(n, wv, rtol=1e-5, atol=1e-6)


def test_es_improves_the_fitness_of_the_learned_loss():
    """Learning: 30 generations of 8 members x 4 tasks (seed 0). The fitness (final return
    of the inner runs) of the last 5 generations beats the first 5 by more than 1.0, and
    the ES mean's test-time training on 16 fixed held-out goals ends better by more than 1.0.
    Observed when written: fitness -7.8 -> -4.2 (seed 0), -7.9 -> -5.2 (1), -7.4 -> -5.7
    (2); held-out final return -8.6 -> -4.8 (seed 0). In this tiny regime (2 inner updates,
    Adam at 0.1) the random initial loss damages the policy and the ES mostly learns a loss
    that stops doing so: 11 of seeds 0-11 improve by more than 0.6; seed 6, whose random
    loss is harmless from the start, does not improve."""
    before = held_out()(learner().init(KEY)).returns[:, -1].mean()
    state, history = _run(0, 30)
    fit = np.array([float(m["fitness_mean"]) for m in history])
    assert np.all(np.isfinite(fit))
    early, late = fit[:5].mean(), fit[-5:].mean()
    print(f"fitness {early:.2f} -> {late:.2f}")
    assert late > early + 1.0, fit
    after = held_out()(state).returns[:, -1].mean()
    print(f"held-out {float(before):.2f} -> {float(after):.2f}")
    assert float(after) > float(before) + 1.0


@pytest.mark.parametrize("overrides, match", [
    ({"es_population": 1}, r"es_population must be an integer >= 2"),
    ({"es_population": 0}, r"es_population must be an integer >= 2"),
    ({"es_population": 5}, r"es_population must be even \(antithetic sampling"),
    ({"es_population": 7, "es_antithetic": False}, r"es_population must be even \(evosax"),
    ({"es_tasks": 0}, r"es_tasks must be a positive integer, got 0"),
    ({"es_sigma": 0.0}, r"es_sigma must satisfy 0 < es_sigma"),
    ({"es_lr": float("nan")}, r"es_lr must be a finite number"),
    ({"es_fitness_shaping": "rank"}, r"es_fitness_shaping='rank' is not valid"),
    ({"inner_updates": 0}, r"inner_updates must be a positive integer, got 0"),
    ({"inner_episodes": 0}, r"inner_episodes must be a positive integer"),
    ({"inner_epochs": 0}, r"inner_epochs must be a positive integer"),
    ({"inner_loss": "ppo"}, r"inner_loss='ppo' is not valid; choose one of \['learned', 'pg'"),
    ({"inner_lr": -0.1}, r"inner_lr"),
    ({"loss_kind": "mlp"}, r"loss_kind='mlp' is not valid"),
    ({"loss_conv_channels": ()}, r"loss_conv_channels must be a tuple of positive integers"),
    ({"loss_conv_channels": (4, 0), "loss_dilations": (1, 2)}, r"loss_conv_channels"),
    ({"loss_dilations": (1, 2)}, r"loss_dilations must have one entry per convolution layer"),
    ({"loss_kernel_size": 0}, r"loss_kernel_size must be a positive integer, got 0"),
    ({"loss_context_size": 0}, r"loss_context_size must be a positive integer, got 0"),
    ({"loss_memory_size": 0}, r"loss_memory_size must be a positive integer, got 0"),
    ({"loss_hidden_sizes": (8, 0)}, r"loss_hidden_sizes must be a tuple of positive"),
    ({"hidden_sizes": (0,)}, r"hidden_sizes must be a tuple of positive integers"),
    ({"eval_episodes": 0}, r"eval_episodes must be a positive integer, got 0"),
    ({"pg_coef": -1.0}, r"pg_coef must satisfy 0 <= pg_coef"),
])
def test_bad_config_is_refused_naming_the_field(overrides, match):
    with pytest.raises(ValueError, match=match):
        config(**overrides)


def test_discrete_action_family_is_refused():
    with pytest.raises(ValueError, match="gridworld has discrete actions; EPG"):
        make_epg(envs.make("gridworld"), config())


def test_flat_names_are_unique_and_the_continuous_ones_are_traced():
    fields = config_lib.flat_fields(EPGConfig)
    assert {"es_population", "es_sigma", "inner_updates", "loss_kernel_size",
            "loss_memory_size", "pg_coef", "eval_episodes"} <= set(fields)
    assert set(config_lib.traced_names(EPGConfig)) == {"inner_lr", "es_sigma", "es_lr",
                                                      "gamma", "gae_lambda", "pg_coef"}
    cfg = config()
    assert config_lib.from_dict(EPGConfig, config_lib.to_dict(cfg)) == cfg


def test_adapt_trains_a_fresh_policy_and_act_uses_it():
    fam, ler = family(), learner()
    state = ler.init(KEY)
    out = held_out()(state)
    assert out.returns.shape == (16, 3)
    assert np.all(np.isfinite(out.returns))
    params = jax.tree.map(lambda x: x[0], out.params)
    assert set(params) == {"policy", "memory"}
    a = ler.act(params, jnp.zeros(fam.obs_size), KEY)
    assert a.shape == (fam.action_size,)
    with pytest.raises(ValueError, match="acts from adapt"):
        ler.act(state.params, jnp.zeros(fam.obs_size), KEY)
    # K = 0: the return of the fresh policy only
    task = jax.tree.map(lambda x: x[0], fam.sample_tasks(KEY, 1, "test"))
    assert ler.adapt(state, task, KEY, 0).returns.shape == (1,)
    with pytest.raises(ValueError, match="adapt_steps"):
        ler.adapt(state, task, KEY, -1)


def test_pg_baseline_runs_and_leaves_the_loss_unchanged():
    """``inner_loss="pg"``: the same inner schedule with the policy-gradient loss; φ plays
    no part, so one member's runs are simulated and the ES mean does not move."""
    ler, up = learner(inner_loss="pg"), jit_update(inner_loss="pg")
    state = ler.init(KEY)
    new, m = up(state)
    assert all(np.isfinite(float(v)) for v in m.values()), m
    assert float(m["fitness_max"]) == float(m["fitness_mean"])
    np.testing.assert_array_equal(new.opt_state.mean, state.opt_state.mean)
    assert int(new.iteration) == 1 and int(new.opt_state.generation_counter) == 1
    assert env_steps_per_update(ler) == 1 * 4 * (2 * 2 + 2) * 10


def test_update_is_one_program_vmaps_over_seeds_and_is_deterministic():
    """vmap(update) over two members (seeds, and sweep points of the traced σ and rates)
    gives each member's own update (to float32 rounding: XLA's batched products round
    differently in the last bit), one compiled program serves every generation, and the
    same seed gives the same state bit for bit."""
    ler, up = learner(), jit_update()
    keys = jnp.stack([jax.random.PRNGKey(3), jax.random.PRNGKey(4)])
    h = ler.default_hyper()
    hypers = [h, {**h, "es_sigma": jnp.float32(0.2), "es_lr": jnp.float32(0.01),
                  "inner_lr": jnp.float32(0.05)}]
    states = compiled_init(ler.init)(keys, jax.tree.map(lambda *x: jnp.stack(x), *hypers))
    singles = [ler.init(k, hy) for k, hy in zip(keys, hypers, strict=True)]
    assert float(states.opt_state.std[1]) == np.float32(0.2)
    for i, s in enumerate(singles):  # lax.map(init) == init (to rounding at XLA opt level 0)
        jax.tree.map(lambda a, b, i=i: np.testing.assert_allclose(a[i], b, rtol=1e-6,
                                                                  atol=1e-7), states, s)
    batched, bm = jax.jit(jax.vmap(ler.update))(states)
    for i, s in enumerate(singles):
        one, m = up(s)
        jax.tree.map(lambda a, b, i=i: np.testing.assert_allclose(a[i], b, rtol=1e-6,
                                                                  atol=1e-7),
                     (batched, bm), (one, m))
        assert int(batched.iteration[i]) == int(one.iteration) == 1
    # determinism, and one compiled program for every generation
    a, b = singles[0], ler.init(keys[0])
    for _ in range(2):
        a, _ = up(a)
        b, _ = up(b)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    assert up._cache_size() == 1
    assert "callback" not in str(jax.make_jaxpr(ler.update)(singles[0]))


def test_sample_counts_every_simulated_step():
    ler = learner()
    # 8 members x 4 tasks x (2 updates x 2 episodes + 2 eval episodes) x 10 steps
    assert env_steps_per_update(ler) == 8 * 4 * (2 * 2 + 2) * 10
    s = jax.eval_shape(ler.sample, jax.eval_shape(ler.init, KEY), KEY)
    assert s.batches["inner"].reward.shape == (8, 4, 2, 2, 10)
    assert s.batches["eval"].reward.shape == (8, 4, 2, 10)


def test_bench_counts_the_simulated_members_as_parallel_envs():
    """Members × tasks × episodes of one inner update; the PG baseline simulates one
    member (its per-update env steps say so too)."""
    from jaxmeta.bench.kinds import parallel_envs
    from tests.helpers import tiny_learner

    epg, pg = tiny_learner("epg"), tiny_learner("epg_pg")
    assert parallel_envs(epg) == 4 * 2 * 2 and parallel_envs(pg) == 2 * 2
    assert env_steps_per_update(epg) == 4 * env_steps_per_update(pg)
