"""Nested configs: flat names, JSON round trips, older configs, traced fields, errors."""

import json

import jax
import jax.numpy as jnp
import pytest

from jaxmeta import algorithms
from jaxmeta import config as config_lib
from jaxmeta.config import InnerConfig, PolicyConfig, ReturnsConfig, TRPOConfig
from jaxmeta.meta import estimators

# config.json of runs written before the nested configs (format 1): MAML's shared flat
# MetaConfig, and TESP's flat config (AdaptSV was a TESPConfig with adapt="variable")
OLD_MAML = {
    "hidden_sizes": [64, 64], "activation": "tanh", "init_std": 1.0, "meta_batch_size": 10,
    "inner_episodes": 10, "outer_episodes": 10, "eval_episodes": 10, "inner_steps": 2,
    "inner_lr": 0.05, "meta_gradient": "exact", "remat": False, "gamma": 0.9,
    "gae_lambda": 1.0, "baseline": "linear", "inner_normalize_advantages": True,
    "outer": "ppo", "outer_lr": 0.003, "ppo_epochs": 3, "ppo_clip": 0.2, "max_kl": 0.01,
    "cg_iters": 10, "cg_damping": 1e-05, "ls_backtrack_ratio": 0.8, "ls_max_backtracks": 15,
    "value_hidden_sizes": [64, 64], "value_coef": 0.5}
OLD_TESP = {
    "hidden_sizes": [8], "activation": "relu", "init_std": 1.0, "gru_size": 4,
    "embedding_size": 2, "adapt": "variable", "adapt_policy": False, "fast_updates": 2,
    "inner_lr": 0.001, "inner_lr_mode": "fixed", "meta_gradient": "first_order",
    "buffer": "best", "buffer_size": 2, "eta": 0.01, "meta_batch_size": 3,
    "inner_episodes": 3, "outer_episodes": 2, "eval_episodes": 2, "gamma": 0.99,
    "gae_lambda": 0.97, "baseline": "linear", "inner_normalize_advantages": True,
    "outer_lr": 0.0003, "ppo_epochs": 2, "ppo_clip": 0.15}


@pytest.mark.parametrize("algo", algorithms.names())
def test_every_config_round_trips_through_json_and_flat_names(algo):
    cls = algorithms.config_class(algo)
    cfg = algorithms.make(algo, _nav(), cls()).config  # as it trains: preset applied
    fields = config_lib.flat_fields(cls)  # unique by construction (a collision raises)
    assert config_lib.from_dict(cls, json.loads(json.dumps(config_lib.to_dict(cfg)))) == cfg
    assert config_lib.from_dict(cls, {n: config_lib.get(cfg, n) for n in fields}) == cfg
    assert set(config_lib.hyper_of(cfg)) == set(config_lib.traced_names(cls)) <= set(fields)


def _nav():
    from tests.helpers import tiny_family

    return tiny_family()


def test_older_flat_configs_still_load():
    with pytest.warns(DeprecationWarning, match="'exact' is deprecated.*'dice'"):
        maml = config_lib.from_dict(algorithms.MAMLConfig, OLD_MAML)
    assert (maml.meta_gradient, maml.ppo.lr, maml.ppo.epochs, maml.inner.steps,
            maml.policy.activation, maml.returns.gamma) == ("dice", 0.003, 3, 2, "tanh", 0.9)
    sv = config_lib.from_dict(algorithms.AdaptSVConfig, OLD_TESP)  # encoder fields dropped
    assert (sv.inner.optimizer, sv.inner.steps, sv.embedding_size) == ("sgd", 2, 2)
    tesp = config_lib.from_dict(algorithms.TESPConfig, {**OLD_TESP, "adapt": "encoder",
                                                        "inner_lr_mode": "per_parameter"})
    assert (tesp.inner.optimizer, tesp.buffer_size, tesp.gru_size) == ("meta_sgd", 2, 4)


def test_replace_validates_each_section_once_with_every_change():
    """M ≤ N is checked with both new values (N = 4 alone would refuse the default M)."""
    cfg = config_lib.replace(algorithms.TESPConfig(), inner_episodes=4, buffer_size=4)
    assert (cfg.sampling.inner_episodes, cfg.buffer_size) == (4, 4)
    with pytest.raises(ValueError, match="buffer_size=16 must be <= inner_episodes=4"):
        config_lib.replace(algorithms.TESPConfig(), inner_episodes=4)


def test_bind_puts_the_traced_values_in_place():
    cfg = algorithms.MAMLConfig()
    assert config_lib.traced_names(type(cfg)) == ["gamma", "gae_lambda", "inner_lr", "ppo_lr",
                                                  "ppo_clip", "max_kl"]
    assert config_lib.bind(cfg, None) is cfg

    @jax.jit
    def read(hyper):
        c = config_lib.bind(cfg, hyper)
        return c.inner.lr * 10 + c.returns.gamma, c.inner.steps  # steps stays static

    hyper = {**config_lib.hyper_of(cfg), "inner_lr": jnp.float32(0.5)}
    value, steps = read(hyper)
    assert float(value) == pytest.approx(5.99) and int(steps) == 1
    assert cfg.inner.lr == 0.1  # the static config is untouched


@pytest.mark.parametrize("make, message", [
    (lambda: InnerConfig(lr=-1.0), "inner_lr must satisfy 0 <= inner_lr"),
    (lambda: ReturnsConfig(gamma=1.5), "gamma must satisfy 0 <= gamma <= 1"),
    (lambda: PolicyConfig(hidden_sizes=()), "hidden_sizes must be a tuple of positive"),
    (lambda: PolicyConfig(activation="gelu"), "activation='gelu' is not valid"),
    (lambda: TRPOConfig(ls_backtrack_ratio=1.0), "ls_backtrack_ratio must satisfy 0 <"),
    (lambda: InnerConfig(optimizer="adam"), "inner_optimizer='adam'.*sgd.*meta_sgd"),
    (lambda: config_lib.from_dict(algorithms.MAMLConfig, {"policy": {}, "polcy": {}}),
     "MAMLConfig has no field.*polcy"),
    (lambda: config_lib.replace(algorithms.MAMLConfig(), gru_size=4),
     "MAMLConfig has no field 'gru_size'; its fields: .*inner_lr"),
    (lambda: config_lib.parse_value(algorithms.MAMLConfig, "inner_steps", "two"),
     "inner_steps expects an integer, got 'two'"),
    (lambda: config_lib.parse_value(algorithms.MAMLConfig, "remat", "maybe"),
     "remat expects true/false"),
])
def test_bad_values_name_the_field(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_estimator_names_and_their_old_aliases():
    for old, new in (("hessian", "second_order"), ("exact", "dice")):
        with pytest.warns(DeprecationWarning, match=f"'{old}' is deprecated"):
            assert estimators.canonical(old) == new
        with pytest.warns(DeprecationWarning):
            assert algorithms.MAMLConfig(meta_gradient=old).meta_gradient == new
    with pytest.raises(ValueError, match=r"'hessain' is not valid.*first_order.*dice"):
        estimators.canonical("hessain")
    assert estimators.make("dice").score_term and estimators.make("first_order").first_order
