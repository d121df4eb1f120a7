"""Meta-gradient RL (Xu, van Hasselt, Silver 2018): an actor-critic whose return
parameters η = (γ, λ) are meta-learned online, through its own update.

One ``update`` (one XLA program) on the batch τ the state carries (collected by θ):

1. θ' = θ + f(τ, θ, η): one A2C step (the configured optimizer) on
   L(τ, θ, η) = −mean log π_θ(a|s)·Â + c_v·mean (G^η − v_θ(s))² − c_H·H(π_θ), with the
   λ-return G^η (:func:`jaxmeta.meta.sampling.gae_from_values` with η's γ and λ,
   bootstrapping from v_θ held constant) and Â = G^η − v_θ (normalised per task).
2. τ' = the next batch, collected by θ' (on freshly drawn training tasks).
3. dη = ∂J̄(τ', θ', η̄)/∂θ' · ∂f(τ, θ, η)/∂η: the policy-gradient objective of θ' on τ'
   with the fixed reference η̄ = (``ref_gamma``, ``ref_lambda``), through the update of
   step 1 by one vector-Jacobian product (``jax.vjp``), with the paper's approximation
   ∂f/∂θ = 0 (θ and the optimizer's moments are constants for dη). η takes an Adam step.
4. τ' is carried to the next update as its τ: every batch is used once as the
   meta-objective's data and once as the next inner update's, as in the paper. ``init``
   collects the first batch (``MetaLearner.init_env_steps``).

Learned η are σ(logit) (``params["eta"]``); the others are read from the config.
With ``eta.conditioned`` the policy and the value see [s, γ, λ]; in J̄ they are
conditioned on η̄ (the paper's η-conditioned agent). In L the bootstrap and baseline
values are constants for θ's gradient (A2C's semi-gradient), not for η: ∂f/∂η is the
exact partial derivative. In J̄ the advantages are constants, as in the paper's
∂J̄/∂θ' = (G^η̄ − v_θ'(s)) ∇_θ' log π_θ'(a|s): dη is that policy gradient times dθ'/dη,
not the derivative of J̄'s value with its baseline (``meta_loss``'s value is that
surrogate; tests/test_metagrad.py checks dη against finite differences with the
advantages held).

``adapt(state, task, key, K)``: K A2C steps on the task with the learned η (fresh
optimizer moments), each from ``eval_episodes`` new episodes; returns the mean return
before and after each step.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxmeta import config as config_lib
from jaxmeta import rl
from jaxmeta.algorithms.metagrad.config import MetaGradConfig
from jaxmeta.distributed import shard_tasks
from jaxmeta.envs.base import TaskFamily
from jaxmeta.meta import policy
from jaxmeta.meta.sampling import gae_from_values, meta_batch
from jaxmeta.nets import gaussian_entropy, gaussian_log_prob, value_network
from jaxmeta.protocol import Adapted, LearnerState, MetaLearner, Sample, check_adapt_steps
from jaxmeta.rollout import Trajectory, episode_returns, rollout

Array = jax.Array
Params = Any

# The inner optimizers f is differentiated through. Adam's √v̂ has an infinite derivative
# at v̂ = 0 (a parameter whose gradient is exactly 0 so far, e.g. behind a dead ReLU):
# eps_root moves it inside the root, as optax recommends for meta-learning through Adam;
# RMSProp's ε is already inside.
OPTIMIZERS = {"sgd": optax.sgd, "adam": functools.partial(optax.adam, eps_root=1e-8),
              "rmsprop": optax.rmsprop}


def _logit(p):
    return jnp.log(p) - jnp.log1p(-p)


def make_metagrad(family: TaskFamily, config: MetaGradConfig | None = None) -> MetaLearner:
    """Meta-gradient A2C on ``family`` (see the module docstring)."""
    cfg = config or MetaGradConfig()
    learned = tuple(n for n in ("gamma", "lambda") if n in cfg.eta.learn)
    task_size = family.task_feature_size if cfg.observe_task else 0
    eta_size = 2 if cfg.eta.conditioned else 0

    def features(context):
        task, eta_in = context
        parts = ([family.task_features(task)] if cfg.observe_task else []) + (
            [eta_in] if cfg.eta.conditioned else [])
        return jnp.concatenate(parts) if parts else jnp.zeros((0,))

    spec = policy.feature_policy(family, cfg.policy, task_size + eta_size, features)
    value = value_network(spec.input_size, cfg.ac.value_hidden_sizes, cfg.ac.value_activation)

    def eta_of(eta_params, c) -> tuple[Array, Array]:
        """(γ, λ) of the inner update: σ(logit) for learned ones, else the config's."""
        g = jax.nn.sigmoid(eta_params["gamma"]) if "gamma" in learned else c.eta.init_gamma
        lam = (jax.nn.sigmoid(eta_params["lambda"]) if "lambda" in learned
               else c.eta.init_lambda)
        return jnp.asarray(g), jnp.asarray(lam)

    def terms(net, task, traj: Trajectory, gamma, lam):
        """(policy-gradient loss, value loss, entropy) of ``net`` on one task's episodes
        ``[E, T]`` with return parameters (γ, λ) (also the conditioning input)."""
        ctx = (task, jnp.stack([gamma, lam]))
        mean, log_std = spec.fn(net["policy"], ctx)(traj.obs)
        logp = gaussian_log_prob(mean, log_std, traj.action)
        x = spec.condition(traj.obs, ctx)
        v = value.apply(net["value"], x)
        # the bootstrap and baseline values: constants for θ's gradient, but they see the
        # conditioning η (so ∂f/∂η is the exact partial derivative)
        v_const = value.apply(jax.lax.stop_gradient(net["value"]), x)
        adv = gae_from_values(traj, v_const, gamma, lam)
        target = adv + v_const  # the λ-return G^η
        if cfg.ac.normalize_advantages:
            adv = rl.normalize(adv, traj.mask)
        pg = -rl.masked_mean(logp * adv, traj.mask)
        vl = rl.masked_mean((target - v) ** 2, traj.mask)
        ent = jnp.mean(gaussian_entropy(log_std))
        return pg, vl, ent

    def inner_loss(net, eta_params, tasks, trajs, c):
        gamma, lam = eta_of(eta_params, c)
        pg, vl, ent = jax.vmap(lambda t, tr: terms(net, t, tr, gamma, lam))(tasks, trajs)
        pg, vl, ent = pg.mean(), vl.mean(), ent.mean()
        loss = pg + c.ac.value_coef * vl - c.ac.entropy_coef * ent
        return loss, {"pg_loss": pg, "value_loss": vl, "entropy": ent}

    def inner_update(net, opt_state, eta_params, tasks, trajs, c):
        """θ' = θ + f(τ, θ, η): one step of the actor-critic's optimizer."""
        grads, aux = jax.grad(inner_loss, has_aux=True)(net, eta_params, tasks, trajs, c)
        updates, opt_state = OPTIMIZERS[cfg.ac.optimizer](c.ac.lr).update(
            grads, opt_state, net)
        return optax.apply_updates(net, updates), (opt_state, aux)

    def meta_objective(net, tasks, trajs, c):
        """−J̄(τ', θ', η̄): the policy-gradient loss of θ' with the reference η̄."""
        gamma, lam = jnp.asarray(c.eta.ref_gamma), jnp.asarray(c.eta.ref_lambda)
        return jax.vmap(lambda t, tr: terms(net, t, tr, gamma, lam)[0])(tasks, trajs).mean()

    def collect(net, eta_params, key, c):
        """A batch τ: ``ac.tasks`` training tasks × ``ac.episodes`` episodes of π_net."""
        eta_in = jnp.stack(eta_of(eta_params, c))
        k_tasks, k_roll = jax.random.split(key)
        tasks, keys = meta_batch(family, cfg.ac.tasks, k_tasks, k_roll)
        trajs = jax.vmap(lambda t, k: rollout(family, spec.fn(net["policy"], (t, eta_in)), t,
                                              k, cfg.ac.episodes))(tasks, keys)
        return tasks, shard_tasks(trajs)

    def meta_lr(c):
        return optax.adam(c.eta.lr)

    def init(key, hyper=None):
        hyper = config_lib.hyper_of(cfg) if hyper is None else hyper
        c = config_lib.bind(cfg, hyper)
        k_pol, k_val, k_batch, key = jax.random.split(key, 4)
        net = {"policy": spec.policy.init(k_pol), "value": value.init(k_val)}
        eta = {n: _logit(jnp.asarray(getattr(c.eta, f"init_{n}"), jnp.float32))
               for n in learned}
        tasks, trajs = collect(net, eta, k_batch, c)
        opt_state = {"ac": OPTIMIZERS[cfg.ac.optimizer](c.ac.lr).init(net),
                     "eta": meta_lr(c).init(eta), "batch": (tasks, trajs)}
        return LearnerState({**net, "eta": eta}, opt_state, key, jnp.zeros((), jnp.int32),
                            hyper)

    def update(state):
        c = config_lib.bind(cfg, state.hyper)
        key, k_batch = jax.random.split(state.key)
        net = {"policy": state.params["policy"], "value": state.params["value"]}
        eta = state.params["eta"]
        tasks, trajs = state.opt_state["batch"]
        new_net, vjp_eta, (ac_opt, aux) = jax.vjp(
            lambda e: inner_update(net, state.opt_state["ac"], e, tasks, trajs, c), eta,
            has_aux=True)
        new_net = jax.lax.stop_gradient(new_net)
        tasks2, trajs2 = collect(new_net, eta, k_batch, c)
        if learned:
            meta_loss, g_net = jax.value_and_grad(meta_objective)(new_net, tasks2, trajs2, c)
            (g_eta,) = vjp_eta(g_net)
        else:  # the fixed-η baseline: the same learner, η does not move
            meta_loss, g_eta = meta_objective(new_net, tasks2, trajs2, c), {}
        updates, eta_opt = meta_lr(c).update(g_eta, state.opt_state["eta"], eta)
        eta = optax.apply_updates(eta, updates)
        gamma, lam = eta_of(eta, c)
        metrics = {"pre_return": episode_returns(trajs2).mean(), "gamma": gamma,
                   "lambda": lam, "meta_loss": meta_loss,
                   "eta_grad_norm": optax.tree.norm(g_eta), **aux}
        opt_state = {"ac": ac_opt, "eta": eta_opt, "batch": (tasks2, trajs2)}
        return state.advance({**new_net, "eta": eta}, opt_state, key), metrics

    def meta_loss(params, state, s: Sample):
        """L̄ = −J̄(τ', θ'(η), η̄) on ``s`` (τ'), θ' = θ + f(τ, θ, η) on the state's batch τ,
        as a function of η = ``params["eta"]`` (θ is a constant: ∂f/∂θ = 0): its gradient
        is the dη that ``update`` descends."""
        c = config_lib.bind(cfg, state.hyper)
        net = jax.lax.stop_gradient({"policy": params["policy"], "value": params["value"]})
        tasks, trajs = state.opt_state["batch"]
        new_net, _ = inner_update(net, state.opt_state["ac"], params["eta"], tasks, trajs, c)
        return meta_objective(new_net, s.tasks, s.batches, c)

    def adapt(state, task, key, num_steps: int) -> Adapted:
        check_adapt_steps(num_steps)
        c = config_lib.bind(cfg, state.hyper)
        eta = state.params["eta"]
        eta_in = jnp.stack(eta_of(eta, c))
        opt = OPTIMIZERS[cfg.ac.optimizer](c.ac.lr)
        one = jax.tree.map(lambda x: x[None], task)

        def episodes(net, k):
            return rollout(family, spec.fn(net["policy"], (task, eta_in)), task, k,
                           cfg.ac.eval_episodes)

        def step(carry, k):
            net, opt_state = carry
            traj = episodes(net, k)
            net, (opt_state, _) = inner_update(net, opt_state, eta, one,
                                               jax.tree.map(lambda x: x[None], traj), c)
            return (net, opt_state), episode_returns(traj).mean()

        net = {"policy": state.params["policy"], "value": state.params["value"]}
        keys = jax.random.split(key, num_steps + 1)
        (net, _), rets = jax.lax.scan(step, (net, opt.init(net)), keys[:num_steps])
        last = episode_returns(episodes(net, keys[-1])).mean()
        return Adapted({**net, "eta_in": eta_in}, jnp.concatenate([rets, last[None]]))

    def act(params, obs, key, task=None):
        """An action of the policy in ``params``: ``adapt(...).params``, which carry the
        (γ, λ) an η-conditioned policy sees (``eta_in``)."""
        if cfg.eta.conditioned and "eta_in" not in params:
            raise ValueError("an η-conditioned metagrad policy acts from adapt(...).params, "
                             "which carry the (γ, λ) it sees (eta_in); these params have none")
        eta_in = params.get("eta_in", jnp.zeros((2,)))
        return policy.act(spec.fn(params["policy"], (task, eta_in)), obs, key)

    def sample(state, key) -> Sample:
        c = config_lib.bind(cfg, state.hyper)
        return Sample(*collect(state.params, state.params["eta"], key, c))

    return MetaLearner(init=init, update=update, adapt=adapt, act=act, config=cfg,
                       family=family, sample=sample, meta_loss=meta_loss,
                       init_env_steps=cfg.ac.tasks * cfg.ac.episodes * family.horizon)
