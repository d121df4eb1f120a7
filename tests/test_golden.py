"""Results do not change: every golden entry reproduces bit for bit (tests/golden/); the
trainer compiles each learner's chunk once; and every traced hyperparameter reaches the
learner (a sweep over it changes what the program computes).

The last test reuses the golden learners' compiled programs (same learner objects, same
shapes), so it costs no compilation of its own.
"""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmeta import config as config_lib
from jaxmeta.evaluation import member_returns
from jaxmeta.runs import compiled_init
from jaxmeta.trainer import compiled_chunk
from tests.golden.generate import CHUNK, ENTRIES, EVAL, PATH, build, run

pytestmark = pytest.mark.golden

GOLDEN = json.loads(PATH.read_text())


@functools.cache
def learner_of(name: str):
    return build(name, GOLDEN[name]["flat_config"])


def grouped(names):
    """Under `pytest -n 2 --dist loadgroup` an entry's tests share a worker, so the traced
    field test reuses the golden run's compiled programs."""
    return [pytest.param(n, marks=pytest.mark.xdist_group(n)) for n in names]


@pytest.mark.parametrize("name", grouped(ENTRIES))
def test_reproduces_golden_metrics_bit_for_bit(name):
    want = GOLDEN[name]
    learner = learner_of(name)
    got = run(name, want["flat_config"], learner)
    assert len(got["records"]) == len(want["records"])
    for g, w in zip(got["records"], want["records"], strict=True):
        for key, value in w.items():  # metrics added later are allowed, none may change
            assert g.get(key) == value, (name, w["iteration"], w["seed"], key)
    assert got["params_sha256"] == want["params_sha256"], name
    if "eval" in want:
        assert got["eval"] == want["eval"], name
    # 4 iterations in chunks of 2: the second call reused the first call's program
    assert compiled_chunk(learner.update)._cache_size() == 1, name


# fields a configuration does not read (the other outer step's settings)
UNUSED = {"maml_trpo_second_order": {"ppo_lr", "ppo_clip"}, "maml_ppo_dice_k2_remat": {"max_kl"},
          "pearl": {"alpha_lr"},  # PEARL holds α fixed (learn_alpha=False)
          "maesn": {"ppo_lr", "ppo_clip"}}


@pytest.mark.parametrize("name", grouped([*UNUSED, "tesp_first_order", "oracle",
                                                "rl2", "vate", "sac", "metagrad", "epg"]))
def test_every_traced_field_reaches_the_learner(name):
    """Two members, the defaults and one field changed: the field changes the update's
    metrics or parameters, or the adaptation returns (the baselines read the inner rate
    and λ only when fine-tuning)."""
    learner = learner_of(name)
    base = learner.default_hyper()
    evaluates = "eval" in GOLDEN[name]
    for field in config_lib.traced_names(type(learner.config)):
        # 2 members, as in the golden runs: seed 0 twice, with two values of the field
        # (Meta-SGD's inner rate acts through init: it is the initial α); a clip that binds
        changed = base[field] * (1e-3 if field == "ppo_clip" else 0.5)
        hypers = jax.tree.map(lambda b, c: jnp.stack([b, c]), base, {**base, field: changed})
        states = compiled_init(learner.init)(jnp.stack([jax.random.PRNGKey(0)] * 2), hypers)
        new, (metrics, _) = compiled_chunk(learner.update)(states, min(CHUNK, 2))
        leaves = jax.tree.leaves(new.params) + [np.swapaxes(x, 0, 1)  # [members, iterations]
                                                for x in jax.tree.leaves(metrics)]
        if evaluates:
            leaves.append(member_returns(learner, states, jax.random.PRNGKey(5), "test",
                                         EVAL["num_tasks"], EVAL["adapt_steps"]))
        differs = any(not np.array_equal(np.asarray(x)[0], np.asarray(x)[1]) for x in leaves)
        assert differs == (field not in UNUSED.get(name, set())), (name, field)
