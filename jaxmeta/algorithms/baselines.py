"""Baselines of the MAML paper's 2D-navigation comparison (Finn et al. 2017, Fig. 2).

All three are fine-tuned at test time with the *same* inner VPG steps as MAML (the
``inner`` section, ``sampling.inner_episodes``):

* ``pretrained``: one policy trained on all training tasks jointly (multi-task PPO with
  a learned value critic, GAE λ = ``value.gae_lambda``), blind to the task.
* ``random_init``: no training; fine-tuning starts from a random initialisation.
* ``oracle``: the same multi-task PPO, but the policy and critic also observe
  ``family.task_features(task)`` (the goal), an upper reference.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from jaxmeta import config as config_lib
from jaxmeta import rl
from jaxmeta.config import (
    InnerConfig,
    PolicyConfig,
    PPOConfig,
    ReturnsConfig,
    SamplingConfig,
    Section,
    ValueConfig,
)
from jaxmeta.distributed import shard_tasks
from jaxmeta.envs.base import TaskFamily
from jaxmeta.meta import inner as inner_lib
from jaxmeta.meta import policy
from jaxmeta.meta.outer import Objective, ppo
from jaxmeta.meta.sampling import PGAdaptation, gae_from_values, meta_batch
from jaxmeta.nets import value_network
from jaxmeta.protocol import Adapted, LearnerState, MetaLearner, Sample, check_adapt_steps
from jaxmeta.rollout import episode_returns, rollout

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class MultiTaskConfig(Section):
    """Multi-task PPO (``ppo``, ``value``) on ``sampling.meta_batch_size`` tasks ×
    ``sampling.inner_episodes`` episodes per iteration, fine-tuned at test time with the
    ``inner`` steps."""

    policy: PolicyConfig = PolicyConfig()
    sampling: SamplingConfig = SamplingConfig()
    returns: ReturnsConfig = ReturnsConfig()
    inner: InnerConfig = InnerConfig()
    ppo: PPOConfig = PPOConfig()
    value: ValueConfig = ValueConfig()

    # flat names of the shared ``MetaConfig`` the baselines used; MAML's fields are dropped
    LEGACY = {"outer_lr": "ppo_lr", **{k: None for k in (
        "meta_gradient", "remat", "outer", "max_kl", "cg_iters", "cg_damping",
        "ls_backtrack_ratio", "ls_max_backtracks")}}


def _multitask_ppo(family: TaskFamily, cfg: MultiTaskConfig, spec: policy.PolicySpec,
                   train: bool) -> MetaLearner:
    value = value_network(spec.input_size, cfg.value.hidden_sizes)

    def wire(hyper):
        c = config_lib.bind(cfg, hyper)
        pg = PGAdaptation(family, spec, inner_lib.optimizer(c.inner.optimizer, c.inner.lr),
                          c.returns, c.sampling.inner_episodes, c.inner.normalize_advantages)
        return c, pg, ppo(optax.adam(c.ppo.lr), c.ppo.epochs, c.ppo.clip)

    def init(key, hyper=None):
        hyper = config_lib.hyper_of(cfg) if hyper is None else hyper
        k_pol, k_val, key = jax.random.split(key, 3)
        params = {"policy": spec.policy.init(k_pol), "value": value.init(k_val)}
        opt_state = wire(hyper)[2].init(params) if train else ()
        return LearnerState(params, opt_state, key, jnp.zeros((), jnp.int32), hyper)

    def sample_with(params, k_tasks, k_roll) -> Sample:
        """A meta-batch of training tasks and ``inner_episodes`` episodes of π on each."""
        tasks, keys = meta_batch(family, cfg.sampling.meta_batch_size, k_tasks, k_roll)
        trajs = jax.vmap(lambda t, k: rollout(family, spec.fn(params["policy"], t), t, k,
                                              cfg.sampling.inner_episodes))(tasks, keys)
        return Sample(tasks, shard_tasks(trajs))

    def meta_loss(params, state, s: Sample, advs, targets):
        c, _, out = wire(state.hyper)

        def one(task, traj, adv, target):
            logp = policy.log_prob(spec.fn(params["policy"], task), traj)
            pg = out.surrogate(logp, traj.logp, rl.normalize(adv, traj.mask), traj.mask)
            v = value.apply(params["value"], spec.condition(traj.obs, task))
            return pg + c.value.coef * rl.masked_mean((v - target) ** 2, traj.mask)

        return jax.vmap(one)(s.tasks, s.batches, advs, targets).mean()

    def update(state):
        c, _, out = wire(state.hyper)
        key, k_tasks, k_roll = jax.random.split(state.key, 3)
        s = sample_with(state.params, k_tasks, k_roll)
        ret = episode_returns(s.batches).mean()
        if not train:
            return (state.advance(state.params, state.opt_state, key),
                    {"pre_return": ret, "loss": jnp.zeros(())})

        def targets(task, traj):  # advantages and value targets A + V of the critic
            v = value.apply(state.params["value"], spec.condition(traj.obs, task))
            adv = gae_from_values(traj, v, c.returns.gamma, c.value.gae_lambda)
            return adv, (adv + v) * traj.mask

        advs, tgts = jax.vmap(targets)(s.tasks, s.batches)
        params, opt_state, extra = out.step(
            state.params, state.opt_state, Objective(lambda p: meta_loss(p, state, s, advs, tgts)))
        metrics = {"pre_return": ret, "policy_std": jnp.exp(
            state.params["policy"]["log_std"]).mean(), **extra}
        return state.advance(params, opt_state, key), metrics

    def adapt(state, task, key, num_steps: int) -> Adapted:
        """``num_steps`` fine-tuning steps of the inner optimizer from the trained θ."""
        check_adapt_steps(num_steps)
        c, pg, _ = wire(state.hyper)
        theta = state.params["policy"]
        return Adapted(*pg.adapt_returns(theta, pg.opt.init(theta), task, key, num_steps,
                                         c.sampling.eval_episodes))

    return MetaLearner(init=init, update=update, adapt=adapt, config=cfg, family=family,
                       sample=lambda state, key: sample_with(state.params,
                                                             *jax.random.split(key)),
                       act=lambda params, obs, key, task=None: policy.act(
                           spec.fn(params, task), obs, key))


def make_pretrained(family: TaskFamily, config: MultiTaskConfig | None = None) -> MetaLearner:
    """Multi-task pretrained policy (task-blind PPO on all training tasks), fine-tuned."""
    cfg = config or MultiTaskConfig()
    return _multitask_ppo(family, cfg, policy.blind_policy(family, cfg.policy), train=True)


def make_random_init(family: TaskFamily, config: MultiTaskConfig | None = None) -> MetaLearner:
    """Random initialisation, fine-tuned with the inner steps; ``update`` only measures."""
    cfg = config or MultiTaskConfig()
    return _multitask_ppo(family, cfg, policy.blind_policy(family, cfg.policy), train=False)


def make_oracle(family: TaskFamily, config: MultiTaskConfig | None = None) -> MetaLearner:
    """Task-conditioned policy π(a | s, task_features) trained by multi-task PPO."""
    cfg = config or MultiTaskConfig()
    return _multitask_ppo(family, cfg, policy.oracle_policy(family, cfg.policy), train=True)
