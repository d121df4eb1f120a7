"""The benchmark suite: step counting, the Brax adapter, and one tiny run of every kind.

Only structure and bookkeeping are asserted here; speed belongs in ``benchmarks/``.
"""

import json

import jax
import numpy as np
import pytest

from jaxmeta import bench, cli
from jaxmeta.algorithms.base import MetaConfig
from jaxmeta.algorithms.tesp import TESPConfig
from tests.helpers import TINY, TINY_TESP, tiny_family, tiny_learner


@pytest.mark.parametrize("algo, per_task", [
    # K·N inner + N' outer episodes per task
    ("maml", TINY.inner_steps * TINY.inner_episodes + TINY.outer_episodes),
    # N warm-up + K·N fast-update + N' post-adaptation episodes
    ("tesp", (1 + TINY_TESP.fast_updates) * TINY_TESP.inner_episodes
     + TINY_TESP.outer_episodes),
    # no warm-up for AdaptSV
    ("adaptsv", TINY_TESP.fast_updates * TINY_TESP.inner_episodes + TINY_TESP.outer_episodes),
    # multi-task PPO: one batch of episodes per task
    ("oracle", TINY.inner_episodes),
])
def test_env_steps_per_update_counts_every_simulated_episode(algo, per_task):
    learner = tiny_learner(algo)
    expected = learner.config.meta_batch_size * per_task * tiny_family().horizon
    assert bench.env_steps_per_update(learner) == expected


def test_config_for_gives_tesp_the_suite_sizes():
    base = bench.QUICK.config
    assert bench.config_for("maml", base) is base
    cfg = bench.config_for("tesp", base)
    assert isinstance(cfg, TESPConfig)
    assert (cfg.hidden_sizes, cfg.meta_batch_size, cfg.inner_episodes, cfg.ppo_epochs) == (
        base.hidden_sizes, base.meta_batch_size, base.inner_episodes, base.ppo_epochs)
    # TESP keeps the best M <= N episodes: its default M = 16 is cut to the suite's N
    assert cfg.buffer_size == base.inner_episodes < TESPConfig().buffer_size


def test_raw_sim_resets_episodes_at_the_horizon():
    """Past the horizon a state is absorbing (reward 0); the raw simulator must reset
    instead, or it would time frozen states. 3 horizons collect ~3x one horizon's cost."""
    family = tiny_family()
    one = jax.jit(bench.raw_sim_program(family, 4, family.horizon))(jax.random.PRNGKey(0))
    three = jax.jit(bench.raw_sim_program(family, 4, 3 * family.horizon + 2))(
        jax.random.PRNGKey(0))
    assert float(one) < 0 and float(three) / float(one) > 2.5


def test_fixed_task_and_brax_env_step_like_the_family():
    family = tiny_family()
    task = jax.tree.map(lambda x: x[0], family.sample_tasks(jax.random.PRNGKey(0), 1))
    fixed = bench.FixedTask(family, task)
    many = fixed.sample_tasks(jax.random.PRNGKey(1), 3, "test")
    np.testing.assert_array_equal(many.goal, np.broadcast_to(task.goal, (3, 2)))
    assert fixed.task_feature_size == family.task_feature_size
    env = bench.brax_env(family, task)
    key, action = jax.random.PRNGKey(2), np.array([0.3, -0.2], np.float32)
    b = env.step(env.reset(key), action)
    f = family.step(family.reset(key, task), action, task)
    np.testing.assert_array_equal(b.obs, f.obs)
    np.testing.assert_array_equal(b.reward, f.reward)
    assert env.observation_size == family.obs_size and env.action_size == family.action_size


def test_device_put_replicated_shim_restores_jax():
    had = hasattr(jax, "device_put_replicated")
    with bench.device_put_replicated_shim():
        x = jax.device_put_replicated({"a": np.ones(2)}, jax.local_devices()[:1])
        assert x["a"].shape == (1, 2)
    assert hasattr(jax, "device_put_replicated") == had


# random_init's update only samples, so it compiles in seconds; the bookkeeping is the same
TINY_SUITE = bench.Suite(
    family="navigation2d", horizon=5, algos=("random_init",),
    config=MetaConfig(hidden_sizes=(4,), meta_batch_size=2, inner_episodes=2, outer_episodes=2,
                      outer="ppo", meta_gradient="first_order", ppo_epochs=1,
                      value_hidden_sizes=(4,)),
    raw_batches=(4,), raw_steps=10, seeds=1, sweep_family="navigation2d", sweep_horizon=5,
    sweep_algo="random_init", sweep_seeds=(1, 2),
    sweep_seed_tasks=2, sweep_tasks=(2, 4), compile_family="navigation2d",
    compile_algos=("random_init",), iterations=1, repeats=1, ppo_updates=2)


def test_tiny_suite_end_to_end(tmp_path):
    result = bench.run_suite(TINY_SUITE, log=lambda _: None)
    rows = result["rows"]
    assert {r["kind"] for r in rows} == set(bench.KINDS)
    meta = result["meta"]
    assert meta["device"]["device_count"] >= 1 and meta["versions"]["jax"] == jax.__version__
    json.dumps(result)  # everything is JSON

    mt = next(r for r in rows if r["kind"] == "meta_train")
    # the ratio compares with the raw simulator at the same number of parallel envs and the
    # same number of env steps per call
    assert mt["parallel_envs"] == 2 * 2
    raw = next(r for r in rows if r["kind"] == "raw_sim" and r["batch"] == mt["parallel_envs"]
               and r["steps"] == mt["raw_sim_steps"])
    assert raw["batch"] * raw["steps"] == mt["env_steps_per_update"] * mt["iterations_per_call"]
    assert mt["raw_sim_env_steps_per_s"] == raw["env_steps_per_s"]
    assert mt["ratio_to_raw_sim"] == pytest.approx(mt["env_steps_per_s"] / raw["env_steps_per_s"])
    assert mt["env_steps_per_s"] == pytest.approx(
        mt["env_steps_per_update"] * mt["iterations_per_call"] / mt["median_s"])
    split = mt["time_split"]
    assert split["total_s"] == mt["median_s"] and split["meta_update_s"] >= 0

    sweep = [r for r in rows if r["kind"] == "sweep"]
    assert [(r["axis"], r["n"]) for r in sweep] == [("seeds", 1), ("seeds", 2), ("tasks", 2),
                                                    ("tasks", 4)]
    # (1 seed, 2 tasks) lies on both axes and is measured once
    assert sweep[0]["median_s"] == sweep[2]["median_s"]
    for r in sweep:
        base = sweep[0] if r["axis"] == "seeds" else sweep[2]
        assert r["parallel_efficiency"] == pytest.approx(
            r["env_steps_per_s"] / (r["n"] / base["n"] * base["env_steps_per_s"]))

    brax_row = next(r for r in rows if r["kind"] == "brax_ppo")
    assert brax_row["num_envs"] == 4 and len(brax_row["brax_sps_per_epoch"]) == 2
    assert brax_row["ratio_jaxmeta_to_brax"] > 0

    comp = next(r for r in rows if r["kind"] == "compile")
    assert comp["compile_s"] > 0 and comp["peak_rss_mb"] > 0

    md = bench.markdown(result, "tiny")
    for heading in ("raw simulator", "meta-training", "PPO on one fixed task", "sweep",
                    "compile one update"):
        assert heading in md
    assert bench.plot_sweep(result, tmp_path / "sweep.png").stat().st_size > 0

    # recording twice replaces the section and keeps everything else
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\nhand-written notes\n")
    bench.record(path, "tiny", md)
    bench.record(path, "tiny", md.replace("tiny", "tiny again"))
    text = path.read_text()
    assert text.count("<!-- bench: tiny -->") == 1 and "hand-written notes" in text
    assert "tiny again" in text


def test_bad_input_is_refused_before_compiling():
    with pytest.raises(ValueError, match="unknown benchmark kind"):
        bench.run_suite(TINY_SUITE, kinds=("raw_sim", "flops"))
    with pytest.raises(ValueError, match="unknown family"):
        bench.main(["--quick", "--family", "cheetah"])
    with pytest.raises(ValueError, match="unknown algo"):
        bench.main(["--quick", "--algos", "maml,mamal"])
    assert cli.main(["bench", "--kinds", "flops"]) == 2  # the CLI prints it, exit code 2
    # a run is named after the family it measured
    assert bench.suite_family(bench.QUICK, ("compile",)) == bench.QUICK.compile_family
    assert bench.suite_family(bench.QUICK, ("sweep", "raw_sim")) == bench.QUICK.family
