"""Sampling: the meta-batch of tasks, advantages, and policy-gradient fast adaptation.

* :func:`meta_batch` / :func:`sample_meta_batch` create the task axis of a meta-iteration.
  Every learner creates it here, which is where a device mesh splits it
  (:func:`jaxmeta.distributed.shard_tasks`; the identity without a mesh).
* :func:`advantages` (returns, linear feature baseline, GAE) of episodes of one task, and
  :class:`Episodes` (episodes + advantages + the sampling distribution, what an outer
  step needs of the post-adaptation episodes; :func:`sample_episodes`).
* :class:`PGAdaptation`: K VPG fast-updates of a policy's parameters on one task, run
  with no gradient (:meth:`PGAdaptation.run`: collect episodes, take an inner step, repeat)
  and re-run from the stored episodes under a gradient (:meth:`PGAdaptation.replay`).
  MAML, Meta-SGD, and the baselines' fine-tuning are this piece.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxmeta import rl
from jaxmeta.config import ReturnsConfig
from jaxmeta.distributed import shard_tasks
from jaxmeta.envs.base import TaskFamily
from jaxmeta.meta.inner import inner_step
from jaxmeta.meta.policy import PolicySpec, log_prob
from jaxmeta.meta.replay import replay
from jaxmeta.nets import gaussian_kl
from jaxmeta.protocol import Sample
from jaxmeta.rollout import Trajectory, distance_returns, episode_returns, rollout

Array = jax.Array
Params = Any


def meta_batch(family: TaskFamily, num_tasks: int, k_tasks: Array, k_roll: Array):
    """``num_tasks`` training tasks and one rollout key per task, laid out over the mesh's
    task axis when there is one."""
    tasks = family.sample_tasks(k_tasks, num_tasks, "train")
    keys = jax.random.split(k_roll, num_tasks)
    return shard_tasks(tasks), shard_tasks(keys)


def sample_meta_batch(family: TaskFamily, num_tasks: int, sample_task: Callable, params: Any,
                      key: Array) -> Sample:
    """A meta-batch of training tasks and ``vmap(sample_task)(params, task, key)`` on each
    (``params`` is shared by every task)."""
    k_tasks, k_roll = jax.random.split(key)
    tasks, keys = meta_batch(family, num_tasks, k_tasks, k_roll)
    batches = jax.vmap(sample_task, in_axes=(None, 0, 0))(params, tasks, keys)
    return Sample(tasks, shard_tasks(batches))


def gae_from_values(traj: Trajectory, v: Array, gamma, lambda_) -> Array:
    """GAE advantages ``[E, T]`` of episodes ``[E, T]`` given state values V(s_t) ``[E, T]``.

    Episode ends (incl. the time limit) are treated as terminal: V(s_T) = 0.
    """
    discount = gamma * (1.0 - traj.done)
    v_tp1 = jnp.concatenate([v[:, 1:], jnp.zeros_like(v[:, :1])], axis=1)
    adv = jax.vmap(rl.gae_advantages, in_axes=(0, 0, 0, 0, None))(
        traj.reward, discount, v, v_tp1, lambda_)
    return adv * traj.mask


def advantages(traj: Trajectory, returns: ReturnsConfig, horizon: int) -> Array:
    """GAE advantages for episodes ``[E, T]`` of one task, with the linear feature baseline
    fitted on this batch (``baseline="linear"``) or V ≡ 0 (``"none"``)."""
    if returns.baseline == "linear":
        discount = returns.gamma * (1.0 - traj.done)
        g = jax.vmap(rl.discounted_returns)(traj.reward, discount)
        v = rl.fit_linear_baseline(traj.obs, g, traj.mask, horizon)
    else:
        v = jnp.zeros_like(traj.reward)
    return gae_from_values(traj, v, returns.gamma, returns.gae_lambda)


class Episodes(NamedTuple):
    """Episodes of one task, their advantages, and the action distribution of the policy
    that sampled them (the "old" policy of PPO's ratio and TRPO's KL).

    Attributes:
      traj: the episodes ``[E, T, ...]``.
      adv: their advantages ``[E, T]``.
      old_mean, old_log_std: the sampling policy's (mean, log_std) on ``traj.obs``.
    """

    traj: Trajectory
    adv: Array
    old_mean: Array
    old_log_std: Array

    def env_steps(self) -> int:
        return self.traj.env_steps()


def sample_episodes(family: TaskFamily, policy_fn, task: Any, key: Array, num_episodes: int,
                    returns: ReturnsConfig) -> Episodes:
    """``num_episodes`` episodes of ``policy_fn`` on ``task``, with advantages and the
    sampling distribution (what an outer step needs of the post-adaptation episodes)."""
    traj = rollout(family, policy_fn, task, key, num_episodes)
    return Episodes(traj, advantages(traj, returns, family.horizon), *policy_fn(traj.obs))


def episodes_kl(outer: Episodes, dist: tuple[Array, Array]) -> Array:
    """mean over tasks of KL(π_old ‖ π) per valid step of the post-adaptation episodes
    ``outer`` (leading task axis), π's ``dist = (mean, log_std)`` on ``outer.traj.obs``:
    the constraint of TRPO's meta-step and PPO's ``kl`` metric."""
    kl = gaussian_kl(outer.old_mean, outer.old_log_std, *dist)
    return jax.vmap(rl.masked_mean)(kl, outer.traj.mask).mean()


def vpg_inner_loss(policy_fn, traj: Trajectory, adv: Array, normalize: bool) -> Array:
    """VPG loss of a fast-update, −mean_{e,t}[log π(a|s) Â], Â optionally normalised."""
    if normalize:
        adv = rl.normalize(adv, traj.mask)
    return rl.vpg_loss(log_prob(policy_fn, traj), adv, traj.mask)


class PGAdaptation(NamedTuple):
    """Policy-gradient fast adaptation of a policy's parameters θ on one task.

    Attributes:
      family: the task family.
      spec: the policy (its context is the task).
      opt: the inner optimizer (:mod:`jaxmeta.meta.inner`), rates bound.
      returns: returns/advantages settings (bound: γ, λ may be traced).
      episodes: episodes sampled per fast-update.
      normalize: normalise advantages in the inner loss.
    """

    family: TaskFamily
    spec: PolicySpec
    opt: optax.GradientTransformation
    returns: ReturnsConfig
    episodes: int
    normalize: bool

    def loss(self, theta: Params, task: Any, traj: Trajectory, adv: Array) -> Array:
        """The inner VPG loss of θ on stored episodes."""
        return vpg_inner_loss(self.spec.fn(theta, task), traj, adv, self.normalize)

    def collect(self, theta: Params, task: Any, key: Array, episodes: int | None = None):
        """``episodes`` episodes of π_θ on ``task`` and their advantages."""
        traj = rollout(self.family, self.spec.fn(theta, task), task, key,
                       episodes or self.episodes)
        return traj, advantages(traj, self.returns, self.family.horizon)

    def run(self, theta: Params, opt_state: Any, task: Any, keys: Array):
        """K = ``len(keys)`` fast-updates, no gradient (``lax.scan``): per step, sample
        episodes with the current θ, compute advantages, take one inner step.

        Returns:
          (θ_{K+1}, (episodes ``[K, E, T, ...]``, advantages ``[K, E, T]``)).
        """

        def body(th, k):
            traj, adv = self.collect(th, task, k)
            th = inner_step(lambda t: self.loss(t, task, traj, adv), self.opt, th, opt_state)
            return th, (traj, adv)

        return jax.lax.scan(body, theta, keys)

    def replay(self, theta: Params, opt_state: Any, task: Any, trajs: Trajectory, advs: Array,
               first_order: bool, remat: bool = False):
        """θ_{K+1} re-computed from the stored episodes, differentiable in θ and the inner
        state, and Σ_k log P(τ_k | θ_k) (the inner episodes' score term)."""

        def step(th, d):
            return inner_step(lambda t: self.loss(t, task, *d), self.opt, th, opt_state,
                              first_order)

        def logp(th, d):
            return jnp.sum(log_prob(self.spec.fn(th, task), d[0]) * d[0].mask)

        return replay(step, theta, (trajs, advs), remat, logp)

    def adapt_returns(self, theta: Params, opt_state: Any, task: Any, key: Array,
                      num_steps: int, eval_episodes: int):
        """Test-time adaptation: ``num_steps`` fast-updates, then ``eval_episodes`` with the
        adapted θ. Returns (θ_adapted, mean return before and after each step ``[K+1]``,
        the same without the action cost or ``None``: see ``protocol.Adapted``)."""
        keys = jax.random.split(key, num_steps + 1)
        theta, (trajs, _) = self.run(theta, opt_state, task, keys[:num_steps])
        final = rollout(self.family, self.spec.fn(theta, task), task, keys[-1], eval_episodes)
        rets = jnp.concatenate([episode_returns(trajs).mean(axis=-1),
                                episode_returns(final).mean()[None]])
        dist = distance_returns(self.family, trajs)
        if dist is not None:
            dist = jnp.concatenate([dist.mean(axis=-1),
                                    distance_returns(self.family, final).mean()[None]])
        return theta, rets, dist
