"""Tiny shared learners, built once per test session so compiled programs are reused."""

import functools

from jaxmeta import algorithms, envs
from jaxmeta import config as config_lib

# flat fields shared by every algorithm that has them (jaxmeta.bench.config_for's rule)
TINY_FLAT = dict(hidden_sizes=(8,), meta_batch_size=3, inner_episodes=2, outer_episodes=2,
                 eval_episodes=2, ppo_epochs=2, cg_iters=3, ls_max_backtracks=4,
                 value_hidden_sizes=(8,))
TINY_TESP_FLAT = dict(hidden_sizes=(8,), gru_size=4, embedding_size=2, meta_batch_size=3,
                      inner_episodes=3, outer_episodes=2, eval_episodes=2, buffer_size=2,
                      inner_steps=2, ppo_epochs=2)

TINY_RECURRENT_FLAT = dict(TINY_FLAT, gru_size=4, latent_size=2, decoder_hidden_sizes=(8,),
                           trial_episodes=2, eval_trials=2, vae_buffer_trials=32,
                           vae_batch_trials=2)

# SAC / PEARL on the tiny navigation2d (horizon 10): 3 fixed tasks, 2 per update
TINY_OFFPOLICY_FLAT = dict(hidden_sizes=(8,), encoder_hidden_sizes=(8,), latent_size=2,
                           num_train_tasks=3, capacity=200, initial_steps=20,
                           tasks_per_iteration=2, prior_steps=10, posterior_steps=10,
                           extra_posterior_steps=10, train_steps=3, meta_batch_size=2,
                           batch_size=16, context_size=8)

# meta-gradient A2C: 3 tasks x 2 episodes per batch
TINY_METAGRAD_FLAT = dict(hidden_sizes=(8,), ac_value_hidden_sizes=(8,), ac_tasks=3,
                          ac_episodes=2, ac_eval_episodes=2)

# MAESN: 5 fixed training tasks (3 per meta-batch), latents of size 2
TINY_MAESN_FLAT = dict(TINY_FLAT, num_train_tasks=5, latent_size=2)

# EPG: 4 members x 2 tasks, inner runs of 2 updates x 2 episodes, a small conv loss
TINY_EPG_FLAT = dict(hidden_sizes=(8,), init_std=0.2, es_population=4, es_tasks=2,
                     inner_updates=2, inner_episodes=2, inner_epochs=2, inner_lr=0.1,
                     eval_episodes=2, loss_conv_channels=(4,), loss_dilations=(1,),
                     loss_context_size=4, loss_hidden_sizes=(8,), loss_memory_size=2)


def tiny_config(algo: str, **overrides):
    """The tiny config of ``algo`` with flat-named ``overrides`` (which it must have)."""
    cls = algorithms.config_class(algo)
    base = (TINY_TESP_FLAT if cls in (algorithms.TESPConfig, algorithms.AdaptSVConfig)
            else TINY_RECURRENT_FLAT if issubclass(cls, algorithms.RL2Config)
            else TINY_OFFPOLICY_FLAT if issubclass(cls, algorithms.SACConfig)
            else TINY_METAGRAD_FLAT if cls is algorithms.MetaGradConfig
            else TINY_MAESN_FLAT if cls is algorithms.MAESNConfig
            else TINY_EPG_FLAT if cls is algorithms.EPGConfig else TINY_FLAT)
    fields = config_lib.flat_fields(cls)
    return config_lib.replace(cls(), **{**{k: v for k, v in base.items() if k in fields},
                                        **overrides})


TINY = tiny_config("maml")
TINY_TESP = tiny_config("tesp")


@functools.cache
def tiny_family(horizon: int = 10):
    return envs.make("navigation2d", horizon=horizon)


@functools.cache
def tiny_learner(algo: str = "maml", **overrides):
    return algorithms.make(algo, tiny_family(), tiny_config(algo, **overrides))
