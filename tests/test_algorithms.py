"""API tests over every registered algorithm: jit, vmap, one compile, one program."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmeta import algorithms
from jaxmeta import config as config_lib
from jaxmeta.config import InnerConfig, SamplingConfig
from tests.helpers import TINY_TESP, tiny_family, tiny_learner

KEY = jax.random.PRNGKey(0)


# Finiteness, compiling each trainer chunk once, and the numbers themselves are checked for
# every method by tests/test_golden.py. Left out here: programs another case compiles
# already (tesp_v3 is tesp with η = 0, tesp_v5 is tesp_v4 with another rate, random_init
# adapts like pretrained, metagrad_fixed like metagrad, maesn_latent_space like maesn, epg_pg
# like epg) and V1/V4, whose adapt test_tesp.py runs.
@pytest.mark.parametrize("algo", [a for a in algorithms.names() if a not in (
    "tesp_v1", "tesp_v3", "tesp_v4", "tesp_v5", "random_init", "varibad",
    "vate_past_decoding", "vate_no_rl_grad", "metagrad_fixed", "maesn_latent_space",
    "epg_pg")])
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


_STEPS = {"maml": "inner_steps", "meta_sgd": "inner_steps", "tesp": "inner_steps",
          "adaptsv": "inner_steps", "rl2": "trial_episodes", "vate": "trial_episodes",
          "sac": "train_steps", "pearl": "train_steps", "maesn": "inner_steps",
          "epg": "inner_updates"}


@pytest.mark.parametrize("algo", list(_STEPS))
def test_update_is_one_program_without_python_loops(algo):
    """The traced program does not grow with tasks, episodes or inner steps (they are
    vmapped/scanned, not unrolled in Python) and contains no host callback."""
    sizes = {}
    episodes = {"trial_episodes": "trials_per_task", "train_steps": "extra_posterior_steps"
                }.get(_STEPS[algo], "inner_episodes")
    more = 40 if _STEPS[algo] == "train_steps" else 4  # steps, not episodes, off-policy
    batch = ({"meta_batch_size": 3, "num_train_tasks": 5} if algo in ("sac", "pearl")
             else {"es_population": 6, "es_tasks": 3} if algo == "epg"
             else {"meta_batch_size": 5})
    for kw in ({}, {**batch, episodes: more}, {_STEPS[algo]: 5}):
        learner = tiny_learner(algo, **kw)
        state = learner.init(KEY)
        n, prims = _count_eqns(jax.make_jaxpr(learner.update)(state).jaxpr)
        assert not any("callback" in p for p in prims), prims
        sizes[tuple(kw)] = n
    # an unrolled loop would add hundreds of equations per extra task/episode/step; a
    # couple may differ (e.g. a size-1 slice of the per-step returns is a squeeze)
    assert max(sizes.values()) - min(sizes.values()) <= 4, sizes


def test_unknown_algo_and_bad_config_are_refused():
    with pytest.raises(ValueError, match="maml.*meta_sgd.*oracle.*pretrained.*random_init"):
        algorithms.make("reptile", tiny_family())
    with pytest.raises(ValueError, match="meta_batch_size must be a positive integer"):
        SamplingConfig(meta_batch_size=0)
    with pytest.raises(ValueError, match="inner_steps"):
        InnerConfig(steps=-2)
    with pytest.raises(ValueError, match=r"meta_gradient='second'.*first_order.*dice"):
        algorithms.MAMLConfig(meta_gradient="second")
    with pytest.raises(ValueError, match="outer"):
        algorithms.MAMLConfig(outer="sgd")
    with pytest.raises(ValueError, match="maml takes a MAMLConfig, got a TESPConfig"):
        algorithms.make("maml", tiny_family(), algorithms.TESPConfig())


def test_presets_fix_their_fields_and_the_learner_carries_what_trains():
    """Meta-SGD and the TESP ablations are presets: ``make`` applies them, refuses a config
    that asks for another value of a fixed field, and the learner's config is the one it
    trains with (what the trainer writes to config.json)."""
    assert tiny_learner("meta_sgd").config.inner.optimizer == "meta_sgd"
    v4 = algorithms.make("tesp_v4", tiny_family(), algorithms.TESPConfig())
    assert (v4.config.inner.optimizer, v4.config.inner.lr) == ("sgd", 0.0)
    with pytest.raises(ValueError, match=r"tesp_v4 fixes inner_lr=0.0 .*asks for inner_lr=0.1"):
        algorithms.make("tesp_v4", tiny_family(),
                        config_lib.replace(algorithms.TESPConfig(), inner_lr=0.1))
    # the class default of a fixed field is not a request: the preset replaces it
    assert algorithms.make("tesp_v1", tiny_family(), TINY_TESP).config.buffer == "all"
