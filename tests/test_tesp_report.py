"""experiments/tesp/report.py: the best-K aggregation picks seeds by their final return on
the training split only, and the table says which aggregation it shows."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SPEC = importlib.util.spec_from_file_location(
    "tesp_report", Path(__file__).parents[1] / "experiments" / "tesp" / "report.py")
report = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(report)


def method():
    # 2 evaluations x 4 seeds; seeds 1 and 3 are best on D, seed 0 is best on D''
    train = [[-9, -9, -9, -9], [-5.0, -1.0, -4.0, -2.0]]
    ood = [[-9, -9, -9, -9], [-1.0, -8.0, -3.0, -6.0]]
    post = {"train": train, "test": train, "ood": ood}
    return {"iterations": [0, 10], "post": post, "pre": post}


def test_best_k_is_chosen_on_the_training_split():
    m = method()
    np.testing.assert_array_equal(report.chosen_seeds(m, 2), [1, 3])
    assert report.final_stats(m, "ood", best=2) == pytest.approx((-7.0, 1.0))
    assert report.final_stats(m, "ood") == pytest.approx((np.mean([-1, -8, -3, -6]),
                                                          np.std([-1, -8, -3, -6])))
    np.testing.assert_array_equal(report.chosen_seeds(m, 10), [0, 1, 2, 3])


def test_the_table_names_its_aggregation():
    r = {"settings": {"seeds": 4, "iterations": 10, "eval_tasks": 2, "horizon": 5},
         "command": "run.py", "device": "cpu", "jax": "0", "date": "today", "adapt_steps": 3,
         "methods": {"tesp": method()}}
    assert "best 2 of 4 seeds" in report.table({"x_small": r}, best=2)
    assert "over all 4 seeds" in report.table({"x_small": r})


def test_the_table_shows_R_first_and_the_full_return_beside_it():
    m = method()
    # R (distance term only) is the full return plus the action cost: higher
    m["post_R"] = {k: (np.asarray(v) + 0.5).tolist() for k, v in m["post"].items()}
    m["pre_R"] = m["post_R"]
    r = {"settings": {"seeds": 4, "iterations": 10, "eval_tasks": 2, "horizon": 5},
         "command": "run.py", "device": "cpu", "jax": "0", "date": "today", "adapt_steps": 3,
         "methods": {"tesp": m, "maml": method()}}
    text = report.table({"x_small": r})
    assert "distance term only" in text and "full return D / D′ / D″" in text
    tesp_row = next(line for line in text.splitlines() if line.startswith("| TESP"))
    # D: R = mean(-5, -1, -4, -2) + 0.5 = -2.5; full return -3.0 in the last column
    assert tesp_row.startswith("| TESP | -2.5 ± 1.6 (-2.5) |")
    assert tesp_row.endswith("| -3.0 / -3.0 / -4.5 |")
    maml_row = next(line for line in text.splitlines() if line.startswith("| MAML"))
    assert "-3.0 ± 1.6* (-3.0)" in maml_row  # no R recorded: the full return, marked
