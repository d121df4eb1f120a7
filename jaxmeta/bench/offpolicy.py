"""Off-policy benchmarks: SAC and PEARL training throughput with where the time goes, and
Brax's SAC trainer against jaxmeta's SAC on one fixed task at matched sizes.

* :func:`bench_offpolicy` (kind ``offpolicy``): the trainer's program for ``seeds`` vmapped
  seeds; env steps/s and gradient steps/s, compile time, peak memory, and the split of
  one update into collection (the learner's ``sample``, timed alone) and the gradient
  steps (the rest). Inside a gradient step, the critic and actor halves are timed alone
  on the same shapes (:func:`step_parts`); for PEARL the encoder's share is the PEARL
  step minus the SAC step at the same sizes, both from their fastest calls (a difference
  of medians drowns in the run-to-run spread of a shared 2-core machine).
* :func:`bench_brax_sac` (kind ``brax_sac``): ``brax.training.agents.sac`` and jaxmeta's
  ``sac`` on one task, same networks, batch, replay, rates and ratio of gradient steps to
  env steps; both throughputs and the return each reaches after the same env steps.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmeta import algorithms, envs
from jaxmeta import config as config_lib
from jaxmeta.algorithms.sac.config import SACConfig
from jaxmeta.algorithms.sac.learner import sac_nets
from jaxmeta.bench.brax_ppo import device_put_replicated_shim
from jaxmeta.bench.kinds import time_sampling
from jaxmeta.bench.timing import compile_timed, peak_memory, time_calls, trainer_program
from jaxmeta.envs.wrappers import FixedTask, brax_env
from jaxmeta.protocol import env_steps_per_update
from jaxmeta.rl import sac

PART_STEPS = 20  # gradient steps per timed call of one part


def step_parts(obs_size: int, action_size: int, latent: int, cfg, repeats: int) -> dict:
    """Seconds per gradient step of the critic half (target from the critics and the actor
    at s′, twin-Q loss, its gradient) and of the actor half (reparameterised action, Q at
    it, the actor's gradient) alone, with the learner's own networks (:func:`sac_nets`)
    at its sizes: ``meta_batch_size × batch_size`` transitions of ``[s, z]``."""
    nets, n = sac_nets(cfg.sac, action_size), cfg.collect.meta_batch_size * cfg.sac.batch_size
    k = jax.random.split(jax.random.PRNGKey(0), 6)
    x = jax.random.normal(k[0], (n, obs_size + latent))
    a = jnp.tanh(jax.random.normal(k[1], (n, action_size)))
    actor = nets.init_actor(k[2], obs_size + latent)
    critic = nets.init_critics(k[3], obs_size + latent)
    mask, r = jnp.ones((n,)), jax.random.normal(k[4], (n,))

    def critic_loss(critic, key):
        a2, logp2 = nets.policy(actor, x, key)
        y = sac.soft_target(r, 0.0 * r, nets.critics(critic, x, a2), logp2, 1.0, 0.99, 1.0)
        return sac.critic_loss(nets.critics(critic, x, a), y, mask)

    def actor_loss(actor, key):
        a2, logp = nets.policy(actor, x, key)
        return sac.actor_loss(logp, nets.critics(critic, x, a2), 1.0, mask)

    def steps(loss, params):
        def body(p, key):
            g = jax.grad(loss)(p, key)
            return jax.tree.map(lambda w, d: w - 1e-4 * d, p, g), ()
        return jax.lax.scan(body, params, jax.random.split(k[5], PART_STEPS))[0]

    out = {}
    for name, loss, params in (("critic", critic_loss, critic), ("actor", actor_loss, actor)):
        fn, _ = compile_timed(lambda p, loss=loss: steps(loss, p), params)
        out[f"{name}_step_s"] = time_calls(fn, (params,), repeats)["median_s"] / PART_STEPS
    return out


def bench_offpolicy(algo: str, family_name: str, cfg, seeds: int, iterations: int,
                    repeats: int, env_kwargs: dict | None = None, parts: bool = True) -> dict:
    """Training throughput of ``algo`` (``sac`` or ``pearl``) for ``seeds`` vmapped seeds,
    ``iterations`` updates per timed call, and where one update's time goes."""
    family = envs.make(family_name, **(env_kwargs or {}))
    learner = algorithms.make(algo, family, cfg)
    chunk, states, compile_s = trainer_program(learner, seeds, iterations)
    whole = time_calls(chunk, (states,), repeats)
    per_update, grads = env_steps_per_update(learner), cfg.collect.train_steps
    collect_t = time_sampling(learner, states, iterations, repeats)  # collection alone
    collect_s, total = collect_t["median_s"], whole["median_s"]
    grad_s = max(total - collect_s, 0.0)
    n_steps = seeds * iterations * grads
    # from the fastest calls: the least disturbed by other load, for differences of rows
    grad_min_s = max(whole["min_s"] - collect_t["min_s"], 0.0) / n_steps
    row = {"kind": "offpolicy", "algo": algo, "family": family_name, "seeds": seeds,
           "iterations_per_call": iterations, "env_steps_per_update": per_update,
           "grad_steps_per_update": grads, "hidden_sizes": list(cfg.sac.hidden_sizes),
           "batch": f"{cfg.collect.meta_batch_size} × {cfg.sac.batch_size}",
           "compile_chunk_s": compile_s, **whole,
           "env_steps_per_s": seeds * iterations * per_update / total,
           "grad_steps_per_s": seeds * iterations * grads / total,
           "time_split": {"collection_s": collect_s, "gradient_steps_s": grad_s,
                          "total_s": total},
           "grad_step_s": grad_s / n_steps, "grad_step_min_s": grad_min_s, **peak_memory()}
    if parts and seeds == 1:
        latent = cfg.encoder.latent_size if hasattr(cfg, "encoder") else 0
        row.update(step_parts(family.obs_size, family.action_size, latent, cfg, repeats))
        if hasattr(cfg, "encoder"):  # the same learner without the encoder
            plain = SACConfig(sac=cfg.sac, collect=cfg.collect)
            sac_row = bench_offpolicy("sac", family_name, plain, 1, iterations, repeats,
                                      env_kwargs, parts=False)
            row["sac_grad_step_min_s"] = sac_row["grad_step_min_s"]
            row["encoder_step_s"] = max(grad_min_s - sac_row["grad_step_min_s"], 0.0)
    return row


def bench_brax_sac(family_name: str, cfg: SACConfig, env_steps: int, epochs: int,
                   env_kwargs: dict | None = None) -> dict:
    """Brax SAC and jaxmeta SAC on one fixed task of ``family_name`` for ``env_steps``
    each (after the same ``initial_steps`` of replay filling).

    Matched: hidden sizes (actor and critics), batch size, replay capacity, the initial
    filling, learning rate (actor and critics; α at 3e-4, starting at 1), γ, τ, reward
    scale, and the ratio of gradient steps to env steps: jaxmeta collects ``prior_steps``
    (``prior_steps / horizon`` episodes side by side) then takes ``train_steps`` steps;
    Brax steps ``prior_steps / horizon`` envs once and takes ``grad_updates_per_step``
    steps, so that the ratios agree. Brax's actions in [−1, 1] are scaled onto the
    family's box, as jaxmeta's are. Both train in ``epochs`` epochs of the same env
    steps. Throughput: Brax times its epochs (the first includes compilation, so the
    median of the rest); jaxmeta's is the median epoch of the trainer's program, compiled
    beforehand. Return: each trained policy's deterministic return on the task
    (Brax's evaluator: 16 episodes; jaxmeta: 16 episodes of ``adapt`` with no steps).
    """
    from brax.training.agents.sac import networks as sac_networks
    from brax.training.agents.sac import train as brax_sac

    family = envs.make(family_name, **(env_kwargs or {}))
    h, col, s = family.horizon, cfg.collect, cfg.sac
    task = jax.tree.map(lambda x: x[0], family.sample_tasks(jax.random.PRNGKey(3), 1, "train"))
    fixed = FixedTask(family, task)
    num_envs = col.prior_steps // h
    grad_per_env_step = col.train_steps / col.prior_steps
    g = grad_per_env_step * num_envs
    if col.num_train_tasks != 1 or g != int(g) or num_envs < 1:
        raise ValueError("brax_sac needs one task and train_steps / prior_steps × "
                         f"(prior_steps / horizon) whole; got {col}")
    per_epoch = env_steps // (epochs * col.prior_steps)  # updates per epoch, as Brax's
    if per_epoch < 1:
        raise ValueError(f"env_steps={env_steps} is less than {epochs} epochs × prior_steps="
                         f"{col.prior_steps}")
    updates = per_epoch * epochs
    learner = algorithms.make("sac", fixed, cfg)
    chunk, states, jm_compile = trainer_program(learner, 1, per_epoch)
    epoch_s = []
    for _ in range(epochs):  # the same epochs as Brax's, the state carried on
        t0 = time.perf_counter()
        states, _ = jax.block_until_ready(chunk(states))
        epoch_s.append(time.perf_counter() - t0)
    final = jax.tree.map(lambda x: x[0], states)
    jm_return = float(jnp.mean(jax.vmap(lambda k: learner.adapt(final, task, k, 0).returns[0])(
        jax.random.split(jax.random.PRNGKey(11), 16))))

    sps, evals = [], []

    def progress(step, metrics):
        if "training/sps" in metrics:
            sps.append(float(metrics["training/sps"]))
        if "eval/episode_reward" in metrics:
            evals.append((int(step), float(metrics["eval/episode_reward"])))

    low, high = (np.asarray(b, np.float32) for b in family.action_bounds())
    net = lambda observation_size, action_size, **kw: sac_networks.make_sac_networks(  # noqa: E731
        observation_size, action_size, hidden_layer_sizes=tuple(s.hidden_sizes), **kw)
    t0 = time.perf_counter()
    with device_put_replicated_shim():
        brax_sac.train(environment=brax_env(family, task, action_box=(low, high)),
                       num_timesteps=col.initial_steps + updates * col.prior_steps,
                       episode_length=h,
                       num_envs=num_envs, num_eval_envs=16, learning_rate=s.actor_lr,
                       discounting=s.gamma, seed=0, batch_size=s.batch_size,
                       num_evals=epochs + 1, reward_scaling=s.reward_scale, tau=s.tau,
                       min_replay_size=col.initial_steps, max_replay_size=col.capacity,
                       grad_updates_per_step=int(g), deterministic_eval=True,
                       network_factory=net, progress_fn=progress, max_devices_per_host=1)
    brax_total = time.perf_counter() - t0
    brax_sps = statistics.median(sps[1:] or sps)
    jm_sps = per_epoch * col.prior_steps / statistics.median(epoch_s)
    return {"kind": "brax_sac", "family": family_name, "horizon": h, "num_envs": num_envs,
            "hidden_sizes": list(s.hidden_sizes), "batch_size": s.batch_size,
            "grad_steps_per_env_step": grad_per_env_step, "env_steps": updates * col.prior_steps,
            "jaxmeta_env_steps_per_s": jm_sps,
            "jaxmeta_grad_steps_per_s": jm_sps * grad_per_env_step,
            "jaxmeta_compile_s": jm_compile, "jaxmeta_epoch_s": epoch_s,
            "jaxmeta_return": jm_return,
            "brax_env_steps_per_s": brax_sps, "brax_grad_steps_per_s": brax_sps * grad_per_env_step,
            "brax_sps_per_epoch": sps, "brax_total_s": brax_total,
            "brax_return": evals[-1][1] if evals else None, "brax_evals": evals,
            "ratio_jaxmeta_to_brax": jm_sps / brax_sps,
            "config": config_lib.to_dict(cfg)}
