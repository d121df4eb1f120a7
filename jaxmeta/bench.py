"""The benchmark suite: ``python -m jaxmeta bench [--quick]``.

Five kinds of rows, each written to one JSON file (device kind and count, versions, date,
configs) and a markdown table (``--record`` puts it into ``benchmarks/RESULTS.md``):

1. ``raw_sim``: env steps/s of ``jit(vmap(step))`` with random actions, the floor.
2. ``meta_train``: env steps/s of the trainer's program (``jit(scan(vmap(update)))``),
   counting every simulated step, and its ratio to ``raw_sim`` at the same number of
   parallel environments. Where the time goes: the sampling half alone
   (``learner.sample``: rollouts, advantages and fast-updates) against the whole update;
   the rest is the meta-update. The physics share is the raw simulator's time for the
   same number of steps.
3. ``brax_ppo``: brax's PPO trainer on the same MJX model (one fixed task, wrapped as a
   brax ``Env``) against jaxmeta's oracle (task-conditioned multi-task PPO) restricted to
   that task, with matched parallel envs, network sizes, unroll length and epochs.
4. ``sweep``: throughput against vmapped seeds and against tasks per meta-batch, with
   parallel efficiency thr(n) / (n / n₀ · thr(n₀)).
5. ``compile``: compile time of one ``update`` per algorithm, XLA's memory estimate of
   it, and peak memory (device ``peak_bytes_in_use`` on GPU, process RSS on CPU).

Every timing compiles first (reported separately), runs one warm-up call, then reports
the median and spread of ``repeats`` timed calls.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import math
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmeta import algorithms, envs
from jaxmeta.algorithms.base import MetaConfig
from jaxmeta.envs.base import TaskFamily
from jaxmeta.rollout import Trajectory
from jaxmeta.train import compiled_chunk, compiled_init, seed_keys

KINDS = ("raw_sim", "meta_train", "brax_ppo", "sweep", "compile")


# --- timing ---------------------------------------------------------------------------------


def compile_timed(fn: Callable, *args) -> tuple[Any, float]:
    """``jit(fn).lower(*args).compile()`` and its wall time in seconds."""
    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t


def trainer_program(learner, seeds: int, iterations: int) -> tuple[Any, Any, float]:
    """The trainer's own program (``train.compiled_chunk``) for ``seeds`` vmapped seeds and
    ``iterations`` meta-iterations per call, compiled.

    Returns:
      (compiled program ``states -> (states, metrics)``, initial states of seeds
      0..seeds-1, compile time in seconds).
    """
    states = compiled_init(learner.init)(seed_keys(0, seeds))
    t = time.perf_counter()
    compiled = compiled_chunk(learner.update).lower(states, iterations).compile()
    return compiled, states, time.perf_counter() - t


def time_calls(fn: Callable, args: tuple, repeats: int) -> dict:
    """One warm-up call, then ``repeats`` timed calls (blocking on the result)."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "repeats": repeats}


def peak_memory() -> dict:
    """Peak device memory (accelerators that report it) and the process's peak RSS."""
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        out["peak_device_mb"] = stats["peak_bytes_in_use"] / 2**20
    return out


def memory_estimate(compiled) -> dict:
    """XLA's static buffer sizes of a compiled program, in MiB."""
    mem = compiled.memory_analysis()
    if mem is None:
        return {}
    return {f"xla_{k}_mb": getattr(mem, f"{k}_size_in_bytes") / 2**20
            for k in ("temp", "argument", "output") if hasattr(mem, f"{k}_size_in_bytes")}


# --- what counts as an env step -------------------------------------------------------------


def env_steps_per_update(learner) -> int:
    """Simulated env steps of one (single-seed) ``update``: every step of every episode the
    sampling half produces, incl. masked steps after termination (they are simulated too).
    Episodes kept in TESP's buffers are copies and are not counted again."""
    from jaxmeta.algorithms.tesp import EpisodeBuffer

    _, batches = jax.eval_shape(learner.sample, jax.eval_shape(learner.init,
                                                               jax.random.PRNGKey(0)).params,
                                jax.random.PRNGKey(0))
    leaves = jax.tree.leaves(batches, is_leaf=lambda x: isinstance(x, Trajectory | EpisodeBuffer))
    return sum(math.prod(x.reward.shape) for x in leaves if isinstance(x, Trajectory))


def parallel_envs(learner) -> int:
    """Environments simulated side by side in one rollout of one seed (tasks × episodes)."""
    cfg = learner.config
    return cfg.meta_batch_size * cfg.inner_episodes


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


def bench_meta_train(algo: str, family_name: str, cfg, seeds: int, iterations: int,
                     repeats: int, env_kwargs: dict | None = None,
                     raw_sim: Callable[[int, int], dict] | None = None) -> dict:
    """Meta-training throughput of ``algo`` and its ratio to the raw simulator at the same
    number of parallel environments (seeds × tasks × episodes) running the same number of
    steps per call (so both pay the same per-call overhead).

    ``raw_sim(batch, steps)`` gives the raw simulator's row (default: measure it here)."""
    family = envs.make(family_name, **(env_kwargs or {}))
    learner = algorithms.make(algo, family, cfg)
    if learner.sample is None:
        raise ValueError(f"{algo} has no learner.sample: its env steps cannot be counted, "
                         "nor its sampling timed")
    chunk, states, compile_s = trainer_program(learner, seeds, iterations)
    whole = time_calls(chunk, (states,), repeats)
    per_update = env_steps_per_update(learner)
    steps = seeds * iterations * per_update
    row = {"kind": "meta_train", "algo": algo, "family": family_name, "seeds": seeds,
           "iterations_per_call": iterations, "env_steps_per_update": per_update,
           "parallel_envs": seeds * parallel_envs(learner), "compile_chunk_s": compile_s,
           **whole, "env_steps_per_s": steps / whole["median_s"]}

    # the sampling half alone (same seeds, same number of iterations, initial parameters)
    keys = jax.random.split(jax.random.PRNGKey(7), iterations * seeds).reshape(
        iterations, seeds, -1)

    def checksum(tree):  # reads every sampled array, so nothing is dead code, but writes
        # one number per iteration instead of materialising all the episodes as outputs
        return sum(jnp.sum(x.astype(jnp.float32)) for x in jax.tree.leaves(tree))

    def sample_only(params, keys):
        return jax.lax.map(lambda k: checksum(jax.vmap(learner.sample)(params, k)), keys)

    sample, _ = compile_timed(sample_only, states.params, keys)
    samp = time_calls(sample, (states.params, keys), repeats)["median_s"]
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


# --- 3. Brax PPO on the same env ------------------------------------------------------------


class FixedTask(TaskFamily):
    """``family`` restricted to one task: every split samples ``task`` (for comparing with
    single-task trainers)."""

    def __init__(self, family: TaskFamily, task):
        self.family, self.task = family, task
        for f in ("name", "obs_size", "action_size", "horizon"):
            setattr(self, f, getattr(family, f))

    def sample_tasks(self, key, n, split="train"):
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), self.task)

    def reset(self, key, task):
        return self.family.reset(key, task)

    def step(self, state, action, task):
        return self.family.step(state, action, task)

    def task_features(self, task):
        return self.family.task_features(task)


def brax_env(family: TaskFamily, task):
    """One task of ``family`` as a ``brax.envs.base.Env`` (same model, same step)."""
    from brax.envs.base import Env, State

    class TaskEnv(Env):
        @property
        def observation_size(self):
            return family.obs_size

        @property
        def action_size(self):
            return family.action_size

        @property
        def backend(self):
            return "mjx"

        def reset(self, rng):
            s = family.reset(rng, task)
            return State(pipeline_state=s, obs=s.obs, reward=s.reward, done=s.done,
                         metrics={}, info={})

        def step(self, state, action):
            s = family.step(state.pipeline_state, action, task)
            return state.replace(pipeline_state=s, obs=s.obs, reward=s.reward, done=s.done)

    return TaskEnv()


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


def bench_brax_ppo(family_name: str, cfg: MetaConfig, updates: int, repeats: int,
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
    num_envs = cfg.meta_batch_size * cfg.inner_episodes
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
        obs, act, policy_hidden_layer_sizes=cfg.hidden_sizes,
        value_hidden_layer_sizes=cfg.value_hidden_sizes, **kw)
    t0 = time.perf_counter()
    with device_put_replicated_shim():
        ppo.train(environment=brax_env(family, task), num_timesteps=epochs * updates * per_update,
                  num_envs=num_envs, episode_length=family.horizon, unroll_length=family.horizon,
                  batch_size=num_envs, num_minibatches=1, num_updates_per_batch=cfg.ppo_epochs,
                  learning_rate=cfg.outer_lr, discounting=cfg.gamma, clipping_epsilon=cfg.ppo_clip,
                  num_evals=epochs + 1, run_evals=False, network_factory=net, seed=0,
                  max_devices_per_host=1, progress_fn=progress)
    brax_total = time.perf_counter() - t0
    steady = sps[1:] or sps
    brax_sps = statistics.median(steady)
    return {"kind": "brax_ppo", "family": family_name, "num_envs": num_envs,
            "horizon": family.horizon, "updates_per_call": updates,
            "hidden_sizes": list(cfg.hidden_sizes), "ppo_epochs": cfg.ppo_epochs,
            "jaxmeta_env_steps_per_s": jm_sps, "jaxmeta_compile_s": jm_compile,
            "jaxmeta_min_s": jm["min_s"], "jaxmeta_max_s": jm["max_s"],
            "brax_env_steps_per_s": brax_sps, "brax_sps_per_epoch": sps,
            "brax_first_epoch_s": walltimes[0] if walltimes else None,
            "brax_total_s": brax_total, "ratio_jaxmeta_to_brax": jm_sps / brax_sps}


# --- 4. sweep scaling -----------------------------------------------------------------------


def bench_sweep(algo: str, family_name: str, cfg, seeds: list[int], tasks: list[int],
                iterations: int, repeats: int, env_kwargs: dict | None = None) -> list[dict]:
    """Throughput against vmapped seeds (at ``cfg.meta_batch_size`` tasks) and against tasks
    per meta-batch (one seed), with parallel efficiency thr(n) / (n / n₀ · thr(n₀)) relative
    to the first point n₀ of each axis. A point on both axes is measured once."""
    family = envs.make(family_name, **(env_kwargs or {}))
    rows = []
    measured: dict[tuple[int, int], dict] = {}

    def point(axis, n, c, s):
        if (s, c.meta_batch_size) in measured:
            return {**measured[(s, c.meta_batch_size)], "axis": axis, "n": n}
        learner = algorithms.make(algo, family, c)
        chunk, states, compile_s = trainer_program(learner, s, iterations)
        t = time_calls(chunk, (states,), repeats)
        steps = s * iterations * env_steps_per_update(learner)
        row = {"kind": "sweep", "axis": axis, "n": n, "algo": algo, "family": family_name,
               "seeds": s, "meta_batch_size": c.meta_batch_size, "compile_chunk_s": compile_s,
               **t, "env_steps_per_s": steps / t["median_s"], **peak_memory()}
        measured[(s, c.meta_batch_size)] = row
        return row

    for axis, values in (("seeds", seeds), ("tasks", tasks)):
        line = []
        for n in values:
            c = cfg if axis == "seeds" else dataclasses.replace(cfg, meta_batch_size=n)
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


# --- the suite ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Suite:
    """What one ``bench`` invocation measures (``quick``: one row of each kind on a CPU)."""

    family: str
    horizon: int
    algos: tuple[str, ...]
    config: MetaConfig
    raw_batches: tuple[int, ...]
    raw_steps: int  # control steps per timed raw-simulator call
    seeds: int
    sweep_family: str
    sweep_horizon: int
    sweep_algo: str
    sweep_seeds: tuple[int, ...]
    sweep_seed_tasks: int  # tasks per meta-batch along the seed axis
    sweep_tasks: tuple[int, ...]
    compile_family: str
    compile_algos: tuple[str, ...]
    iterations: int  # meta-iterations per timed call
    repeats: int
    ppo_family: str = ""  # family of the Brax comparison ("" = ``family``)
    ppo_updates: int = 10  # PPO updates per timed call / per Brax epoch


QUICK = Suite(
    family="reacher2_target", horizon=20, algos=("maml",),
    config=MetaConfig(hidden_sizes=(32, 32), meta_batch_size=4, inner_episodes=4,
                      outer_episodes=4, outer="ppo", meta_gradient="first_order", ppo_epochs=2,
                      value_hidden_sizes=(32, 32)),
    raw_batches=(16,), raw_steps=640, seeds=1, sweep_family="navigation2d", sweep_horizon=20,
    sweep_algo="maml",
    sweep_seeds=(1, 4), sweep_seed_tasks=10, sweep_tasks=(10, 40),
    compile_family="navigation2d", compile_algos=("maml",), iterations=16, repeats=5,
    # Brax's PPO spends ~90 s compiling and setting up on an MJX model on 2 cores; the quick
    # suite compares on the pure-JAX family to stay within ~5 minutes
    ppo_family="navigation2d")

FULL = Suite(
    family="halfcheetah_vel", horizon=200, algos=("maml", "meta_sgd", "tesp", "oracle"),
    config=MetaConfig(hidden_sizes=(64, 64), meta_batch_size=40, inner_episodes=20,
                      outer_episodes=20, outer="ppo", meta_gradient="hessian", ppo_epochs=5),
    raw_batches=(64, 800, 4096), raw_steps=200, seeds=1, sweep_family="halfcheetah_vel",
    sweep_horizon=200, sweep_algo="maml",
    sweep_seeds=(1, 4, 16, 64), sweep_seed_tasks=40, sweep_tasks=(10, 40, 160),
    compile_family="halfcheetah_vel", compile_algos=tuple(algorithms.names()), iterations=3,
    repeats=3)


def config_for(algo: str, base: MetaConfig):
    """``base``'s sizes for ``algo`` (TESP's config class gets the matching fields)."""
    cls = algorithms.config_class(algo)
    if cls is MetaConfig:
        return base
    shared = {f.name for f in dataclasses.fields(cls)} & {f.name for f in
                                                          dataclasses.fields(MetaConfig)}
    fields = {k: getattr(base, k) for k in shared
              if k not in ("meta_gradient", "outer", "inner_lr", "outer_lr")}
    if "buffer_size" in {f.name for f in dataclasses.fields(cls)}:  # TESP: M <= N
        fields["buffer_size"] = min(cls().buffer_size, base.inner_episodes)
    return cls(**fields)


def versions() -> dict:
    """Versions of everything that decides the speed."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("jax", "jaxlib", "flax", "optax", "mujoco", "mujoco-mjx", "brax"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def device_info() -> dict:
    """Device kind and count, and the host."""
    import os

    d = jax.devices()[0]
    return {"platform": d.platform, "device_kind": d.device_kind,
            "device_count": jax.device_count(), "host_cpus": os.cpu_count(),
            "host": platform.processor() or platform.machine()}


def run_suite(suite: Suite, kinds: tuple[str, ...] = KINDS, log: Callable = print) -> dict:
    """Runs the chosen kinds of ``suite``; returns ``{"meta": ..., "rows": [...]}``."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown benchmark kind(s) {unknown}; choose from {list(KINDS)}")
    env_kwargs = {"horizon": suite.horizon}
    meta = {"date": datetime.date.today().isoformat(), "device": device_info(),
            "versions": versions(), "suite": dataclasses.asdict(suite)}
    rows: list[dict] = []

    def add(row):
        rows.append(row)
        log(json.dumps(row, default=float))

    family = envs.make(suite.family, **env_kwargs)
    raw_rows: dict[tuple[int, int], dict] = {}

    def raw_sim(batch, steps):
        if (batch, steps) not in raw_rows:
            raw_rows[(batch, steps)] = bench_raw_sim(suite.family, batch, steps, suite.repeats,
                                                     family=family)
            add(raw_rows[(batch, steps)])
        return raw_rows[(batch, steps)]

    if "raw_sim" in kinds:
        for b in suite.raw_batches:
            raw_sim(b, suite.raw_steps)
    if "meta_train" in kinds:
        for algo in suite.algos:
            add(bench_meta_train(algo, suite.family, config_for(algo, suite.config), suite.seeds,
                                 suite.iterations, suite.repeats, env_kwargs, raw_sim))
    if "brax_ppo" in kinds:
        add(bench_brax_ppo(suite.ppo_family or suite.family, suite.config, suite.ppo_updates,
                           suite.repeats, env_kwargs))
    if "sweep" in kinds:
        sweep_cfg = dataclasses.replace(suite.config, meta_batch_size=suite.sweep_seed_tasks)
        for row in bench_sweep(suite.sweep_algo, suite.sweep_family, sweep_cfg,
                               list(suite.sweep_seeds), list(suite.sweep_tasks),
                               suite.iterations, suite.repeats,
                               {"horizon": suite.sweep_horizon}):
            add(row)
    if "compile" in kinds:
        for algo in suite.compile_algos:
            add(bench_compile(algo, suite.compile_family, config_for(algo, suite.config),
                              {"horizon": suite.horizon}))
    return {"meta": meta, "rows": rows}


# --- reporting ------------------------------------------------------------------------------


def _k(x: float) -> str:
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.1f} K" if x >= 1e3 else f"{x:.0f}"


def markdown(result: dict, label: str) -> str:
    """The result as a RESULTS.md section (one table per kind)."""
    m = result["meta"]
    d, v, su = m["device"], m["versions"], m["suite"]
    by = {k: [r for r in result["rows"] if r["kind"] == k] for k in KINDS}
    where = [f"{what} on {fam}" for what, fam, kind in (
        (f"raw simulator and meta-training (horizon {su['horizon']})", su["family"],
         "meta_train"),
        ("Brax comparison", su["ppo_family"] or su["family"], "brax_ppo"),
        (f"sweep ({su['sweep_algo']})", su["sweep_family"], "sweep"),
        ("compile", su["compile_family"], "compile")) if by[kind]]
    lines = [f"### {label}", "",
             f"- **Date:** {m['date']}. **Device:** {d['device_kind']} × {d['device_count']} "
             f"({d['platform']}; host {d['host']}, {d['host_cpus']} cores).",
             "- **Versions:** " + ", ".join(f"{k} {x}" for k, x in v.items() if x) + ".",
             f"- **Suite:** {'; '.join(where)}. Median of {m['suite']['repeats']} timed calls "
             "after a warm-up; compile excluded and reported.", ""]
    if by["raw_sim"]:
        lines += ["| raw simulator | batch | steps per call | env steps/s | compile |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {r['family']} | {r['batch']} | {r['steps']} | {_k(r['env_steps_per_s'])} | "
                  f"{r['compile_s']:.0f} s |" for r in by["raw_sim"]]
        lines.append("")
    if by["meta_train"]:
        lines += ["| meta-training | parallel envs | env steps/s | raw sim at same B | ratio | "
                  "per call: total = sampling (physics est.) + meta-update |",
                  "|---|---:|---:|---:|---:|---|"]
        for r in by["meta_train"]:
            t = r["time_split"]
            meta = t["meta_update_s"]
            meta = f"{meta:.2f} s" if meta > 0.02 * r["median_s"] else "≈ 0"
            lines.append(f"| {r['algo']} on {r['family']} | {r['parallel_envs']} | "
                         f"{_k(r['env_steps_per_s'])} | {_k(r['raw_sim_env_steps_per_s'])} | "
                         f"{r['ratio_to_raw_sim']:.2f} | {r['median_s']:.2f} s = "
                         f"{r['sampling_s']:.2f} s ({t['physics_s']:.2f} s) + {meta} |")
        lines.append("")
    for r in by["brax_ppo"]:
        lines += ["| PPO on one fixed task | envs | jaxmeta oracle | Brax PPO | ratio |",
                  "|---|---:|---:|---:|---:|",
                  f"| {r['family']} (horizon {r['horizon']}, {r['hidden_sizes']}, "
                  f"{r['ppo_epochs']} epochs) | {r['num_envs']} | "
                  f"{_k(r['jaxmeta_env_steps_per_s'])} | {_k(r['brax_env_steps_per_s'])} | "
                  f"{r['ratio_jaxmeta_to_brax']:.2f} |", ""]
    if by["sweep"]:
        lines += ["| sweep | n | seeds × tasks | env steps/s | parallel efficiency | "
                  "peak RSS |", "|---|---:|---|---:|---:|---:|"]
        lines += [f"| {r['algo']} {r['family']}, {r['axis']} | {r['n']} | "
                  f"{r['seeds']} × {r['meta_batch_size']} | {_k(r['env_steps_per_s'])} | "
                  f"{r['parallel_efficiency']:.2f} | {r['peak_rss_mb']:.0f} MB |"
                  for r in by["sweep"]]
        lines.append("")
    if by["compile"]:
        lines += ["| compile one update | family | compile | XLA temp | peak RSS |",
                  "|---|---|---:|---:|---:|"]
        lines += [f"| {r['algo']} | {r['family']} | {r['compile_s']:.1f} s | "
                  f"{r.get('xla_temp_mb', float('nan')):.1f} MiB | {r['peak_rss_mb']:.0f} MB |"
                  for r in by["compile"]]
        lines.append("")
    return "\n".join(lines)


def plot_sweep(result: dict, path: Path) -> Path | None:
    """Throughput and parallel efficiency against seeds and tasks, as one PNG."""
    rows = [r for r in result["rows"] if r["kind"] == "sweep"]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, axis in zip(axes, ("seeds", "tasks"), strict=True):
        line = [r for r in rows if r["axis"] == axis]
        n = np.array([r["n"] for r in line], float)
        thr = np.array([r["env_steps_per_s"] for r in line])
        ax.loglog(n, thr, "o-", label="measured")
        ax.loglog(n, thr[0] * n / n[0], "--", color="gray", label="ideal (linear)")
        for x, y, r in zip(n, thr, line, strict=True):
            ax.annotate(f"{r['parallel_efficiency']:.2f}", (x, y), textcoords="offset points",
                        xytext=(4, -12), fontsize=8)
        ax.set_xlabel("vmapped seeds" if axis == "seeds" else "tasks per meta-batch")
        ax.set_ylabel("env steps / s")
        ax.set_title(f"{line[0]['algo']} on {line[0]['family']}: {axis} "
                     "(labels: parallel efficiency)", fontsize=9)
        ax.legend(fontsize=8)
        ax.margins(x=0.15, y=0.1)
    d = result["meta"]["device"]
    fig.suptitle(f"{d['device_kind']} × {d['device_count']}, {result['meta']['date']}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


SUITE_HEADING = "## Benchmark suite (`python -m jaxmeta bench`)"


def record(results_md: Path, label: str, section: str) -> None:
    """Puts ``section`` into ``results_md`` between markers named after ``label``: in place
    of an earlier one of the same label, else at the end of the suite's section (created at
    the end of the file if missing). Nothing else is touched."""
    start, end = f"<!-- bench: {label} -->", f"<!-- /bench: {label} -->"
    text = results_md.read_text() if results_md.exists() else "# Benchmark results\n"
    block = f"{start}\n{section.rstrip()}\n{end}\n"
    if start in text and end in text:
        text = text[:text.index(start)] + block.rstrip("\n") + text[text.index(end) + len(end):]
    elif SUITE_HEADING in text:
        after = text.index(SUITE_HEADING) + len(SUITE_HEADING)
        nxt = text.find("\n## ", after)
        nxt = len(text) if nxt < 0 else nxt + 1
        text = text[:nxt].rstrip("\n") + "\n\n" + block + "\n" + text[nxt:]
    else:
        text = text.rstrip("\n") + f"\n\n{SUITE_HEADING}\n\n" + block
    results_md.write_text(text.rstrip("\n") + "\n")


def suite_family(suite: Suite, kinds: tuple[str, ...]) -> str:
    """The family that names a run: the main one, unless only other kinds ran."""
    for kind, family in (("raw_sim", suite.family), ("meta_train", suite.family),
                         ("brax_ppo", suite.ppo_family or suite.family),
                         ("sweep", suite.sweep_family), ("compile", suite.compile_family)):
        if kind in kinds:
            return family
    return suite.family


def main(argv: list[str] | None = None) -> int:
    """``python -m jaxmeta bench``: run the suite, write JSON + PNG (+ RESULTS.md)."""
    p = argparse.ArgumentParser(prog="python -m jaxmeta bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="one row of each kind, small sizes (~5 min on a 2-core CPU)")
    p.add_argument("--kinds", default=",".join(KINDS), help=f"subset of {','.join(KINDS)}")
    p.add_argument("--family", default=None, help="override the suite's MJX family")
    p.add_argument("--horizon", type=int, default=None, help="override its horizon")
    p.add_argument("--algos", default=None,
                   help="comma-separated algorithms for the meta-training and compile rows")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--out", default="benchmarks/results", help="folder for JSON and PNG")
    p.add_argument("--record", default=None, metavar="RESULTS_MD",
                   help="also put the markdown tables into this file (benchmarks/RESULTS.md)")
    args = p.parse_args(argv)
    suite = QUICK if args.quick else FULL
    if args.family is not None:
        if args.family not in envs.names():
            raise ValueError(f"unknown family {args.family!r}; choose from {envs.names()}")
        suite = dataclasses.replace(suite, family=args.family)
    if args.horizon is not None:
        suite = dataclasses.replace(suite, horizon=args.horizon)
    if args.algos is not None:
        algos = tuple(a for a in args.algos.split(",") if a)
        bad = [a for a in algos if a not in algorithms.names()]
        if bad:
            raise ValueError(f"unknown algo(s) {bad}; choose from {algorithms.names()}")
        suite = dataclasses.replace(suite, algos=algos, compile_algos=algos)
    if args.repeats is not None:
        suite = dataclasses.replace(suite, repeats=args.repeats)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    t0 = time.perf_counter()
    result = run_suite(suite, kinds)
    result["meta"]["wall_s"] = time.perf_counter() - t0
    d = result["meta"]["device"]
    mode = "quick" if args.quick else "full"
    part = "" if set(kinds) == set(KINDS) else f" ({', '.join(kinds)})"
    family = suite_family(suite, kinds)
    tag = "_".join([mode, *([] if not part else ["-".join(kinds)]), family, d["platform"],
                    result["meta"]["date"]])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bench_{tag}.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    png = plot_sweep(result, out / f"sweep_{tag}.png")
    label = f"{mode} suite{part}, {family}, {d['device_kind']} x{d['device_count']}"
    section = markdown(result, label)
    print(section)
    if args.record:
        record(Path(args.record), label, section)
    print(f"wrote {out / f'bench_{tag}.json'}" + (f" and {png}" if png else "")
          + f" in {result['meta']['wall_s']:.0f} s")
    return 0
