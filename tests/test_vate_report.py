"""experiments/vate/report.py and belief.py: the table's numbers on a hand-made result, the
figures are written, and the belief picture's helpers (grid orientation, path, member,
task) on hand inputs. No training."""

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

ROOT = Path(__file__).parents[1] / "experiments" / "vate"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"vate_{name}", ROOT / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


report = _load("report")
belief = _load("belief")


def method(final):
    # 2 evaluations x 2 seeds x 3 episodes; the first evaluation is flat
    return {"iterations": [0, 10], "returns": [[[-1.5] * 3] * 2, final],
            "train_pre_return": [[0.0, 0.0]], "train_post_return": [[0.0, 0.0]],
            "wall_seconds": 120.0, "env_steps_per_iteration": 1440, "run_dir": "r",
            "config": {}, "command": "run.py"}


def result():
    return {"family": "gridworld", "scale": "tiny",
            "settings": {"iterations": 10, "eval_every": 10, "eval_tasks": 3, "seeds": 2,
                         "episodes": 3, "meta_batch_size": 16},
            "split": "test", "physics": "pure JAX", "device": "cpu", "jax": "0",
            "date": "today", "commands": ["python experiments/vate/run.py"],
            "bayes_optimal": [4.0, 11.0, 11.0], "oracle": [11.0, 11.0, 11.0],
            "methods": {"rl2": method([[1.0, 2.0, 3.0], [3.0, 6.0, 5.0]]),
                        "vate": method([[2.0, 8.0, 8.0], [4.0, 10.0, 10.0]])}}


def test_final_stats_and_env_steps():
    r = result()
    mean, std = report.final_stats(r["methods"]["rl2"])
    np.testing.assert_allclose(mean, [2.0, 4.0, 4.0])
    np.testing.assert_allclose(std, [1.0, 2.0, 1.0])
    assert report.gain_stats(r["methods"]["vate"]) == pytest.approx((6.0, 0.0))
    # 1440 env steps per update over 2 seeds: 720 per seed
    np.testing.assert_allclose(report.env_steps(r, r["methods"]["rl2"]), [0.0, 7200.0])


def test_report_writes_figure_and_table(tmp_path):
    path = tmp_path / "gridworld_tiny.json"
    path.write_text(json.dumps(result()))
    report.main(["--results", str(path)])
    assert (tmp_path / "fig_gridworld_tiny.png").stat().st_size > 0
    assert not (tmp_path / "ablations_gridworld_tiny.png").exists()  # no ablation here
    md = (tmp_path / "results_gridworld_tiny.md").read_text()
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in md.splitlines() if line.startswith("| ") and "---" not in line}
    assert rows["RL²"] == ["2.00 ± 1.00", "4.00 ± 2.00", "4.00 ± 1.00", "+2.00 ± 1.00",
                           "2.0", "7,200"]
    assert rows["VATE"][:4] == ["3.00 ± 1.00", "9.00 ± 1.00", "9.00 ± 1.00", "+6.00 ± 0.00"]
    assert rows["Bayes-optimal (exact)"] == ["4.00", "11.00", "11.00", "+7.00", "—", "—"]
    assert rows["oracle (exact)"][:4] == ["11.00", "11.00", "11.00", "+0.00"]


def test_report_without_references_and_with_ablations(tmp_path):
    r = result()
    del r["bayes_optimal"], r["oracle"]
    r["methods"]["varibad"] = method([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    path = tmp_path / "halfcheetah_vel_tiny.json"
    path.write_text(json.dumps(r))
    report.main(["--results", str(path), "--x", "updates"])
    assert (tmp_path / "ablations_halfcheetah_vel_tiny.png").exists()
    md = (tmp_path / "results_halfcheetah_vel_tiny.md").read_text()
    assert "Bayes" not in md and "| variBAD |" in md


def test_grid_image_puts_cell_00_bottom_left():
    size = 5
    cells = np.asarray([(i // size, i % size) for i in range(size * size)])  # family.cells()
    values = np.zeros(size * size)
    values[cells.tolist().index([3, 1])] = 1.0  # x = 3, y = 1
    img = belief.grid_image(values, size)
    # imshow(origin="lower"): row = y from the bottom, column = x
    assert img[1, 3] == 1.0 and img.sum() == 1.0
    np.testing.assert_array_equal(belief.grid_image(np.arange(4), 2), [[0, 2], [1, 3]])


def test_episode_path_and_member_params():
    cells = np.asarray([[0, 0], [0, 1], [1, 1], [2, 1]])
    np.testing.assert_array_equal(belief.episode_path(cells, 0), [[0, 0]])
    np.testing.assert_array_equal(belief.episode_path(cells, 2), cells[:3])
    states = SimpleNamespace(params={"agent": {"w": jnp.arange(6.0).reshape(3, 2)}})
    np.testing.assert_array_equal(belief.member_params(states, 2)["agent"]["w"], [4.0, 5.0])
    with pytest.raises(ValueError, match="member"):
        belief.member_params(states, 3)


def test_draw_and_checks(tmp_path):
    from jaxmeta import envs

    family = envs.make("gridworld")
    task = belief.pick_task(family, 0, goal=(4, 3))
    np.testing.assert_array_equal(task.goal, [4, 3])
    assert belief.pick_task(family, 0).goal.shape == (2,)
    e, t = 3, 15
    path = np.zeros((e, t, 2), int)
    path[:, 1:, 0] = np.minimum(np.arange(1, t), 4)
    bt = belief.BeliefTrial(goal=np.asarray([4, 3]), cells=path, next_cells=path,
                            belief=np.random.default_rng(0).random((e, t, 25)),
                            returns=np.asarray([-1.5, 0.5, 1.0]))
    out = tmp_path / "b.png"
    belief.draw(bt, 5, out, "title", "P(goal)")
    assert out.stat().st_size > 0
    learner = SimpleNamespace(name="rl2", family=family)
    with pytest.raises(ValueError, match="no decoder"):
        belief.check_belief_run(learner, {"gru": {}})


def test_belief_trial_on_an_untrained_vate():
    from jaxmeta import algorithms, envs

    family = envs.make("gridworld")
    cfg = algorithms.config_with("vate", gru_size=8, latent_size=2, trial_episodes=3,
                                 reward_likelihood="bernoulli",
                                 reward_decoder_input="next_state")
    learner = algorithms.make("vate", family, cfg)
    params = learner.init(jax.random.PRNGKey(0)).params
    belief.check_belief_run(learner, params)
    bt = belief.belief_trial(learner, params, belief.pick_task(family, 0, (4, 4)),
                             jax.random.PRNGKey(1))
    assert bt.cells.shape == (3, 15, 2) and bt.belief.shape == (3, 15, 25)
    np.testing.assert_array_equal(bt.cells[:, 0], 0)  # every episode starts at (0, 0)
    np.testing.assert_array_equal(bt.next_cells[:, :-1], bt.cells[:, 1:])
    assert np.all((bt.belief >= 0) & (bt.belief <= 1)) and bt.returns.shape == (3,)
