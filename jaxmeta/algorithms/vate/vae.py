"""VATE's task-inference VAE: the recurrent encoder agent, the decoders, and the ELBO.

Seed 003, Eq. 5: for every start point t the posterior q(m | τ:t) encodes what the trial
has shown so far, and a sample m_t ~ q_t must explain the whole trial
(log p(τ:H | m), Eq. 6: reward and/or transition decoders), at a KL cost to the prior
p(m) = N(0, I) (or, in variBAD's setting, to the previous posterior q_{t−1}):

    ELBO_t = Σ_j log p(x_j | m_t) − β · KL_t,     loss = −mean_{trials, t} ELBO_t.

Reconstruction is summed over the decoded transitions j (the log-likelihood of the
trajectory), and the mean over start points t and over trials makes β's meaning
independent of the batch size and of how many start points are drawn.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmeta.algorithms.rl2.learner import actor_critic_heads, flax_agent
from jaxmeta.algorithms.vate.config import VATEConfig
from jaxmeta.envs.base import TaskFamily
from jaxmeta.meta.trial import AgentOut, RecurrentAgent, Trial, recurrent_inputs, unroll
from jaxmeta.nets import MLP, gaussian_kl

Array = jax.Array
Params = Any
_LOG_2PI = float(np.log(2 * np.pi))


class _VATENet(nn.Module):
    """Encoder GRU → (μ_t, log σ_t); policy and value heads on [s_t, μ_t, σ_t]."""

    gru_size: int
    latent_size: int
    policy_hidden: tuple
    value_hidden: tuple
    action_size: int
    discrete: bool
    act: str
    init_log_std: float
    rl_into_encoder: bool

    @nn.compact
    def __call__(self, carry, obs, prev_vec):
        carry, h = nn.GRUCell(self.gru_size, name="encoder")(carry,
                                                             jnp.concatenate([obs, prev_vec]))
        mu = nn.Dense(self.latent_size, name="mu")(h)
        log_std = jnp.clip(nn.Dense(self.latent_size, name="log_std")(h), -10.0, 2.0)
        belief = jnp.concatenate([mu, jnp.exp(log_std)])
        if not self.rl_into_encoder:
            belief = jax.lax.stop_gradient(belief)
        hyper = jnp.concatenate([obs, belief])
        return carry, AgentOut(*actor_critic_heads(self, hyper), (mu, log_std))


def vate_agent(family: TaskFamily, cfg: VATEConfig) -> RecurrentAgent:
    """The acting half: encoder, policy and value (params under ``"agent"``)."""
    discrete = bool(getattr(family, "discrete_actions", False))
    net = _VATENet(cfg.gru_size, cfg.latent_size, tuple(cfg.policy.hidden_sizes),
                   tuple(cfg.value.hidden_sizes), family.action_size, discrete,
                   cfg.policy.activation, float(np.log(cfg.policy.init_std)),
                   cfg.rl_into_encoder)
    return flax_agent(net, family, cfg.gru_size, discrete)


def reward_levels(family: TaskFamily) -> tuple[float, float]:
    """The two values a Bernoulli reward decoder separates (``family.reward_levels``)."""
    levels = getattr(family, "reward_levels", None)
    if levels is None:
        raise ValueError(f"reward_likelihood='bernoulli' needs a family whose reward takes two "
                         f"values (reward_levels, e.g. gridworld); {family.name} has none: "
                         "use reward_likelihood='gaussian'")
    return float(levels[0]), float(levels[1])


class Decoders(NamedTuple):
    """The decoders as pure functions.

    Attributes:
      init: ``key -> params``.
      nll: ``(params, m [L], obs, action, next_obs, reward) -> −log p(x | m)`` of one
        transition (reward and/or transition terms).
      reward: ``(params, m, obs, action, next_obs) -> the decoded reward`` (its mean, or
        for a Bernoulli decoder the probability of the high level): belief pictures.
    """

    init: Any
    nll: Any
    reward: Any


def decoders(family: TaskFamily, cfg: VATEConfig) -> Decoders:
    """The reward and/or transition decoders of ``cfg.decoder``."""
    use_r = cfg.decoder in ("reward", "both")
    use_s = cfg.decoder in ("transition", "both")
    bern = cfg.reward_likelihood == "bernoulli"
    lo, hi = reward_levels(family) if (bern and use_r) else (0.0, 1.0)
    hidden = tuple(cfg.decoder_hidden_sizes)
    r_net, s_net = MLP(hidden, 1, "relu"), MLP(hidden, family.obs_size, "relu")

    def r_in(m, obs, action, next_obs):
        if cfg.reward_decoder_input == "next_state":
            return jnp.concatenate([next_obs, m])
        return jnp.concatenate([obs, action, next_obs, m])

    def init(key):
        k_r, k_s = jax.random.split(key)
        m0 = np.zeros((cfg.latent_size,), np.float32)
        o0, a0 = np.zeros((family.obs_size,), np.float32), np.zeros((family.action_size,),
                                                                    np.float32)
        p = {}
        if use_r:
            p["reward"] = r_net.init(k_r, r_in(m0, o0, a0, o0))["params"]
        if use_s:
            p["transition"] = s_net.init(k_s, jnp.concatenate([o0, a0, m0]))["params"]
        return p

    def nll(p, m, obs, action, next_obs, reward):
        out = jnp.zeros(())
        if use_r:
            pred = r_net.apply({"params": p["reward"]}, r_in(m, obs, action, next_obs))[0]
            out += (bernoulli_nll(pred, (reward > 0.5 * (lo + hi)).astype(pred.dtype)) if bern
                    else gaussian_nll(pred, reward))
        if use_s:
            pred = s_net.apply({"params": p["transition"]}, jnp.concatenate([obs, action, m]))
            out += gaussian_nll(pred, next_obs).sum()
        return out

    def reward(p, m, obs, action, next_obs):
        pred = r_net.apply({"params": p["reward"]}, r_in(m, obs, action, next_obs))[0]
        return jax.nn.sigmoid(pred) if bern else pred

    return Decoders(init, nll, reward)


def gaussian_nll(mean: Array, x: Array) -> Array:
    """−log N(x; mean, 1), elementwise."""
    return 0.5 * (x - mean) ** 2 + 0.5 * _LOG_2PI


def bernoulli_nll(logit: Array, y: Array) -> Array:
    """−log Bernoulli(y; sigmoid(logit)), elementwise."""
    return optax.sigmoid_binary_cross_entropy(logit, y)


class ELBOTerms(NamedTuple):
    """The VAE loss of one batch and its parts (means over trials and start points)."""

    loss: Array
    reconstruction: Array
    kl: Array


def elbo_terms(mu: Array, log_std: Array, nll: Array, starts: Array, mask: Array,
               decode: str, kl_to: str, kl_weight) -> ELBOTerms:
    """The negative ELBO of one trial stream of N steps, from its parts.

    Args:
      mu, log_std: the posteriors q_t of every step, ``[N, L]``.
      nll: −log p(x_j | m_{starts[k]}) of every decoded transition j for every start point
        k, ``[S, N]``.
      starts: the start points t_k, int ``[S]``.
      mask: valid steps ``[N]``.
      decode: ``all`` (every valid transition) or ``past`` (only j < t_k: what q_t saw).
      kl_to: ``prior`` (KL(q_t ‖ N(0, I))) or ``previous`` (KL(q_t ‖ q_{t−1}), q_{−1} the
        prior).
      kl_weight: β.
    """
    n = mask.shape[0]
    dmask = jnp.broadcast_to(mask, nll.shape)
    if decode == "past":
        dmask = dmask * (jnp.arange(n)[None, :] < starts[:, None])
    recon = jnp.sum(nll * dmask, axis=1)
    m_s, s_s = mu[starts], log_std[starts]
    if kl_to == "prior":
        p_m, p_s = jnp.zeros_like(m_s), jnp.zeros_like(s_s)
    else:
        prev_mu = jnp.concatenate([jnp.zeros_like(mu[:1]), mu[:-1]])
        prev_ls = jnp.concatenate([jnp.zeros_like(log_std[:1]), log_std[:-1]])
        p_m, p_s = prev_mu[starts], prev_ls[starts]
    kl = gaussian_kl(m_s, s_s, p_m, p_s)
    w = mask[starts]
    mean = lambda x: jnp.sum(x * w) / jnp.maximum(w.sum(), 1.0)
    return ELBOTerms(mean(recon + kl_weight * kl), mean(recon), mean(kl))


def elbo(agent: RecurrentAgent, dec: Decoders, params: Params, stream: Trial, key: Array,
         cfg: VATEConfig) -> ELBOTerms:
    """The negative ELBO of one stored trial stream ``[N]`` (``Trial.flat()``): the encoder
    re-run over it, m_t = μ_t + σ_t ε_t with ε from ``key``, every start point (or
    ``cfg.elbo_starts`` drawn uniformly over valid steps), then :func:`elbo_terms`."""
    t = stream.traj
    n = t.reward.shape[0]
    outs = unroll(agent, params["agent"], t.obs, recurrent_inputs(t), t.mask)
    mu, log_std = outs.extra
    k_start, k_eps = jax.random.split(key)
    if cfg.elbo_starts:
        p = t.mask / jnp.maximum(t.mask.sum(), 1.0)
        starts = jax.random.choice(k_start, n, (min(cfg.elbo_starts, n),), replace=False, p=p)
    else:
        starts = jnp.arange(n)
    eps = jax.random.normal(k_eps, (starts.shape[0], mu.shape[-1]), mu.dtype)
    m = mu[starts] + jnp.exp(log_std[starts]) * eps
    per_step = jax.vmap(dec.nll, in_axes=(None, None, 0, 0, 0, 0))
    nll = jax.vmap(lambda mk: per_step(params["decoder"], mk, t.obs, t.action, stream.next_obs,
                                       t.reward))(m)
    return elbo_terms(mu, log_std, nll, starts, t.mask, cfg.decode, cfg.kl_to, cfg.kl_weight)
