"""The algorithm protocol and the pieces every gradient-based learner shares.

A method is ``make_<algo>(family, config) -> MetaLearner(init, update, adapt, act)``:

* ``init(key) -> state``: everything that learns, incl. optimizer states and the RNG key.
* ``update(state) -> (state, metrics)``: one meta-iteration, a pure function (one XLA
  program under ``jax.jit``; ``vmap`` it over seeds, ``lax.scan`` it over iterations).
* ``adapt(state, task, key, num_steps) -> Adapted``: fast adaptation to one task with
  ``num_steps`` inner updates (static), returning the adapted parameters and the mean
  return before adaptation and after each step.
* ``act(params, obs, key, task) -> action``: sample from a (possibly adapted) policy.
* ``sample(params, key) -> (tasks, batches)`` (optional): the sampling half of ``update``
  (every rollout, incl. the inner-loop fast-updates, but no meta-update), so that
  benchmarks can time the two halves separately.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxmeta import rl
from jaxmeta.distributed import shard_tasks
from jaxmeta.envs.base import TaskFamily, check_positive
from jaxmeta.nets import Policy, gaussian_log_prob, gaussian_policy, gaussian_sample
from jaxmeta.rollout import Trajectory, episode_returns, rollout

Array = jax.Array
Params = Any
Metrics = dict[str, Array]


class Adapted(NamedTuple):
    """Result of fast adaptation to one task.

    Attributes:
      params: adapted policy parameters θ'.
      returns: mean undiscounted episode return before adaptation and after each of the
        ``num_steps`` inner updates, shape ``[num_steps + 1]``.
    """

    params: Params
    returns: Array


class MetaLearner(NamedTuple):
    """A meta-RL method as pure functions (see module docstring)."""

    init: Callable[[Array], Any]
    update: Callable[[Any], tuple[Any, Metrics]]
    adapt: Callable[[Any, Any, Array, int], Adapted]
    act: Callable[[Params, Array, Array, Any], Array]
    config: Any
    family: TaskFamily
    sample: Callable[[Params, Array], tuple[Any, Any]] | None = None


@struct.dataclass
class LearnerState:
    """State of the gradient-based learners in this module family.

    Attributes:
      params: meta-parameters ``{"policy": θ, "inner": inner-optimizer state, ...}``; the
        inner state holds Meta-SGD's learned rates α (empty for plain SGD).
      opt_state: outer optimizer state (optax; empty for TRPO).
      key: RNG key, split on every iteration.
      iteration: completed meta-iterations, int32 ``()``.
    """

    params: Any
    opt_state: Any
    key: Array
    iteration: Array


def _check_choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{field}={value!r} is not valid; choose one of {list(choices)}")


def _check_positive(cfg: Any, *fields: str) -> None:
    for f in fields:
        check_positive(f, getattr(cfg, f))


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    """Configuration shared by MAML, Meta-SGD and their baselines (MAML paper defaults).

    Sizes and step counts are static; they are validated here, before anything compiles.
    """

    # policy
    hidden_sizes: tuple[int, ...] = (100, 100)
    activation: str = "relu"
    init_std: float = 1.0
    # sampling
    meta_batch_size: int = 20  # tasks per meta-iteration
    inner_episodes: int = 20  # episodes per task per inner step (the K-shot data)
    outer_episodes: int = 20  # episodes per task with the adapted policy
    eval_episodes: int = 20  # episodes for measuring returns in ``adapt``
    # inner loop
    inner_steps: int = 1
    inner_lr: float = 0.1
    meta_gradient: str = "hessian"  # hessian | exact | first_order
    remat: bool = False
    # returns
    gamma: float = 0.99
    gae_lambda: float = 1.0
    baseline: str = "linear"  # linear | none
    inner_normalize_advantages: bool = True
    # outer loop
    outer: str = "trpo"  # trpo | ppo
    outer_lr: float = 3e-4
    ppo_epochs: int = 5
    ppo_clip: float = 0.2
    max_kl: float = 0.01
    cg_iters: int = 10
    cg_damping: float = 1e-5
    ls_backtrack_ratio: float = 0.8
    ls_max_backtracks: int = 15
    # baselines' critic (pretrained / oracle PPO)
    value_hidden_sizes: tuple[int, ...] = (64, 64)
    value_coef: float = 0.5

    def __post_init__(self):
        _check_positive(self, "meta_batch_size", "inner_episodes", "outer_episodes",
                        "eval_episodes", "inner_steps", "ppo_epochs", "cg_iters",
                        "ls_max_backtracks")
        if not self.hidden_sizes or any(int(h) <= 0 for h in self.hidden_sizes):
            raise ValueError(
                f"hidden_sizes must be non-empty and positive, got {self.hidden_sizes}")
        if any(int(h) <= 0 for h in self.value_hidden_sizes):
            raise ValueError(f"value_hidden_sizes must be positive, got {self.value_hidden_sizes}")
        _check_choice("meta_gradient", self.meta_gradient, ("exact", "hessian", "first_order"))
        _check_choice("outer", self.outer, ("trpo", "ppo"))
        _check_choice("baseline", self.baseline, ("linear", "none"))
        _check_choice("activation", self.activation, ("relu", "tanh"))
        for f in ("inner_lr", "outer_lr", "max_kl", "init_std", "ppo_clip"):
            if not getattr(self, f) >= 0 or (f != "inner_lr" and getattr(self, f) == 0):
                raise ValueError(f"{f} must be positive, got {getattr(self, f)!r}")
        if not 0 <= self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ValueError("gamma and gae_lambda must lie in [0, 1]")
        if not 0 < self.ls_backtrack_ratio < 1:
            raise ValueError("ls_backtrack_ratio must lie in (0, 1)")


# --- pieces shared by the learners ----------------------------------------------------------


class PolicySpec(NamedTuple):
    """A policy plus how it sees a task.

    Attributes:
      policy: the Gaussian policy (init/apply).
      condition: ``(obs [..., obs_size], task) -> policy input [..., input_size]``.
      input_size: length of the policy input.
    """

    policy: Policy
    condition: Callable[[Array, Any], Array]
    input_size: int

    def fn(self, params: Params, task: Any) -> Callable[[Array], tuple[Array, Array]]:
        """The per-task ``obs -> (mean, log_std)`` of parameters ``params``."""
        return lambda obs: self.policy.apply(params, self.condition(obs, task))


def blind_policy(family: TaskFamily, cfg: MetaConfig) -> PolicySpec:
    """A policy that sees only the observation (what every meta-learner uses)."""
    pol = gaussian_policy(family.obs_size, family.action_size, cfg.hidden_sizes, cfg.activation,
                          cfg.init_std)
    return PolicySpec(pol, lambda obs, task: obs, family.obs_size)


def oracle_policy(family: TaskFamily, cfg: MetaConfig) -> PolicySpec:
    """A policy whose input is ``[obs, task_features(task)]`` (the oracle baseline)."""
    size = family.obs_size + family.task_feature_size
    pol = gaussian_policy(size, family.action_size, cfg.hidden_sizes, cfg.activation,
                          cfg.init_std)

    def condition(obs, task):
        feat = family.task_features(task)
        feat = jnp.broadcast_to(feat, obs.shape[:-1] + feat.shape)
        return jnp.concatenate([obs, feat], axis=-1)

    return PolicySpec(pol, condition, size)


def gae_from_values(traj: Trajectory, v: Array, gamma: float, lambda_: float) -> Array:
    """GAE advantages ``[E, T]`` of episodes ``[E, T]`` given state values V(s_t) ``[E, T]``.

    Episode ends (incl. the time limit) are treated as terminal: V(s_{T}) = 0.
    """
    discount = gamma * (1.0 - traj.done)
    v_tp1 = jnp.concatenate([v[:, 1:], jnp.zeros_like(v[:, :1])], axis=1)
    adv = jax.vmap(rl.gae_advantages, in_axes=(0, 0, 0, 0, None))(
        traj.reward, discount, v, v_tp1, lambda_)
    return adv * traj.mask


def advantages(traj: Trajectory, cfg: MetaConfig, horizon: int) -> Array:
    """GAE advantages for episodes ``[E, T]`` of one task, with the linear feature baseline
    fitted on this batch (``baseline="linear"``) or V ≡ 0 (``"none"``)."""
    if cfg.baseline == "linear":
        discount = cfg.gamma * (1.0 - traj.done)
        returns = jax.vmap(rl.discounted_returns)(traj.reward, discount)
        v = rl.fit_linear_baseline(traj.obs, returns, traj.mask, horizon)
    else:
        v = jnp.zeros_like(traj.reward)
    return gae_from_values(traj, v, cfg.gamma, cfg.gae_lambda)


def log_prob(policy_fn: Callable, traj: Trajectory) -> Array:
    """log π(a_t | s_t) of every stored step under ``policy_fn``."""
    mean, log_std = policy_fn(traj.obs)
    return gaussian_log_prob(mean, log_std, traj.action)


def inner_loss(spec: PolicySpec, theta: Params, task: Any, traj: Trajectory, adv: Array,
               cfg: MetaConfig) -> Array:
    """VPG loss of the fast-update, −mean_{e,t}[log π_θ(a|s) Â]; Â optionally normalised."""
    if cfg.inner_normalize_advantages:
        adv = rl.normalize(adv, traj.mask)
    return rl.vpg_loss(log_prob(spec.fn(theta, task), traj), adv, traj.mask)


def inner_step(spec: PolicySpec, inner_opt: optax.GradientTransformation, theta: Params,
               inner_state: Any, task: Any, traj: Trajectory, adv: Array, cfg: MetaConfig,
               first_order: bool = False) -> Params:
    """One fast-update θ ← θ + U(∇L_inner(θ)) with the inner optimizer (SGD / Meta-SGD).

    With ``first_order`` the inner gradient is a constant (no second derivatives), but a
    learned inner state (Meta-SGD's α) still receives meta-gradients.
    """
    g = jax.grad(inner_loss, argnums=1)(spec, theta, task, traj, adv, cfg)
    if first_order:
        g = jax.lax.stop_gradient(g)
    updates, _ = inner_opt.update(g, inner_state, theta)
    return optax.apply_updates(theta, updates)


def fast_adapt(family: TaskFamily, spec: PolicySpec, inner_opt: optax.GradientTransformation,
               cfg: MetaConfig, theta: Params, inner_state: Any, task: Any, keys: Array):
    """K = ``len(keys)`` fast-updates on one task (``lax.scan``): per step, sample
    ``inner_episodes`` with the current θ, compute advantages, take one inner update.

    Returns:
      (θ_K+1, (episodes ``[K, E, T, ...]``, advantages ``[K, E, T]``)).
    """

    def body(th, k):
        traj = rollout(family, spec.fn(th, task), task, k, cfg.inner_episodes)
        adv = advantages(traj, cfg, family.horizon)
        th = inner_step(spec, inner_opt, th, inner_state, task, traj, adv, cfg)
        return th, (traj, adv)

    return jax.lax.scan(body, theta, keys)


def meta_batch(family: TaskFamily, num_tasks: int, k_tasks: Array, k_roll: Array):
    """``num_tasks`` training tasks and one rollout key per task.

    Every learner creates its task axis here, so this is where a device mesh splits it
    (:func:`jaxmeta.distributed.shard_tasks`; the identity without a mesh).
    """
    tasks = family.sample_tasks(k_tasks, num_tasks, "train")
    keys = jax.random.split(k_roll, num_tasks)
    return shard_tasks(tasks), shard_tasks(keys)


def sample_meta_batch(family: TaskFamily, num_tasks: int, sample_task: Callable, params: Params,
                      key: Array):
    """A meta-batch of training tasks and ``vmap(sample_task)(params, task, key)`` on each.

    Returns:
      (tasks, per-task batches), both with a leading task axis (split over the mesh's task
      axis under a mesh).
    """
    k_tasks, k_roll = jax.random.split(key)
    tasks, keys = meta_batch(family, num_tasks, k_tasks, k_roll)
    batches = jax.vmap(sample_task, in_axes=(None, 0, 0))(params, tasks, keys)
    return tasks, shard_tasks(batches)


def ppo_epochs(loss_fn: Callable[[Params], Array], opt: optax.GradientTransformation,
               params: Params, opt_state: Any, num_epochs: int):
    """``num_epochs`` full-batch gradient steps of ``opt`` on ``loss_fn`` (``lax.scan``).

    Returns:
      ((params, opt_state), (loss per epoch, gradient norm per epoch)); the losses are
      evaluated before each epoch's step.
    """

    def epoch(carry, _):
        p, o = carry
        loss, g = jax.value_and_grad(loss_fn)(p)
        updates, o = opt.update(g, o, p)
        return (optax.apply_updates(p, updates), o), (loss, optax.tree.norm(g))

    return jax.lax.scan(epoch, (params, opt_state), None, length=num_epochs)


def make_adapt(family: TaskFamily, spec: PolicySpec, inner_opt: optax.GradientTransformation,
               cfg: MetaConfig, inner_state_of: Callable[[Any], Any]):
    """Builds ``adapt(state, task, key, num_steps)``: test-time fast adaptation.

    :func:`fast_adapt` for ``num_steps`` steps (recording the mean return of each step's
    episodes), then ``eval_episodes`` with the adapted θ. No meta-parameter is learned here.
    """

    def adapt(state: LearnerState, task: Any, key: Array, num_steps: int) -> Adapted:
        if not isinstance(num_steps, int) or num_steps < 0:
            raise ValueError(f"adapt_steps must be a non-negative integer, got {num_steps!r}")
        keys = jax.random.split(key, num_steps + 1)
        theta, (trajs, _) = fast_adapt(family, spec, inner_opt, cfg, state.params["policy"],
                                       inner_state_of(state), task, keys[:num_steps])
        final = rollout(family, spec.fn(theta, task), task, keys[-1], cfg.eval_episodes)
        rets = jnp.concatenate([episode_returns(trajs).mean(axis=-1),
                                episode_returns(final).mean()[None]])
        return Adapted(params=theta, returns=rets)

    return adapt


def make_act(spec: PolicySpec):
    """Builds ``act(params, obs, key, task)``: one action sampled from π_params(·|obs)."""

    def act(params: Params, obs: Array, key: Array, task: Any = None) -> Array:
        mean, log_std = spec.fn(params, task)(obs)
        return gaussian_sample(key, mean, log_std)

    return act
