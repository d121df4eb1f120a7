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
