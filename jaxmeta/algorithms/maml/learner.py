"""MAML for RL (Finn et al. 2017) and Meta-SGD (Li et al. 2017), wired from meta pieces.

One meta-iteration: a meta-batch of training tasks; per task (``vmap``) K VPG
fast-updates θ_{k+1} = θ_k − α ⊙ ∇L(τ_k | θ_k) with the inner optimizer (MAML: one rate;
Meta-SGD: learned per-parameter rates α), then episodes τ' of θ_{K+1}; then the outer step
(TRPO or PPO) on the post-adaptation surrogate, with θ_{K+1}(θ, α) replayed from the
stored inner episodes so that gradients flow through the fast-updates (the estimator
decides how; :mod:`jaxmeta.meta.estimators`). The surrogate is summed over time, so that
with ``dice`` both terms estimate the gradient of the adapted policy's expected return.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmeta import config as config_lib
from jaxmeta.algorithms.maml.config import MAMLConfig
from jaxmeta.envs.base import TaskFamily
from jaxmeta.meta import estimators, outer, policy
from jaxmeta.meta import inner as inner_lib
from jaxmeta.meta.sampling import (
    Episodes,
    PGAdaptation,
    episodes_kl,
    sample_episodes,
    sample_meta_batch,
)
from jaxmeta.protocol import Adapted, LearnerState, MetaLearner, Sample, check_adapt_steps
from jaxmeta.rollout import Trajectory, count_env_steps, episode_returns

Array = jax.Array


class MAMLBatch(NamedTuple):
    """One task's episodes: ``inner`` ``[K, E, T, ...]`` and ``inner_adv`` of each
    fast-update; ``outer``, the adapted policy's episodes ``[E', T, ...]`` with their
    advantages and sampling distribution."""

    inner: Trajectory
    inner_adv: Array
    outer: Episodes

    def env_steps(self) -> int:
        return count_env_steps(tuple(self))


def make_maml(family: TaskFamily, config: MAMLConfig | None = None) -> MetaLearner:
    """MAML-RL (Finn et al. 2017, Alg. 3), or Meta-SGD with ``inner.optimizer="meta_sgd"``."""
    cfg = config or MAMLConfig()
    spec, est = policy.blind_policy(family, cfg.policy), estimators.make(cfg.meta_gradient)

    def wire(hyper):
        """The bound config, the fast adaptation and the outer step for ``hyper``."""
        c = config_lib.bind(cfg, hyper)
        pg = PGAdaptation(family, spec, inner_lib.optimizer(c.inner.optimizer, c.inner.lr),
                          c.returns, c.sampling.inner_episodes, c.inner.normalize_advantages)
        return c, pg, outer.from_config(c.outer, c.ppo, c.trpo)

    def init(key, hyper=None):
        hyper = config_lib.hyper_of(cfg) if hyper is None else hyper
        _, pg, out = wire(hyper)
        k_pol, key = jax.random.split(key)
        theta = spec.policy.init(k_pol)
        params = {"policy": theta, "inner": pg.opt.init(theta)}
        return LearnerState(params, out.init(params), key, jnp.zeros((), jnp.int32), hyper)

    def sample(state, key) -> Sample:
        c, pg, _ = wire(state.hyper)

        def sample_task(params, task, key):
            keys = jax.random.split(key, cfg.inner.steps + 1)
            theta, (inner, inner_adv) = pg.run(params["policy"], params["inner"], task,
                                               keys[:-1])
            return MAMLBatch(inner, inner_adv, sample_episodes(
                family, spec.fn(theta, task), task, keys[-1], c.sampling.outer_episodes,
                c.returns))

        return sample_meta_batch(family, cfg.sampling.meta_batch_size, sample_task,
                                 state.params, key)

    def replayed(pg, params, task, b):
        return pg.replay(params["policy"], params["inner"], task, b.inner, b.inner_adv,
                         est.first_order, cfg.remat)

    def meta_loss(params, state, s: Sample):
        _, pg, out = wire(state.hyper)

        def task_terms(task, b):
            theta, inner_logp = replayed(pg, params, task, b)
            o = b.outer.traj
            logp = policy.log_prob(spec.fn(theta, task), o)
            steps_per_episode = o.mask.sum() / o.mask.shape[0]
            surr = out.surrogate(logp, o.logp, b.outer.adv, o.mask)
            return surr * steps_per_episode, inner_logp, episode_returns(o).mean()

        return estimators.meta_objective(est, *jax.vmap(task_terms)(s.tasks, s.batches))

    def adapted_dist(pg, params, s: Sample):
        """Action distributions of the adapted policies on τ', ``[B, E', T, A]`` each."""
        one = lambda task, b: spec.fn(replayed(pg, params, task, b)[0], task)(b.outer.traj.obs)
        return jax.vmap(one)(s.tasks, s.batches)

    def update(state):
        _, pg, out = wire(state.hyper)
        key, k_sample = jax.random.split(state.key)
        s = sample(state, k_sample)
        dist = lambda p: adapted_dist(pg, p, s)
        kl_of_dist = lambda d: episodes_kl(s.batches.outer, d)
        objective = outer.Objective(
            loss=lambda p: meta_loss(p, state, s), kl=lambda p: kl_of_dist(dist(p)), dist=dist,
            kl_of_dist=kl_of_dist, exact=not est.score_term)
        params, opt_state, extra = out.step(state.params, state.opt_state, objective)
        inner_returns = episode_returns(s.batches.inner).mean(axis=(0, 2))  # [K]
        post = episode_returns(s.batches.outer.traj).mean()
        metrics = {"pre_return": inner_returns[0], "post_return": post,
                   "returns_by_step": jnp.concatenate([inner_returns, post[None]]),
                   "policy_std": jnp.exp(state.params["policy"]["log_std"]).mean(),
                   **inner_lib.rate_metrics(state.params["inner"]), **extra}
        return state.advance(params, opt_state, key), metrics

    def adapt(state, task, key, num_steps: int) -> Adapted:
        """``num_steps`` fast-updates on ``task``, then ``eval_episodes`` episodes."""
        check_adapt_steps(num_steps)
        c, pg, _ = wire(state.hyper)
        return Adapted(*pg.adapt_returns(state.params["policy"], state.params["inner"], task,
                                         key, num_steps, c.sampling.eval_episodes))

    return MetaLearner(init=init, update=update, adapt=adapt, config=cfg, family=family,
                       sample=sample, meta_loss=meta_loss,
                       act=lambda params, obs, key, task=None: policy.act(
                           spec.fn(params, task), obs, key))
