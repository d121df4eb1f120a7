"""RL², and the trial learner it shares with VATE/variBAD.

:func:`trial_learner` is every recurrent, context-based method here: sample trials of
``trial_episodes`` episodes on a meta-batch of tasks with a :class:`RecurrentAgent`
(:func:`jaxmeta.meta.trial.trial`), advantages over the whole trial, then PPO epochs on
the clipped surrogate + value loss − entropy bonus, plus an optional :class:`Auxiliary`
loss with its own state (VATE's ELBO over a buffer of trials). RL² is the GRU agent with
no auxiliary. Adaptation is the trial itself: ``adapt(state, task, key, K)`` runs trials
of K + 1 episodes and returns each episode's mean return (episode 1 is the return
"before adaptation", episodes 2.. "after" it), in the keys every learner reports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmeta import config as config_lib
from jaxmeta.algorithms.rl2.config import RL2Config
from jaxmeta.envs.base import TaskFamily
from jaxmeta.meta.outer import ppo_epochs
from jaxmeta.meta.sampling import meta_batch
from jaxmeta.meta.trial import (
    AgentOut,
    Prev,
    RecurrentAgent,
    Trial,
    check_trialable,
    ppo_terms,
    trial,
    trial_gae,
    trials,
)
from jaxmeta.nets import MLP, PolicyHead, action_dist
from jaxmeta.protocol import Adapted, LearnerState, MetaLearner, Sample, check_adapt_steps
from jaxmeta.rollout import distance_returns, episode_returns

Array = jax.Array
Params = Any


class Auxiliary(NamedTuple):
    """A loss trained alongside PPO, with state of its own (kept in ``opt_state["aux"]``).

    Attributes:
      init: ``() -> aux state`` (e.g. an empty trial buffer).
      observe: ``(aux state, flat trials [B, N]) -> aux state`` after each sampling.
      loss: ``(params, aux state, key, bound config) -> (loss, metrics)``.
    """

    init: Callable[[], Any]
    observe: Callable[[Any, Trial], Any]
    loss: Callable[[Params, Any, Array, Any], tuple[Array, dict]]


def episode_means(t: Trial) -> Array:
    """Mean return of each episode of a trial batch ``[..., E, T]`` -> ``[E]``."""
    r = episode_returns(t.traj)
    return r.reshape(-1, r.shape[-1]).mean(0)


def pre_post(by_episode: Array) -> tuple[Array, Array]:
    """Episode 1's return and the mean of episodes 2.. (episode 1's when E = 1)."""
    post = by_episode[1:].mean() if by_episode.shape[0] > 1 else by_episode[0]
    return by_episode[0], post


def trial_learner(family: TaskFamily, cfg: Any, agent: RecurrentAgent,
                  optimizer: Callable[[Any], optax.GradientTransformation],
                  aux: Auxiliary | None = None) -> MetaLearner:
    """A recurrent learner trained by PPO over trials (see the module docstring).

    ``cfg`` has the fields of :class:`RL2Config` (``trial``, ``ppo``, ``value``,
    ``gamma``, ``entropy_coef``); ``optimizer(bound cfg)`` is the optax transform.
    """
    check_trialable(family, cfg.trial.trial_episodes)
    n_trials = cfg.trial.meta_batch_size * cfg.trial.trials_per_task

    def init(key, hyper=None):
        hyper = config_lib.hyper_of(cfg) if hyper is None else hyper
        c = config_lib.bind(cfg, hyper)
        k_agent, key = jax.random.split(key)
        params = agent.init(k_agent)
        opt_state = {"opt": optimizer(c).init(params), "aux": () if aux is None else aux.init()}
        return LearnerState(params, opt_state, key, jnp.zeros((), jnp.int32), hyper)

    def sample(state, key) -> Sample:
        c = config_lib.bind(cfg, state.hyper)
        tasks, keys = meta_batch(family, c.trial.meta_batch_size, *jax.random.split(key))
        batch = jax.vmap(lambda t, k: trials(family, agent, state.params, t, k,
                                             c.trial.trials_per_task,
                                             c.trial.trial_episodes))(tasks, keys)
        return Sample(tasks, batch)

    def flatten(s: Sample) -> Trial:
        """The sampled trials as streams ``[B·M, E·T]``."""
        flat = s.batches.flat()
        return jax.tree.map(lambda x: x.reshape((n_trials,) + x.shape[2:]), flat)

    def advantages(c, flat: Trial) -> Array:
        t = flat.traj
        return jax.vmap(trial_gae, in_axes=(0, 0, 0, None, None))(
            t.reward, flat.value, t.mask, c.gamma, c.value.gae_lambda)

    def total_loss(params, state, flat, adv, aux_state, key):
        c = config_lib.bind(cfg, state.hyper)
        terms, _ = ppo_terms(agent, params, flat, adv, c.ppo.clip)
        loss = terms.policy + c.value.coef * terms.value - c.entropy_coef * terms.entropy
        extra = {"policy_loss": terms.policy, "value_loss": terms.value,
                 "entropy": terms.entropy}
        if aux is not None:
            aux_loss, aux_metrics = aux.loss(params, aux_state, key, c)
            loss, extra = loss + aux_loss, {**extra, **aux_metrics}
        return loss, extra

    def meta_loss(params, state, s: Sample):
        """The loss PPO's first epoch descends on ``s`` (the auxiliary term on the buffer
        as it is in ``state``)."""
        c = config_lib.bind(cfg, state.hyper)
        flat = flatten(s)
        return total_loss(params, state, flat, advantages(c, flat), state.opt_state["aux"],
                          state.key)[0]

    def update(state):
        c = config_lib.bind(cfg, state.hyper)
        key, k_sample, k_aux = jax.random.split(state.key, 3)
        s = sample(state, k_sample)
        flat = flatten(s)
        adv = advantages(c, flat)
        aux_state = state.opt_state["aux"] if aux is None else aux.observe(
            state.opt_state["aux"], flat)
        opt = optimizer(c)
        (params, opt_inner), (losses, gnorms, extra) = ppo_epochs(
            lambda p: total_loss(p, state, flat, adv, aux_state, k_aux), opt, state.params,
            state.opt_state["opt"], c.ppo.epochs, has_aux=True)
        extra = jax.tree.map(lambda x: x[0], extra)  # before the first step, like the loss
        by_episode = episode_means(s.batches)
        pre, post = pre_post(by_episode)
        metrics = {"pre_return": pre, "post_return": post, "returns_by_episode": by_episode,
                   "loss": losses[0], "grad_norm": gnorms[0], **extra}
        return state.advance(params, {"opt": opt_inner, "aux": aux_state}, key), metrics

    def adapt(state, task, key, num_steps: int) -> Adapted:
        """Trials of ``num_steps + 1`` episodes (``trial.eval_trials`` of them): the
        return of each episode, averaged over the trials."""
        check_adapt_steps(num_steps)
        keys = jax.random.split(key, cfg.trial.eval_trials)
        batch, (carry, prev) = jax.vmap(
            lambda k: trial(family, agent, state.params, task, k, num_steps + 1))(keys)
        dist = distance_returns(family, batch.traj)
        first = lambda tree: jax.tree.map(lambda x: x[0], tree)
        memory = {"agent": state.params, "carry": first(carry), "prev": first(prev)}
        return Adapted(memory, episode_means(batch),
                       None if dist is None else dist.reshape(-1, dist.shape[-1]).mean(0))

    def act(params, obs, key, task=None):
        """One action from the agent's memory after a trial (``Adapted.params``), or from
        the trial-start memory given bare agent parameters."""
        if isinstance(params, dict) and "carry" in params:
            p, carry, prev = params["agent"], params["carry"], params["prev"]
        else:
            p, carry, prev = params, agent.carry(), Prev.zeros(family.action_size)
        _, out = agent.step(p, carry, obs, prev)
        return agent.dist.sample(key, out.dist)

    return MetaLearner(init=init, update=update, adapt=adapt, act=act, config=cfg,
                       family=family, sample=sample, meta_loss=meta_loss)


class _RL2Net(nn.Module):
    """GRU over [s_t, a_{t−1}, r_{t−1}, d_{t−1}]; policy and value heads on its state."""

    gru_size: int
    policy_hidden: tuple
    value_hidden: tuple
    action_size: int
    discrete: bool
    act: str
    init_log_std: float

    @nn.compact
    def __call__(self, carry, obs, prev_vec):
        carry, h = nn.GRUCell(self.gru_size, name="gru")(carry, jnp.concatenate([obs, prev_vec]))
        return carry, AgentOut(*actor_critic_heads(self, h))


def actor_critic_heads(net: nn.Module, x: jax.Array) -> tuple[tuple, jax.Array]:
    """The policy head (``name="policy"``) and value MLP (``name="value"``) of a recurrent
    net on features ``x``; call it inside ``net``'s compact ``__call__``. ``net`` has the
    fields ``policy_hidden``, ``value_hidden``, ``action_size``, ``discrete``, ``act`` and
    ``init_log_std``. Returns (the action distribution's parameters, V)."""
    dist = PolicyHead(net.policy_hidden, net.action_size, net.discrete, net.act,
                      net.init_log_std, name="policy")(x)
    return dist, MLP(net.value_hidden, 1, net.act, name="value")(x)[0]


def flax_agent(net: nn.Module, family: TaskFamily, carry_size: int, discrete: bool
               ) -> RecurrentAgent:
    """A :class:`RecurrentAgent` from a flax module called as ``net(carry, obs, prev
    vector) -> (carry, AgentOut)`` with a GRU state of ``carry_size``."""
    zero = lambda: jnp.zeros((carry_size,), jnp.float32)
    prev0 = np.zeros((family.action_size + 2,), np.float32)  # Prev.vector(); nothing runs
    obs0 = np.zeros((family.obs_size,), np.float32)
    return RecurrentAgent(
        init=lambda key: net.init(key, zero(), obs0, prev0)["params"],
        carry=zero,
        step=lambda p, carry, obs, prev: net.apply({"params": p}, carry, obs, prev.vector()),
        dist=action_dist(discrete))


def rl2_agent(family: TaskFamily, cfg: RL2Config) -> RecurrentAgent:
    """RL²'s recurrent agent for ``family`` (categorical head for discrete actions)."""
    discrete = bool(getattr(family, "discrete_actions", False))
    net = _RL2Net(cfg.gru_size, tuple(cfg.policy.hidden_sizes), tuple(cfg.value.hidden_sizes),
                  family.action_size, discrete, cfg.policy.activation,
                  float(np.log(cfg.policy.init_std)))
    return flax_agent(net, family, cfg.gru_size, discrete)


def make_rl2(family: TaskFamily, config: RL2Config | None = None) -> MetaLearner:
    """RL² on ``family``: PPO with Adam (``ppo.lr``) after global-norm clipping."""
    cfg = config or RL2Config()
    check_trialable(family, cfg.trial.trial_episodes)  # before anything is built
    return trial_learner(family, cfg, rl2_agent(family, cfg), lambda c: optax.chain(
        optax.clip_by_global_norm(c.max_grad_norm), optax.adam(c.ppo.lr)))
