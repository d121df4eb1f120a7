"""Reward and termination rules of the ant families against MAML-RL's reference
(cbfinn/maml_rl, ``rllab/envs/mujoco/ant_env_rand.py`` and ``ant_env_rand_direc.py``),
evaluated on hand-built states: nothing here compiles a physics step."""

import jax.numpy as jnp
import numpy as np
import pytest
from mujoco import mjx

from jaxmeta import envs
from jaxmeta.envs.mjx_base import MJXTask
from tests import mjx_harness as H


def state(fam, x=0.0, z=0.55, contact=0.0):
    data = mjx.make_data(fam.model)
    qpos = np.asarray(fam.qpos0).copy()
    qpos[0], qpos[2] = x, z
    data = data.replace(qpos=jnp.asarray(qpos))
    forces = jnp.full_like(data._impl.cfrc_ext, contact)
    return data.replace(_impl=data._impl.replace(cfrc_ext=forces))


def task(fam, target):
    return MJXTask(target=jnp.asarray([target], jnp.float32), dynamics=None)


@pytest.mark.parametrize("name, bonus", [("ant_vel", 1.0), ("ant_dir", 0.0)])
def test_maml_ant_reward_and_height_rule(name, bonus):
    fam = H.family(name)
    ctrl = jnp.full((8,), 0.5)
    before, after = state(fam, x=0.0), state(fam, x=0.1, contact=3.0)
    v = 0.1 / fam.dt
    # the reference: forward term, − 0.5e-2 ‖a‖² − 0.5e-3 ‖clip(cfrc_ext, −1, 1)‖² + 0.05
    forward = -abs(v - 1.5) if name == "ant_vel" else 1.0 * v
    nbody = fam.mj_model.nbody
    want = forward + bonus - 0.005 * 8 * 0.25 - 5e-4 * nbody * 6 * 1.0 + 0.05
    target = 1.5 if name == "ant_vel" else 1.0
    got = float(fam.reward(before, after, ctrl, task(fam, target)))
    assert got == pytest.approx(want, rel=1e-5)
    # notdone = 0.2 <= z <= 1.0
    for z, ends in [(0.1, 1.0), (0.1999, 1.0), (0.2, 0.0), (0.55, 0.0), (1.0, 0.0),
                    (1.0001, 1.0), (1.5, 1.0)]:
        assert float(fam.terminated(state(fam, z=z), task(fam, target))) == ends, (name, z)


def test_model_based_variants_keep_no_alive_bonus_and_no_height_rule():
    fam = H.family("ant_vel_wide")
    assert (fam.alive_bonus, fam.healthy_z) == (0.0, None)
    assert float(fam.terminated(state(fam, z=0.05), task(fam, 1.0))) == 0.0


def test_contact_cost_flag_drops_the_contact_term():
    """Seed 004, footnote 4: ant tasks without the contact cost."""
    with_cost, without = H.family("ant_dir"), envs.make("ant_dir", contact_cost=False)
    assert without.contact_forces is False  # no rne_postconstraint to pay for
    ctrl = jnp.zeros((8,))
    calm, pushed = state(with_cost, x=0.1), state(with_cost, x=0.1, contact=2.0)
    before = state(with_cost)
    t = task(with_cost, -1.0)
    gap = float(with_cost.reward(before, calm, ctrl, t) - with_cost.reward(before, pushed, ctrl, t))
    assert gap == pytest.approx(5e-4 * with_cost.mj_model.nbody * 6, rel=1e-5)  # clipped at 1
    assert float(without.reward(before, calm, ctrl, t)) == float(without.reward(before, pushed,
                                                                                 ctrl, t))
    assert float(without.reward(before, calm, ctrl, t)) == float(with_cost.reward(before, calm,
                                                                                  ctrl, t))
    with pytest.raises(ValueError, match="contact_cost must be true or false"):
        envs.make("ant_vel", contact_cost="no")


def test_half_cheetah_loads_without_the_deprecated_settotalmass(tmp_path, monkeypatch):
    """The model equals what MuJoCo's compiler makes of brax's file, field for field, and
    loading it writes no warning (MUJOCO_LOG.TXT)."""
    import mujoco

    from jaxmeta.envs.mjx_base import asset_path, load_model

    monkeypatch.chdir(tmp_path)
    ours = load_model(asset_path("half_cheetah.xml"))
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
    ref = mujoco.MjModel.from_xml_path(asset_path("half_cheetah.xml"))  # warns: the reference
    ref.opt.solver, ref.opt.iterations = ours.opt.solver, ours.opt.iterations
    ref.opt.ls_iterations, ref.opt.disableflags = ours.opt.ls_iterations, ours.opt.disableflags
    assert ours.body_mass.sum() == pytest.approx(14.0)
    for field in dir(ref):
        want = getattr(ref, field, None)
        if isinstance(want, np.ndarray):
            np.testing.assert_array_equal(getattr(ours, field), want, err_msg=field)


def test_the_cli_prints_no_third_party_noise(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "jaxmeta", "envs"], capture_output=True,
                         text=True, cwd=tmp_path, check=True)
    assert "warp" not in out.stdout + out.stderr
    assert out.stdout.startswith("name ")


def test_only_families_that_split_their_reward_report_r():
    """R (the distance term only) exists where the reward exposes its action cost."""
    from jaxmeta.rollout import Trajectory, distance_returns, splits_action_cost

    reacher, nav = H.family("reacher2_target"), envs.make("navigation2d")
    assert splits_action_cost(reacher) and not splits_action_cost(nav)
    action = jnp.full((3, reacher.action_size), 0.5)
    traj = Trajectory(obs=None, action=action, reward=jnp.asarray([-1.0, -2.0, -3.0]),
                      done=jnp.zeros(3), mask=jnp.asarray([1.0, 1.0, 0.0]), logp=None)
    want = -3.0 + 2 * float(reacher.action_cost_term(action[0]))
    assert float(distance_returns(reacher, traj)) == pytest.approx(want, rel=1e-6)
    assert distance_returns(nav, traj) is None
