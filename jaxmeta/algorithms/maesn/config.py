"""MAESN's config (Gupta et al. 2018): a latent-conditioned policy, per-task latent
distributions over a fixed set of training tasks, and the MAML-style meta-training."""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxmeta.config import (
    InnerConfig,
    PolicyConfig,
    PPOConfig,
    ReturnsConfig,
    SamplingConfig,
    Section,
    TRPOConfig,
    check_bool,
    check_choice,
    check_positive,
    check_range,
    traced,
)
from jaxmeta.meta import estimators, outer

TRAIN_REWARDS = ("dense", "env")
ESTIMATORS = (estimators.FIRST_ORDER, estimators.SECOND_ORDER)


@dataclasses.dataclass(frozen=True)
class MAESNConfig(Section):
    """MAESN: π_θ(a | [s, z]) with z ~ N(μ_i, σ_i) drawn once per episode.

    * ``latent_size`` is the size d of z; ``num_train_tasks`` the size of the fixed set of
      training tasks, each with its own variational parameters ω_i = (μ_i, log σ_i),
      initialised to the prior N(0, I). A meta-iteration takes ``meta_batch_size`` of them.
    * ``inner``: K = ``inner.steps`` fast-updates of ω_i (and of θ with ``adapt_policy``, the
      paper's optional Eq. 5) by VPG, with learned per-parameter rates α under
      ``meta_sgd`` (the paper's α_ω ∘, α_θ ∘). Latent-only adaptation is the default: on
      sparse navigation it is the variant whose adaptation kept improving the sparse return
      (experiments/seed002/maesn).
    * ``kl_coef``: weight of KL(N(μ_i, σ_i) ‖ N(0, I)) on the pre-update ω_i (Eq. 3).
    * ``train_inner``: ``False`` is the paper's LatentSpace baseline: the same policy and
      per-task latents trained without fast-updates (the outer episodes come from ω_i
      itself); it adapts its latent by policy gradient only at test time.
    * ``train_reward``: ``dense`` meta-trains on the family's dense reward
      (:meth:`~jaxmeta.envs.base.TaskFamily.dense_reward`, −distance on sparse navigation),
      as the paper does; ``adapt`` always uses the family's own (sparse) reward.
    * ``meta_gradient`` (``first_order`` | ``second_order``) and ``outer`` (``trpo``, the
      paper's, or ``ppo``) as in MAML.
    """

    policy: PolicyConfig = PolicyConfig(hidden_sizes=(64, 64))
    latent_size: int = 2
    num_train_tasks: int = 50
    sampling: SamplingConfig = SamplingConfig(meta_batch_size=20, inner_episodes=20,
                                              outer_episodes=20, eval_episodes=20)
    returns: ReturnsConfig = ReturnsConfig()
    inner: InnerConfig = InnerConfig(steps=1, lr=0.5, optimizer="meta_sgd")
    adapt_policy: bool = False
    kl_coef: float = traced(1.0)
    train_inner: bool = True
    train_reward: str = "dense"
    meta_gradient: str = "second_order"
    outer: str = "trpo"
    ppo: PPOConfig = PPOConfig()
    trpo: TRPOConfig = TRPOConfig()

    def __post_init__(self):
        if isinstance(self.latent_size, bool) or not isinstance(self.latent_size, int) \
                or self.latent_size < 1:
            raise ValueError(f"latent_size={self.latent_size!r} must be a positive integer: "
                             "MAESN's policy is conditioned on a latent z of that size")
        check_positive("num_train_tasks", self.num_train_tasks)
        if self.sampling.meta_batch_size > self.num_train_tasks:
            raise ValueError(
                f"meta_batch_size={self.sampling.meta_batch_size} must be <= num_train_tasks="
                f"{self.num_train_tasks}: a meta-iteration draws that many distinct training "
                "tasks (each owns its latent distribution)")
        check_bool("adapt_policy", self.adapt_policy)
        check_range("kl_coef", self.kl_coef, lo=0)
        check_bool("train_inner", self.train_inner)
        check_choice("train_reward", self.train_reward, TRAIN_REWARDS)
        object.__setattr__(self, "meta_gradient", estimators.canonical(
            self.meta_gradient, ESTIMATORS))
        check_choice("outer", self.outer, outer.NAMES)


# registry presets (flat names ``algorithms.make`` fixes)
PRESETS: dict[str, dict[str, Any]] = {
    "maesn": {},
    "maesn_latent_space": {"train_inner": False},
}
