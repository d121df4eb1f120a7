"""The pieces every meta-learner is wired from.

* :mod:`~jaxmeta.meta.policy`: a policy plus how it sees its context (blind, oracle,
  embedding-conditioned).
* :mod:`~jaxmeta.meta.sampling`: the meta-batch of tasks, advantages, and
  :class:`~jaxmeta.meta.sampling.PGAdaptation` (the K-step fast-adaptation scan with no
  gradient, and its differentiable replay).
* :mod:`~jaxmeta.meta.replay`: re-running fast-updates from stored data under a gradient.
* :mod:`~jaxmeta.meta.estimators`: ``first_order`` | ``second_order`` | ``dice``.
* :mod:`~jaxmeta.meta.outer`: outer steps as values, ``ppo(optimizer, epochs, clip)`` and
  ``trpo(max_kl, ...)``.
* :mod:`~jaxmeta.meta.inner`: inner optimizers (optax: ``sgd``, ``meta_sgd``) and the
  fast-update step.
"""
