"""Brax's PPO trainer against jaxmeta's oracle (task-conditioned multi-task PPO), on one
fixed task of the same family, with matched sizes.

brax 0.14 calls ``jax.device_put_replicated``, which jax 0.10 removed. This module is only
imported when the comparison runs, and the shim that provides it exists only for the
duration of brax's call (:func:`device_put_replicated_shim`).
"""

from __future__ import annotations

import contextlib
import statistics
import time

import jax
import jax.numpy as jnp

from jaxmeta import algorithms, envs
from jaxmeta.algorithms.baselines import MultiTaskConfig
from jaxmeta.bench.timing import time_calls, trainer_program
from jaxmeta.envs.wrappers import FixedTask, brax_env

BRAX_PMAP_AXIS = "i"  # brax.training.agents.ppo.train._PMAP_AXIS_NAME


@contextlib.contextmanager
def device_put_replicated_shim():
    """brax 0.14's PPO calls ``jax.device_put_replicated``, which jax 0.10 removed: provide
    it (stack along a new leading device axis, which ``pmap`` then splits) for the call."""
    if hasattr(jax, "device_put_replicated"):
        yield
        return

    def device_put_replicated(x, devices):
        # an identity pmap over brax's axis name lays the copies out exactly as brax's own
        # pmapped steps return them, so its training epoch does not compile a second time
        stacked = jax.tree.map(lambda a: jnp.stack([jnp.asarray(a)] * len(devices)), x)
        return jax.pmap(lambda a: a, axis_name=BRAX_PMAP_AXIS, devices=devices)(stacked)

    jax.device_put_replicated = device_put_replicated
    try:
        yield
    finally:
        del jax.device_put_replicated


def bench_brax_ppo(family_name: str, cfg: MultiTaskConfig, updates: int, repeats: int,
                   env_kwargs: dict | None = None) -> dict:
    """Brax PPO and jaxmeta's oracle PPO on one fixed task of ``family_name``.

    Matched: ``num_envs`` = tasks × episodes of the oracle, one unroll of the full horizon
    per training step, one minibatch, ``ppo_epochs`` updates per batch, the same hidden
    sizes for policy and value. Brax times each training epoch itself
    (``training/sps``); its first epoch includes compilation, so the figure is the median
    over the later ones.
    """
    from brax.training.agents.ppo import networks as ppo_networks
    from brax.training.agents.ppo import train as ppo

    family = envs.make(family_name, **(env_kwargs or {}))
    task = jax.tree.map(lambda x: x[0], family.sample_tasks(jax.random.PRNGKey(3), 1, "train"))
    fixed = FixedTask(family, task)
    num_envs = cfg.sampling.meta_batch_size * cfg.sampling.inner_episodes
    per_update = num_envs * family.horizon

    # jaxmeta: the oracle on the fixed task, trainer's program, one seed
    learner = algorithms.make("oracle", fixed, cfg)
    chunk, states, jm_compile = trainer_program(learner, 1, updates)
    jm = time_calls(chunk, (states,), repeats)
    jm_sps = updates * per_update / jm["median_s"]

    # brax: the same env, sizes and step counts
    sps, walltimes = [], []

    def progress(step, metrics):
        if "training/sps" in metrics:
            sps.append(float(metrics["training/sps"]))
            walltimes.append(float(metrics["training/walltime"]))

    epochs = repeats + 1
    net = lambda obs, act, **kw: ppo_networks.make_ppo_networks(  # noqa: E731
        obs, act, policy_hidden_layer_sizes=cfg.policy.hidden_sizes,
        value_hidden_layer_sizes=cfg.value.hidden_sizes, **kw)
    t0 = time.perf_counter()
    with device_put_replicated_shim():
        ppo.train(environment=brax_env(family, task), num_timesteps=epochs * updates * per_update,
                  num_envs=num_envs, episode_length=family.horizon, unroll_length=family.horizon,
                  batch_size=num_envs, num_minibatches=1, num_updates_per_batch=cfg.ppo.epochs,
                  learning_rate=cfg.ppo.lr, discounting=cfg.returns.gamma,
                  clipping_epsilon=cfg.ppo.clip,
                  num_evals=epochs + 1, run_evals=False, network_factory=net, seed=0,
                  max_devices_per_host=1, progress_fn=progress)
    brax_total = time.perf_counter() - t0
    steady = sps[1:] or sps
    brax_sps = statistics.median(steady)
    return {"kind": "brax_ppo", "family": family_name, "num_envs": num_envs,
            "horizon": family.horizon, "updates_per_call": updates,
            "hidden_sizes": list(cfg.policy.hidden_sizes), "ppo_epochs": cfg.ppo.epochs,
            "jaxmeta_env_steps_per_s": jm_sps, "jaxmeta_compile_s": jm_compile,
            "jaxmeta_min_s": jm["min_s"], "jaxmeta_max_s": jm["max_s"],
            "brax_env_steps_per_s": brax_sps, "brax_sps_per_epoch": sps,
            "brax_first_epoch_s": walltimes[0] if walltimes else None,
            "brax_total_s": brax_total, "ratio_jaxmeta_to_brax": jm_sps / brax_sps}
