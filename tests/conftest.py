import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

# Tests in different files (so, under xdist, different processes) compile the same tiny
# programs; a persistent compilation cache lets the second one load what the first
# compiled. A fresh clone (CI) starts empty; the key covers the HLO, the compile options and
# the jax/jaxlib versions, so a stale entry cannot be served.
jax.config.update("jax_compilation_cache_dir", os.environ.get(
    "JAXMETA_TEST_JAX_CACHE", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax")))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


# --- the reliability summary line ----------------------------------------------------------
# Tests record what they tried with ``record_property("reliability.<what>", n)``; user
# properties travel with the test reports (also from xdist workers), and the line below sums
# those of the tests that passed.
RELIABILITY = ("refused", "accepted", "trained", "nonfinite", "crash_points")


def pytest_terminal_summary(terminalreporter):
    totals = dict.fromkeys(RELIABILITY, 0)
    seen = False
    for report in terminalreporter.stats.get("passed", []):
        for name, value in getattr(report, "user_properties", ()):
            what = name.removeprefix("reliability.")
            if what in totals:
                totals[what] += int(value)
                seen = True
    if seen:
        terminalreporter.write_line(
            f"bad input: {totals['refused']} cases refused cleanly, {totals['accepted']} valid "
            f"ones accepted before compiling, {totals['trained']} trained with finite metrics, "
            f"{totals['nonfinite']} stopped cleanly on a non-finite value; crash points "
            f"survived: {totals['crash_points']}")
