"""Evolved Policy Gradients (Houthooft et al. 2018): an evolution strategy evolves a learned
loss L_φ whose gradient trains policies from scratch.

One ``update`` (one XLA program) is one ES generation:

1. ask: ``es_population`` perturbations φ_i = φ̄ + σε_i of the loss parameters (evosax's
   OpenAI-ES, antithetic ±ε by default).
2. For every member i and each of ``es_tasks`` training tasks (the same tasks, rollout
   keys and initial policies for every member: common random numbers, so that members
   differ only by φ_i), one inner learning run (vmapped over members × tasks): a freshly
   initialised Gaussian policy θ and the memory m (initial parameters from φ_i) take
   ``inner_updates`` updates; each collects ``inner_episodes`` episodes of the task with
   the current θ and takes ``inner_epochs`` steps of the inner optimizer (Adam by default,
   its moments carried across updates) on L_φ_i (+ ``pg_coef``·L_PG) in (θ, m).
3. The fitness of member i is the mean return of its final policies: ``eval_episodes``
   episodes after the last update, averaged over the tasks (EPG's final-return fitness).
4. tell: evosax minimises, so it gets −fitness; with centered-rank shaping (default) the
   mean φ̄ takes one optimizer step along the search-gradient estimate.

``inner_loss="pg"`` replaces L_φ by L_PG (VPG with normalised GAE advantages of
``returns``): the from-scratch policy-gradient baseline with the same inner schedule. φ
then changes nothing: with common random numbers every member's runs would be the same, so
one member's runs are simulated (population axis 1 in ``sample``), there is no tell and φ̄
does not move; the generation still runs and reports its fitness.

The fresh policies are drawn inside the vmapped program, where a vmapped flax init would
batch the orthogonal initialisers' QR decompositions (which hangs jaxlib's 2-thread CPU
pool: docs/architecture.md). :func:`fresh_policy` draws the same distribution without
LAPACK: each kernel is :func:`orthogonal` (Gram-Schmidt, equal to
``jax.nn.initializers.orthogonal`` up to rounding) at the scale of the flax-initialised
template's kernel; biases and log σ are the template's constants.

``adapt(state, task, key, K)``: EPG's test-time training: a fresh policy trained on the
task with L_φ̄ for K updates of the inner schedule; returns the mean return of the
episodes collected before each update and of ``eval_episodes`` episodes after the last.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxmeta import config as config_lib
from jaxmeta import rl
from jaxmeta.algorithms.epg.config import EPGConfig
from jaxmeta.algorithms.epg.loss_net import LearnedLoss, learned_loss
from jaxmeta.envs.base import TaskFamily
from jaxmeta.meta import policy
from jaxmeta.meta.sampling import advantages, meta_batch
from jaxmeta.nets import gaussian_log_prob
from jaxmeta.protocol import Adapted, LearnerState, MetaLearner, Sample, check_adapt_steps
from jaxmeta.rollout import Trajectory, distance_returns, episode_returns, rollout

Array = jax.Array
Params = Any

OPTIMIZERS = {"adam": optax.adam, "sgd": optax.sgd}


def open_es(**kw):
    """evosax's ``Open_ES(**kw)``, with ``fitness_shaping`` by name. evosax is imported
    here, not with jaxmeta: its import initialises the XLA backend, which must wait for
    ``jax.distributed.initialize`` in a multi-process run."""
    from evosax.algorithms import Open_ES
    from evosax.core import fitness_shaping as fs

    shaping = {"centered_rank": fs.centered_rank_fitness_shaping_fn,
               "standardize": fs.standardize_fitness_shaping_fn,
               "normalize": fs.normalize_fitness_shaping_fn,
               "raw": fs.identity_fitness_shaping_fn}[kw.pop("fitness_shaping")]
    return Open_ES(**kw, fitness_shaping_fn=shaping)


def orthogonal(key: Array, shape: tuple[int, ...], scale: Array | float = 1.0) -> Array:
    """A random (semi-)orthogonal matrix of ``shape`` times ``scale``, drawn like
    ``jax.nn.initializers.orthogonal(scale)(key, shape)`` (same normal draw; its QR with
    sign-fixed R is the Gram-Schmidt of the columns, done here with plain matrix products,
    twice per column, so that a vmap batches no LAPACK call)."""
    n_rows, n_cols = math.prod(shape[:-1]), shape[-1]
    z = jax.random.normal(key, (max(n_rows, n_cols), min(n_rows, n_cols)))

    def column(j, q):
        v = z[:, j]
        for _ in range(2):
            v = v - q @ (q.T @ v)
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    q = jax.lax.fori_loop(0, z.shape[1], column, jnp.zeros_like(z))
    q = q.T if n_rows < n_cols else q
    return scale * q.reshape(shape)


def fresh_policy(template: Params, key: Array) -> Params:
    """Policy parameters drawn like ``template``'s init: every kernel a fresh
    :func:`orthogonal` at the template kernel's scale (‖W‖_F = scale·√min(shape)), every
    other leaf (zero biases, the initial log σ) the template's."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    keys = jax.random.split(key, len(leaves))
    out = []
    for (path, leaf), k in zip(leaves, keys, strict=True):
        if getattr(path[-1], "key", None) == "kernel":
            scale = jnp.sqrt(jnp.sum(leaf**2) / min(leaf.shape))
            leaf = orthogonal(k, leaf.shape, scale)
        out.append(leaf)
    return jax.tree.unflatten(treedef, out)


def _strong(tree: Any) -> Any:
    """Leaves as arrays of their dtype, not weakly typed (evosax's state starts with
    Python scalars), so that every generation's state has one type (one compile)."""
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.result_type(x)), tree)


class InnerRun(NamedTuple):
    """One inner learning run: the final agent ``{"policy": θ, "memory": m-params}``, the
    episodes of its updates ``[K, E, T]``, the final evaluation episodes ``[E', T]`` and
    the inner loss of every epoch ``[K, epochs]``."""

    agent: Params
    trajs: Trajectory
    final: Trajectory
    losses: Array


class EPGPieces(NamedTuple):
    """EPG's parts (``make_epg`` assembles them; tests check them one by one).

    Attributes:
      spec: the blind Gaussian policy.
      loss: the learned loss L_φ and memory unit.
      agent_init: ``(φ, key) -> {"policy": fresh θ, "memory": φ's initial memory}``.
      inner_loss: ``(agent, φ["net"], traj, adv, c) -> loss`` (``c``: bound config).
      inner_step: ``(agent, opt_state, φ["net"], traj, adv, c) -> (agent, opt_state, loss)``.
      train_agent: ``(φ, task, key, c, num_updates) -> InnerRun``.
      make_es: ``c -> Open_ES`` with ``c``'s (possibly traced) σ and rate.
      es_step: ``(state, population, fitness, key) -> evosax state``: the tell of
        ``update`` (fitness as evosax minimises it, −return).
      evaluate: ``(population, key, c) -> (tasks, runs)``: every member's inner runs.
    """

    spec: policy.PolicySpec
    loss: LearnedLoss
    agent_init: Any
    inner_loss: Any
    inner_step: Any
    train_agent: Any
    make_es: Any
    es_step: Any
    evaluate: Any


def epg_pieces(family: TaskFamily, cfg: EPGConfig) -> EPGPieces:
    """Builds :class:`EPGPieces` for ``family`` (continuous actions only)."""
    if getattr(family, "discrete_actions", False):
        raise ValueError(f"{family.name} has discrete actions; EPG's learned loss reads a "
                         "Gaussian policy's (mean, log_std), so it needs continuous actions")
    spec = policy.blind_policy(family, cfg.policy)
    ll = learned_loss(cfg.loss, family.obs_size, family.action_size, family.horizon)
    horizon = family.horizon

    def agent_init(phi, key):
        template = spec.policy.init(jax.random.PRNGKey(0))  # unbatched: constant key
        return {"policy": fresh_policy(template, key), "memory": phi["memory"]}

    def inner_loss(agent, net, traj, adv, c):
        mean, log_std = spec.fn(agent["policy"], None)(traj.obs)
        logp = gaussian_log_prob(mean, log_std, traj.action)
        pg = rl.vpg_loss(logp, rl.normalize(adv, traj.mask), traj.mask)
        if cfg.inner.loss == "pg":
            return pg
        x = ll.features(traj, mean, log_std, logp, ll.memory(agent["memory"]))
        return ll.loss(net, x, traj.mask) + c.pg_coef * pg

    def inner_opt(c):
        return OPTIMIZERS[cfg.inner.optimizer](c.inner.lr)

    def inner_step(agent, opt_state, net, traj, adv, c):
        loss, grads = jax.value_and_grad(inner_loss)(agent, net, traj, adv, c)
        updates, opt_state = inner_opt(c).update(grads, opt_state, agent)
        return optax.apply_updates(agent, updates), opt_state, loss

    def train_agent(phi, task, key, c, num_updates: int) -> InnerRun:
        keys = jax.random.split(key, num_updates + 2)
        agent = agent_init(phi, keys[0])

        def episodes(agent, k, n):
            return rollout(family, spec.fn(agent["policy"], None), task, k, n)

        def one_update(carry, k):
            traj = episodes(carry[0], k, cfg.inner.episodes)
            adv = advantages(traj, c.returns, horizon)

            def epoch(carry, _):
                agent, opt_state, loss = inner_step(*carry, phi["net"], traj, adv, c)
                return (agent, opt_state), loss

            carry, losses = jax.lax.scan(epoch, carry, None, length=cfg.inner.epochs)
            return carry, (traj, losses)

        carry = (agent, inner_opt(c).init(agent))
        (agent, _), (trajs, losses) = jax.lax.scan(one_update, carry, keys[1:-1])
        return InnerRun(agent, trajs, episodes(agent, keys[-1], cfg.eval_episodes), losses)

    def make_es(c):
        phi = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                           jax.eval_shape(ll.init, jax.random.PRNGKey(0)))
        return open_es(population_size=cfg.es.population, solution=phi,
                       use_antithetic_sampling=cfg.es.antithetic,
                       optimizer=OPTIMIZERS[cfg.es.optimizer](c.es.lr),
                       std_schedule=optax.constant_schedule(c.es.sigma),
                       fitness_shaping=cfg.es.fitness_shaping)

    def es_step(state, population, fitness, key):
        es = make_es(config_lib.bind(cfg, state.hyper))
        new, _ = es.tell(key, population, fitness, state.opt_state, es.default_params)
        return _strong(new)

    def evaluate(population, key, c):
        k_tasks, k_roll = jax.random.split(key)
        tasks, keys = meta_batch(family, cfg.es.tasks, k_tasks, k_roll)
        per_task = jax.vmap(lambda phi, t, k: train_agent(phi, t, k, c, cfg.inner.updates),
                            in_axes=(None, 0, 0))
        runs = jax.vmap(per_task, in_axes=(0, None, None))(population, tasks, keys)
        return tasks, runs

    return EPGPieces(spec, ll, agent_init, inner_loss, inner_step, train_agent, make_es,
                     es_step, evaluate)


def make_epg(family: TaskFamily, config: EPGConfig | None = None) -> MetaLearner:
    """Evolved Policy Gradients on ``family`` (see the module docstring)."""
    cfg = config or EPGConfig()
    p = epg_pieces(family, cfg)

    def init(key, hyper=None):
        hyper = config_lib.hyper_of(cfg) if hyper is None else hyper
        c = config_lib.bind(cfg, hyper)
        k_phi, k_es, key = jax.random.split(key, 3)
        phi = p.loss.init(k_phi)
        es = p.make_es(c)
        es_state = _strong(es.init(k_es, phi, es.default_params))
        # evosax starts its best-so-far record at (NaN, +inf); the trainer stops a run whose
        # state is not finite (and the pg baseline never tells), so it starts at (φ̄, the
        # largest float): worse than any fitness, replaced by the first tell's best
        es_state = es_state.replace(
            best_solution=es_state.mean,
            best_fitness=jnp.asarray(jnp.finfo(jnp.float32).max, jnp.float32))
        return LearnerState({"phi": phi}, es_state, key, jnp.zeros((), jnp.int32), hyper)

    def generation(state, key):
        """ask, then every member's inner runs: (population, tasks, runs)."""
        c = config_lib.bind(cfg, state.hyper)
        es = p.make_es(c)
        k_ask, k_eval = jax.random.split(key)
        population, _ = es.ask(k_ask, state.opt_state, es.default_params)
        if cfg.inner.loss == "pg":  # φ plays no part: every member's runs are the same
            population = jax.tree.map(lambda x: x[:1], population)
        tasks, runs = p.evaluate(population, k_eval, c)
        return population, tasks, runs

    def update(state):
        key, k_gen, k_tell = jax.random.split(state.key, 3)
        population, _, runs = generation(state, k_gen)
        member_returns = episode_returns(runs.final).mean(axis=(1, 2))  # [P]
        if cfg.inner.loss == "pg":  # the baseline: the ES does nothing
            es_state = state.opt_state.replace(
                generation_counter=state.opt_state.generation_counter + 1)
        else:
            es_state = p.es_step(state, population, -member_returns, k_tell)
        phi = p.make_es(config_lib.bind(cfg, state.hyper)).get_mean(es_state)
        metrics = {
            "fitness_mean": member_returns.mean(), "fitness_max": member_returns.max(),
            "pre_return": episode_returns(runs.trajs).mean(axis=(0, 1, 3))[0],
            "post_return": member_returns.mean(),
            "inner_loss": runs.losses.mean(), "sigma": jnp.asarray(es_state.std),
            "phi_norm": optax.tree.norm(phi),
            "phi_step": jnp.linalg.norm(es_state.mean - state.opt_state.mean)}
        return state.advance({"phi": phi}, es_state, key), metrics

    def sample(state, key) -> Sample:
        """One generation's tasks and episodes (its inner runs, without the tell):
        ``batches["inner"]`` ``[P, tasks, K, E, T]``, ``batches["eval"]``
        ``[P, tasks, E', T]``."""
        _, tasks, runs = generation(state, key)
        return Sample(tasks, {"inner": runs.trajs, "eval": runs.final})

    def adapt(state, task, key, num_steps: int) -> Adapted:
        check_adapt_steps(num_steps)
        c = config_lib.bind(cfg, state.hyper)
        run = p.train_agent(state.params["phi"], task, key, c, num_steps)

        def per_step(r, trajs, final):
            return jnp.concatenate([r(trajs).mean(axis=-1), r(final).mean()[None]])

        rets = per_step(episode_returns, run.trajs, run.final)
        dist = None
        if distance_returns(family, run.final) is not None:
            dist = per_step(lambda t: distance_returns(family, t), run.trajs, run.final)
        return Adapted(run.agent, rets, dist)

    def act(params, obs, key, task=None):
        """An action of a trained policy: ``adapt(...).params`` (the learner state holds
        only the loss φ, no policy)."""
        if "policy" not in params:
            raise ValueError("an EPG policy acts from adapt(...).params (a policy trained "
                             "with the learned loss); these params hold no policy")
        return policy.act(p.spec.fn(params["policy"], task), obs, key)

    return MetaLearner(init=init, update=update, adapt=adapt, act=act, config=cfg,
                       family=family, sample=sample, init_env_steps=0)
