"""The benchmark suite: step counting, the Brax adapter, and one tiny run of every kind.

Only structure and bookkeeping are asserted here; speed belongs in ``benchmarks/``.
"""

import dataclasses
import json
import resource
import time

import jax
import numpy as np
import pytest

from jaxmeta import algorithms, cli, envs
from jaxmeta import bench as bench_pkg
from jaxmeta.bench import kinds, report, suites
from jaxmeta.bench.brax_ppo import device_put_replicated_shim
from jaxmeta.envs.wrappers import FixedTask, brax_env
from jaxmeta.evaluation import evaluate_run
from jaxmeta.protocol import env_steps_per_update
from tests.helpers import TINY, TINY_TESP, tiny_family, tiny_learner


@pytest.mark.parametrize("algo, per_task", [
    # K·N inner + N' outer episodes per task
    ("maml", TINY.inner.steps * TINY.sampling.inner_episodes + TINY.sampling.outer_episodes),
    # N warm-up + K·N fast-update + N' post-adaptation episodes (buffer copies count 0)
    ("tesp", (1 + TINY_TESP.inner.steps) * TINY_TESP.sampling.inner_episodes
     + TINY_TESP.sampling.outer_episodes),
    # no warm-up for AdaptSV
    ("adaptsv", TINY_TESP.inner.steps * TINY_TESP.sampling.inner_episodes
     + TINY_TESP.sampling.outer_episodes),
    # multi-task PPO: one batch of episodes per task
    ("oracle", TINY.sampling.inner_episodes),
])
def test_batch_types_count_every_simulated_episode(algo, per_task):
    learner = tiny_learner(algo)
    expected = learner.config.sampling.meta_batch_size * per_task * tiny_family().horizon
    assert env_steps_per_update(learner) == expected


def test_config_for_gives_every_algorithm_the_sizes_it_has():
    sizes = suites.PRESETS["quick"].sizes
    maml = suites.config_for("maml", sizes)
    assert (maml.policy.hidden_sizes, maml.outer, maml.meta_gradient) == ((32, 32), "ppo",
                                                                         "first_order")
    cfg = suites.config_for("tesp", sizes)
    assert isinstance(cfg, algorithms.TESPConfig)
    assert (cfg.policy.hidden_sizes, cfg.sampling.meta_batch_size, cfg.sampling.inner_episodes,
            cfg.ppo.epochs) == ((32, 32), 4, 4, 2)
    # TESP keeps the best M <= N episodes: its default M = 16 is cut to the suite's N
    assert cfg.buffer_size == 4 < algorithms.TESPConfig().buffer_size
    assert suites.config_for("oracle", sizes).value.hidden_sizes == (32, 32)


def test_raw_sim_resets_episodes_at_the_horizon():
    """Past the horizon a state is absorbing (reward 0); the raw simulator must reset
    instead, or it would time frozen states. 3 horizons collect ~3x one horizon's cost."""
    family = tiny_family()
    one = jax.jit(kinds.raw_sim_program(family, 4, family.horizon))(jax.random.PRNGKey(0))
    three = jax.jit(kinds.raw_sim_program(family, 4, 3 * family.horizon + 2))(
        jax.random.PRNGKey(0))
    assert float(one) < 0 and float(three) / float(one) > 2.5


def test_fixed_task_and_brax_env_step_like_the_family():
    family = tiny_family()
    task = jax.tree.map(lambda x: x[0], family.sample_tasks(jax.random.PRNGKey(0), 1))
    fixed = FixedTask(family, task)
    many = fixed.sample_tasks(jax.random.PRNGKey(1), 3, "test")
    np.testing.assert_array_equal(many.goal, np.broadcast_to(task.goal, (3, 2)))
    assert fixed.task_feature_size == family.task_feature_size
    assert (fixed.name, fixed.horizon, fixed.max_speed) == (family.name, 10, family.max_speed)
    assert fixed.env_spec is None and family.env_spec.overrides == {"horizon": 10}
    np.testing.assert_array_equal(np.stack(fixed.action_bounds()),
                                  np.stack(family.action_bounds()))
    env = brax_env(family, task)
    key, action = jax.random.PRNGKey(2), np.array([0.3, -0.2], np.float32)
    b = env.step(env.reset(key), action)
    f = family.step(family.reset(key, task), action, task)
    np.testing.assert_array_equal(b.obs, f.obs)
    np.testing.assert_array_equal(b.reward, f.reward)
    assert env.observation_size == family.obs_size and env.action_size == family.action_size


def test_device_put_replicated_shim_exists_only_during_the_call():
    had = hasattr(jax, "device_put_replicated")
    with device_put_replicated_shim():
        x = jax.device_put_replicated({"a": np.ones(2)}, jax.local_devices()[:1])
        assert x["a"].shape == (1, 2)
    assert hasattr(jax, "device_put_replicated") == had


# random_init's update only samples, so it compiles in seconds; the bookkeeping is the same
TINY_SUITE = suites.Suite(
    family="navigation2d", horizon=5, algos=("random_init",),
    sizes=dict(hidden_sizes=(4,), meta_batch_size=2, inner_episodes=2, outer_episodes=2,
               outer="ppo", meta_gradient="first_order", ppo_epochs=1, value_hidden_sizes=(4,)),
    raw_batches=(4,), raw_steps=(10,), sweep_horizon=5, sweep_algo="random_init",
    sweep_seeds=(1, 2), sweep_seed_tasks=2, sweep_tasks=(2, 4),
    compile_algos=("random_init",), iterations=1, repeats=1, ppo_updates=2)


def test_tiny_suite_end_to_end(tmp_path):
    """Every number is checked against something it was not computed from: env steps
    against a hand count from the suite's sizes, rates against the timed calls of other
    rows, memory and compile time against the process's own measurements."""
    t0 = time.perf_counter()
    result = suites.run_suite(TINY_SUITE, log=lambda _: None)
    wall = time.perf_counter() - t0
    rss_now = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = result["rows"]
    assert {r["kind"] for r in rows} == set(suites.SUITE_KINDS)
    meta = result["meta"]
    assert meta["device"]["device_count"] >= 1 and meta["versions"]["jax"] == jax.__version__
    json.dumps(result)  # everything is JSON

    # hand count: random_init simulates meta_batch_size tasks × inner_episodes episodes of
    # the horizon per update (nothing else), for each seed and iteration of a call
    z = TINY_SUITE.sizes
    per_task = z["inner_episodes"] * TINY_SUITE.horizon  # 2 × 5
    per_update = z["meta_batch_size"] * per_task  # 20
    per_call = TINY_SUITE.seeds * TINY_SUITE.iterations * per_update
    envs_side_by_side = TINY_SUITE.seeds * z["meta_batch_size"] * z["inner_episodes"]  # 4

    mt = next(r for r in rows if r["kind"] == "meta_train")
    assert (mt["env_steps_per_update"], mt["parallel_envs"]) == (per_update, envs_side_by_side)
    assert mt["env_steps_per_s"] * mt["median_s"] == pytest.approx(per_call)
    assert 0 < mt["median_s"] < wall and 0 < mt["sampling_s"] < wall
    # the raw simulator it is compared with runs the same envs side by side and the same
    # steps per call (found by the hand count, not by the row's own fields)
    raw = next(r for r in rows if r["kind"] == "raw_sim" and r["batch"] == envs_side_by_side
               and r["steps"] == per_call // envs_side_by_side)
    assert raw["env_steps_per_s"] * raw["median_s"] == pytest.approx(per_call)
    # equal steps per call: the ratio of rates is the inverse ratio of the two timed calls,
    # and the physics share of the split is the raw simulator's call
    assert mt["ratio_to_raw_sim"] == pytest.approx(raw["median_s"] / mt["median_s"])
    split = mt["time_split"]
    assert split["physics_s"] == pytest.approx(raw["median_s"])
    assert split["total_s"] == mt["median_s"]
    # the rest of sampling is what the separately timed sampling program took beyond that
    assert split["sampling_rest_s"] == pytest.approx(max(mt["sampling_s"] - raw["median_s"], 0))

    sweep = [r for r in rows if r["kind"] == "sweep"]
    assert [(r["axis"], r["n"]) for r in sweep] == [("seeds", 1), ("seeds", 2), ("tasks", 2),
                                                    ("tasks", 4)]
    # (1 seed, 2 tasks) lies on both axes and is measured once
    assert sweep[0]["median_s"] == sweep[2]["median_s"]
    for r in sweep:
        # hand count: seeds × sweep_seed_tasks tasks, or 1 seed × n tasks, per iteration
        tasks = TINY_SUITE.sweep_seed_tasks * r["n"] if r["axis"] == "seeds" else r["n"]
        steps = TINY_SUITE.iterations * tasks * z["inner_episodes"] * TINY_SUITE.sweep_horizon
        assert r["env_steps_per_s"] * r["median_s"] == pytest.approx(steps)
        # the steps grow like n on both axes, so the efficiency is a ratio of timed calls
        base = sweep[0] if r["axis"] == "seeds" else sweep[2]
        assert r["parallel_efficiency"] == pytest.approx(base["median_s"] / r["median_s"])

    brax_row = next(r for r in rows if r["kind"] == "brax_ppo")
    assert brax_row["num_envs"] == 4 and len(brax_row["brax_sps_per_epoch"]) == 2
    # Brax's first epoch includes its compilation: the figure is the later epoch's
    assert brax_row["brax_env_steps_per_s"] == brax_row["brax_sps_per_epoch"][1]
    # jaxmeta's oracle: ppo_updates × 4 envs × the horizon per timed call (one repeat, so
    # its only call is both min and max)
    jm_steps = TINY_SUITE.ppo_updates * 4 * TINY_SUITE.horizon
    assert TINY_SUITE.repeats == 1
    assert brax_row["jaxmeta_env_steps_per_s"] * brax_row["jaxmeta_min_s"] == pytest.approx(
        jm_steps)
    assert brax_row["ratio_jaxmeta_to_brax"] * brax_row["brax_sps_per_epoch"][1] * \
        brax_row["jaxmeta_min_s"] == pytest.approx(jm_steps)

    comp = next(r for r in rows if r["kind"] == "compile")
    assert 0 < comp["compile_s"] < wall
    # peak RSS never decreases: what the row recorded lies below the peak measured now, and
    # a process that has imported JAX and compiled holds well over 100 MB
    assert 100 < comp["peak_rss_mb"] <= rss_now

    md = report.markdown(result, "tiny")
    for heading in ("raw simulator", "meta-training", "PPO on one fixed task", "sweep",
                    "compile one update"):
        assert heading in md
    assert report.plot_sweep(result, tmp_path / "sweep.png").stat().st_size > 0

    # recording twice replaces the section and keeps everything else
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\nhand-written notes\n")
    report.record(path, "tiny", md)
    report.record(path, "tiny", md.replace("tiny", "tiny again"))
    text = path.read_text()
    assert text.count("<!-- bench: tiny -->") == 1 and "hand-written notes" in text
    assert "tiny again" in text


def test_protocol_runs_through_the_trainer_and_is_evaluable(tmp_path):
    """The end-to-end kind (``--preset maml_protocol``) trains with ``train``: checkpoints,
    ``--resume``, and a run ``jaxmeta eval`` can rebuild; remat rows compile K updates."""
    suite = suites.Suite(family="navigation2d", horizon=5, algos=("random_init",),
                         sizes=TINY_SUITE.sizes, kinds=("protocol",), iterations=2, chunk=1)
    row = suites.run_suite(suite, log=lambda _: None, run_dir=tmp_path)["rows"][0]
    assert (row["iterations_run"], row["env_steps"]) == (2, 2 * 2 * 2 * 5)
    res = evaluate_run(tmp_path / "random_init", num_tasks=2, adapt_steps=1)
    assert res["algo"] == "random_init" and res["iteration"] == 2
    suite = suites.Suite(family="navigation2d", horizon=5, algos=("maml",),
                         sizes=TINY_SUITE.sizes, kinds=("remat",), remat_steps=(1,))
    rows = suites.run_suite(suite, log=lambda _: None)["rows"]
    assert [(r["inner_steps"], r["remat"]) for r in rows] == [(1, False), (1, True)]
    assert "XLA temp memory" in report.markdown({"meta": report.metadata({**vars(suite),
                                                                          "repeats": 1}),
                                                 "rows": rows}, "remat")


def test_both_simulators_side_by_side():
    """One suite, two simulators: a row each (same sizes), labelled, in one table; the
    pure-JAX family is labelled as such. Both simulate the same physics: the returns of the
    same random actions agree closely (the reacher is contact-free)."""
    suite = suites.Suite(family="reacher2_target", horizon=5, algos=(), sizes={},
                         kinds=("raw_sim",), raw_batches=(2,), raw_steps=(5,),
                         raw_families=("navigation2d",), repeats=1, physics=("mujoco", "mjx"))
    rows = suites.run_suite(suite, log=lambda _: None)["rows"]
    assert [(r["family"], r["physics"]) for r in rows] == [
        ("reacher2_target", "mujoco"), ("navigation2d", "jax"),
        ("reacher2_target", "mjx"), ("navigation2d", "jax")]
    table = report.markdown({"meta": report.metadata({**vars(suite), "repeats": 1}),
                             "rows": rows}, "backends")
    assert "| reacher2_target | mujoco | 2 |" in table and "| reacher2_target | mjx | 2 |" in table
    with pytest.raises(ValueError, match="physics='bullet' is unknown"):
        suites.run_suite(dataclasses.replace(suite, physics=("mjx", "bullet")))
    fams = [envs.make("reacher2_target", physics=p, horizon=5) for p in ("mujoco", "mjx")]
    returns = [float(jax.jit(kinds.raw_sim_program(f, 2, 5))(jax.random.PRNGKey(3)))
               for f in fams]
    assert returns[0] == pytest.approx(returns[1], rel=1e-5, abs=1e-5)


def test_bad_input_is_refused_before_compiling():
    with pytest.raises(ValueError, match="unknown benchmark kind"):
        suites.run_suite(TINY_SUITE, kinds=("raw_sim", "flops"))
    with pytest.raises(ValueError, match="unknown family"):
        bench_pkg.main(["--quick", "--family", "cheetah"])
    with pytest.raises(ValueError, match="unknown algo"):
        bench_pkg.main(["--quick", "--algos", "maml,mamal"])
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        bench_pkg.main(["--preset", "fast"])
    with pytest.raises(ValueError, match="--set meta_batch: no algorithm config"):
        bench_pkg.main(["--quick", "--set", "meta_batch=2"])
    with pytest.raises(ValueError, match="meta_batch_size must be a positive integer"):
        bench_pkg.main(["--quick", "--set", "meta_batch_size=0"])
    assert cli.main(["bench", "--kinds", "flops"]) == 2  # the CLI prints it, exit code 2
    # a run is named after the family it measured
    quick = suites.PRESETS["quick"]
    assert suites.suite_family(quick, ("compile",)) == quick.compile_family
    assert suites.suite_family(quick, ("sweep", "raw_sim")) == quick.family


TINY_OFFPOLICY = suites.Suite(
    family="navigation2d", horizon=5, algos=("sac", "pearl"),
    sizes=dict(hidden_sizes=(8,), encoder_hidden_sizes=(8,), latent_size=2, num_train_tasks=3,
               capacity=100, initial_steps=10, tasks_per_iteration=2, prior_steps=10,
               posterior_steps=5, extra_posterior_steps=5, train_steps=3, meta_batch_size=2,
               batch_size=8, context_size=4),
    kinds=("offpolicy", "brax_sac"), offpolicy_seeds=(1, 2), iterations=2, repeats=1,
    sac_family="navigation2d",
    sac_sizes=dict(hidden_sizes=(8,), batch_size=8, num_train_tasks=1, capacity=1000,
                   initial_steps=200, prior_steps=200, train_steps=100, meta_batch_size=1),
    sac_env_steps=400)


def test_tiny_offpolicy_suite_end_to_end():
    """SAC and PEARL rows and the Brax SAC comparison: env and gradient steps against a
    hand count, rates against the timed calls, the split of an update into its parts."""
    rows = suites.run_suite(TINY_OFFPOLICY, log=lambda _: None)["rows"]
    off = [r for r in rows if r["kind"] == "offpolicy"]
    assert [(r["algo"], r["seeds"]) for r in off] == [("sac", 1), ("sac", 2), ("pearl", 1),
                                                      ("pearl", 2)]
    for r in off:
        # hand count: SAC collects prior + posterior + extra steps on 2 tasks (it has no
        # latent, the names only schedule); 3 gradient steps per update
        assert r["env_steps_per_update"] == 2 * (10 + 5 + 5)
        calls = r["seeds"] * TINY_OFFPOLICY.iterations
        assert r["env_steps_per_s"] * r["median_s"] == pytest.approx(calls * 40)
        assert r["grad_steps_per_s"] * r["median_s"] == pytest.approx(calls * 3)
        t = r["time_split"]
        assert t["total_s"] == r["median_s"] and t["collection_s"] > 0
        assert t["gradient_steps_s"] == pytest.approx(max(r["median_s"] - t["collection_s"], 0))
        assert ("critic_step_s" in r) == (r["seeds"] == 1)
    pearl = next(r for r in off if r["algo"] == "pearl" and r["seeds"] == 1)
    assert pearl["encoder_step_s"] == pytest.approx(
        max(pearl["grad_step_min_s"] - pearl["sac_grad_step_min_s"], 0))
    # one repeat: the fastest call is the median one
    assert pearl["grad_step_min_s"] == pytest.approx(pearl["grad_step_s"])
    assert pearl["critic_step_s"] > 0 and pearl["actor_step_s"] > 0

    brax_row = next(r for r in rows if r["kind"] == "brax_sac")
    # 200 steps per update = 2 episodes of navigation2d's horizon 100 side by side; Brax
    # steps 2 envs and takes 100 / 200 × 2 = 1 gradient step per step of them
    assert (brax_row["num_envs"], brax_row["env_steps"]) == (2, 400)
    assert brax_row["grad_steps_per_env_step"] == pytest.approx(100 / 200)
    assert len(brax_row["brax_sps_per_epoch"]) == 2
    assert brax_row["brax_env_steps_per_s"] == brax_row["brax_sps_per_epoch"][1]
    assert brax_row["ratio_jaxmeta_to_brax"] == pytest.approx(
        brax_row["jaxmeta_env_steps_per_s"] / brax_row["brax_env_steps_per_s"])
    assert np.isfinite(brax_row["jaxmeta_return"]) and np.isfinite(brax_row["brax_return"])
    md = report.markdown({"meta": {"date": "d", "device": {"device_kind": "cpu",
                                                           "device_count": 1,
                                                           "platform": "cpu", "host": "h",
                                                           "host_cpus": 2},
                                   "versions": {}, "suite": dataclasses.asdict(
                                       TINY_OFFPOLICY)}, "rows": rows}, "tiny")
    assert "off-policy training" in md and "SAC on one fixed task" in md


def test_brax_env_scales_squashed_actions_onto_the_box():
    family = tiny_family()  # navigation2d: the box is ±max_speed
    task = jax.tree.map(lambda x: x[0], family.sample_tasks(jax.random.PRNGKey(0), 1))
    low, high = family.action_bounds()
    env = brax_env(family, task, action_box=(low, high))
    key, u = jax.random.PRNGKey(2), np.array([0.5, -1.0], np.float32)
    b = env.step(env.reset(key), u)
    f = family.step(family.reset(key, task), low + 0.5 * (u + 1) * (high - low), task)
    np.testing.assert_array_equal(b.obs, f.obs)
