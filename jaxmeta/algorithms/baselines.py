"""Baselines of the MAML paper's 2D-navigation comparison (Finn et al. 2017, Fig. 2).

All three expose the same ``MetaLearner`` API and are fine-tuned at test time with the
*same* inner VPG steps as MAML (``MetaConfig.inner_lr``, ``inner_episodes``):

* ``pretrained``: one policy trained on all training tasks jointly (multi-task PPO with
  a learned value critic, GAE λ = 0.95), blind to the task, then fine-tuned.
* ``random_init``: no training; fine-tuning starts from a random initialisation.
* ``oracle``: the same multi-task PPO, but the policy also observes
  ``family.task_features(task)`` (the goal), an upper reference.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxmeta import inner as inner_lib
from jaxmeta import rl
from jaxmeta.algorithms.base import (
    LearnerState,
    MetaConfig,
    MetaLearner,
    PolicySpec,
    blind_policy,
    gae_from_values,
    log_prob,
    make_act,
    make_adapt,
    meta_batch,
    oracle_policy,
    ppo_epochs,
)
from jaxmeta.distributed import shard_tasks
from jaxmeta.envs.base import TaskFamily
from jaxmeta.nets import value_network
from jaxmeta.rollout import episode_returns, rollout

Array = jax.Array
PPO_GAE_LAMBDA = 0.95


def _multitask_ppo(family: TaskFamily, cfg: MetaConfig, spec: PolicySpec, train: bool
                   ) -> MetaLearner:
    value = value_network(spec.input_size, cfg.value_hidden_sizes)
    opt = optax.adam(cfg.outer_lr)
    inner_opt = inner_lib.sgd(cfg.inner_lr)
    episodes = cfg.inner_episodes

    def init(key: Array) -> LearnerState:
        k_pol, k_val, key = jax.random.split(key, 3)
        params = {"policy": spec.policy.init(k_pol), "value": value.init(k_val)}
        return LearnerState(params=params, opt_state=opt.init(params) if train else (), key=key,
                            iteration=jnp.zeros((), jnp.int32))

    def gae(params, task, traj):
        """Advantages and value targets (A + V) from the learned critic."""
        v = value.apply(params["value"], spec.condition(traj.obs, task))
        adv = gae_from_values(traj, v, cfg.gamma, PPO_GAE_LAMBDA)
        return adv, (adv + v) * traj.mask

    def loss_fn(params, tasks, trajs, advs, targets):
        def one(task, traj, adv, target):
            logp = log_prob(spec.fn(params["policy"], task), traj)
            pg = rl.ppo_clip_loss(logp, traj.logp, rl.normalize(adv, traj.mask), traj.mask,
                                  cfg.ppo_clip)
            v = value.apply(params["value"], spec.condition(traj.obs, task))
            vf = rl.masked_mean((v - target) ** 2, traj.mask)
            return pg + cfg.value_coef * vf

        return jax.vmap(one)(tasks, trajs, advs, targets).mean()

    def sample(params, k_tasks, k_roll):
        """A meta-batch of training tasks and ``episodes`` episodes of the policy on each."""
        tasks, keys = meta_batch(family, cfg.meta_batch_size, k_tasks, k_roll)
        theta = params["policy"]
        trajs = jax.vmap(lambda t, k: rollout(family, spec.fn(theta, t), t, k, episodes))(
            tasks, keys)
        return tasks, shard_tasks(trajs)

    def update(state: LearnerState):
        key, k_tasks, k_roll = jax.random.split(state.key, 3)
        tasks, trajs = sample(state.params, k_tasks, k_roll)
        theta = state.params["policy"]
        ret = episode_returns(trajs).mean()
        if not train:
            metrics = {"pre_return": ret, "loss": jnp.zeros(())}
            return state.replace(key=key, iteration=state.iteration + 1), metrics
        advs, targets = jax.vmap(gae, in_axes=(None, 0, 0))(state.params, tasks, trajs)

        (params, opt_state), (losses, _) = ppo_epochs(
            lambda p: loss_fn(p, tasks, trajs, advs, targets), opt, state.params,
            state.opt_state, cfg.ppo_epochs)
        metrics = {"pre_return": ret, "loss": losses[0],
                   "policy_std": jnp.exp(theta["log_std"]).mean()}
        return state.replace(params=params, opt_state=opt_state, key=key,
                             iteration=state.iteration + 1), metrics

    adapt = make_adapt(family, spec, inner_opt, cfg, lambda s: inner_opt.init(None))
    return MetaLearner(init=init, update=update, adapt=adapt, act=make_act(spec), config=cfg,
                       family=family,
                       sample=lambda params, key: sample(params, *jax.random.split(key)))


def make_pretrained(family: TaskFamily, config: MetaConfig | None = None) -> MetaLearner:
    """Multi-task pretrained policy (task-blind PPO on all training tasks), fine-tuned."""
    cfg = config or MetaConfig()
    return _multitask_ppo(family, cfg, blind_policy(family, cfg), train=True)


def make_random_init(family: TaskFamily, config: MetaConfig | None = None) -> MetaLearner:
    """Random initialisation, fine-tuned with the inner steps; ``update`` only measures."""
    cfg = config or MetaConfig()
    return _multitask_ppo(family, cfg, blind_policy(family, cfg), train=False)


def make_oracle(family: TaskFamily, config: MetaConfig | None = None) -> MetaLearner:
    """Task-conditioned policy π(a | s, task_features) trained by multi-task PPO."""
    cfg = config or MetaConfig()
    return _multitask_ppo(family, cfg, oracle_policy(family, cfg), train=True)
