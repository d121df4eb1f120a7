"""The algorithm protocol: a meta-RL method as pure functions.

A method is ``make_<algo>(family, config) -> MetaLearner``:

* ``init(key, hyper=None) -> state``: everything that learns (parameters, optimizer
  states, learned learning rates, the RNG key) and the traced hyperparameters ``hyper``
  (:func:`jaxmeta.config.hyper_of`; ``None`` takes the config's values). Vmapping ``init``
  over keys and hypers gives a batch of seeds × sweep points.
* ``update(state) -> (state, metrics)``: one meta-iteration, a pure function (one XLA
  program under ``jax.jit``; ``vmap`` it over seeds, ``lax.scan`` it over iterations).
* ``adapt(state, task, key, num_steps) -> Adapted``: fast adaptation to one task with
  ``num_steps`` (static) inner updates, returning the adapted parameters and the mean
  return before adaptation and after each step.
* ``act(params, obs, key, task) -> action``: sample from a (possibly adapted) policy.
* ``sample(state, key) -> Sample`` (optional): the sampling half of ``update`` (every
  rollout, incl. the fast-updates; no meta-update), so that the two halves can be timed
  apart and env steps counted (``Sample.env_steps()``).
* ``meta_loss(params, state, sample) -> loss`` (optional): the objective the meta-update
  descends on ``sample``, as a function of the meta-parameters; its negated gradient is
  the method's meta-gradient estimate (checked against finite differences in the tests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
from flax import struct

from jaxmeta.config import Hyper, hyper_of
from jaxmeta.envs.base import TaskFamily
from jaxmeta.rollout import count_env_steps

Array = jax.Array
Params = Any
Metrics = dict[str, Array]


class Adapted(NamedTuple):
    """Result of fast adaptation to one task.

    Attributes:
      params: what ``act`` takes: the adapted policy parameters (and, for methods that
        adapt something else, what they adapted).
      returns: mean undiscounted episode return before adaptation and after each of the
        ``num_steps`` inner updates, shape ``[num_steps + 1]``.
      distance_returns: the same episodes' return without the action cost (TESP's R;
        :func:`jaxmeta.rollout.distance_returns`), or ``None`` when the family's reward
        has no such split.
    """

    params: Params
    returns: Array
    distance_returns: Array | None = None


class Sample(NamedTuple):
    """What one meta-iteration sampled: the meta-batch of tasks and, per task, a batch of
    episodes (leading task axis on both)."""

    tasks: Any
    batches: Any

    def env_steps(self) -> int:
        """Env steps simulated to produce it (see :func:`jaxmeta.rollout.count_env_steps`)."""
        return count_env_steps(self.batches)


@struct.dataclass
class LearnerState:
    """State of a learner.

    Attributes:
      params: meta-parameters, e.g. ``{"policy": θ, "inner": inner-optimizer state}``;
        the inner state holds Meta-SGD's learned rates α (empty for plain SGD).
      opt_state: outer optimizer state (optax; ``()`` for TRPO).
      key: RNG key, split on every iteration.
      iteration: completed meta-iterations, int32 ``()``.
      hyper: the traced hyperparameters (flat name -> float32 ``()``).
    """

    params: Any
    opt_state: Any
    key: Array
    iteration: Array
    hyper: Hyper

    def advance(self, params: Any, opt_state: Any, key: Array) -> LearnerState:
        """The state after one meta-iteration: new parameters, optimizer state and key."""
        return self.replace(params=params, opt_state=opt_state, key=key,
                            iteration=self.iteration + 1)


class MetaLearner(NamedTuple):
    """A meta-RL method as pure functions (see the module docstring).

    ``config`` and ``family`` say what was built; ``name`` is the registry name
    (``algorithms.make`` sets it), so that a run can be rebuilt from its description.
    ``init_env_steps`` is how many env steps ``init`` simulates (off-policy methods fill
    their replay buffers before the first update; 0 for the others).
    """

    init: Callable[..., Any]
    update: Callable[[Any], tuple[Any, Metrics]]
    adapt: Callable[[Any, Any, Array, int], Adapted]
    act: Callable[[Params, Array, Array, Any], Array]
    config: Any
    family: TaskFamily
    sample: Callable[[Any, Array], Sample] | None = None
    meta_loss: Callable[[Params, Any, Sample], Array] | None = None
    name: str = ""
    init_env_steps: int = 0

    def default_hyper(self) -> Hyper:
        """The hyperparameters of ``config`` (what ``init(key)`` uses)."""
        return hyper_of(self.config)


def env_steps_per_update(learner: MetaLearner) -> int | None:
    """Env steps one (single-member) ``update`` simulates, counted from the abstract output
    of ``learner.sample`` (nothing runs); ``None`` when the learner has no ``sample``."""
    if learner.sample is None:
        return None
    state = jax.eval_shape(learner.init, jax.random.PRNGKey(0))
    return jax.eval_shape(learner.sample, state, jax.random.PRNGKey(0)).env_steps()


def check_adapt_steps(num_steps: Any) -> None:
    """Refuses a number of adaptation steps that is not a non-negative Python int."""
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 0:
        raise ValueError(f"adapt_steps must be a non-negative integer, got {num_steps!r}")
