"""TESP (Lan et al. 2019): task encoder + meta-learned SGD + shared policy + PPO.

A shared policy π(a | [s, h]) (Eq. 7) acts on a task embedding h that a
:class:`TaskInference` piece infers and the fast-updates adapt. TESP's piece
(:func:`encoder_inference`) is a GRU encoder over a buffer of the best episodes; AdaptSV's
(:mod:`jaxmeta.algorithms.adaptsv`) is a free task variable. Per task (``vmap``):

1. TESP only: N warm-up episodes with h = 0 fill the buffer B⁰ = S_M(τ^warm) (Alg. 1).
2. For k = 1..K (``lax.scan``): h^k = embed(fast_k, B^{k-1}) (Eq. 5), N episodes τ^k with
   π(·|[s, h^k]), the fast-update fast_{k+1} = fast_k − α ∘ ∇ L_VPG(τ^k) (Eq. 9, through
   h^k) and B^k = S_M(B^{k-1} ∪ τ^k) (Eq. 3–4).
3. h^{K+1}, then the post-adaptation episodes τ^{K+1}.

The meta-update is PPO on τ^{K+1} over θ = {θ_TE or z, α, θ_policy} plus η mean_i ‖h_i‖²
(Eq. 10, averaged over the meta-batch), with fast_{K+1} and h^{K+1} replayed from the
stored episodes and buffers (first order by default; ``second_order`` differentiates
through the inner gradients). V2 (``adapt_policy``) adds θ_policy to the fast parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxmeta import config as config_lib
from jaxmeta import rl
from jaxmeta.algorithms.tesp.buffer import EpisodeBuffer, buffer_init, buffer_insert
from jaxmeta.algorithms.tesp.config import TESPConfig
from jaxmeta.algorithms.tesp.encoder import task_encoder
from jaxmeta.envs.base import TaskFamily
from jaxmeta.meta import estimators
from jaxmeta.meta import inner as inner_lib
from jaxmeta.meta.outer import Objective, ppo
from jaxmeta.meta.policy import act, embedded_policy, log_prob
from jaxmeta.meta.replay import replay
from jaxmeta.meta.sampling import (
    Episodes,
    advantages,
    episodes_kl,
    sample_episodes,
    sample_meta_batch,
    vpg_inner_loss,
)
from jaxmeta.protocol import Adapted, LearnerState, MetaLearner, Sample, check_adapt_steps
from jaxmeta.rollout import Trajectory, count_env_steps, distance_returns, episode_returns, rollout

Array = jax.Array


class TaskInference(NamedTuple):
    """How an embedding learner infers h from what it has seen on a task.

    Attributes:
      name: key of its parameters in ``params`` and in the fast parameters.
      init: ``key -> params``.
      embed: ``(fast params, context) -> h [d]``.
      warm_up: sample N episodes with h = 0 before the first fast-update.
      start: ``warm-up episodes (or None) -> context``.
      observe: ``(context, episodes) -> context`` after each fast-update's episodes.
    """

    name: str
    init: Callable[[Array], Any]
    embed: Callable[[Any, Any], Array]
    warm_up: bool
    start: Callable[[Trajectory | None], Any]
    observe: Callable[[Any, Trajectory], Any]


def encoder_inference(family: TaskFamily, cfg: TESPConfig) -> TaskInference:
    """TESP's piece: h = mean over the buffer of a GRU encoder g(τ; θ_TE) (Eq. 5), the buffer
    keeping the best ``buffer_capacity`` episodes (Eq. 3–4)."""
    enc = task_encoder(family.obs_size, family.action_size, family.horizon, cfg.gru_size,
                       cfg.embedding_size)
    return TaskInference("encoder", enc.init, enc.embed, True,
                         lambda warm: buffer_insert(buffer_init(cfg.buffer_capacity, warm), warm),
                         buffer_insert)


class EmbeddingBatch(NamedTuple):
    """What one meta-iteration sampled on one task.

    Attributes:
      warm: warm-up episodes (h = 0) ``[N, T, ...]``, or None.
      inner, inner_adv: episodes of each fast-update ``[K, N, T, ...]`` and advantages.
      contexts: the contexts each fast-update saw and the last, leaves ``[K+1, ...]``
        (TESP: buffers B⁰..B^K), or None.
      outer: the post-adaptation episodes ``[N', T, ...]``, advantages, sampling policy.
      h: the embedding h^{K+1} the outer episodes were sampled with ``[d]``.
    """

    warm: Trajectory | None
    inner: Trajectory
    inner_adv: Array
    contexts: EpisodeBuffer | None
    outer: Episodes
    h: Array

    def env_steps(self) -> int:
        return count_env_steps(tuple(self))


def returns_by_step(warm, inner: Trajectory, last: Trajectory, measure=episode_returns
                    ) -> Array:
    """Mean returns [warm-up (if any), τ^1..τ^K, last] of one task (``measure``: the
    per-episode return, e.g. ``rollout.distance_returns`` bound to a family)."""
    rets = [measure(inner).mean(axis=-1), measure(last).mean()[None]]
    if warm is not None:
        rets.insert(0, measure(warm).mean()[None])
    return jnp.concatenate(rets)


def embedding_learner(family: TaskFamily, cfg, inference: TaskInference,
                      adapt_policy: bool = False) -> MetaLearner:
    """A shared policy π(a | [s, h]) whose embedding h = ``inference`` is fast-adapted."""
    spec = embedded_policy(family, cfg.policy, cfg.embedding_size)
    est, name, n = estimators.make(cfg.meta_gradient), inference.name, cfg.sampling.inner_episodes
    zero_h = jnp.zeros((cfg.embedding_size,))

    def fast_of(params):
        return {name: params[name], **({"policy": params["policy"]} if adapt_policy else {})}

    def policy_of(params, fast):
        return fast["policy"] if adapt_policy else params["policy"]

    def init(key, hyper=None):
        hyper = config_lib.hyper_of(cfg) if hyper is None else hyper
        c = config_lib.bind(cfg, hyper)
        k_pol, k_inf, key = jax.random.split(key, 3)
        params = {"policy": spec.policy.init(k_pol), name: inference.init(k_inf)}
        params["inner"] = inner_lib.optimizer(c.inner.optimizer, c.inner.lr).init(fast_of(params))
        return LearnerState(params, optax.adam(c.ppo.lr).init(params), key,
                            jnp.zeros((), jnp.int32), hyper)

    def fast_step(c, params, fast, ctx, traj, adv, first_order):
        """Eq. 9: VPG loss of τ^k under π(·|[s, h^k]), h^k = embed(fast, B^{k-1})."""

        def loss(f):
            pi = spec.fn(policy_of(params, f), inference.embed(f[name], ctx))
            return vpg_inner_loss(pi, traj, adv, c.inner.normalize_advantages)

        opt = inner_lib.optimizer(c.inner.optimizer, c.inner.lr)
        return inner_lib.inner_step(loss, opt, fast, params["inner"], first_order)

    def run(c, params, task, keys, num_steps):
        """Warm-up and ``num_steps`` fast-updates, no gradient. ``keys[0]`` is the warm-up's
        (unused without one, so that every learner draws the same inner streams)."""
        fast = fast_of(params)
        warm = (rollout(family, spec.fn(policy_of(params, fast), zero_h), task, keys[0], n)
                if inference.warm_up else None)

        def body(carry, k):
            fast, ctx = carry
            h = inference.embed(fast[name], ctx)
            traj = rollout(family, spec.fn(policy_of(params, fast), h), task, k, n)
            adv = advantages(traj, c.returns, family.horizon)
            new_fast = fast_step(c, params, fast, ctx, traj, adv, first_order=True)
            return (new_fast, inference.observe(ctx, traj)), (traj, adv, ctx)

        (fast, ctx), (inner, inner_adv, ctxs) = jax.lax.scan(
            body, (fast, inference.start(warm)), keys[1:num_steps + 1])
        ctxs = jax.tree.map(lambda a, b: jnp.concatenate([a, b[None]]), ctxs, ctx)
        return fast, ctxs, inference.embed(fast[name], ctx), warm, inner, inner_adv

    def sample(state, key) -> Sample:
        c = config_lib.bind(cfg, state.hyper)

        def sample_task(params, task, key):
            keys = jax.random.split(key, c.inner.steps + 2)
            fast, ctxs, h, warm, inner, inner_adv = run(c, params, task, keys[:-1],
                                                        c.inner.steps)
            outer = sample_episodes(family, spec.fn(policy_of(params, fast), h), task, keys[-1],
                                    c.sampling.outer_episodes, c.returns)
            return EmbeddingBatch(warm, inner, inner_adv, ctxs, outer, h)

        return sample_meta_batch(family, c.sampling.meta_batch_size, sample_task, state.params,
                                 key)

    def replayed(c, params, b: EmbeddingBatch):
        """(fast_{K+1}, h^{K+1}) as functions of θ, from the stored episodes and contexts."""
        ctxs = jax.tree.map(lambda x: x[:-1], b.contexts)
        step = lambda f, d: fast_step(c, params, f, d[2], d[0], d[1], est.first_order)
        fast, _ = replay(step, fast_of(params), (b.inner, b.inner_adv, ctxs))
        return fast, inference.embed(fast[name], jax.tree.map(lambda x: x[-1], b.contexts))

    def meta_loss(params, state, s: Sample):
        c = config_lib.bind(cfg, state.hyper)

        def task_terms(b):
            fast, h = replayed(c, params, b)
            o = b.outer.traj
            logp = log_prob(spec.fn(policy_of(params, fast), h), o)
            surr = rl.ppo_clip_loss(logp, o.logp, rl.normalize(b.outer.adv, o.mask), o.mask,
                                    c.ppo.clip)
            return surr, jnp.sum(h**2)

        surr, h_sq = jax.vmap(task_terms)(s.batches)
        return surr.mean() + c.eta * h_sq.mean()

    def mean_kl(c, params, batches):
        def one(b):
            fast, h = replayed(c, params, b)
            return spec.fn(policy_of(params, fast), h)(b.outer.traj.obs)

        return episodes_kl(batches.outer, jax.vmap(one)(batches))

    def update(state):
        c = config_lib.bind(cfg, state.hyper)
        key, k_sample = jax.random.split(state.key)
        s = sample(state, k_sample)
        outer = ppo(optax.adam(c.ppo.lr), c.ppo.epochs, c.ppo.clip)
        objective = Objective(loss=lambda p: meta_loss(p, state, s),
                              kl=lambda p: mean_kl(c, p, s.batches))
        params, opt_state, extra = outer.step(state.params, state.opt_state, objective)
        b = s.batches
        by_step = jax.vmap(returns_by_step)(b.warm, b.inner, b.outer.traj).mean(0)
        metrics = {"pre_return": by_step[0], "post_return": by_step[-1],
                   "returns_by_step": by_step,
                   "embedding_norm": jnp.linalg.norm(b.h, axis=-1).mean(),
                   "policy_std": jnp.exp(state.params["policy"]["log_std"]).mean(),
                   **inner_lib.rate_metrics(state.params["inner"]), **extra}
        return state.advance(params, opt_state, key), metrics

    def adapt(state, task, key, num_steps: int) -> Adapted:
        """Warm-up (TESP), ``num_steps`` fast-updates, then ``eval_episodes`` with h^{K+1}.

        ``returns[0]``: before adaptation (TESP: the warm-up with h = 0; AdaptSV: the
        initial z); ``returns[k]``: after k fast-updates (the last from the evaluation
        episodes). TESP's τ^1 (h^1 from the warm-up buffer, before any fast-update) is not
        one of the K + 1 points. ``params`` holds the policy, h and the adapted fast
        parameters.
        """
        check_adapt_steps(num_steps)
        c, params = config_lib.bind(cfg, state.hyper), state.params
        keys = jax.random.split(key, num_steps + 2)
        fast, _, h, warm, inner, _ = run(c, params, task, keys[:-1], num_steps)
        theta = policy_of(params, fast)
        final = rollout(family, spec.fn(theta, h), task, keys[-1], c.sampling.eval_episodes)
        def by_step(measure):
            r = returns_by_step(warm, inner, final, measure)
            return r if warm is None else jnp.concatenate([r[:1], r[2:]])

        dist = None
        if distance_returns(family, final) is not None:
            dist = by_step(lambda t: distance_returns(family, t))
        return Adapted(params={"policy": theta, "embedding": h, "fast": fast},
                       returns=by_step(episode_returns), distance_returns=dist)

    return MetaLearner(
        init=init, update=update, adapt=adapt, config=cfg, family=family, sample=sample,
        meta_loss=meta_loss,
        act=lambda params, obs, key, task=None: act(spec.fn(params["policy"],
                                                            params["embedding"]), obs, key))


def make_tesp(family: TaskFamily, config: TESPConfig | None = None) -> MetaLearner:
    """TESP as configured (the ablation presets are applied by ``algorithms.make``)."""
    cfg = config or TESPConfig()
    return embedding_learner(family, cfg, encoder_inference(family, cfg), cfg.adapt_policy)
