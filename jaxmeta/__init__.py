"""jaxmeta: JAX-native, vectorized meta-reinforcement learning.

The user-facing names::

    import jaxmeta
    family = jaxmeta.envs.make("navigation2d")                   # a task family
    learner = jaxmeta.algorithms.make("maml", family, jaxmeta.MAMLConfig())
    states, rows = jaxmeta.train(learner, "runs/x", iterations=50, seeds=4)
    jaxmeta.evaluate(learner, states, jax.random.PRNGKey(0), split="test")

Modules: :mod:`~jaxmeta.envs` (task families), :mod:`~jaxmeta.algorithms` (methods and
their registry), :mod:`~jaxmeta.meta` (the pieces methods are wired from),
:mod:`~jaxmeta.config` (nested configs), :mod:`~jaxmeta.trainer`,
:mod:`~jaxmeta.evaluation`, :mod:`~jaxmeta.bench`.
"""

import ctypes.util as _ctypes_util
import os as _os
import sys as _sys

# MuJoCo picks its OpenGL backend when first imported: headless EGL on Linux without a
# display, for `jaxmeta video` (a MUJOCO_GL the user set wins; osmesa is the fallback).
# Only where libEGL exists: with MUJOCO_GL=egl and no libEGL, `import mujoco` itself fails.
if (_sys.platform.startswith("linux") and not _os.environ.get("DISPLAY")
        and _ctypes_util.find_library("EGL")):
    _os.environ.setdefault("MUJOCO_GL", "egl")

# first: imports mujoco.mjx without its "Failed to import warp" lines (see jaxmeta.quiet)
import jaxmeta.quiet  # noqa: F401  isort: skip
from jaxmeta import algorithms, envs
from jaxmeta.algorithms import AdaptSVConfig, MAMLConfig, MultiTaskConfig, TESPConfig
from jaxmeta.config import (
    InnerConfig,
    PolicyConfig,
    PPOConfig,
    ReturnsConfig,
    SamplingConfig,
    TRPOConfig,
    ValueConfig,
)
from jaxmeta.evaluation import evaluate, evaluate_run, load_run
from jaxmeta.protocol import Adapted, LearnerState, MetaLearner
from jaxmeta.trainer import TrainOptions, train

__version__ = "0.2.0"

__all__ = ["AdaptSVConfig", "Adapted", "InnerConfig", "LearnerState", "MAMLConfig",
           "MetaLearner", "MultiTaskConfig", "PPOConfig", "PolicyConfig", "ReturnsConfig",
           "SamplingConfig", "TESPConfig", "TRPOConfig", "TrainOptions", "ValueConfig",
           "algorithms", "envs", "evaluate", "evaluate_run", "load_run", "train"]
