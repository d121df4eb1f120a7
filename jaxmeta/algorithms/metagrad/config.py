"""Meta-gradient RL's config: the actor-critic that learns θ, and the return parameters
η = (γ, λ) it meta-learns online (Xu, van Hasselt, Silver 2018)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from jaxmeta.config import (
    ACTIVATIONS,
    PolicyConfig,
    Section,
    check_bool,
    check_choice,
    check_positive,
    check_range,
    check_sizes,
    traced,
)

AC_OPTIMIZERS = ("sgd", "adam", "rmsprop")
LEARN = ("gamma_lambda", "gamma", "lambda", "none")


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig(Section):
    """The inner learner: one A2C step per batch, θ' = θ + f(τ, θ, η), with optimizer
    ``optimizer`` at rate ``lr`` on  L = L_pg + value_coef·L_v − entropy_coef·H  (the
    advantages G^η − v are normalised per task with ``normalize_advantages``). A value MLP
    of ``value_hidden_sizes`` gives v. ``tasks`` tasks × ``episodes`` episodes make a batch
    τ; ``eval_episodes`` episodes measure a return in ``adapt``. Flat names ``ac_*``."""

    prefix: ClassVar[str] = "ac_"
    lr: float = traced(1e-3)
    optimizer: str = "adam"
    value_coef: float = traced(0.5)
    entropy_coef: float = traced(0.0)
    normalize_advantages: bool = True
    value_hidden_sizes: tuple[int, ...] = (64, 64)
    value_activation: str = "tanh"
    tasks: int = 10
    episodes: int = 2
    eval_episodes: int = 10

    def __post_init__(self):
        self._coerce_tuples()
        check_range("ac_lr", self.lr, lo=0, lo_open=True)
        check_choice("ac_optimizer", self.optimizer, AC_OPTIMIZERS)
        check_range("ac_value_coef", self.value_coef, lo=0)
        check_range("ac_entropy_coef", self.entropy_coef, lo=0)
        check_bool("ac_normalize_advantages", self.normalize_advantages)
        check_sizes("ac_value_hidden_sizes", self.value_hidden_sizes, allow_empty=True)
        check_choice("ac_value_activation", self.value_activation, ACTIVATIONS)
        for name in ("tasks", "episodes", "eval_episodes"):
            check_positive(f"ac_{name}", getattr(self, name))


@dataclasses.dataclass(frozen=True)
class EtaConfig(Section):
    """The return parameters η = (γ, λ) of the inner update's λ-return and how they are
    meta-learned. ``init_gamma`` and ``init_lambda`` are their initial values; ``learn`` picks
    which move (``none``: the fixed-η baseline at the same budget). Learned ones are
    parametrised as σ(logit), so they stay in (0, 1) and must start there. The
    meta-objective is the policy-gradient objective of the updated θ' on the next batch,
    with the fixed reference (``ref_gamma``, ``ref_lambda``) = η̄; η takes Adam steps of
    rate ``lr`` (β). With ``conditioned``, the policy and the value see [s, γ, λ] (the
    paper's η-conditioned agent; the meta-objective conditions them on η̄). Flat names
    ``eta_*``."""

    prefix: ClassVar[str] = "eta_"
    init_gamma: float = traced(0.99)
    init_lambda: float = traced(0.95)
    learn: str = "gamma_lambda"
    ref_gamma: float = traced(0.99)
    ref_lambda: float = traced(1.0)
    lr: float = traced(1e-3)
    conditioned: bool = False

    def __post_init__(self):
        check_choice("eta_learn", self.learn, LEARN)
        for name in ("gamma", "lambda"):
            value = getattr(self, f"init_{name}")
            if name in self.learn:  # σ(logit) reaches neither end
                check_range(f"eta_init_{name}", value, 0, 1, lo_open=True, hi_open=True)
            else:
                check_range(f"eta_init_{name}", value, 0, 1, lo_open=name == "gamma")
        check_range("eta_ref_gamma", self.ref_gamma, 0, 1, lo_open=True)
        check_range("eta_ref_lambda", self.ref_lambda, 0, 1)
        check_range("eta_lr", self.lr, lo=0)
        check_bool("eta_conditioned", self.conditioned)


@dataclasses.dataclass(frozen=True)
class MetaGradConfig(Section):
    """Meta-gradient RL: an A2C learner (``ac``) whose return parameters (``eta``) are
    meta-learned online through its own updates. ``observe_task``: the policy and value
    also see the task's features (a task-aware multi-task agent); otherwise they are blind
    to it. On a multi-task family, η is shared across tasks."""

    policy: PolicyConfig = PolicyConfig(hidden_sizes=(64, 64))
    ac: ActorCriticConfig = ActorCriticConfig()
    eta: EtaConfig = EtaConfig()
    observe_task: bool = False

    def __post_init__(self):
        check_bool("observe_task", self.observe_task)
