"""MAESN (Gupta et al. 2018): model-agnostic exploration with structured noise.

A shared policy π_θ(a | [s, z]) whose latent z is drawn once per episode from a learned
distribution q_ω = N(μ, diag σ²), so that its randomness is coherent over an episode
(structured exploration) rather than independent per step. Meta-training keeps one
ω_i = (μ_i, log σ_i) per task of a fixed set of ``num_train_tasks`` training tasks
(drawn by ``init``, kept in ``opt_state["tasks"]``). Per task of a meta-batch (``vmap``):

1. K fast-updates (Eq. 4, and Eq. 5 with ``adapt_policy``):
   ω_i ← ω_i − α_ω ∘ ∇_ω L_VPG,  θ_i ← θ_i − α_θ ∘ ∇_θ L_VPG,  where L_VPG is the VPG loss of
   episodes sampled with z = μ + σ ⊙ ε, ε ~ N(0, I) per episode. The gradient reaches ω
   through z (the reparameterisation trick on the latent, the likelihood ratio on the
   actions: −Σ_t log π_θ(a_t | s_t, μ + σ ⊙ ε) Â_t is an unbiased surrogate of −∇_ω J).
2. Episodes τ' of the adapted (θ_i', ω_i') with fresh ε.

The meta-update (TRPO by default, as in the paper) descends
mean_i [surrogate_i(θ_i', ω_i')] + ``kl_coef`` · mean_i KL(q_{ω_i} ‖ N(0, I)) (Eq. 3, with the
sum over the training set estimated on the meta-batch) over θ, the ω_i of the batch, and
the learned rates α, with (θ_i', ω_i') replayed from the stored episodes and noises.

``adapt`` (meta-test, Eq. 6): a new task starts from the prior ω = (0, 0), which the KL term
keeps the training latents close to, and takes K fast-updates with the learned rates, on
the family's own reward (sparse on the paper's tasks; meta-training reads
``train_reward``). ``train_inner=False`` is the paper's LatentSpace baseline.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmeta import config as config_lib
from jaxmeta import rl
from jaxmeta.algorithms.maesn.config import MAESNConfig
from jaxmeta.envs.base import TaskFamily
from jaxmeta.envs.wrappers import DenseReward
from jaxmeta.meta import estimators, outer
from jaxmeta.meta import inner as inner_lib
from jaxmeta.meta.policy import act, embedded_policy
from jaxmeta.meta.replay import replay
from jaxmeta.meta.sampling import Episodes, advantages, episodes_kl
from jaxmeta.nets import gaussian_kl, gaussian_log_prob
from jaxmeta.protocol import Adapted, LearnerState, MetaLearner, Sample, check_adapt_steps
from jaxmeta.rollout import (
    Trajectory,
    count_env_steps,
    distance_returns,
    episode,
    episode_returns,
    splits_action_cost,
)

Array = jax.Array


class MAESNBatch(NamedTuple):
    """One task's samples: ``inner`` ``[K, E, T, ...]`` with advantages and the latent
    noises ``inner_eps`` ``[K, E, d]`` of each fast-update; ``outer`` (the adapted policy's
    episodes ``[E', T, ...]``) and ``outer_eps`` ``[E', d]``; ``row``, the task's index in the
    training set."""

    inner: Trajectory
    inner_adv: Array
    inner_eps: Array
    outer: Episodes
    outer_eps: Array
    row: Array

    def env_steps(self) -> int:
        return count_env_steps(tuple(self))


def kl_to_prior(omega) -> Array:
    """KL(N(μ, diag σ²) ‖ N(0, I)) of ``omega = {"mu", "log_sigma"}`` (last axis summed)."""
    mu = omega["mu"]
    return gaussian_kl(mu, omega["log_sigma"], jnp.zeros_like(mu), jnp.zeros_like(mu))


def latents(omega, eps: Array) -> Array:
    """z = μ + σ ⊙ ε for noises ``eps`` ``[..., d]``."""
    return omega["mu"] + jnp.exp(omega["log_sigma"]) * eps


def prior(size: int):
    """ω of the prior N(0, I): where meta-test adaptation starts."""
    return {"mu": jnp.zeros((size,)), "log_sigma": jnp.zeros((size,))}


def make_maesn(family: TaskFamily, config: MAESNConfig | None = None) -> MetaLearner:
    """MAESN on ``family`` (see the module docstring); ``train_inner=False`` gives the
    LatentSpace baseline."""
    cfg = config or MAESNConfig()
    d, n_train = cfg.latent_size, cfg.num_train_tasks
    spec = embedded_policy(family, cfg.policy, d)
    est = estimators.make(cfg.meta_gradient)
    train_family = DenseReward(family) if cfg.train_reward == "dense" else family
    train_k = cfg.inner.steps if cfg.train_inner else 0

    def wire(hyper):
        c = config_lib.bind(cfg, hyper)
        return c, inner_lib.optimizer(c.inner.optimizer, c.inner.lr), outer.from_config(
            c.outer, c.ppo, c.trpo)

    def fast_of(theta, omega):
        return {"omega": omega, **({"policy": theta} if cfg.adapt_policy else {})}

    def policy_of(params, fast):
        return fast["policy"] if cfg.adapt_policy else params["policy"]

    def episodes(fam, theta, omega, task, key, n):
        """``n`` episodes of π_θ, each with its own z = μ + σ ⊙ ε; returns (τ, ε)."""
        k_eps, k_roll = jax.random.split(key)
        eps = jax.random.normal(k_eps, (n, d))
        z = latents(omega, eps)
        traj = jax.vmap(lambda zi, k: episode(fam, spec.fn(theta, zi), task, k))(
            z, jax.random.split(k_roll, n))
        return traj, eps

    def logp_of(theta, omega, traj, eps):
        """log π_θ(a_t | s_t, z_e) of stored episodes ``[E, T]``, z from the noises."""
        def one(tr, zi):
            mean, log_std = spec.fn(theta, zi)(tr.obs)
            return gaussian_log_prob(mean, log_std, tr.action)

        return jax.vmap(one)(traj, latents(omega, eps))

    def fast_step(c, opt, params, fast, traj, adv, eps, first_order):
        def loss(f):
            logp = logp_of(policy_of(params, f), f["omega"], traj, eps)
            a = rl.normalize(adv, traj.mask) if c.inner.normalize_advantages else adv
            return rl.vpg_loss(logp, a, traj.mask)

        return inner_lib.inner_step(loss, opt, fast, params["inner"], first_order)

    def run(c, opt, fam, params, fast, task, keys):
        """len(keys) fast-updates on ``fam`` (no gradient); returns the adapted fast
        parameters and (episodes, advantages, noises) ``[K, ...]``."""

        def body(f, k):
            traj, eps = episodes(fam, policy_of(params, f), f["omega"], task, k,
                                 c.sampling.inner_episodes)
            adv = advantages(traj, c.returns, family.horizon)
            return fast_step(c, opt, params, f, traj, adv, eps, True), (traj, adv, eps)

        return jax.lax.scan(body, fast, keys)

    def init(key, hyper=None):
        hyper = config_lib.hyper_of(cfg) if hyper is None else hyper
        c, opt, out = wire(hyper)
        k_pol, k_tasks, key = jax.random.split(key, 3)
        theta = spec.policy.init(k_pol)
        table = {"mu": jnp.zeros((n_train, d)), "log_sigma": jnp.zeros((n_train, d))}
        params = {"policy": theta, "latents": table,
                  "inner": opt.init(fast_of(theta, prior(d)))}
        tasks = family.sample_tasks(k_tasks, n_train, "train")
        return LearnerState(params, {"outer": out.init(params), "tasks": tasks}, key,
                            jnp.zeros((), jnp.int32), hyper)

    def omega_of(params, row):
        return jax.tree.map(lambda x: x[row], params["latents"])

    def sample(state, key) -> Sample:
        c, opt, _ = wire(state.hyper)
        k_rows, k_roll = jax.random.split(key)
        rows = jax.random.choice(k_rows, n_train, (c.sampling.meta_batch_size,), replace=False)
        tasks = jax.tree.map(lambda x: x[rows], state.opt_state["tasks"])

        def sample_task(params, task, row, key):
            keys = jax.random.split(key, train_k + 1)
            fast, (inner, inner_adv, inner_eps) = run(
                c, opt, train_family, params, fast_of(params["policy"], omega_of(params, row)),
                task, keys[:train_k])
            theta = policy_of(params, fast)
            traj, eps = episodes(train_family, theta, fast["omega"], task, keys[-1],
                                 c.sampling.outer_episodes)
            mean, log_std = jax.vmap(lambda tr, zi: spec.fn(theta, zi)(tr.obs))(
                traj, latents(fast["omega"], eps))
            outer_eps = Episodes(traj, advantages(traj, c.returns, family.horizon), mean,
                                 log_std)
            return MAESNBatch(inner, inner_adv, inner_eps, outer_eps, eps, row)

        batches = jax.vmap(sample_task, in_axes=(None, 0, 0, 0))(
            state.params, tasks, rows, jax.random.split(k_roll, rows.shape[0]))
        return Sample(tasks, batches)

    def replayed(c, opt, params, b: MAESNBatch):
        """(θ', ω') of one task as functions of the meta-parameters."""
        fast = fast_of(params["policy"], omega_of(params, b.row))
        step = lambda f, x: fast_step(c, opt, params, f, *x, est.first_order)
        fast, _ = replay(step, fast, (b.inner, b.inner_adv, b.inner_eps))
        return policy_of(params, fast), fast["omega"]

    def meta_loss(params, state, s: Sample):
        c, opt, out = wire(state.hyper)

        def task_terms(b):
            theta, omega = replayed(c, opt, params, b)
            o = b.outer.traj
            logp = logp_of(theta, omega, o, b.outer_eps)
            steps_per_episode = o.mask.sum() / o.mask.shape[0]
            surr = out.surrogate(logp, o.logp, b.outer.adv, o.mask) * steps_per_episode
            return surr, kl_to_prior(omega_of(params, b.row))

        surr, kl = jax.vmap(task_terms)(s.batches)
        return surr.mean() + c.kl_coef * kl.mean()

    def adapted_dist(c, opt, params, s: Sample):
        def one(b):
            theta, omega = replayed(c, opt, params, b)
            z = latents(omega, b.outer_eps)
            return jax.vmap(lambda tr, zi: spec.fn(theta, zi)(tr.obs))(b.outer.traj, z)

        return jax.vmap(one)(s.batches)

    def update(state):
        c, opt, out = wire(state.hyper)
        key, k_sample = jax.random.split(state.key)
        s = sample(state, k_sample)
        dist = lambda p: adapted_dist(c, opt, p, s)
        kl_of_dist = lambda d: episodes_kl(s.batches.outer, d)
        objective = outer.Objective(
            loss=lambda p: meta_loss(p, state, s), kl=lambda p: kl_of_dist(dist(p)), dist=dist,
            kl_of_dist=kl_of_dist)
        params, outer_state, extra = out.step(state.params, state.opt_state["outer"],
                                              objective)
        b = s.batches
        post = episode_returns(b.outer.traj).mean()
        inner_returns = episode_returns(b.inner).mean(axis=(0, 2))  # [K] (K = 0: none)
        rows = jax.tree.map(lambda x: x[b.row], state.params["latents"])
        metrics = {"pre_return": inner_returns[0] if train_k else post, "post_return": post,
                   "returns_by_step": jnp.concatenate([inner_returns, post[None]]),
                   "kl_prior": kl_to_prior(rows).mean(),
                   "latent_sigma": jnp.exp(rows["log_sigma"]).mean(),
                   "latent_mu_norm": jnp.linalg.norm(rows["mu"], axis=-1).mean(),
                   "policy_std": jnp.exp(state.params["policy"]["log_std"]).mean(),
                   **inner_lib.rate_metrics(state.params["inner"]), **extra}
        opt_state = {"outer": outer_state, "tasks": state.opt_state["tasks"]}
        return state.advance(params, opt_state, key), metrics

    def adapt(state, task, key, num_steps: int) -> Adapted:
        """From the prior ω = (0, 0) and the meta-learned θ: ``num_steps`` fast-updates on
        ``task``'s own reward, then ``eval_episodes`` episodes. ``params`` carry θ', ω' and
        one z drawn from q_ω' (what ``act`` conditions on); ``distance_returns`` as
        ``protocol.Adapted`` says (families that split an action cost from their reward)."""
        check_adapt_steps(num_steps)
        c, opt, _ = wire(state.hyper)
        params = state.params
        keys = jax.random.split(key, num_steps + 2)
        fast, (inner, _, _) = run(c, opt, family, params, fast_of(params["policy"], prior(d)),
                                  task, keys[:num_steps])
        theta, omega = policy_of(params, fast), fast["omega"]
        final, _ = episodes(family, theta, omega, task, keys[-2], c.sampling.eval_episodes)

        def by_step(measure):  # mean return of each step's episodes, then of the last ones
            return jnp.concatenate([measure(inner).mean(axis=-1), measure(final).mean()[None]])

        dist = (by_step(lambda t: distance_returns(family, t))
                if splits_action_cost(family) else None)
        z = latents(omega, jax.random.normal(keys[-1], (d,)))
        return Adapted({"policy": theta, "omega": omega, "z": z}, by_step(episode_returns), dist)

    def act_fn(params, obs, key, task=None):
        """An action of π_θ(· | s, z) for the ``params`` of ``adapt`` (θ and a drawn z)."""
        if "z" not in params:
            raise ValueError("a MAESN policy acts from adapt(...).params, which carry the "
                             "latent z it is conditioned on; these params have none")
        return act(spec.fn(params["policy"], params["z"]), obs, key)

    return MetaLearner(init=init, update=update, adapt=adapt, act=act_fn, config=cfg,
                       family=family, sample=sample, meta_loss=meta_loss)
