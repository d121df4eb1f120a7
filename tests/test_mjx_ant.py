"""MJX checks for the ant families, including the low-friction and crippled dynamics."""

import pytest

from tests import mjx_checks

globals().update(mjx_checks.define([
    "ant_dir", "ant_dir_low_friction", "ant_dir_crippled", "ant_vel", "ant_vel_wide",
    "ant_vel2d", "ant_goal",
]))


@pytest.mark.parametrize("name", ["ant_dir_low_friction", "ant_dir_crippled"])
def test_dynamics_batch(name):
    mjx_checks.dynamics_differ_and_match(name)
