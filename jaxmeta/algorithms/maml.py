"""MAML for RL (Finn et al. 2017) and Meta-SGD (Li et al. 2017).

One meta-iteration (``update``), all of it one XLA program:

1. Sample ``meta_batch_size`` training tasks.
2. Per task (``vmap``): for k = 1..K sample ``inner_episodes`` with θ_k and take a VPG
   fast-update θ_{k+1} = θ_k − α ⊙ ∇L(τ_k | θ_k) (``lax.scan`` over k); then sample
   ``outer_episodes`` with the adapted θ_K+1.
3. Meta-update of θ (and α for Meta-SGD) by TRPO or PPO on the post-adaptation
   surrogate, recomputing θ_K+1(θ) from the stored inner episodes so gradients flow
   through the fast-updates.

Meta-gradient estimators (``MetaConfig.meta_gradient``):

* ``"first_order"``: ∂θ_K+1/∂θ ≈ I (FOMAML); Meta-SGD's α still gets ∂/∂α.
* ``"hessian"`` (default): differentiates through the fast-updates (the VPG surrogate
  with the sampled episodes held fixed), which is what the original MAML-RL code
  computes; it ignores that the inner episodes were *sampled* from π_θ.
* ``"exact"``: ``"hessian"`` plus the score-function term of the inner sampling
  distribution, i.e. the unbiased gradient of J(θ) = E_{τ_1..K ~ π_θ1..K}[R(θ_K+1)]
  ("formulation I" of Rothfuss et al. 2019, ProMP). It is the DiCE estimator (Foerster
  et al. 2018) applied to the whole meta-iteration: the outer objective is multiplied by
  the magic box ⊡(Σ_k log P(τ_k | θ_k)), which has value 1 and gradient
  Ĵ · Σ_k ∇ log P(τ_k | θ_k). For variance reduction Ĵ_i is replaced by Ĵ_i − b_i with b_i
  the leave-one-out mean of Ĵ over the other tasks of the meta-batch (independent of
  task i's episodes, so the estimator stays unbiased). The outer surrogate is summed over
  time (not averaged) so that both terms estimate the gradient of the same objective, the
  expected undiscounted return of the adapted policy. It is checked against finite
  differences in the tests; on 2D navigation its variance (the leave-one-out baseline
  mixes tasks of very different difficulty) makes training much noisier than
  ``"hessian"``, which is why ``"hessian"`` is the default.

With PPO, later epochs reuse the episodes of the first (the usual PPO approximation,
which here also applies to the score term). ``remat=True`` wraps every fast-update in
``jax.checkpoint`` so second-order memory stays flat as K grows.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from jaxmeta import inner as inner_lib
from jaxmeta import rl
from jaxmeta.algorithms.base import (
    LearnerState,
    MetaConfig,
    MetaLearner,
    PolicySpec,
    advantages,
    blind_policy,
    fast_adapt,
    inner_step,
    log_prob,
    make_act,
    make_adapt,
    ppo_epochs,
    sample_meta_batch,
)
from jaxmeta.envs.base import TaskFamily
from jaxmeta.nets import gaussian_kl
from jaxmeta.rollout import Trajectory, episode_returns, rollout

Array = jax.Array


class TaskBatch(NamedTuple):
    """Everything sampled for one task in one meta-iteration.

    Attributes:
      inner: episodes of each fast-update, ``[K, E, T, ...]``.
      inner_adv: their advantages, ``[K, E, T]``.
      outer: episodes of the adapted policy, ``[E', T, ...]``.
      outer_adv: their advantages, ``[E', T]``.
      old_mean, old_log_std: the adapted policy's action distribution on ``outer.obs``
        at sampling time (for TRPO's KL).
    """

    inner: Trajectory
    inner_adv: Array
    outer: Trajectory
    outer_adv: Array
    old_mean: Array
    old_log_std: Array


def _build(family: TaskFamily, cfg: MetaConfig, spec: PolicySpec,
           inner_opt: optax.GradientTransformation, learn_inner: bool) -> MetaLearner:
    first_order = cfg.meta_gradient == "first_order"
    outer_opt = optax.adam(cfg.outer_lr) if cfg.outer == "ppo" else None

    def init(key: Array) -> LearnerState:
        k_pol, key = jax.random.split(key)
        theta = spec.policy.init(k_pol)
        params = {"policy": theta, "inner": inner_opt.init(theta)}
        opt_state = outer_opt.init(params) if outer_opt is not None else ()
        return LearnerState(params=params, opt_state=opt_state, key=key,
                            iteration=jnp.zeros((), jnp.int32))

    # --- 1. sampling (no gradients) ---------------------------------------------------------
    def sample_task(params, task, key) -> TaskBatch:
        keys = jax.random.split(key, cfg.inner_steps + 1)
        theta_k, (inner, inner_adv) = fast_adapt(family, spec, inner_opt, cfg,
                                                 params["policy"], params["inner"], task,
                                                 keys[:-1])
        pol = spec.fn(theta_k, task)
        outer = rollout(family, pol, task, keys[-1], cfg.outer_episodes)
        outer_adv = advantages(outer, cfg, family.horizon)
        old_mean, old_log_std = pol(outer.obs)
        return TaskBatch(inner, inner_adv, outer, outer_adv, old_mean, old_log_std)

    # --- 2. differentiable adaptation from stored episodes ----------------------------------
    def adapted(params, task, batch: TaskBatch):
        """θ_K+1(θ, α) and Σ_k log P(τ_k | θ_k) (for the score-function term)."""

        def body(theta, data):
            traj, adv = data
            logp = jnp.sum(log_prob(spec.fn(theta, task), traj) * traj.mask)
            theta = inner_step(spec, inner_opt, theta, params["inner"], task, traj, adv, cfg,
                               first_order)
            return theta, logp

        if cfg.remat:
            body = jax.checkpoint(body)
        theta_k, logp = jax.lax.scan(body, params["policy"], (batch.inner, batch.inner_adv))
        return theta_k, logp.sum()

    def task_terms(params, task, batch: TaskBatch):
        theta_k, inner_logp = adapted(params, task, batch)
        out = batch.outer
        logp = log_prob(spec.fn(theta_k, task), out)
        steps_per_episode = out.mask.sum() / out.mask.shape[0]
        if cfg.outer == "ppo":
            surr = rl.ppo_clip_loss(logp, out.logp, batch.outer_adv, out.mask, cfg.ppo_clip)
        else:
            surr = rl.surrogate_loss(logp, out.logp, batch.outer_adv, out.mask)
        # time-summed surrogate: gradient estimates ∇ E[Σ_t r_t] of the adapted policy
        surr = surr * steps_per_episode
        j_hat = episode_returns(out).mean()
        return surr, inner_logp, j_hat

    def meta_loss(params, tasks, batches):
        surr, inner_logp, j_hat = jax.vmap(task_terms, in_axes=(None, 0, 0))(params, tasks,
                                                                            batches)
        loss = surr.mean()
        if cfg.meta_gradient == "exact":
            n = j_hat.shape[0]
            b = (j_hat.sum() - j_hat) / (n - 1) if n > 1 else jnp.zeros_like(j_hat)
            weight = jax.lax.stop_gradient(j_hat - b)
            magic = inner_logp - jax.lax.stop_gradient(inner_logp)  # value 0, grad ∇log P
            loss = loss - jnp.mean(weight * magic)
        return loss

    def adapted_dist(params, tasks, batches):
        """Action distributions (mean, log_std) of the adapted policies on τ' [B, E', T, A]."""

        def one(task, batch):
            theta_k, _ = adapted(params, task, batch)
            return spec.fn(theta_k, task)(batch.outer.obs)

        return jax.vmap(one)(tasks, batches)

    def kl_of_dist(dist, batches):
        """Mean over tasks of KL(π_old ‖ π) on the post-adaptation episodes."""
        kl = gaussian_kl(batches.old_mean, batches.old_log_std, *dist)
        return jax.vmap(rl.masked_mean)(kl, batches.outer.mask).mean()

    def mean_kl(params, tasks, batches):
        return kl_of_dist(adapted_dist(params, tasks, batches), batches)

    # --- 3. the meta-iteration --------------------------------------------------------------
    def sample_batches(params, key):
        """A meta-batch of training tasks and everything sampled on them."""
        return sample_meta_batch(family, cfg.meta_batch_size, sample_task, params, key)

    def update(state: LearnerState):
        key, k_sample = jax.random.split(state.key)
        tasks, batches = sample_batches(state.params, k_sample)

        params = state.params
        if cfg.outer == "trpo":
            new_params, info = rl.trpo_step(
                params, lambda p: meta_loss(p, tasks, batches),
                lambda p: mean_kl(p, tasks, batches), cfg.max_kl, cfg.cg_damping, cfg.cg_iters,
                cfg.ls_backtrack_ratio, cfg.ls_max_backtracks,
                require_improvement=cfg.meta_gradient != "exact",
                dist_fn=lambda p: adapted_dist(p, tasks, batches),
                kl_of_dist=lambda d: kl_of_dist(d, batches))
            opt_state = state.opt_state
            extra = {"loss": info.loss_before, "kl": info.kl, "step_fraction": info.step_fraction,
                     "grad_norm": info.grad_norm}
        else:
            (new_params, opt_state), (losses, gnorms) = ppo_epochs(
                lambda p: meta_loss(p, tasks, batches), outer_opt, params, state.opt_state,
                cfg.ppo_epochs)
            extra = {"loss": losses[0], "kl": mean_kl(new_params, tasks, batches),
                     "grad_norm": gnorms[0]}

        inner_returns = episode_returns(batches.inner).mean(axis=(0, 2))  # [K]
        post = episode_returns(batches.outer).mean()
        metrics = {
            "pre_return": inner_returns[0],
            "post_return": post,
            "returns_by_step": jnp.concatenate([inner_returns, post[None]]),
            "policy_std": jnp.exp(params["policy"]["log_std"]).mean(),
            **extra,
        }
        if learn_inner:
            metrics["inner_lr_mean"] = jnp.mean(ravel_pytree(params["inner"].lr)[0])
        new_state = state.replace(params=new_params, opt_state=opt_state, key=key,
                                  iteration=state.iteration + 1)
        return new_state, metrics

    def meta_gradient(state: LearnerState, key: Array):
        """Meta-gradient estimate ∇ of the *return* (ascent direction) on fresh tasks.

        Exposed for tests and diagnostics; ``update`` uses the same objective.
        """
        tasks, batches = sample_batches(state.params, key)
        g = jax.grad(meta_loss)(state.params, tasks, batches)
        return jax.tree.map(jnp.negative, g)

    adapt = make_adapt(family, spec, inner_opt, cfg, lambda s: s.params["inner"])
    learner = MetaLearner(init=init, update=update, adapt=adapt, act=make_act(spec), config=cfg,
                          family=family, sample=sample_batches)
    return learner, meta_gradient


def maml_meta_gradient(family: TaskFamily, config: MetaConfig, learn_inner: bool = False):
    """Builds MAML (``learn_inner=False``) or Meta-SGD and returns
    ``(learner, meta_gradient)``; ``meta_gradient(state, key)`` is the estimator that
    ``update`` ascends, for tests and diagnostics."""
    opt = inner_lib.meta_sgd(config.inner_lr) if learn_inner else inner_lib.sgd(config.inner_lr)
    return _build(family, config, blind_policy(family, config), opt, learn_inner)


def make_maml(family: TaskFamily, config: MetaConfig | None = None) -> MetaLearner:
    """MAML-RL: fixed inner rate α = ``inner_lr`` (Finn et al. 2017, Alg. 3)."""
    return maml_meta_gradient(family, config or MetaConfig(), learn_inner=False)[0]


def make_meta_sgd(family: TaskFamily, config: MetaConfig | None = None) -> MetaLearner:
    """Meta-SGD: MAML with per-parameter inner rates α (init ``inner_lr``) meta-learned
    jointly with θ:  θ' = θ − α ⊙ ∇L  (Li et al. 2017; TESP Eq. 9)."""
    return maml_meta_gradient(family, config or MetaConfig(), learn_inner=True)[0]
