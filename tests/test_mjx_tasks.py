"""Task distributions, splits, fixed training sets and input errors of the MJX families.

Nothing here steps physics, so nothing here compiles an MJX step.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmeta import cli, envs
from jaxmeta.envs.mjx_base import TARGET_KINDS, MJXFamily, asset_path, load_model
from tests import mjx_harness as H

MJX_NAMES = [n for n in envs.names() if isinstance(H.family(n), MJXFamily)]
N = 400


def _targets(name, split, seed=0):
    return np.asarray(H.family(name).sample_tasks(jax.random.PRNGKey(seed), N, split).target)


def _rho(x):
    return np.linalg.norm(x, axis=-1)


def _within(lo, hi):
    return lambda v: (lo - 1e-6 <= v) & (v <= hi + 1e-6)


def _abs_within(lo, hi):
    return lambda v: _within(lo, hi)(np.abs(v))


def _rho_within(lo, hi):
    return lambda g: _within(lo, hi)(_rho(g))


# name -> split -> predicate every sampled target must satisfy
REGIONS = {
    "halfcheetah_vel": {"train": _within(0, 2), "ood": _within(-2, 0)},
    "halfcheetah_vel_pearl": {"train": _within(0, 3), "ood": _within(3, 4)},
    "halfcheetah_vel_wide": {"train": _abs_within(0, 2), "ood": _abs_within(2, 3)},
    "ant_vel": {"train": _within(0, 3), "ood": _within(-3, 0)},
    "ant_vel_wide": {"train": _abs_within(0, 3), "ood": _abs_within(3, 4)},
    "ant_vel2d": {"train": _abs_within(0, 3), "ood": _abs_within(3, 4)},
    "humanoid_vel": {"train": _within(0, 1.5), "ood": _within(-1.5, 0)},
    "humanoid_vel_wide": {"train": _abs_within(0, 1.5), "ood": _abs_within(1.5, 2)},
    "ant_goal": {"train": _rho_within(0, 3), "ood": _rho_within(3, 4)},
    "reacher2_target": {"train": _rho_within(0.2, 1.1), "ood": _rho_within(1.1, 1.5)},

    "ant_ring": {"train": _rho_within(3, 7), "ood": _rho_within(7, 9)},
}
# TESP's regions are the same for all four agents (llan-ml/tesp reset_args_config)
for _n in ("reacher4_target", "reacher_sparse", "wheeled_goal", "ant_target"):
    REGIONS[_n] = REGIONS["reacher2_target"]
for _d in ("halfcheetah_dir", "humanoid_dir", "ant_dir", "ant_dir_low_friction",
           "ant_dir_crippled"):
    REGIONS[_d] = {"train": lambda d: np.abs(d) == 1, "ood": lambda d: np.abs(d) == 1}


def test_every_mjx_family_has_a_stated_region():
    assert sorted(REGIONS) == sorted(n for n in MJX_NAMES if not n.endswith("_rand"))
    # families whose target is a world position (drawn in renders) are exactly these
    positional = {n for n in MJX_NAMES if H.family(n).goal_position}
    assert positional == {"ant_goal", "ant_ring", "ant_target", "reacher2_target",
                          "reacher4_target", "reacher_sparse", "wheeled_goal"}


def test_every_mjx_family_names_what_its_target_means():
    """``target_kind`` (``envs.mjx_base.TARGET_KINDS``) matches the targets' shape."""
    sizes = {"direction": (1,), "goal_xy": (2,), "none": (0,)}
    for n in MJX_NAMES:
        fam = H.family(n)
        assert fam.target_kind in TARGET_KINDS, n
        shape = fam.sample_tasks(jax.random.PRNGKey(0), 1).target.shape[1:]
        want = {"ant_vel2d": (2,)}.get(n, (1,)) if fam.target_kind == "velocity" else sizes[
            fam.target_kind]
        assert shape == want, (n, fam.target_kind, shape)
        assert fam.describe()["target"].startswith(fam.target_kind)

# How the positional families draw the radius ρ of a target, per split: "area" = uniform by
# area in the annulus lo < ρ < hi (density 2ρ/(hi² − lo²)), "radius" = ρ ~ U[lo, hi]
# (ant_ring: the behaviour-prior paper draws the radius itself uniformly).
# (``train`` of the fixed-pool families repeats 100 targets drawn like ``test``.)
_AREA_TESP = {"test": ("area", 0.2, 1.1), "ood": ("area", 1.1, 1.5)}
RADIAL = {
    "reacher2_target": _AREA_TESP, "reacher4_target": _AREA_TESP, "reacher_sparse": _AREA_TESP,
    "wheeled_goal": _AREA_TESP, "ant_target": _AREA_TESP,
    "ant_goal": {"test": ("area", 0.0, 3.0), "ood": ("area", 3.0, 4.0)},
    "ant_ring": {"test": ("radius", 3.0, 7.0), "ood": ("radius", 7.0, 9.0)},
}
N_MEDIAN = 4000  # draws per median check (sampling only, cheap)


def _true_median(law, lo, hi):
    """Median radius: ρ² ~ U[lo², hi²] by area, so ρ_½ = sqrt((lo² + hi²)/2); else the
    midpoint."""
    return np.sqrt((lo**2 + hi**2) / 2) if law == "area" else (lo + hi) / 2


def _median_se(law, lo, hi, n):
    """Standard error of the sample median, 1/(2 f(ρ_½) √n), f the density of ρ at ρ_½.
    With n = 4000, 4 of them: 0.024 for the TESP reacher's test split, whose median under a
    radius-uniform law (0.65) would be 0.14 away from the area-uniform one (0.79). Measured
    when written: every split within 1 standard error of its law, and 4 to 38 from the
    other law."""
    m = _true_median(law, lo, hi)
    density = 2 * m / (hi**2 - lo**2) if law == "area" else 1.0 / (hi - lo)
    return 1.0 / (2 * density * np.sqrt(n))


@pytest.mark.parametrize("name", sorted(REGIONS))
def test_splits_draw_from_their_regions(name):
    for split, region in (("train", "train"), ("test", "train"), ("ood", "ood")):
        x = _targets(name, split)
        assert np.all(REGIONS[name][region](x)), f"{name}: {split} targets leave the stated region"
    if name in RADIAL:
        for split, law in RADIAL[name].items():
            rho = _rho(np.asarray(H.family(name).sample_tasks(
                jax.random.PRNGKey(5), N_MEDIAN, split).target))
            m, se = _true_median(*law), _median_se(*law, N_MEDIAN)
            assert abs(np.median(rho) - m) < 4 * se, (
                f"{name} {split}: median radius {np.median(rho):.4f}, law {law} gives {m:.4f}")
    if "_dir" in name:
        assert 0.35 < np.mean(_targets(name, "train") > 0) < 0.65  # both directions occur


def test_pearl_cheetah_has_fixed_train_and_test_pools():
    """PEARL's setting: 100 training and 30 test velocities, fixed by ``task_seed``, apart
    from each other; every draw of a split comes from its pool."""
    fam = H.family("halfcheetah_vel_pearl")
    train, test = (np.asarray(p.target)[:, 0] for p in (fam.train_tasks(), fam.test_tasks()))
    assert (len(set(train)), len(set(test))) == (100, 30)
    assert not set(train) & set(test)
    assert set(_targets("halfcheetah_vel_pearl", "train")[:, 0]) <= set(train)
    got = _targets("halfcheetah_vel_pearl", "test")[:, 0]
    assert set(got) == set(test)  # 400 draws with replacement reach all 30
    once = np.asarray(fam.sample_tasks(jax.random.PRNGKey(3), 30, "test").target)[:, 0]
    assert sorted(once) == sorted(test)  # 30 draws without replacement: the pool itself
    assert fam.describe()["test_pool"] == 30 and fam.horizon == 200
    with pytest.raises(ValueError, match="halfcheetah_vel has no fixed test set"):
        H.family("halfcheetah_vel").test_tasks()


@pytest.mark.parametrize("name", ["reacher2_target", "reacher4_target", "wheeled_goal",
                                  "ant_target", "ant_ring", "reacher_sparse"])
def test_fixed_training_set(name):
    fam = H.family(name)
    pool = np.asarray(fam.train_tasks().target)
    assert pool.shape == (100, 2)
    np.testing.assert_array_equal(pool, np.asarray(envs.make(name).train_tasks().target))
    other = np.asarray(envs.make(name, task_seed=1).train_tasks().target)
    assert not np.allclose(pool, other)
    batch = np.asarray(fam.sample_tasks(jax.random.PRNGKey(3), 20, "train").target)
    assert all(np.any(np.all(pool == t, axis=1)) for t in batch)  # drawn from the pool
    np.testing.assert_array_equal(  # same key, same tasks
        batch, np.asarray(fam.sample_tasks(jax.random.PRNGKey(3), 20, "train").target))
    # test tasks are fresh: none coincides with a training target
    test = np.asarray(fam.sample_tasks(jax.random.PRNGKey(3), 100, "test").target)
    assert not any(np.any(np.all(pool == t, axis=1)) for t in test)
    # TESP's pool keeps its targets apart (llan-ml/tesp reset_wrapper.py, sample_threshold)
    spacing = {"reacher4_target": 0.11, "ant_ring": None, "reacher_sparse": None}.get(name, 0.1)
    assert fam.min_spacing == spacing
    if spacing is not None:
        gaps = np.linalg.norm(pool[:, None] - pool[None], axis=-1) + 9 * np.eye(100)
        assert gaps.min() >= spacing - 1e-6, f"{name}: two training targets {gaps.min()} apart"
        # and the rule binds: an unspaced draw from the same region has closer pairs
        raw = np.asarray(fam.draw_tasks(jax.random.PRNGKey(0), 100, "train").target)
        raw_gaps = np.linalg.norm(raw[:, None] - raw[None], axis=-1) + 9 * np.eye(100)
        assert raw_gaps.min() < spacing
    # asking for the whole pool gives every training task once
    whole = np.asarray(fam.sample_tasks(jax.random.PRNGKey(4), 100, "train").target)
    assert len(np.unique(whole, axis=0)) == 100


def test_ood_dynamics_shifts():
    low = H.family("ant_dir_low_friction").sample_tasks(jax.random.PRNGKey(0), 50, "ood")
    np.testing.assert_allclose(np.asarray(low.dynamics.geom_friction), 0.5)
    np.testing.assert_array_equal(np.asarray(low.dynamics.actuator_gear), 1.0)
    crip = H.family("ant_dir_crippled").sample_tasks(jax.random.PRNGKey(0), 50, "ood")
    gear = np.asarray(crip.dynamics.actuator_gear)
    assert np.all((gear == 0).sum(1) == 2)  # exactly one leg: its hip and ankle
    legs = {tuple(np.flatnonzero(g == 0)) for g in gear}
    assert legs <= {(0, 1), (2, 3), (4, 5), (6, 7)} and len(legs) == 4
    np.testing.assert_array_equal(np.asarray(crip.dynamics.geom_friction), 1.0)
    for name in ("ant_dir", "ant_dir_crippled", "ant_dir_low_friction"):
        train = H.family(name).sample_tasks(jax.random.PRNGKey(0), 20, "train")
        for leaf in jax.tree.leaves(train.dynamics):
            np.testing.assert_array_equal(np.asarray(leaf), 1.0)  # nominal in training
    mixed = H.family("ant_dir").sample_tasks(jax.random.PRNGKey(0), 200, "ood").dynamics
    frac_low = np.mean(np.asarray(mixed.geom_friction)[:, 0, 0] == 0.5)
    assert 0.35 < frac_low < 0.65


@pytest.mark.parametrize("name", ["hopper_rand", "walker_rand"])
def test_randomized_dynamics_ranges(name):
    """rand_param_envs: every mass, inertia component, damping and friction component has
    its own log-uniform exponent (base 1.5, 1.5, 1.3, 1.5)."""
    fam = H.family(name)
    m = fam.mj_model
    tr = fam.sample_tasks(jax.random.PRNGKey(0), 200, "train").dynamics
    ood = fam.sample_tasks(jax.random.PRNGKey(0), 200, "ood").dynamics
    fields = (("body_mass", 1.5, (m.nbody,)), ("body_inertia", 1.5, (m.nbody, 3)),
              ("dof_damping", 1.3, (m.nv,)), ("geom_friction", 1.5, (m.ngeom, 3)))
    for field, base, shape in fields:
        u_tr = np.log(np.asarray(getattr(tr, field))) / np.log(base)
        u_ood = np.log(np.asarray(getattr(ood, field))) / np.log(base)
        assert u_tr.shape == (200, *shape), field
        if field.startswith("body_"):  # the world body is never scaled
            assert np.all(u_tr[:, 0] == 0) and np.all(u_ood[:, 0] == 0)
            u_tr, u_ood = u_tr[:, 1:], u_ood[:, 1:]
        u_tr, u_ood = u_tr.reshape(200, -1), u_ood.reshape(200, -1)
        assert np.all(np.abs(u_tr) <= 3 + 1e-5) and np.abs(u_tr).max() > 2.5
        assert np.all((np.abs(u_ood) >= 3 - 1e-5) & (np.abs(u_ood) <= 4 + 1e-5))
        # independent components: U[−3, 3] has variance 3, and components are uncorrelated
        assert abs(np.var(u_tr) - 3.0) < 0.3, field
        corr = np.corrcoef(u_tr.T)
        assert np.abs(corr[~np.eye(len(corr), dtype=bool)]).max() < 0.3, field
    # inertia is not tied to mass any more
    ratio = np.asarray(tr.body_inertia)[:, 1:, 0] / np.asarray(tr.body_mass)[:, 1:]
    assert np.std(np.log(ratio)) > 1.0
    assert fam.task_feature_size == m.nbody * 4 + m.nv + m.ngeom * 3 + m.nu


def test_wrong_action_shape_raises_at_trace_time():
    fam = H.family("reacher2_target")
    task = jax.tree.map(lambda x: x[0], fam.sample_tasks(jax.random.PRNGKey(0), 1))

    def bad(key):
        state = fam.reset(key, task)
        return fam.step(state, jnp.zeros(fam.action_size + 1), task)

    with pytest.raises(ValueError, match=r"reacher2_target: action must have shape \(2,\)"):
        jax.eval_shape(bad, jax.random.PRNGKey(0))


def test_bad_family_arguments():
    with pytest.raises(ValueError, match="unknown env 'ant_dirr'.*ant_dir"):
        envs.make("ant_dirr")
    with pytest.raises(ValueError, match="ood_shift='icy' is unknown"):
        envs.make("ant_dir", ood_shift="icy")
    with pytest.raises(ValueError, match="num_train_tasks must be a positive integer"):
        envs.make("reacher2_target", num_train_tasks=0)
    with pytest.raises(ValueError, match="no fixed training set"):
        H.family("ant_vel").train_tasks()
    with pytest.raises(ValueError, match="solver='pgs' is unknown; choose one of"):
        load_model(asset_path("reacher2.xml"), solver="pgs")
    with pytest.raises(ValueError, match="iterations must be a positive integer"):
        envs.make("ant_vel", iterations=0)
    fast = envs.make("ant_vel", iterations=1, ls_iterations=4)
    assert (fast.mj_model.opt.iterations, fast.mj_model.opt.ls_iterations) == (1, 4)
    assert H.family("ant_vel").mj_model.opt.iterations == 4


def test_envs_command_lists_every_family(capsys):
    assert cli.main(["envs", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in rows] == envs.names()
    by_name = {r["name"]: r for r in rows}
    assert by_name["reacher4_target"]["obs_size"] == 14
    assert by_name["reacher4_target"]["action_size"] == 4
    assert by_name["ant_ring"]["horizon"] == 200 and by_name["ant_ring"]["dt"] == 0.05
    assert by_name["reacher_sparse"]["horizon"] == 250
    assert cli.main(["envs"]) == 0
    table = capsys.readouterr().out
    assert "wheeled_goal" in table and "100 fixed" in table
