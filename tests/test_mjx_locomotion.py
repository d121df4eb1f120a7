"""MJX checks (C-MuJoCo tracking, reward equations, API) for cheetah/humanoid/hopper/walker."""

import pytest

from tests import mjx_checks

globals().update(mjx_checks.define([
    "halfcheetah_vel", "halfcheetah_vel_wide", "halfcheetah_dir",
    "humanoid_dir", "humanoid_vel", "humanoid_vel_wide",
    "hopper_rand", "walker_rand",
]))


@pytest.mark.parametrize("name", ["hopper_rand", "walker_rand"])
def test_dynamics_batch(name):
    mjx_checks.dynamics_differ_and_match(name)
