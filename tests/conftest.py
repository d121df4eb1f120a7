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
