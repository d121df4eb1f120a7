"""Evolved Policy Gradients' config: the learned loss L_φ, the inner learner it trains, and
the evolution strategy that evolves φ (Houthooft et al. 2018)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from jaxmeta.config import (
    ACTIVATIONS,
    PolicyConfig,
    ReturnsConfig,
    Section,
    check_bool,
    check_choice,
    check_positive,
    check_range,
    check_sizes,
    traced,
)

LOSS_KINDS = ("conv", "linear")
DIRECTIONS = ("future", "past")
INNER_LOSSES = ("learned", "pg")
OPTIMIZERS = ("adam", "sgd")
FITNESS_SHAPING = ("centered_rank", "standardize", "normalize", "raw")


@dataclasses.dataclass(frozen=True)
class LossNetConfig(Section):
    """The learned loss L_φ (:mod:`jaxmeta.algorithms.epg.loss_net`).

    ``kind="conv"``: 1-D temporal convolutions (``conv_channels`` output channels per
    layer, one ``dilations`` entry per layer, ``kernel_size`` taps) over each episode's
    per-step features give a per-step context (``direction="future"``: step t sees steps
    t..t+R−1, R the receptive field, what a return-to-go needs; ``"past"``: t−R+1..t)
    projected to ``context_size``, plus its masked mean over the episode; an MLP of
    ``hidden_sizes`` (``activation``) on [features_t, context_t, episode context] gives the
    loss L_t. ``kind="linear"``: L_t = w·features_t + b (no convolution, no hidden layer).
    ``memory_size``: length of the memory vector m the inner agent learns with θ. Flat names
    ``loss_*``."""

    prefix: ClassVar[str] = "loss_"
    kind: str = "conv"
    conv_channels: tuple[int, ...] = (16, 16)
    kernel_size: int = 3
    dilations: tuple[int, ...] = (1, 2)
    direction: str = "future"
    context_size: int = 16
    hidden_sizes: tuple[int, ...] = (32,)
    activation: str = "tanh"
    memory_size: int = 8

    def __post_init__(self):
        self._coerce_tuples()
        check_choice("loss_kind", self.kind, LOSS_KINDS)
        check_sizes("loss_conv_channels", self.conv_channels)
        check_positive("loss_kernel_size", self.kernel_size)
        check_sizes("loss_dilations", self.dilations)
        if len(self.dilations) != len(self.conv_channels):
            raise ValueError(
                f"loss_dilations must have one entry per convolution layer "
                f"(loss_conv_channels={self.conv_channels!r} has {len(self.conv_channels)}), "
                f"got {self.dilations!r}")
        check_choice("loss_direction", self.direction, DIRECTIONS)
        check_positive("loss_context_size", self.context_size)
        check_sizes("loss_hidden_sizes", self.hidden_sizes, allow_empty=True)
        check_choice("loss_activation", self.activation, ACTIVATIONS)
        check_positive("loss_memory_size", self.memory_size)


@dataclasses.dataclass(frozen=True)
class EPGInnerConfig(Section):
    """One inner learning run: a freshly initialised policy (and the memory) takes
    ``updates`` updates; each collects ``episodes`` episodes of the task with the current
    policy and takes ``epochs`` full-batch steps of ``optimizer`` (rate ``lr``) on the
    inner loss (``loss="learned"``: L_φ (+ pg_coef·L_PG); ``"pg"``: the plain
    policy-gradient loss L_PG alone, the from-scratch baseline with the same schedule).
    Flat names ``inner_*``."""

    prefix: ClassVar[str] = "inner_"
    updates: int = 10
    episodes: int = 4
    epochs: int = 4
    lr: float = traced(1e-2)
    optimizer: str = "adam"
    loss: str = "learned"

    def __post_init__(self):
        check_positive("inner_updates", self.updates)
        check_positive("inner_episodes", self.episodes)
        check_positive("inner_epochs", self.epochs)
        check_range("inner_lr", self.lr, lo=0)
        check_choice("inner_optimizer", self.optimizer, OPTIMIZERS)
        check_choice("inner_loss", self.loss, INNER_LOSSES)


@dataclasses.dataclass(frozen=True)
class ESConfig(Section):
    """The outer loop: evosax's OpenAI-ES on the flattened φ. ``population`` perturbations
    φ + σε per generation (``antithetic``: ±ε pairs), each evaluated by full inner runs on
    ``tasks`` training tasks; the mean takes one ``optimizer`` step (rate ``lr``) along
    the search-gradient estimate of the ``fitness_shaping``-transformed fitness.
    Flat names ``es_*``."""

    prefix: ClassVar[str] = "es_"
    population: int = 16
    tasks: int = 4
    sigma: float = traced(0.05)
    lr: float = traced(1e-2)
    optimizer: str = "adam"
    antithetic: bool = True
    fitness_shaping: str = "centered_rank"

    def __post_init__(self):
        if (not isinstance(self.population, int) or isinstance(self.population, bool)
                or self.population < 2):
            raise ValueError("es_population must be an integer >= 2 (OpenAI-ES estimates its "
                             f"search gradient from several members), got {self.population!r}")
        if self.population % 2:
            why = ("antithetic sampling pairs every +ε with −ε" if self.antithetic
                   else "evosax's Open_ES requires it")
            raise ValueError(f"es_population must be even ({why}), got {self.population}")
        check_positive("es_tasks", self.tasks)
        check_range("es_sigma", self.sigma, lo=0, lo_open=True)
        check_range("es_lr", self.lr, lo=0, lo_open=True)
        check_choice("es_optimizer", self.optimizer, OPTIMIZERS)
        check_bool("es_antithetic", self.antithetic)
        check_choice("es_fitness_shaping", self.fitness_shaping, FITNESS_SHAPING)


@dataclasses.dataclass(frozen=True)
class EPGConfig(Section):
    """Evolved Policy Gradients: an ES (``es``) evolves the parameters φ of a learned loss
    (``loss``) whose gradient trains fresh policies (``policy``) in an inner loop
    (``inner``). ``returns`` gives the advantages of the policy-gradient loss L_PG (the
    ``inner_loss="pg"`` baseline, and the auxiliary term of weight ``pg_coef`` added to
    L_φ). ``eval_episodes``: episodes of the final policy whose mean return is an inner
    run's fitness (and ``adapt``'s last return)."""

    policy: PolicyConfig = PolicyConfig(hidden_sizes=(64, 64))
    loss: LossNetConfig = LossNetConfig()
    inner: EPGInnerConfig = EPGInnerConfig()
    es: ESConfig = ESConfig()
    returns: ReturnsConfig = ReturnsConfig()
    pg_coef: float = traced(0.0)
    eval_episodes: int = 4

    def __post_init__(self):
        check_range("pg_coef", self.pg_coef, lo=0)
        check_positive("eval_episodes", self.eval_episodes)
