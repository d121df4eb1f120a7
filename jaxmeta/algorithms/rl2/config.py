"""RL²'s config: the recurrent agent's sizes, trials, PPO and the critic."""

from __future__ import annotations

import dataclasses

from jaxmeta.config import (
    PolicyConfig,
    PPOConfig,
    Section,
    ValueConfig,
    check_positive,
    check_range,
    traced,
)
from jaxmeta.meta.trial import TrialConfig


@dataclasses.dataclass(frozen=True)
class RL2Config(Section):
    """RL² (Duan et al. 2016) trained with PPO over trials.

    ``policy.hidden_sizes`` are the policy head's layers after the GRU (``gru_size``),
    ``value.hidden_sizes`` the critic head's; ``value.gae_lambda`` and ``gamma`` give the
    advantages over the whole trial (:func:`jaxmeta.meta.trial.trial_gae`); the loss is
    PPO-clip + ``value.coef``·(V − target)² − ``entropy_coef``·H, with gradients clipped
    to global norm ``max_grad_norm``.
    """

    policy: PolicyConfig = PolicyConfig(hidden_sizes=(64,), activation="tanh")
    trial: TrialConfig = TrialConfig()
    ppo: PPOConfig = PPOConfig(lr=7e-4, epochs=4)
    value: ValueConfig = ValueConfig(hidden_sizes=(64,))
    gru_size: int = 64
    gamma: float = traced(0.99)
    entropy_coef: float = traced(0.01)
    max_grad_norm: float = 0.5

    def __post_init__(self):
        check_positive("gru_size", self.gru_size)
        check_range("gamma", self.gamma, 0, 1)
        check_range("entropy_coef", self.entropy_coef, lo=0)
        check_range("max_grad_norm", self.max_grad_norm, lo=0, lo_open=True)
