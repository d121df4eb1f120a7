"""The kinds of benchmark rows. Env steps are counted by the batch types
(:func:`jaxmeta.protocol.env_steps_per_update`), never by per-method formulas.

1. ``raw_sim``: env steps/s of ``jit(vmap(step))`` with random actions, the floor.
2. ``meta_train``: env steps/s of the trainer's program (``jit(scan(vmap(update)))``),
   its ratio to ``raw_sim`` at the same number of parallel environments, and where the
   time goes (the sampling half alone, ``learner.sample``, against the whole update).
3. ``brax_ppo`` (:mod:`jaxmeta.bench.brax_ppo`): Brax's PPO against jaxmeta's oracle.
4. ``sweep``: throughput against vmapped seeds and against tasks per meta-batch.
5. ``compile``: compile time of one ``update`` and its memory.
6. ``remat``: XLA's temp memory of a second-order ``update`` against K, with and without
   ``jax.checkpoint`` around the replayed fast-updates.
7. ``protocol``: a whole training run through ``train`` (checkpoints, ``--resume``): the
   wall-clock of a paper's protocol end to end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp

from jaxmeta import algorithms, envs
from jaxmeta import config as config_lib
from jaxmeta.bench.timing import (
    compile_timed,
    memory_estimate,
    peak_memory,
    time_calls,
    trainer_program,
)
from jaxmeta.envs.base import TaskFamily
from jaxmeta.protocol import env_steps_per_update


def parallel_envs(learner) -> int:
    """Environments simulated side by side in one rollout of one seed (tasks × episodes;
    for the recurrent learners, tasks × trials per task: a trial's episodes run in turn;
    for meta-gradient A2C, its batch's tasks × episodes; for EPG, its members × tasks ×
    episodes)."""
    trial = getattr(learner.config, "trial", None)
    if trial is not None:
        return trial.meta_batch_size * trial.trials_per_task
    ac = getattr(learner.config, "ac", None)
    if ac is not None:
        return ac.tasks * ac.episodes
    es = getattr(learner.config, "es", None)
    if es is not None:  # EPG: members × tasks × episodes of one inner update; its PG
        # baseline simulates one member (the loss φ plays no part in it)
        members = 1 if learner.config.inner.loss == "pg" else es.population
        return members * es.tasks * learner.config.inner.episodes
    s = learner.config.sampling
    return s.meta_batch_size * s.inner_episodes


# --- 1. raw simulator -----------------------------------------------------------------------


def raw_sim_program(family: TaskFamily, batch: int, steps: int) -> Callable:
    """``key -> Σ rewards`` of ``batch`` envs on ``train`` tasks stepped ``steps`` times with
    uniform random actions in [−1, 1], drawn inside the program. Episodes last the family's
    horizon and are reset in between, as in training (a state past the horizon is absorbing,
    which would time another workload)."""
    full, rest = divmod(steps, family.horizon)

    def episodes(tasks, key, n, length):
        def one(total, k):
            k_reset, k_act = jax.random.split(k)
            state = jax.vmap(family.reset)(jax.random.split(k_reset, batch), tasks)

            def body(s, k):
                a = jax.random.uniform(k, (batch, family.action_size), minval=-1.0, maxval=1.0)
                s = jax.vmap(family.step)(s, a, tasks)
                return s, s.reward

            _, rewards = jax.lax.scan(body, state, jax.random.split(k_act, length))
            return total + rewards.sum(), None

        return jax.lax.scan(one, jnp.zeros(()), jax.random.split(key, n))[0]

    def run(key):
        k_task, k_full, k_rest = jax.random.split(key, 3)
        tasks = family.sample_tasks(k_task, batch, "train")
        total = episodes(tasks, k_full, full, family.horizon) if full else jnp.zeros(())
        if rest:
            total = total + episodes(tasks, k_rest, 1, rest)
        return total

    return run


def bench_raw_sim(family_name: str, batch: int, steps: int, repeats: int,
                  family: TaskFamily | None = None) -> dict:
    """Raw simulator throughput of one family at one batch size."""
    family = family or envs.make(family_name)
    compiled, compile_s = compile_timed(raw_sim_program(family, batch, steps),
                                        jax.random.PRNGKey(0))
    t = time_calls(compiled, (jax.random.PRNGKey(1),), repeats)
    return {"kind": "raw_sim", "family": family_name, "batch": batch, "steps": steps,
            "compile_s": compile_s, **t, "env_steps_per_s": batch * steps / t["median_s"]}


# --- 2. meta-training throughput ------------------------------------------------------------


def time_sampling(learner, states, iterations: int, repeats: int) -> dict:
    """``time_calls`` of ``learner.sample`` alone, vmapped over the seeds of ``states`` and
    run ``iterations`` times in one program (from the same states: the sampling half of
    as many updates). Each iteration's episodes are reduced to one checksum, which reads
    every sampled array (nothing is dead code) without materialising them as outputs."""
    seeds = jax.tree.leaves(states)[0].shape[0]
    keys = jax.random.split(jax.random.PRNGKey(7), iterations * seeds).reshape(
        iterations, seeds, -1)

    def checksum(tree):
        return sum(jnp.sum(x.astype(jnp.float32)) for x in jax.tree.leaves(tree))

    def sample_only(states, keys):
        return jax.lax.map(lambda k: checksum(jax.vmap(learner.sample)(states, k)), keys)

    sample, _ = compile_timed(sample_only, states, keys)
    return time_calls(sample, (states, keys), repeats)


def bench_meta_train(algo: str, family_name: str, cfg, seeds: int, iterations: int,
                     repeats: int, env_kwargs: dict | None = None,
                     raw_sim: Callable[[int, int], dict] | None = None) -> dict:
    """Meta-training throughput of ``algo`` and its ratio to the raw simulator at the same
    number of parallel environments (seeds × tasks × episodes) running the same number of
    steps per call (so both pay the same per-call overhead).

    ``raw_sim(batch, steps)`` gives the raw simulator's row (default: measure it here)."""
    family = envs.make(family_name, **(env_kwargs or {}))
    learner = algorithms.make(algo, family, cfg)
    per_update = env_steps_per_update(learner)
    if per_update is None:
        raise ValueError(f"{algo} has no learner.sample: its env steps cannot be counted, "
                         "nor its sampling timed")
    chunk, states, compile_s = trainer_program(learner, seeds, iterations)
    whole = time_calls(chunk, (states,), repeats)
    steps = seeds * iterations * per_update
    row = {"kind": "meta_train", "algo": algo, "family": family_name, "seeds": seeds,
           "iterations_per_call": iterations, "env_steps_per_update": per_update,
           "parallel_envs": seeds * parallel_envs(learner), "compile_chunk_s": compile_s,
           **whole, "env_steps_per_s": steps / whole["median_s"]}

    # the sampling half alone (same seeds, same number of iterations, initial parameters)
    samp = time_sampling(learner, states, iterations, repeats)["median_s"]
    # the raw simulator at the same number of parallel envs, for the same number of steps
    b = row["parallel_envs"]
    raw_steps = steps // b
    raw = (raw_sim(b, raw_steps) if raw_sim is not None
           else bench_raw_sim(family_name, b, raw_steps, repeats, family=family))
    raw_time_same_steps = steps / raw["env_steps_per_s"]
    row.update({
        "raw_sim_steps": raw_steps,
        "raw_sim_env_steps_per_s": raw["env_steps_per_s"],
        "ratio_to_raw_sim": row["env_steps_per_s"] / raw["env_steps_per_s"],
        "sampling_s": samp,
        "time_split": {
            "physics_s": raw_time_same_steps,
            "sampling_rest_s": max(samp - raw_time_same_steps, 0.0),
            "meta_update_s": max(whole["median_s"] - samp, 0.0),
            "total_s": whole["median_s"],
        },
        **peak_memory(),
    })
    return row


# --- 4. sweep scaling -----------------------------------------------------------------------


SWEEP_AXES = {"meta_batch_size": "tasks"}  # the second sweep axis's name, by the field it varies


def bench_sweep(algo: str, family_name: str, cfg, seeds: list[int], tasks: list[int],
                iterations: int, repeats: int, env_kwargs: dict | None = None,
                field: str = "meta_batch_size") -> list[dict]:
    """Throughput against vmapped seeds (at the config's ``field``) and against ``field``
    (tasks per meta-batch by default; EPG's ``es_population``) at one seed, with parallel
    efficiency thr(n) / (n / n₀ · thr(n₀)) relative to the first point n₀ of each axis. A
    point on both axes is measured once."""
    family = envs.make(family_name, **(env_kwargs or {}))
    rows = []
    measured: dict[tuple[int, int], dict] = {}

    def point(axis, n, c, s):
        width = config_lib.get(c, field)
        if (s, width) in measured:
            return {**measured[(s, width)], "axis": axis, "n": n}
        learner = algorithms.make(algo, family, c)
        chunk, states, compile_s = trainer_program(learner, s, iterations)
        t = time_calls(chunk, (states,), repeats)
        steps = s * iterations * env_steps_per_update(learner)
        row = {"kind": "sweep", "axis": axis, "n": n, "algo": algo, "family": family_name,
               "seeds": s, "field": field, field: width, "compile_chunk_s": compile_s,
               **t, "env_steps_per_s": steps / t["median_s"], **peak_memory()}
        measured[(s, width)] = row
        return row

    for axis, values in (("seeds", seeds), (SWEEP_AXES.get(field, field), tasks)):
        if not values:
            continue
        line = []
        for n in values:
            c = cfg if axis == "seeds" else config_lib.replace(cfg, **{field: n})
            line.append(point(axis, n, c, n if axis == "seeds" else 1))
        base = line[0]
        for r in line:
            r["parallel_efficiency"] = r["env_steps_per_s"] / (
                r["n"] / base["n"] * base["env_steps_per_s"])
        rows += line
    return rows


# --- 5. compile time and memory -------------------------------------------------------------


def bench_compile(algo: str, family_name: str, cfg, env_kwargs: dict | None = None) -> dict:
    """Compile time of one single-seed ``update`` and its memory."""
    family = envs.make(family_name, **(env_kwargs or {}))
    learner = algorithms.make(algo, family, cfg)
    state = learner.init(jax.random.PRNGKey(0))
    compiled, compile_s = compile_timed(learner.update, state)
    jax.block_until_ready(compiled(state))
    return {"kind": "compile", "algo": algo, "family": family_name, "compile_s": compile_s,
            **memory_estimate(compiled), **peak_memory()}


# --- 6. second-order memory against K -------------------------------------------------------


def bench_remat(algo: str, family_name: str, cfg, inner_steps: tuple[int, ...],
                env_kwargs: dict | None = None) -> list[dict]:
    """XLA's temp memory of one compiled second-order ``update`` for each K, with and without
    rematerialisation of the replayed fast-updates (``remat``)."""
    family = envs.make(family_name, **(env_kwargs or {}))
    rows = []
    for k in inner_steps:
        for remat in (False, True):
            c = config_lib.replace(cfg, inner_steps=k, remat=remat, meta_gradient="second_order")
            learner = algorithms.make(algo, family, c)
            compiled, compile_s = compile_timed(learner.update, learner.init(jax.random.PRNGKey(0)))
            rows.append({"kind": "remat", "algo": algo, "family": family_name, "inner_steps": k,
                         "remat": remat, "meta_gradient": "second_order",
                         "compile_s": compile_s, **memory_estimate(compiled)})
    return rows


# --- 7. a training run end to end -----------------------------------------------------------


def bench_protocol(algo: str, family_name: str, cfg, iterations: int, seeds: int, chunk: int,
                   mesh: str, run_dir: str | Path, resume: bool,
                   env_kwargs: dict | None = None) -> dict:
    """A whole run through the trainer (checkpoints every ``10 × chunk`` iterations, so a
    long run can be resumed with ``resume``); the wall-clock includes compilation."""
    from jaxmeta.trainer import train

    learner = algorithms.make(algo, envs.make(family_name, **(env_kwargs or {})), cfg)
    t0 = time.perf_counter()
    _, records = train(learner, run_dir, iterations=iterations, seeds=seeds, chunk=chunk,
                       checkpoint_every=10 * chunk, mesh=mesh, resume=resume, progress=True)
    wall = time.perf_counter() - t0
    done = len({r["iteration"] for r in records})
    steps = env_steps_per_update(learner) * seeds * done
    last = [r for r in records if r["iteration"] == iterations - 1]
    return {"kind": "protocol", "algo": algo, "family": family_name, "iterations": iterations,
            "iterations_run": done, "seeds": seeds, "wall_s": wall, "env_steps": steps,
            "env_steps_per_s": steps / wall, "run_dir": str(run_dir),
            "first_pre_return": records[0]["pre_return"],
            "final_post_return": sum(r.get("post_return", r["pre_return"]) for r in last)
            / max(len(last), 1)}
