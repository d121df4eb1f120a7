"""SAC's config: the soft actor-critic, and the off-policy schedule of data collection
and gradient steps that SAC and PEARL share."""

from __future__ import annotations

import dataclasses

from jaxmeta.config import (
    ACTIVATIONS,
    Section,
    check_bool,
    check_choice,
    check_positive,
    check_range,
    check_sizes,
    traced,
)

CRITIC_REWARDS = ("env", "dense")


@dataclasses.dataclass(frozen=True)
class SoftACConfig(Section):
    """Twin-Q soft actor-critic (Haarnoja et al. 2018): MLPs of ``hidden_sizes`` for the
    tanh-Gaussian actor and the two critics, Adam per part, targets by Polyak averaging
    with rate ``tau``; the Bellman target scales rewards by ``reward_scale`` (PEARL's
    knob for the entropy weight). The temperature α starts at ``init_alpha`` and, with
    ``learn_alpha``, is tuned to the target entropy −``target_entropy_scale``·|A|.
    ``critic_reward``: the reward in the Bellman target, ``env`` (the family's) or
    ``dense`` (:meth:`~jaxmeta.envs.base.TaskFamily.dense_reward`, e.g. −distance on
    ``navigation2d_sparse``, as PEARL trains its critic there; policy returns and PEARL's
    context keep the env's reward)."""

    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    gamma: float = traced(0.99)
    tau: float = traced(0.005)
    actor_lr: float = traced(3e-4)
    critic_lr: float = traced(3e-4)
    alpha_lr: float = traced(3e-4)
    reward_scale: float = traced(1.0)
    batch_size: int = 256
    init_alpha: float = 1.0
    learn_alpha: bool = True
    target_entropy_scale: float = 1.0
    critic_reward: str = "env"

    def __post_init__(self):
        self._coerce_tuples()
        check_sizes("hidden_sizes", self.hidden_sizes)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_range("gamma", self.gamma, 0, 1)
        check_range("tau", self.tau, 0, 1, lo_open=True)
        for name in ("actor_lr", "critic_lr", "alpha_lr"):
            check_range(name, getattr(self, name), lo=0)
        check_range("reward_scale", self.reward_scale, lo=0, lo_open=True)
        check_positive("batch_size", self.batch_size)
        check_range("init_alpha", self.init_alpha, lo=0, lo_open=True)
        check_bool("learn_alpha", self.learn_alpha)
        check_range("target_entropy_scale", self.target_entropy_scale)
        check_choice("critic_reward", self.critic_reward, CRITIC_REWARDS)


@dataclasses.dataclass(frozen=True)
class CollectConfig(Section):
    """The off-policy schedule (PEARL's names in brackets). Training uses a fixed set of
    ``num_train_tasks`` tasks drawn once from the family's train split, each with its own
    replay buffer of ``capacity`` transitions. Before the first update every task gets
    ``initial_steps`` [num_initial_steps]; each update then picks ``tasks_per_iteration``
    [num_tasks_sample] of them and collects ``prior_steps`` with z from the prior,
    ``posterior_steps`` with z from the posterior (both also feed the encoder's buffer)
    and ``extra_posterior_steps`` [num_extra_rl_steps_posterior] for the RL buffer only,
    then takes ``train_steps`` [num_train_steps_per_itr] gradient steps, each on
    ``meta_batch_size`` [meta_batch] tasks. Step counts are whole episodes (multiples of
    the horizon). SAC has no latent: its "prior" steps are plain policy steps."""

    num_train_tasks: int = 1
    capacity: int = 100_000
    initial_steps: int = 1000
    tasks_per_iteration: int = 1
    prior_steps: int = 1000
    posterior_steps: int = 0
    extra_posterior_steps: int = 0
    train_steps: int = 1000
    meta_batch_size: int = 1

    def __post_init__(self):
        for name in ("num_train_tasks", "capacity", "tasks_per_iteration", "train_steps",
                     "meta_batch_size"):
            check_positive(name, getattr(self, name))
        for name in ("initial_steps", "prior_steps", "posterior_steps",
                     "extra_posterior_steps"):
            check_range(name, getattr(self, name), lo=0)
        for name in ("tasks_per_iteration", "meta_batch_size"):
            if getattr(self, name) > self.num_train_tasks:
                raise ValueError(f"{name}={getattr(self, name)} is more than "
                                 f"num_train_tasks={self.num_train_tasks}: it picks distinct "
                                 "training tasks")


@dataclasses.dataclass(frozen=True)
class SACConfig(Section):
    """SAC on a task family: one policy for ``collect.num_train_tasks`` fixed tasks (1: a
    single-task learner), evaluated by ``adapt`` as K + 1 episodes of the (deterministic,
    with ``eval_deterministic``) policy, the same each time since SAC does not adapt."""

    sac: SoftACConfig = SoftACConfig()
    collect: CollectConfig = CollectConfig()
    eval_deterministic: bool = True

    def __post_init__(self):
        check_bool("eval_deterministic", self.eval_deterministic)
        if self.sac.batch_size > self.collect.capacity:
            raise ValueError(f"batch_size={self.sac.batch_size} is more than capacity="
                             f"{self.collect.capacity}: a buffer smaller than a batch")
