"""VATE / variBAD: RL²'s trial learner with a task-inference VAE as its auxiliary loss.

Parameters: ``{"agent": encoder + policy + value, "decoder": ...}``. Each update samples
trials with the agent (the policy acting on [s_t, μ_t, σ_t]), adds them to a
:class:`~jaxmeta.meta.buffer.RingBuffer` of trial streams (kept in ``opt_state["aux"]``),
and takes ``ppo.epochs`` steps on PPO's loss + ``elbo_coef`` × the negative ELBO of
``vae_batch_trials`` buffered trials (seed 003, Eq. 7). The encoder and decoders move at
``vae_lr``, the policy and critic at ``ppo.lr`` (two Adams after one global-norm clip).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import traverse_util

from jaxmeta.algorithms.rl2.learner import Auxiliary, trial_learner
from jaxmeta.algorithms.vate import vae
from jaxmeta.algorithms.vate.config import VATEConfig
from jaxmeta.envs.base import TaskFamily
from jaxmeta.meta import buffer
from jaxmeta.meta.trial import RecurrentAgent, Trial, check_trialable, trial
from jaxmeta.protocol import MetaLearner

_VAE_PARTS = ("encoder", "mu", "log_std")


def _labels(params):
    """``vae`` for the encoder and decoders, ``rl`` for the policy and value heads."""
    flat = traverse_util.flatten_dict(params)
    return traverse_util.unflatten_dict({
        k: "vae" if k[0] == "decoder" or k[1] in _VAE_PARTS else "rl" for k in flat})


def _stream_shape(family: TaskFamily, agent: RecurrentAgent, episodes: int) -> Trial:
    """The shapes of one trial stream (``Trial.flat()``), traced from the rollout itself
    (nothing runs)."""

    def one(key):
        task = jax.tree.map(lambda x: x[0], family.sample_tasks(key, 1))
        return trial(family, agent, agent.init(key), task, key, episodes)[0].flat()

    return jax.eval_shape(one, jax.random.PRNGKey(0))


def make_vate(family: TaskFamily, config: VATEConfig | None = None) -> MetaLearner:
    """VATE on ``family`` (the ``varibad`` and ablation presets are the same builder)."""
    cfg = config or VATEConfig()
    check_trialable(family, cfg.trial.trial_episodes)  # before anything is built
    acting = vae.vate_agent(family, cfg)
    dec = vae.decoders(family, cfg)
    agent = RecurrentAgent(
        init=lambda key: {"agent": acting.init(jax.random.fold_in(key, 0)),
                          "decoder": dec.init(jax.random.fold_in(key, 1))},
        carry=acting.carry,
        step=lambda p, carry, obs, prev: acting.step(p["agent"], carry, obs, prev),
        dist=acting.dist)

    def aux_loss(params, buf, key, c):
        k_pick, k_elbo = jax.random.split(key)
        batch = buffer.sample(buf, k_pick, c.vae_batch_trials)
        keys = jax.random.split(k_elbo, c.vae_batch_trials)
        terms = jax.vmap(lambda s, k: vae.elbo(acting, dec, params, s, k, c))(batch, keys)
        terms = jax.tree.map(jnp.mean, terms)
        return c.elbo_coef * terms.loss, {"elbo_loss": terms.loss,
                                          "reconstruction": terms.reconstruction,
                                          "kl": terms.kl}

    aux = Auxiliary(
        init=lambda: buffer.init(_stream_shape(family, agent, cfg.trial.trial_episodes),
                                 cfg.vae_buffer_trials),
        observe=buffer.add, loss=aux_loss)

    def optimizer(c):
        return optax.chain(optax.clip_by_global_norm(c.max_grad_norm), optax.multi_transform(
            {"rl": optax.adam(c.ppo.lr), "vae": optax.adam(c.vae_lr)}, _labels))

    return trial_learner(family, cfg, agent, optimizer, aux)


def decoded_rewards(learner: MetaLearner, params, mu: jax.Array, obs: jax.Array,
                    action: jax.Array, next_obs: jax.Array) -> jax.Array:
    """The decoded reward (or, for a Bernoulli decoder, the probability of the high
    reward) of transitions ``[C, ...]`` under the latent ``mu`` (a belief picture: every
    cell of the gridworld as ``next_obs``)."""
    dec = vae.decoders(learner.family, learner.config)
    return jax.vmap(lambda o, a, n: dec.reward(params["decoder"], mu, o, a, n))(
        obs, action, next_obs)
