"""API tests over every registered algorithm: jit, vmap, one compile, one program."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmeta import algorithms
from tests.helpers import tiny_family, tiny_learner

KEY = jax.random.PRNGKey(0)


# tesp_v3 (η = 0) and tesp_v5 (fixed rate) compile the same programs as tesp and tesp_v4
# with other constants; their switches are tested in test_tesp.py.
@pytest.mark.parametrize("algo", [a for a in algorithms.names() if a not in ("tesp_v3",
                                                                             "tesp_v5")])
def test_update_compiles_once_and_is_finite(algo):
    learner = tiny_learner(algo)
    traces = []

    def counted(state):
        traces.append(1)
        return learner.update(state)

    update = jax.jit(counted)
    state = learner.init(KEY)
    state, m1 = update(state)
    state, m2 = update(state)
    assert len(traces) == 1, "the second call recompiled"
    assert int(state.iteration) == 2
    for m in (m1, m2):
        assert np.isfinite(float(m["loss"])) and np.isfinite(float(m["pre_return"]))


@pytest.mark.parametrize("algo", algorithms.names())
def test_adapt_and_act_shapes(algo):
    learner = tiny_learner(algo)
    fam = tiny_family()
    state = learner.init(KEY)
    tasks = fam.sample_tasks(KEY, 3, "test")
    adapt = jax.jit(jax.vmap(lambda t, k: learner.adapt(state, t, k, 2)))
    out = adapt(tasks, jax.random.split(KEY, 3))
    assert out.returns.shape == (3, 3)
    assert np.all(np.isfinite(out.returns))
    task0 = jax.tree.map(lambda x: x[0], tasks)
    params0 = jax.tree.map(lambda x: x[0], out.params)
    a = learner.act(params0, jnp.zeros(fam.obs_size), KEY, task0)
    assert a.shape == (fam.action_size,)


def _count_eqns(jaxpr) -> tuple[int, set]:
    n, prims = 0, set()
    for eqn in jaxpr.eqns:
        n += 1
        prims.add(eqn.primitive.name)
        for sub in jax.core.subjaxprs(eqn) if hasattr(jax.core, "subjaxprs") else []:
            k, p = _count_eqns(sub)
            n, prims = n + k, prims | p
        for v in eqn.params.values():
            for j in (v if isinstance(v, (list, tuple)) else [v]):
                inner = getattr(j, "jaxpr", None)
                if inner is not None and hasattr(inner, "eqns"):
                    k, p = _count_eqns(inner)
                    n, prims = n + k, prims | p
    return n, prims


_STEPS = {"maml": "inner_steps", "meta_sgd": "inner_steps", "tesp": "fast_updates",
          "adaptsv": "fast_updates"}


@pytest.mark.parametrize("algo", list(_STEPS))
def test_update_is_one_program_without_python_loops(algo):
    """The traced program does not grow with tasks, episodes or inner steps (they are
    vmapped/scanned, not unrolled in Python) and contains no host callback."""
    sizes = {}
    for kw in ({}, {"meta_batch_size": 5, "inner_episodes": 4}, {_STEPS[algo]: 5}):
        learner = tiny_learner(algo, **kw)
        state = learner.init(KEY)
        n, prims = _count_eqns(jax.make_jaxpr(learner.update)(state).jaxpr)
        assert not any("callback" in p for p in prims), prims
        sizes[tuple(kw)] = n
    # an unrolled loop would add hundreds of equations per extra task/episode/step; a
    # couple may differ (e.g. a size-1 slice of the per-step returns is a squeeze)
    assert max(sizes.values()) - min(sizes.values()) <= 4, sizes


def test_vmapped_seeds_are_independent_programs_of_one_update():
    learner = tiny_learner("maml")
    keys = jnp.stack([jax.random.PRNGKey(i) for i in range(2)])
    states = jax.vmap(learner.init)(keys)
    states, m = jax.jit(jax.vmap(learner.update))(states)
    assert m["post_return"].shape == (2,)
    assert not np.allclose(m["post_return"][0], m["post_return"][1])


def test_unknown_algo_and_bad_config_are_refused():
    with pytest.raises(ValueError, match="maml.*meta_sgd.*oracle.*pretrained.*random_init"):
        algorithms.make("reptile", tiny_family())
    with pytest.raises(ValueError, match="meta_batch_size must be a positive integer"):
        algorithms.MetaConfig(meta_batch_size=0)
    with pytest.raises(ValueError, match="inner_steps"):
        algorithms.MetaConfig(inner_steps=-2)
    with pytest.raises(ValueError, match=r"meta_gradient='second'.*exact"):
        algorithms.MetaConfig(meta_gradient="second")
    with pytest.raises(ValueError, match="outer"):
        algorithms.MetaConfig(outer="sgd")


@pytest.mark.parametrize("overrides", [
    {"outer": "ppo"},
    {"meta_gradient": "exact"},
    {"meta_gradient": "first_order", "inner_steps": 2, "remat": True},
], ids=["ppo", "exact-trpo", "first-order-K2-remat"])
def test_maml_variants_update_parameters(overrides):
    learner = tiny_learner("maml", **overrides)
    state = learner.init(KEY)
    new, m = jax.jit(learner.update)(state)
    assert all(np.isfinite(float(v)) for v in jax.tree.leaves(m) if jnp.ndim(v) == 0)
    assert m["returns_by_step"].shape == (learner.config.inner_steps + 1,)
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), state.params["policy"],
                         new.params["policy"])
    assert max(jax.tree.leaves(moved)) > 0, "the meta-update did not change θ"
