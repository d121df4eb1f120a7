"""The C-MuJoCo backend (``physics="mujoco"``): dynamics, vmap, threads, determinism, resume
and bad input. Its agreement with MJX over every control step of 100-step runs is part of
the per-family checks (``mjx_checks.test_tracks_c_mujoco``)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmeta import algorithms, cli, envs
from jaxmeta.envs.cmujoco import CData
from jaxmeta.trainer import TrainOptions, train
from tests.helpers import tiny_config

STEPS = 30


def _rollout(fam, keys, tasks, actions):
    """reset + STEPS steps of ``fam`` over a batch of (key, task), jit-compiled."""

    def run(keys, tasks, actions):
        s0 = jax.vmap(fam.reset)(keys, tasks)

        def body(s, a):
            nxt = jax.vmap(fam.step)(s, a, tasks)
            return nxt, nxt

        return jax.lax.scan(body, s0, actions)[1]

    return jax.device_get(jax.jit(run)(keys, tasks, actions))


def _actions(fam, n, seed=0):
    return jax.random.uniform(jax.random.PRNGKey(seed), (STEPS, n, fam.action_size),
                              minval=-1.0, maxval=1.0)


def test_auto_is_the_c_engine_on_a_cpu_and_is_recorded():
    fam = envs.make("halfcheetah_vel")
    assert jax.default_backend() == "cpu" and fam.physics == "mujoco"
    assert fam.env_spec.overrides["physics"] == "mujoco"
    assert fam.describe()["physics"] == "mujoco"
    assert envs.make("halfcheetah_vel", physics="mjx").c_physics is None


def test_per_task_dynamics_take_effect_and_equal_tasks_stay_equal():
    fam = envs.make("ant_dir_crippled", physics="mujoco", horizon=STEPS)
    nominal = fam.sample_tasks(jax.random.PRNGKey(1), 1, "train")
    crippled = fam.sample_tasks(jax.random.PRNGKey(1), 1, "ood").replace(target=nominal.target)
    pair = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), nominal, crippled)
    same = jax.tree.map(lambda a: jnp.concatenate([a, a]), nominal)
    keys = jnp.concatenate([jax.random.split(jax.random.PRNGKey(2), 1)] * 2)
    a = _actions(fam, 1)
    acts = jnp.concatenate([a, a], axis=1)
    q_diff = _rollout(fam, keys, pair, acts).physics.qpos
    q_same = _rollout(fam, keys, same, acts).physics.qpos
    assert np.abs(q_diff[:, 0] - q_diff[:, 1]).max() > 1e-2, "the crippled leg had no effect"
    np.testing.assert_array_equal(q_same[:, 0], q_same[:, 1])


def test_vmap_over_seeds_and_tasks_equals_single_runs_and_threads_do_not_matter():
    """A [seeds, tasks] vmap of the C backend equals each environment run alone, bit for bit,
    with 1 or 2 threads in the C batch."""
    one = envs.make("halfcheetah_vel", physics="mujoco", horizon=STEPS, threads=1)
    two = envs.make("halfcheetah_vel", physics="mujoco", horizon=STEPS, threads=2)
    tasks = one.sample_tasks(jax.random.PRNGKey(0), 3, "train")
    keys = jax.random.split(jax.random.PRNGKey(1), 6).reshape(2, 3, 2)  # [seeds, tasks]
    acts = _actions(one, 6).reshape(STEPS, 2, 3, one.action_size)

    def nested(fam):
        def run(keys, tasks, acts):  # vmap over seeds of vmap over tasks
            def per_seed(k, a):
                s0 = jax.vmap(fam.reset)(k, tasks)

                def body(s, x):
                    n = jax.vmap(fam.step)(s, x, tasks)
                    return n, (n.reward, n.physics.state)

                return jax.lax.scan(body, s0, a)[1]

            return jax.vmap(per_seed, in_axes=(0, 1))(keys, acts)

        return jax.device_get(jax.jit(run)(keys, tasks, acts))

    r1, s1 = nested(one)
    r2, s2 = nested(two)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(s1, s2)
    for seed in range(2):
        for t in range(3):
            task = jax.tree.map(lambda x, t=t: x[t:t + 1], tasks)
            alone = _rollout(one, keys[seed, t:t + 1], task, acts[:, seed, t:t + 1])
            np.testing.assert_array_equal(r1[seed, :, t], alone.reward[:, 0])
            np.testing.assert_array_equal(s1[seed, :, t], alone.physics.state[:, 0])


def test_state_round_trips_through_the_callback():
    """The state row is MuJoCo's float64 state: stepping twice from a row equals stepping
    from the row the first step returned (same state in, same state out)."""
    fam = envs.make("reacher2_target", physics="mujoco")
    cp = fam.c_physics
    task = fam.sample_tasks(jax.random.PRNGKey(0), 1, "train")
    s = jax.device_get(jax.vmap(fam.reset)(jax.random.split(jax.random.PRNGKey(0), 1), task))
    assert isinstance(s.physics, CData) and s.physics.state.dtype == np.uint32
    u = np.full((1, fam.action_size), 0.3, np.float32)
    a = cp.step_host(s.physics.state, u, ())
    b = cp.step_host(a.state, u, ())
    again = cp.step_host(cp.step_host(s.physics.state, u, ()).state, u, ())
    np.testing.assert_array_equal(b.state, again.state)
    assert np.all(np.isfinite(s.physics.state64()))
    np.testing.assert_array_equal(np.float32(a.state64()[0, 1:1 + fam.mj_model.nq]), a.qpos[0])


def test_differentiating_through_the_c_engine_names_the_backend():
    fam = envs.make("reacher2_target", physics="mujoco")
    task = jax.tree.map(lambda x: x[0], fam.sample_tasks(jax.random.PRNGKey(0), 1, "train"))
    s = fam.reset(jax.random.PRNGKey(0), task)

    def ret(a):
        return fam.step(s, a, task).reward

    with pytest.raises(ValueError, match="physics='mujoco'.*physics='mjx'"):
        jax.grad(ret)(jnp.zeros(fam.action_size))
    # no derivative is asked of the simulator when actions do not depend on the input
    assert jax.grad(lambda x: x * ret(jnp.zeros(fam.action_size)))(1.0) == ret(
        jnp.zeros(fam.action_size))


def test_bad_physics_names_list_the_choices():
    with pytest.raises(ValueError, match=r"physics='bullet' is unknown; choose one of "
                                         r"\['auto', 'mjx', 'mujoco'\]"):
        envs.make("ant_dir", physics="bullet")
    with pytest.raises(ValueError, match="'navigation2d' has no MuJoCo model.*halfcheetah_vel"):
        envs.make("navigation2d", physics="mujoco")
    with pytest.raises(ValueError, match="threads must be a positive int"):
        envs.make("reacher2_target", physics="mujoco", threads=0)

def test_cli_refuses_a_bad_backend_before_compiling(capsys, tmp_path):
    code = cli.main(["train", "--env", "halfcheetah_vel", "--env-arg", "physics=bullet",
                     "--out", str(tmp_path / "run")])
    assert code == 2
    assert "physics='bullet' is unknown; choose one of" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_training_on_the_c_engine_is_deterministic_and_resumes_bit_exactly(tmp_path):
    fam = envs.make("halfcheetah_vel", physics="mujoco", horizon=5)
    learner = algorithms.make("maml", fam, tiny_config("maml", outer="ppo",
                                                       meta_gradient="first_order"))
    opts = dict(progress=False, chunk=1, seeds=2, checkpoint_every=1)
    train(learner, tmp_path / "full", TrainOptions(iterations=3, **opts))
    train(learner, tmp_path / "again", TrainOptions(iterations=3, **opts))
    train(learner, tmp_path / "cut", TrainOptions(iterations=3, **opts), iterations=2)
    train(learner, tmp_path / "cut", TrainOptions(iterations=3, **opts), resume=True)

    def rows(run):
        return [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").open()]

    assert rows("full") == rows("again") == rows("cut")
    assert all(np.isfinite(r["loss"]) for r in rows("full"))
    desc = json.loads((tmp_path / "full" / "config.json").read_text())
    assert desc["env_overrides"]["physics"] == "mujoco"
