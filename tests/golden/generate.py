"""Golden metrics: fixed-seed runs of every method, recorded to catch any change in results.

    python -m tests.golden.generate                  # every entry -> tests/golden/golden.json
    python -m tests.golden.generate maml_trpo_dice   # only these entries (the rest kept)

Each entry trains one algorithm through the trainer (``train``: vmapped seeds, scanned
chunks) on a tiny config and stores every metric record, a SHA-256 of the final
parameters and, for a few, one ``evaluate``. ``flat_config`` is the complete config in flat
field names (entries recorded before the nested configs use the old names, which
``jaxmeta.config.from_flat`` still reads), so the test rebuilds exactly what was recorded.
``tests/test_golden.py`` reruns the entries and requires bit-for-bit equality (float32 on a
CPU: the numbers are exact on the machine class that recorded them, not across devices).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

from jaxmeta import algorithms, envs
from jaxmeta import config as config_lib
from jaxmeta.evaluation import evaluate
from jaxmeta.trainer import train
from tests.helpers import tiny_config

PATH = Path(__file__).parent / "golden.json"
NAV = ("navigation2d", {"horizon": 10})
EVAL = {"split": "test", "num_tasks": 4, "adapt_steps": 2}

# name: (algo, env, env overrides, config overrides of the tiny config, iterations, seeds,
#        with an evaluation)
ENTRIES = {
    "maml_trpo_first_order": ("maml", *NAV, {"meta_gradient": "first_order"}, 4, 2, False),
    "maml_trpo_second_order": ("maml", *NAV, {"meta_gradient": "second_order"}, 4, 2, True),
    "maml_trpo_dice": ("maml", *NAV, {"meta_gradient": "dice"}, 4, 2, False),
    "maml_ppo_dice_k2_remat": ("maml", *NAV, {"outer": "ppo", "meta_gradient": "dice",
                                              "inner_steps": 2, "remat": True}, 4, 2, False),
    "meta_sgd": ("meta_sgd", *NAV, {}, 4, 2, False),
    "tesp_first_order": ("tesp", *NAV, {}, 4, 2, False),
    "tesp_v2": ("tesp_v2", *NAV, {}, 4, 2, False),
    "adaptsv": ("adaptsv", *NAV, {}, 4, 2, False),
    "pretrained": ("pretrained", *NAV, {}, 4, 2, False),
    "random_init": ("random_init", *NAV, {}, 4, 2, False),
    "oracle": ("oracle", *NAV, {}, 4, 2, True),
    "rl2": ("rl2", *NAV, {}, 4, 2, False),
    "vate": ("vate", *NAV, {}, 4, 2, True),
    "sac": ("sac", *NAV, {}, 4, 2, False),
    "pearl": ("pearl", *NAV, {}, 4, 2, True),
    "metagrad": ("metagrad", *NAV, {"ac_entropy_coef": 0.01}, 4, 2, True),
    "maesn": ("maesn", *NAV, {}, 4, 2, True),
    "epg": ("epg", *NAV, {"pg_coef": 0.1}, 4, 2, True),  # pg_coef's default 0 would not move
    "maml_halfcheetah_vel": ("maml", "halfcheetah_vel", {"horizon": 5, "physics": "mjx"},
                             {"outer": "ppo", "meta_gradient": "first_order"}, 1, 1, False),
}
CHUNK = 2  # iterations per compiled call: a 4-iteration entry calls one program twice


def params_digest(params) -> str:
    """SHA-256 over the leaves of a parameter pytree, in key-path order."""
    h = hashlib.sha256()
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    for path, leaf in sorted(leaves, key=lambda kv: jax.tree_util.keystr(kv[0])):
        h.update(jax.tree_util.keystr(path).encode())
        h.update(np.asarray(leaf).tobytes())
    return h.hexdigest()


def build(name: str, flat_config: dict | None = None):
    """The learner of entry ``name``: from a recorded ``flat_config``, or the tiny config
    with the entry's overrides."""
    algo, env, env_kw, overrides, *_ = ENTRIES[name]
    cls = algorithms.config_class(algo)
    cfg = (config_lib.from_flat(cls, flat_config) if flat_config is not None
           else tiny_config(algo, **overrides))
    return algorithms.make(algo, envs.make(env, **env_kw), cfg)


def run(name: str, flat_config: dict | None = None, learner=None) -> dict:
    """Trains entry ``name`` (``learner``, or the one :func:`build` makes) and returns its
    golden record."""
    algo, env, env_kw, overrides, iterations, seeds, with_eval = ENTRIES[name]
    learner = learner or build(name, flat_config)
    with tempfile.TemporaryDirectory() as d:
        states, records = train(learner, d, iterations=iterations, seeds=seeds,
                                chunk=min(CHUNK, iterations), progress=False)
    flat = {n: config_lib.get(learner.config, n) for n in config_lib.flat_fields(
        type(learner.config))}
    out = {"algo": algo, "env": env, "env_overrides": env_kw,
           "flat_config": flat_config or json.loads(json.dumps(flat)),
           "iterations": iterations, "seeds": seeds, "records": records,
           "params_sha256": params_digest(states.params)}
    if with_eval:
        out["eval"] = {**EVAL, "per_seed": evaluate(learner, states, jax.random.PRNGKey(5),
                                                    **EVAL)["per_seed"]}
    return out


def main(names: list[str]) -> None:
    golden = json.loads(PATH.read_text()) if PATH.exists() else {}
    for name in names or list(ENTRIES):
        golden[name] = run(name)
        print(f"recorded {name}", flush=True)
    PATH.write_text(json.dumps(golden, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
