"""The off-policy learner SAC and PEARL share: fixed training tasks with a device replay
buffer each, "collect, then N gradient steps" as one program per update.

:func:`offpolicy_learner` is soft actor-critic (:mod:`jaxmeta.rl.sac`) whose actor and
critics read ``[s, z]``. With no :class:`ContextEncoder`, z is empty and this is SAC on a
fixed set of tasks (one task: single-task SAC). With one (PEARL), z is a sample of the
posterior q(z | c) over a context c of transitions of the same task; the critic's loss
trains the encoder (plus a KL to the unit prior), the actor sees z without gradient.

* ``init`` draws the ``num_train_tasks`` training tasks and fills every task's buffers
  with ``initial_steps`` collected with z from the prior (counted in
  ``MetaLearner.init_env_steps``).
* ``update``: for ``tasks_per_iteration`` tasks, empty the encoder buffer and collect
  ``prior_steps`` (z ~ prior), ``posterior_steps`` and ``extra_posterior_steps`` (z ~
  q(z | context drawn from the encoder buffer), redrawn every episode; the extra steps
  go to the RL buffer only); then ``train_steps`` SAC steps, each on transitions
  and contexts of ``meta_batch_size`` distinct tasks.
* ``adapt(state, task, key, K)``: PEARL's test protocol, K + 1 episodes: the first with
  z from the prior, each later one with z from the posterior given every transition of
  the task so far (posterior sampling); actions are the policy's mean with
  ``eval_deterministic``. Episode 1 is ``pre_adapt_return``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmeta import config as config_lib
from jaxmeta.algorithms.sac.config import SACConfig
from jaxmeta.envs.base import TaskFamily
from jaxmeta.meta import buffer
from jaxmeta.nets import MLP
from jaxmeta.protocol import Adapted, LearnerState, MetaLearner, Sample, check_adapt_steps
from jaxmeta.rl import sac
from jaxmeta.rl.losses import masked_mean

Array = jax.Array
Params = Any


class Transition(NamedTuple):
    """Transitions (leading axes free: ``[T]`` for an episode, ``[capacity]`` stored).

    ``action`` is the policy's squashed action in [−1, 1] (the env receives it scaled to
    the family's :meth:`~jaxmeta.envs.base.TaskFamily.action_bounds`); ``terminal`` marks
    a true end of the episode, not the time limit (no bootstrapping through it);
    ``mask`` is 0 on the padded steps after one; ``critic_reward`` is the reward the
    Bellman target reads (``reward`` itself unless ``critic_reward="dense"``).
    """

    obs: Array
    action: Array
    reward: Array
    next_obs: Array
    terminal: Array
    mask: Array
    critic_reward: Array

    def env_steps(self) -> int:
        """Simulated env steps held here (padded steps included, as for trajectories)."""
        return math.prod(self.reward.shape)


class ContextEncoder(NamedTuple):
    """What infers the task latent z from a set of transitions (PEARL's encoder).

    Attributes:
      latent_size: the size of z.
      context_size: transitions per task in each training step's context.
      init: ``key -> encoder parameters``.
      posterior: ``(params, context [N], weight [N]) -> (mean [L], var [L])`` of q(z | c)
        over the transitions with weight 1 (the prior N(0, I) when none has).
      kl_weight: ``bound config -> β`` of the KL term.
      lr: ``bound config -> the encoder's Adam rate``.
    """

    latent_size: int
    context_size: int
    init: Callable[[Array], Params]
    posterior: Callable[[Params, Transition, Array], tuple[Array, Array]]
    kl_weight: Callable[[Any], Array]
    lr: Callable[[Any], Array]


def kl_to_unit(mean: Array, var: Array) -> Array:
    """KL(N(mean, diag var) ‖ N(0, I)), summed over the last axis."""
    return 0.5 * jnp.sum(var + mean**2 - 1.0 - jnp.log(var), axis=-1)


def check_offpolicy(family: TaskFamily, cfg: SACConfig) -> None:
    """Refuses, before anything is traced, a family SAC cannot act in (discrete actions)
    and step counts that are not whole episodes or do not fit the buffers."""
    if getattr(family, "discrete_actions", False) or family.action_bounds() is None:
        raise ValueError(f"{family.name} has discrete actions; SAC/PEARL need a continuous "
                         "action box (TaskFamily.action_bounds)")
    h, col = family.horizon, cfg.collect
    for name in ("initial_steps", "prior_steps", "posterior_steps", "extra_posterior_steps"):
        steps = getattr(col, name)
        if steps % h:
            raise ValueError(f"{name}={steps} is not a whole number of episodes of "
                             f"{family.name} (horizon {h})")
        buffer.check_fits(col.capacity, steps, f"{name} (capacity)")
    if col.prior_steps + col.posterior_steps + col.extra_posterior_steps == 0:
        raise ValueError("prior_steps, posterior_steps and extra_posterior_steps are all 0: "
                         "an update would collect nothing")


def _take(tree: Any, rows: Array) -> Any:
    return jax.tree.map(lambda x: x[rows], tree)


def _put(tree: Any, rows: Array, part: Any) -> Any:
    return jax.tree.map(lambda x, p: x.at[rows].set(p), tree, part)


def _flat(tr: Transition) -> Transition:
    """Episodes ``[E, T]`` as one batch ``[E·T]``."""
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), tr)


class SACNets(NamedTuple):
    """The actor and the twin critics of a :class:`~jaxmeta.algorithms.sac.config.
    SoftACConfig` for ``action_size`` actions, on inputs ``x`` (``[s]``, or ``[s, z]``).

    Attributes:
      init_actor: ``(key, x_size) -> actor parameters``.
      init_critics: ``(key, x_size) -> the two critics' parameters, stacked``.
      policy: ``(actor, x, key, deterministic=False) -> (a in [−1, 1], log π(a))``; the
        deterministic action is tanh of the mean.
      critics: ``(critics, x, a) -> [2, ...]`` Q-values.
    """

    init_actor: Callable[[Array, int], Params]
    init_critics: Callable[[Array, int], Params]
    policy: Callable[..., tuple[Array, Array]]
    critics: Callable[[Params, Array, Array], Array]


def sac_nets(sac_cfg: Any, action_size: int) -> SACNets:
    """MLPs of ``sac_cfg.hidden_sizes`` (and its activation): the tanh-Gaussian actor
    (mean and clamped log σ heads) and two critics on [x, a]."""
    hidden, act = tuple(sac_cfg.hidden_sizes), sac_cfg.activation
    actor_net = MLP(hidden, 2 * action_size, act)
    critic_net = MLP(hidden, 1, act)

    def policy(actor, x, key, deterministic=False):
        out = actor_net.apply(actor, x)
        mean = out[..., :action_size]
        a, logp = sac.tanh_gaussian_sample(key, mean, sac.squash_log_std(out[..., action_size:]))
        return (jnp.tanh(mean), logp) if deterministic else (a, logp)

    def critics(critic, x, a):
        xa = jnp.concatenate([x, a], -1)
        return jax.vmap(lambda p: critic_net.apply(p, xa)[..., 0])(critic)

    def init_critics(key, x_size):
        # lax.map, not vmap: a vmapped orthogonal initialiser is a batched QR, which jaxlib's
        # CPU LAPACK kernels split into tasks on XLA's intra-op pool and wait for from
        # inside it; two at once on a 2-thread pool deadlock (see runs.compiled_init)
        return jax.lax.map(lambda k: critic_net.init(k, jnp.zeros((x_size + action_size,))),
                           jax.random.split(key, 2))

    return SACNets(lambda key, x_size: actor_net.init(key, jnp.zeros((x_size,))),
                   init_critics, policy, critics)


def offpolicy_learner(family: TaskFamily, cfg: Any, encoder: ContextEncoder | None = None
                      ) -> MetaLearner:
    """SAC (``encoder=None``) or PEARL on ``family`` (see the module docstring); ``cfg``
    has the fields of :class:`SACConfig`."""
    check_offpolicy(family, cfg)
    col, h, a_size = cfg.collect, family.horizon, family.action_size
    latent = 0 if encoder is None else encoder.latent_size
    low, high = (np.asarray(b, np.float32) for b in family.action_bounds())
    n_initial, n_prior, n_post, n_extra = (
        s // h for s in (col.initial_steps, col.prior_steps, col.posterior_steps,
                         col.extra_posterior_steps))
    nets = sac_nets(cfg.sac, a_size)
    policy, critics = nets.policy, nets.critics
    target_entropy = -cfg.sac.target_entropy_scale * a_size
    dense = cfg.sac.critic_reward == "dense"

    def episode(actor, task, key, z, deterministic=False) -> Transition:
        k_reset, k_act = jax.random.split(key)

        def body(carry, k):
            st, alive = carry
            a, _ = policy(actor, jnp.concatenate([st.obs, z]), k, deterministic)
            nxt = family.step(st, low + 0.5 * (a + 1.0) * (high - low), task)
            terminal = nxt.done * (nxt.t < h)
            r_critic = family.dense_reward(nxt, task) if dense else nxt.reward
            tr = Transition(st.obs, a, nxt.reward * alive, nxt.obs, terminal * alive, alive,
                            r_critic * alive)
            return (nxt, alive * (1.0 - nxt.done)), tr

        _, tr = jax.lax.scan(body, (family.reset(k_reset, task), jnp.ones(())),
                             jax.random.split(k_act, h))
        return jax.tree.map(jax.lax.stop_gradient, tr)

    def add_enc(enc, tr):  # the encoder's buffer (none without an encoder)
        return buffer.add(enc, tr) if encoder else enc

    def prior_z(key, n):
        return jax.random.normal(key, (n, latent))

    def posterior_z(params, enc_buf, key):
        k_ctx, k_z = jax.random.split(key)
        ctx = buffer.sample(enc_buf, k_ctx, encoder.context_size)
        mean, var = encoder.posterior(params["encoder"], ctx, ctx.mask)
        return mean + jnp.sqrt(var) * jax.random.normal(k_z, mean.shape)

    def prior_episodes(params, task, key, n):
        k_z, k_ep = jax.random.split(key)
        return jax.vmap(lambda z, k: episode(params["actor"], task, k, z))(
            prior_z(k_z, n), jax.random.split(k_ep, n))

    def posterior_episodes(params, rl, enc, task, key, n, into_encoder):
        def body(bufs, k):
            rl, enc = bufs
            k_z, k_ep = jax.random.split(k)
            z = jnp.zeros((0,)) if encoder is None else posterior_z(params, enc, k_z)
            tr = episode(params["actor"], task, k_ep, z)
            return (buffer.add(rl, tr), add_enc(enc, tr) if into_encoder else enc), tr
        return jax.lax.scan(body, (rl, enc), jax.random.split(key, n))

    def collect_task(params, rl, enc, task, key):
        """One task's data of one update: (buffers, (prior, posterior, extra) episodes)."""
        k_prior, k_post, k_extra = jax.random.split(key, 3)
        enc = buffer.clear(enc) if encoder else enc
        prior = prior_episodes(params, task, k_prior, n_prior)
        rl, enc = buffer.add(rl, _flat(prior)), add_enc(enc, _flat(prior))
        (rl, enc), post = posterior_episodes(params, rl, enc, task, k_post, n_post, True)
        (rl, enc), extra = posterior_episodes(params, rl, enc, task, k_extra, n_extra, False)
        return rl, enc, (prior, post, extra)

    def example_transition():
        o = jnp.zeros((family.obs_size,))
        return Transition(o, jnp.zeros((a_size,)), jnp.zeros(()), o, jnp.zeros(()),
                          jnp.zeros(()), jnp.zeros(()))

    def init_params(key):
        k_a, k_q, k_e = jax.random.split(key, 3)
        x_size = family.obs_size + latent
        critic = nets.init_critics(k_q, x_size)
        params = {"actor": nets.init_actor(k_a, x_size), "critic": critic, "target": critic,
                  "log_alpha": jnp.asarray(np.log(cfg.sac.init_alpha), jnp.float32)}
        if encoder is not None:
            params["encoder"] = encoder.init(k_e)
        return params

    def optimizer(c):
        rates = {"actor": c.sac.actor_lr, "critic": c.sac.critic_lr,
                 "log_alpha": c.sac.alpha_lr if cfg.sac.learn_alpha else None,
                 "encoder": None if encoder is None else encoder.lr(c)}
        labels = lambda p: {k: jax.tree.map(lambda _, k=k: k if rates.get(k) is not None
                                             else "frozen", v) for k, v in p.items()}
        parts = {k: optax.adam(r) for k, r in rates.items() if r is not None}
        return optax.multi_transform({**parts, "frozen": optax.set_to_zero()}, labels)

    def init(key, hyper=None):
        hyper = config_lib.hyper_of(cfg) if hyper is None else hyper
        c = config_lib.bind(cfg, hyper)
        k_params, k_tasks, k_collect, key = jax.random.split(key, 4)
        params = init_params(k_params)
        tasks = family.sample_tasks(k_tasks, col.num_train_tasks, "train")
        one = buffer.init(example_transition(), col.capacity)
        enc_cap = max(col.initial_steps, col.prior_steps + col.posterior_steps, h)
        enc_one = buffer.init(example_transition(), enc_cap) if encoder else ()
        stack = lambda b: jax.tree.map(
            lambda x: jnp.broadcast_to(x, (col.num_train_tasks,) + x.shape), b)
        rl, enc = stack(one), stack(enc_one)
        if n_initial:
            eps = jax.vmap(lambda t, k: prior_episodes(params, t, k, n_initial))(
                tasks, jax.random.split(k_collect, col.num_train_tasks))
            flat = jax.vmap(_flat)(eps)
            rl = jax.vmap(buffer.add)(rl, flat)
            enc = jax.vmap(buffer.add)(enc, flat) if encoder else enc
        memory = {"tasks": tasks, "rl": rl, "enc": enc}
        opt_state = {"opt": optimizer(c).init(params), "memory": memory}
        return LearnerState(params, opt_state, key, jnp.zeros((), jnp.int32), hyper)

    def collect(state, key):
        """The collection half of ``update``: (new memory, what was collected)."""
        mem = state.opt_state["memory"]
        k_rows, k_tasks = jax.random.split(key)
        rows = jax.random.choice(k_rows, col.num_train_tasks, (col.tasks_per_iteration,),
                                 replace=False)
        tasks = _take(mem["tasks"], rows)
        enc = _take(mem["enc"], rows) if encoder else jnp.zeros((rows.shape[0],))
        rl, enc_new, eps = jax.vmap(lambda r, e, t, k: collect_task(state.params, r, e, t, k))(
            _take(mem["rl"], rows), enc, tasks, jax.random.split(k_tasks, rows.shape[0]))
        mem = {**mem, "rl": _put(mem["rl"], rows, rl),
               "enc": _put(mem["enc"], rows, enc_new) if encoder else mem["enc"]}
        return mem, Sample(tasks, eps)

    def sample(state, key) -> Sample:
        return collect(state, key)[1]

    def losses(params, mem, key, c):
        m, b = col.meta_batch_size, cfg.sac.batch_size
        k_rows, k_rl, k_ctx, k_z, k_next, k_pi = jax.random.split(key, 6)
        rows = jax.random.choice(k_rows, col.num_train_tasks, (m,), replace=False)
        rl = buffer.sample_rows(mem["rl"], k_rl, rows, b)  # [M, B]
        metrics = {}
        if encoder is None:
            z, kl = jnp.zeros((m, 0)), jnp.zeros(())
        else:
            ctx = buffer.sample_rows(mem["enc"], k_ctx, rows, encoder.context_size)
            mean, var = jax.vmap(encoder.posterior, (None, 0, 0))(params["encoder"], ctx,
                                                                  ctx.mask)
            z = mean + jnp.sqrt(var) * jax.random.normal(k_z, mean.shape)
            kl = jnp.sum(kl_to_unit(mean, var))  # summed over tasks, as PEARL does
            metrics = {"kl": kl, "posterior_std": jnp.mean(jnp.sqrt(var))}
        flat = lambda x: x.reshape((m * b,) + x.shape[2:])
        t = jax.tree.map(flat, rl)
        zb = flat(jnp.broadcast_to(z[:, None], (m, b, latent)))
        zs = jax.lax.stop_gradient(zb)
        x, x_next, x_pi = (jnp.concatenate(p, -1) for p in
                           ((t.obs, zb), (t.next_obs, zs), (t.obs, zs)))
        alpha = jnp.exp(params["log_alpha"])
        sg = jax.lax.stop_gradient
        a_next, logp_next = policy(sg(params["actor"]), x_next, k_next)
        y = sac.soft_target(t.critic_reward, t.terminal,
                            critics(params["target"], x_next, a_next), logp_next, sg(alpha),
                            c.sac.gamma, c.sac.reward_scale)
        q = critics(params["critic"], x, t.action)
        critic_loss = sac.critic_loss(q, y, t.mask)
        a_pi, logp = policy(params["actor"], x_pi, k_pi)
        actor_loss = sac.actor_loss(logp, critics(sg(params["critic"]), x_pi, a_pi), alpha,
                                    t.mask)
        alpha_loss = (sac.temperature_loss(params["log_alpha"], logp, target_entropy, t.mask)
                      if cfg.sac.learn_alpha else jnp.zeros(()))
        kl_term = jnp.zeros(()) if encoder is None else encoder.kl_weight(c) * kl
        loss = critic_loss + actor_loss + alpha_loss + kl_term
        return loss, {"critic_loss": critic_loss, "actor_loss": actor_loss,
                      "alpha_loss": alpha_loss, "alpha": alpha, "q_mean": jnp.mean(q),
                      "entropy": -masked_mean(logp, t.mask), **metrics}

    def update(state):
        c = config_lib.bind(cfg, state.hyper)
        key, k_collect, k_train = jax.random.split(state.key, 3)
        mem, s = collect(state, k_collect)
        opt = optimizer(c)

        def step(carry, k):
            params, opt_state = carry
            (loss, m), g = jax.value_and_grad(losses, has_aux=True)(params, mem, k, c)
            upd, opt_state = opt.update(g, opt_state, params)
            params = optax.apply_updates(params, upd)
            params = {**params, "target": sac.polyak(params["target"], params["critic"],
                                                       c.sac.tau)}
            return (params, opt_state), {"loss": loss, **m}

        (params, opt_state), ms = jax.lax.scan(
            step, (state.params, state.opt_state["opt"]), jax.random.split(k_train,
                                                                           col.train_steps))
        prior, post, extra = s.batches
        ret = lambda tr: jnp.sum(tr.reward * tr.mask, -1).mean()
        metrics = {**jax.tree.map(jnp.mean, ms), "pre_return": ret(prior)}
        # the posterior episodes' return (the prior's when the schedule has none)
        metrics["post_return"] = jnp.concatenate(
            [jnp.sum(e.reward * e.mask, -1).reshape(-1) for e in (post, extra)]).mean(
        ) if n_post + n_extra else metrics["pre_return"]
        return state.advance(params, {"opt": opt_state, "memory": mem}, key), metrics

    def adapt(state, task, key, num_steps: int) -> Adapted:
        check_adapt_steps(num_steps)
        n_eps = num_steps + 1
        params = state.params
        seen = jax.tree.map(lambda x: jnp.zeros((n_eps, h) + x.shape, x.dtype),
                            example_transition())

        def posterior(seen, filled):
            if encoder is None:
                return jnp.zeros((0,)), jnp.ones((0,))
            weight = (filled[:, None] * seen.mask).reshape(-1)
            return encoder.posterior(params["encoder"], _flat(seen), weight)

        def body(seen, x):
            e, k = x
            k_z, k_ep = jax.random.split(k)
            mean, var = posterior(seen, (jnp.arange(n_eps) < e).astype(jnp.float32))
            z = mean + jnp.sqrt(var) * jax.random.normal(k_z, mean.shape)
            tr = episode(params["actor"], task, k_ep, z, cfg.eval_deterministic)
            seen = jax.tree.map(lambda s, v: s.at[e].set(v), seen, tr)
            return seen, jnp.sum(tr.reward * tr.mask)

        seen, returns = jax.lax.scan(body, seen, (jnp.arange(n_eps),
                                                  jax.random.split(key, n_eps)))
        mean, _ = posterior(seen, jnp.ones((n_eps,)))
        return Adapted({"agent": params, "z": mean}, returns)

    def act(params, obs, key, task=None):
        """An action (scaled to the family's box) from the policy with the latent of
        ``adapt``'s result, or, given bare parameters, the prior's mean."""
        p, z = (params["agent"], params["z"]) if "z" in params else (params, jnp.zeros(
            (latent,)))
        a, _ = policy(p["actor"], jnp.concatenate([obs, z]), key, cfg.eval_deterministic)
        return low + 0.5 * (a + 1.0) * (high - low)

    return MetaLearner(init=init, update=update, adapt=adapt, act=act, config=cfg,
                       family=family, sample=sample,
                       init_env_steps=col.num_train_tasks * col.initial_steps)


def make_sac(family: TaskFamily, config: SACConfig | None = None) -> MetaLearner:
    """SAC on ``family``'s ``collect.num_train_tasks`` fixed training tasks."""
    return offpolicy_learner(family, config or SACConfig())
