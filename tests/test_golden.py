"""Results do not change: every golden entry reproduces bit for bit (tests/golden/)."""

import json

import pytest

from tests.golden.generate import ENTRIES, PATH, run

GOLDEN = json.loads(PATH.read_text())


@pytest.mark.parametrize("name", list(ENTRIES))
def test_reproduces_golden_metrics_bit_for_bit(name):
    want, got = GOLDEN[name], run(name)
    assert len(got["records"]) == len(want["records"])
    for g, w in zip(got["records"], want["records"], strict=True):
        for key, value in w.items():  # metrics added later are allowed, none may change
            assert g.get(key) == value, (name, w["iteration"], w["seed"], key)
    assert got["params_sha256"] == want["params_sha256"], name
    if "eval" in want:
        assert got["eval"] == want["eval"], name
