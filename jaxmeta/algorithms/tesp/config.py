"""TESP's and AdaptSV's configs, the ablation presets V1–V5, and the paper's sizes."""

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
    check_bool,
    check_choice,
    check_positive,
    check_range,
    traced,
)
from jaxmeta.meta import estimators

# TESP §5.1 and its supplement; shared by TESP and AdaptSV (CPU-sized networks)
POLICY = PolicyConfig(hidden_sizes=(64, 64))
SAMPLING = SamplingConfig(inner_episodes=32, outer_episodes=32, eval_episodes=32)
RETURNS = ReturnsConfig(gae_lambda=0.97)
INNER = InnerConfig(steps=3, lr=0.001, optimizer="meta_sgd")  # K = 3, learned rates α
PPO = PPOConfig(clip=0.15)
ESTIMATORS = (estimators.FIRST_ORDER, estimators.SECOND_ORDER)
# the flat names TESP's first configs used
LEGACY = {"fast_updates": "inner_steps", "outer_lr": "ppo_lr",
          "inner_lr_mode": "inner_optimizer", "adapt": None}
LEGACY_VALUES = {"inner_lr_mode": {"per_parameter": "meta_sgd", "fixed": "sgd"}}


def _check_estimator(cfg) -> None:
    if cfg.meta_gradient == estimators.DICE:
        raise ValueError("meta_gradient='dice' is not available for TESP/AdaptSV: its score "
                         "term needs an outer surrogate that estimates the return, and Eq. 10 "
                         "(PPO on normalised advantages + η‖h‖²) does not; choose "
                         "first_order or second_order")
    object.__setattr__(cfg, "meta_gradient", estimators.canonical(cfg.meta_gradient,
                                                                  ESTIMATORS))


@dataclasses.dataclass(frozen=True)
class AdaptSVConfig(Section):
    """AdaptSV (TESP §5, the MAESN-like baseline): a shared policy π(a | [s, z]) whose task
    variable z ∈ R^d (``embedding_size``) is fast-updated from a meta-learned start."""

    policy: PolicyConfig = POLICY
    embedding_size: int = 8  # d
    sampling: SamplingConfig = SAMPLING
    returns: ReturnsConfig = RETURNS
    inner: InnerConfig = INNER
    meta_gradient: str = "first_order"  # first_order | second_order
    eta: float = traced(0.01)  # η of Eq. 10
    ppo: PPOConfig = PPO

    LEGACY = {**LEGACY, "gru_size": None, "adapt_policy": None, "buffer": None,
              "buffer_size": None}
    LEGACY_VALUES = LEGACY_VALUES

    def __post_init__(self):
        check_positive("embedding_size", self.embedding_size)
        check_range("eta", self.eta, lo=0)
        _check_estimator(self)


@dataclasses.dataclass(frozen=True)
class TESPConfig(Section):
    """TESP (Lan et al. 2019). Defaults are small (CPU-sized networks) with the paper's
    hyper-parameters; :func:`paper_config` gives the supplement's sizes.

    ``sampling.inner_episodes`` is N (episodes per warm-up and per fast-update),
    ``buffer_size`` M, ``inner.steps`` K.
    """

    policy: PolicyConfig = POLICY
    gru_size: int = 64
    embedding_size: int = 8  # d
    sampling: SamplingConfig = SAMPLING
    returns: ReturnsConfig = RETURNS
    inner: InnerConfig = INNER
    adapt_policy: bool = False  # V2: fast-update θ_policy too
    meta_gradient: str = "first_order"  # first_order | second_order
    buffer: str = "best"  # best (S_M) | all (V1)
    buffer_size: int = 16  # M
    eta: float = traced(0.01)  # η of Eq. 10 (V3: 0)
    ppo: PPOConfig = PPO

    LEGACY = LEGACY
    LEGACY_VALUES = LEGACY_VALUES

    def __post_init__(self):
        check_positive("gru_size", self.gru_size)
        check_positive("embedding_size", self.embedding_size)
        check_positive("buffer_size", self.buffer_size)
        check_bool("adapt_policy", self.adapt_policy)
        check_choice("buffer", self.buffer, ("best", "all"))
        check_range("eta", self.eta, lo=0)
        _check_estimator(self)
        n = self.sampling.inner_episodes
        if self.buffer == "best" and self.buffer_size > n:
            raise ValueError(
                f"buffer_size={self.buffer_size} must be <= inner_episodes={n}: the buffer "
                "keeps the best M of the N warm-up episodes (M < N in TESP Eq. 4)")

    @property
    def buffer_capacity(self) -> int:
        """Slots of the fixed-size buffer: M, or every episode of one adaptation (V1)."""
        if self.buffer == "all":
            return self.sampling.inner_episodes * (self.inner.steps + 1)
        return self.buffer_size


# Ablations (TESP §5.3): flat-name fields each preset fixes (``algorithms.make`` applies them
# and refuses a config that asks for another value).
PRESETS: dict[str, dict[str, Any]] = {
    "tesp": {},
    "tesp_v1": {"buffer": "all"},  # h is the mean over every episode seen
    "tesp_v2": {"adapt_policy": True},  # θ_policy is fast-updated too, with its own rates
    "tesp_v3": {"eta": 0.0},  # no η‖h‖² regulariser
    "tesp_v4": {"inner_optimizer": "sgd", "inner_lr": 0.0},  # the encoder never moves
    "tesp_v5": {"inner_optimizer": "sgd"},  # one constant rate instead of learned α
}


def paper_config(family: str = "reacher2_target") -> TESPConfig:
    """The TESP supplement's settings: horizon-200 tasks, 20 tasks × 32 episodes per
    rollout (~100k steps per meta-update with warm-up, K = 3 and the post-adaptation
    rollout), M = 16, GRU 256, Adam 3e-4, PPO clip 0.15, γ = 0.99, λ = 0.97; policy
    [256, 256] with d = 8 (2-link reacher, wheeled robot), [512, 512] with d = 16 (4-link
    reacher) or d = 32 (ant)."""
    sizes = {"reacher4_target": ((512, 512), 16), "ant_target": ((512, 512), 32)}
    hidden, d = sizes.get(family, ((256, 256), 8))
    return TESPConfig(policy=PolicyConfig(hidden_sizes=hidden), gru_size=256, embedding_size=d,
                      sampling=SamplingConfig(meta_batch_size=20, inner_episodes=32,
                                              outer_episodes=32, eval_episodes=32),
                      buffer_size=16, ppo=PPOConfig(lr=3e-4, clip=0.15))
