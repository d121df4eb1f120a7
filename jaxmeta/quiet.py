"""Third-party import noise a user can do nothing about, kept out of jaxmeta's output.

``mujoco.mjx`` prints ``Failed to import warp`` and ``Failed to import mujoco_warp`` to
stdout when NVIDIA Warp (an optional GPU backend that jaxmeta does not use) is absent.
:func:`import_mjx` imports it once with those two lines dropped; anything else it prints
is passed through. ``jaxmeta/__init__.py`` imports this module first, which runs it.
"""

from __future__ import annotations

import contextlib
import io
import sys

WARP_LINES = ("Failed to import warp", "Failed to import mujoco_warp")


def import_mjx() -> None:
    """Imports ``mujoco.mjx`` (once) without its two Warp lines on stdout."""
    if "mujoco.mjx" in sys.modules:
        return
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        import mujoco.mjx  # noqa: F401
    for line in out.getvalue().splitlines():
        if not line.startswith(WARP_LINES):
            print(line)


import_mjx()
