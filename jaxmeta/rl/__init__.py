"""Reinforcement-learning maths shared by every method.

* :mod:`~jaxmeta.rl.returns`: discounted returns, GAE, the linear feature baseline,
  normalisation;
* :mod:`~jaxmeta.rl.losses`: VPG, PPO-clip and TRPO surrogate losses;
* :mod:`~jaxmeta.rl.trpo`: conjugate gradient and the TRPO step.

Everything is written for one unbatched stream (time on axis 0) and vmapped by the caller.
"""

from jaxmeta.rl.losses import masked_mean, ppo_clip_loss, surrogate_loss, vpg_loss
from jaxmeta.rl.returns import (
    discounted_returns,
    fit_linear_baseline,
    gae_advantages,
    linear_baseline_features,
    normalize,
)
from jaxmeta.rl.trpo import TRPOInfo, conjugate_gradient, trpo_step

__all__ = ["TRPOInfo", "conjugate_gradient", "discounted_returns", "fit_linear_baseline",
           "gae_advantages", "linear_baseline_features", "masked_mean", "normalize",
           "ppo_clip_loss", "surrogate_loss", "trpo_step", "vpg_loss"]
