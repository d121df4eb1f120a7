"""What one ``python -m jaxmeta bench`` run measures: a :class:`Suite`, and the named presets.

Sizes are flat config fields (:mod:`jaxmeta.config`) shared by every algorithm that has
them, so one suite configures MAML, TESP and the baselines alike (:func:`config_for`).

Presets:

* ``quick``: one row of each of the first five kinds, small sizes, ~5 min on a 2-core CPU.
* ``full``: the suite at MAML's half-cheetah sizes, for a GPU.
* ``maml_throughput``: MAML's 2D navigation at the paper's sizes: 1 and 16 vmapped seeds,
  the compile time of one update, second-order memory against K with and without remat.
* ``tesp_throughput``: TESP against MAML on ``reacher2_target`` at the sizes of
  ``experiments/tesp --scale small``.
* ``env_throughput``: the raw simulator of every registered family at batch 1, 64, 1024.
* ``context_gridworld`` / ``context_cheetah``: RL² against VATE (meta-training and
  compile) at the sizes of ``experiments/vate --scale small`` on ``gridworld`` and
  ``halfcheetah_vel``.
* ``offpolicy``: SAC and PEARL training at the sizes of ``experiments/pearl --scale small``
  on ``halfcheetah_vel_pearl`` (1 and 4 vmapped seeds, where the time goes, compile), and
  Brax's SAC against jaxmeta's on one ``navigation2d`` task.
* ``maesn``: MAESN, its LatentSpace baseline and MAML on sparse 2D navigation at the sizes
  of ``experiments/seed002/maesn --scale small`` (5 vmapped seeds; compile times).
* ``epg``: EPG at the sizes of ``experiments/seed002/epg --scale small``: one generation's
  env steps/s against the raw simulator, population 8 / 32 / 128 with the parallel
  efficiency, the policy-gradient baseline, compile time.
* ``maml_protocol``: the MAML paper's half-cheetah protocol end to end through ``train``
  (500 iterations × 40 tasks × (20 + 20) trajectories × 200 steps; a GPU job).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jaxmeta import algorithms, envs
from jaxmeta import config as config_lib
from jaxmeta.bench import kinds as K
from jaxmeta.bench.report import KINDS, metadata
from jaxmeta.envs.mjx_base import resolve_physics

SUITE_KINDS = ("raw_sim", "meta_train", "brax_ppo", "sweep", "compile")


@dataclasses.dataclass(frozen=True)
class Suite:
    """Sizes and choices of a benchmark run (fields used only by some kinds say which)."""

    family: str
    horizon: int
    algos: tuple[str, ...]
    sizes: dict[str, Any]  # flat config fields, for every algorithm that has them
    kinds: tuple[str, ...] = SUITE_KINDS  # what runs unless --kinds says otherwise
    seeds: int = 1  # meta_train, protocol
    iterations: int = 3  # meta-iterations per timed call (protocol: of the whole run)
    repeats: int = 3
    raw_batches: tuple[int, ...] = ()  # raw_sim
    raw_steps: tuple[int, ...] = ()  # raw_sim: control steps per call, one per batch
    raw_families: tuple[str, ...] = ()  # raw_sim: more families (errors are recorded)
    sweep_family: str = "navigation2d"
    sweep_horizon: int = 20
    sweep_algo: str = "maml"
    sweep_seeds: tuple[int, ...] = ()
    sweep_seed_tasks: int = 10  # tasks per meta-batch along the seed axis
    sweep_field: str = "meta_batch_size"  # what the second axis varies (EPG: es_population)
    sweep_tasks: tuple[int, ...] = ()
    compile_family: str = "navigation2d"
    compile_algos: tuple[str, ...] = ()
    ppo_family: str = ""  # brax_ppo ("" = ``family``)
    ppo_updates: int = 10  # brax_ppo: PPO updates per timed call / per Brax epoch
    remat_steps: tuple[int, ...] = (1, 3, 5)  # remat: K
    chunk: int = 10  # protocol: iterations per compiled call
    mesh: str = ""  # protocol
    # simulators of the MuJoCo families (each runs every chosen kind; rows say which)
    physics: tuple[str, ...] = ("auto",)
    offpolicy_seeds: tuple[int, ...] = (1, 4)  # offpolicy: vmapped seeds per row
    sac_family: str = "navigation2d"  # brax_sac: the fixed task's family (horizon: its own)
    sac_sizes: dict[str, Any] = dataclasses.field(default_factory=dict)  # brax_sac
    sac_env_steps: int = 20_000  # brax_sac: env steps each trainer takes after the filling


def config_for(algo: str, sizes: dict) -> Any:
    """``algo``'s default config with the fields of ``sizes`` it has. TESP keeps the best
    M ≤ N episodes: its buffer is cut to N when the sizes do not set it."""
    cls = algorithms.config_class(algo)
    if hasattr(cls, "buffer_size") and "buffer_size" not in sizes and "inner_episodes" in sizes:
        sizes = {**sizes, "buffer_size": min(cls().buffer_size, sizes["inner_episodes"])}
    return algorithms.config_with(algo, **sizes)


_SMALL = dict(hidden_sizes=(32, 32), meta_batch_size=4, inner_episodes=4, outer_episodes=4,
              outer="ppo", meta_gradient="first_order", ppo_epochs=2, value_hidden_sizes=(32, 32))
_TESP_SMALL = dict(  # experiments/tesp --scale small (reacher2_target)
    hidden_sizes=(64, 64), gru_size=32, meta_batch_size=8, inner_episodes=8, outer_episodes=8,
    eval_episodes=8, buffer_size=4, inner_steps=3, inner_lr=0.001, ppo_lr=3e-3, ppo_clip=0.15,
    gamma=0.99, gae_lambda=0.97, meta_gradient="first_order", outer="ppo")

_CONTEXT_GRID = dict(  # experiments/vate --family gridworld --scale small
    gru_size=64, hidden_sizes=(32,), value_hidden_sizes=(32,), meta_batch_size=16,
    trial_episodes=3, ppo_epochs=4, gamma=0.95, entropy_coef=0.05, latent_size=5,
    elbo_starts=15, vae_batch_trials=16, reward_likelihood="bernoulli",
    reward_decoder_input="next_state")
_CONTEXT_CHEETAH = dict(  # experiments/vate --family halfcheetah_vel --scale small
    gru_size=64, hidden_sizes=(64, 64), value_hidden_sizes=(64, 64), meta_batch_size=8,
    trial_episodes=2, ppo_epochs=4, latent_size=5, elbo_starts=20, vae_batch_trials=8,
    vae_buffer_trials=64)

_PEARL_CHEETAH = dict(  # experiments/pearl --family halfcheetah_vel_pearl --scale small
    hidden_sizes=(128, 128), encoder_hidden_sizes=(128, 128), num_train_tasks=100,
    capacity=10_000, initial_steps=200, tasks_per_iteration=2, prior_steps=200,
    posterior_steps=0, extra_posterior_steps=200, train_steps=250, meta_batch_size=8,
    batch_size=128, context_size=64)
_SAC_NAV = dict(  # one navigation2d task: 4 episodes of 100 steps, then 100 gradient steps
    hidden_sizes=(128, 128), batch_size=256, num_train_tasks=1, capacity=50_000,
    initial_steps=1000, prior_steps=400, train_steps=100, meta_batch_size=1, gamma=0.9)

_METAGRAD_CHEETAH = dict(  # experiments/seed002/metagrad --family halfcheetah_vel --scale small
    hidden_sizes=(64, 64), ac_value_hidden_sizes=(64, 64), ac_tasks=8, ac_episodes=1,
    ac_eval_episodes=2, ac_lr=1e-3, init_std=0.5, eta_lr=0.03, observe_task=True)

_MAESN_NAV = dict(  # experiments/seed002/maesn --scale small
    hidden_sizes=(32, 32), meta_batch_size=10, inner_episodes=20, outer_episodes=20,
    eval_episodes=20, num_train_tasks=20, latent_size=2)

_EPG_NAV = dict(  # experiments/seed002/epg --scale small
    hidden_sizes=(32, 32), init_std=0.5, es_population=16, es_tasks=4, es_sigma=0.05,
    es_lr=0.02, inner_updates=10, inner_episodes=4, inner_epochs=4, inner_lr=0.01,
    eval_episodes=4)

PRESETS: dict[str, Suite] = {
    "quick": Suite(
        family="reacher2_target", horizon=20, algos=("maml",), sizes=_SMALL,
        raw_batches=(16,), raw_steps=(640,), sweep_seeds=(1, 4), sweep_tasks=(10, 40),
        compile_algos=("maml",), iterations=16, repeats=5,
        # Brax's PPO spends ~90 s compiling and setting up on an MJX model on 2 cores; the
        # quick suite compares on the pure-JAX family to stay within ~5 minutes
        ppo_family="navigation2d"),
    "full": Suite(
        family="halfcheetah_vel", horizon=200, algos=("maml", "meta_sgd", "tesp", "oracle"),
        sizes=dict(hidden_sizes=(64, 64), meta_batch_size=40, inner_episodes=20,
                   outer_episodes=20, outer="ppo", meta_gradient="second_order", ppo_epochs=5),
        raw_batches=(64, 800, 4096), raw_steps=(200, 200, 200), sweep_family="halfcheetah_vel",
        sweep_horizon=200, sweep_seeds=(1, 4, 16, 64), sweep_seed_tasks=40,
        sweep_tasks=(10, 40, 160), compile_family="halfcheetah_vel",
        compile_algos=tuple(algorithms.names())),
    "maml_throughput": Suite(
        family="navigation2d", horizon=100, algos=("maml",), sizes={},
        kinds=("sweep", "compile", "remat"), sweep_family="navigation2d", sweep_horizon=100,
        sweep_seeds=(1, 16), sweep_seed_tasks=20, compile_algos=("maml",)),
    "tesp_throughput": Suite(
        family="reacher2_target", horizon=50, algos=("tesp", "maml"), sizes=_TESP_SMALL,
        kinds=("meta_train",), seeds=3, iterations=5),
    "env_throughput": Suite(
        family="navigation2d", horizon=100, algos=(), sizes={}, kinds=("raw_sim",),
        raw_batches=(1, 64, 1024), raw_steps=(200, 50, 10),
        raw_families=tuple(n for n in envs.names() if n != "navigation2d")),
    # C MuJoCo against MJX, side by side: every MuJoCo family's raw simulator at B = 1, 64
    # and 1024, meta-training (MAML, oracle) on the half-cheetah at B = 320, and the compile
    # time of one meta-training program (~25 min on a 2-core CPU)
    "backends": Suite(
        family="halfcheetah_vel", horizon=200, algos=("maml", "oracle"),
        sizes=dict(meta_batch_size=16, inner_episodes=20, outer_episodes=20),
        kinds=("raw_sim", "meta_train", "compile"), raw_batches=(1, 64, 1024),
        raw_steps=(200, 50, 10), raw_families=tuple(n for n in envs.names()
                                                    if envs.has_mujoco_model(n)
                                                    and n != "halfcheetah_vel"),
        compile_family="halfcheetah_vel", compile_algos=("maml",), iterations=1,
        physics=("mujoco", "mjx")),
    "context_gridworld": Suite(
        family="gridworld", horizon=15, algos=("rl2", "vate"), sizes=_CONTEXT_GRID,
        kinds=("meta_train", "compile"), compile_family="gridworld",
        compile_algos=("rl2", "vate"), seeds=3, iterations=20),
    "context_cheetah": Suite(
        family="halfcheetah_vel", horizon=200, algos=("rl2", "vate"), sizes=_CONTEXT_CHEETAH,
        kinds=("meta_train", "compile"), compile_family="halfcheetah_vel",
        compile_algos=("rl2", "vate"), seeds=2, iterations=2),
    "offpolicy": Suite(
        family="halfcheetah_vel_pearl", horizon=200, algos=("sac", "pearl"),
        sizes=_PEARL_CHEETAH, kinds=("offpolicy", "brax_sac", "compile"),
        compile_family="halfcheetah_vel_pearl", compile_algos=("sac", "pearl"),
        iterations=2, repeats=5, sac_sizes=_SAC_NAV),
    # meta-gradient A2C (γ, λ learned) and the same A2C with them fixed: what the
    # meta-gradient costs per env step, against the raw simulator at the same batch
    "metagrad": Suite(
        family="halfcheetah_vel", horizon=200, algos=("metagrad", "metagrad_fixed"),
        sizes=_METAGRAD_CHEETAH, kinds=("meta_train", "compile"),
        compile_family="halfcheetah_vel", compile_algos=("metagrad",), seeds=2,
        iterations=10, repeats=3),
    # MAESN, its LatentSpace baseline and MAML at the sizes of experiments/seed002/maesn
    # --scale small (sparse 2D navigation): what the per-episode latents cost
    "maesn": Suite(
        family="navigation2d_sparse", horizon=20, algos=("maesn", "maesn_latent_space", "maml"),
        sizes=_MAESN_NAV, kinds=("meta_train", "compile"), compile_family="navigation2d_sparse",
        compile_algos=("maesn", "maml"), seeds=5, iterations=10, repeats=3),
    # EPG: one generation (every member's inner learning runs) at population 8, 32 and 128
    # (vmapped) with the parallel efficiency, the PG baseline's generation, compile times
    "epg": Suite(
        family="navigation2d", horizon=20, algos=("epg", "epg_pg"), sizes=_EPG_NAV,
        kinds=("meta_train", "sweep", "compile"), sweep_family="navigation2d",
        sweep_horizon=20, sweep_algo="epg", sweep_tasks=(8, 32, 128),
        sweep_field="es_population", compile_family="navigation2d", compile_algos=("epg",),
        seeds=1, iterations=2, repeats=3),
    "maml_protocol": Suite(
        family="halfcheetah_vel", horizon=200, algos=("maml",),
        sizes=dict(meta_batch_size=40, inner_episodes=20, outer_episodes=20),
        kinds=("protocol",), iterations=500, chunk=10),
}


def run_suite(suite: Suite, kinds: tuple[str, ...] | None = None, log: Callable = print,
              run_dir: str | Path = "runs/bench_protocol", resume: bool = False) -> dict:
    """Runs the chosen kinds of ``suite``; returns ``{"meta": ..., "rows": [...]}``.

    With several ``suite.physics``, the kinds run once per simulator, side by side in one
    process (each row's ``physics`` says which)."""
    kinds = suite.kinds if kinds is None else kinds
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown benchmark kind(s) {unknown}; choose from {list(KINDS)}")
    for p in suite.physics:
        resolve_physics(p)  # refuse an unknown name before anything runs
    if len(suite.physics) > 1:
        rows = [row for p in suite.physics for row in run_suite(
            dataclasses.replace(suite, physics=(p,)), kinds, log, run_dir, resume)["rows"]]
        return {"meta": metadata(dataclasses.asdict(suite)), "rows": rows}
    physics = suite.physics[0]

    def sim(name: str, **kw) -> dict:  # constructor arguments of a family on ``physics``
        return {**kw, "physics": physics} if envs.has_mujoco_model(name) else kw

    env_kwargs = sim(suite.family, horizon=suite.horizon)
    rows: list[dict] = []

    def add(row):
        fam = row.get("family")
        row.setdefault("physics", resolve_physics(physics)
                       if fam and envs.has_mujoco_model(fam) else "jax")
        rows.append(row)
        log(f"{row}")

    family = envs.make(suite.family, **env_kwargs)
    raw_rows: dict[tuple[int, int], dict] = {}

    def raw_sim(batch, steps):
        if (batch, steps) not in raw_rows:
            raw_rows[(batch, steps)] = K.bench_raw_sim(suite.family, batch, steps,
                                                       suite.repeats, family=family)
            add(raw_rows[(batch, steps)])
        return raw_rows[(batch, steps)]

    if "raw_sim" in kinds:
        for b, steps in zip(suite.raw_batches, suite.raw_steps, strict=True):
            raw_sim(b, steps)
        for name in suite.raw_families:
            for b, steps in zip(suite.raw_batches, suite.raw_steps, strict=True):
                try:
                    add(K.bench_raw_sim(name, b, steps, suite.repeats,
                                        family=envs.make(name, **sim(name))))
                except Exception as e:  # out of memory at a large batch: record, move on
                    add({"kind": "raw_sim", "family": name, "batch": b, "steps": steps,
                         "error": f"{type(e).__name__}: {e}"[:200]})
    if "meta_train" in kinds:
        for algo in suite.algos:
            add(K.bench_meta_train(algo, suite.family, config_for(algo, suite.sizes),
                                   suite.seeds, suite.iterations, suite.repeats, env_kwargs,
                                   raw_sim))
    if "brax_ppo" in kinds:
        from jaxmeta.bench.brax_ppo import bench_brax_ppo  # brax and its shim: only here

        add(bench_brax_ppo(suite.ppo_family or suite.family, config_for("oracle", suite.sizes),
                           suite.ppo_updates, suite.repeats,
                           sim(suite.ppo_family or suite.family, horizon=suite.horizon)))
    if "offpolicy" in kinds:
        from jaxmeta.bench.offpolicy import bench_offpolicy  # brax's shim: only here

        for algo in suite.algos:
            for n in suite.offpolicy_seeds:
                add(bench_offpolicy(algo, suite.family, config_for(algo, suite.sizes), n,
                                    suite.iterations, suite.repeats, env_kwargs))
    if "brax_sac" in kinds:
        from jaxmeta.bench.offpolicy import bench_brax_sac

        add(bench_brax_sac(suite.sac_family, config_for("sac", suite.sac_sizes),
                           suite.sac_env_steps, suite.repeats + 1, sim(suite.sac_family)))
    if "sweep" in kinds:
        cfg = config_for(suite.sweep_algo, suite.sizes)
        if suite.sweep_seeds:
            cfg = config_lib.replace(cfg, **{suite.sweep_field: suite.sweep_seed_tasks})
        for row in K.bench_sweep(suite.sweep_algo, suite.sweep_family, cfg,
                                 list(suite.sweep_seeds), list(suite.sweep_tasks),
                                 suite.iterations, suite.repeats,
                                 sim(suite.sweep_family, horizon=suite.sweep_horizon),
                                 suite.sweep_field):
            add(row)
    if "compile" in kinds:
        for algo in suite.compile_algos:
            add(K.bench_compile(algo, suite.compile_family, config_for(algo, suite.sizes),
                                sim(suite.compile_family, horizon=suite.horizon)))
    if "remat" in kinds:
        for algo in suite.algos:
            for row in K.bench_remat(algo, suite.family, config_for(algo, suite.sizes),
                                     suite.remat_steps, env_kwargs):
                add(row)
    if "protocol" in kinds:
        for algo in suite.algos:
            add(K.bench_protocol(algo, suite.family, config_for(algo, suite.sizes),
                                 suite.iterations, suite.seeds, suite.chunk, suite.mesh,
                                 Path(run_dir) / algo, resume, env_kwargs))
    return {"meta": metadata(dataclasses.asdict(suite)), "rows": rows}


def suite_family(suite: Suite, kinds: tuple[str, ...]) -> str:
    """The family that names a run: the main one, unless only other kinds ran."""
    for kind, family in (("raw_sim", suite.family), ("meta_train", suite.family),
                         ("brax_ppo", suite.ppo_family or suite.family),
                         ("offpolicy", suite.family), ("brax_sac", suite.sac_family),
                         ("sweep", suite.sweep_family), ("compile", suite.compile_family)):
        if kind in kinds:
            return family
    return suite.family
