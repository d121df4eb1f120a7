"""TESP (Lan et al. 2019): task encoder + meta-learned SGD + shared policy; and AdaptSV.

Parameters θ = {θ_TE, α, θ_policy} (Eq. 8). Per task T_i of a meta-batch (``vmap``):

1. Warm-up: N episodes with the embedding h = 0 fill the episode buffer
   B⁰ = S_M(τ^warm) (Algorithm 1, lines 6–7).
2. For k = 1..K (``lax.scan``): h^k = (1/M) Σ_{τ∈B^{k-1}} g(τ; θ^k_TE) (Eq. 5), sample N
   episodes τ^k with π(a | [s, h^k]; θ_policy) (Eq. 7), fast-update the encoder
   θ^{k+1}_TE = θ^k_TE − α ∘ ∇ L(τ^k) (Eq. 9; VPG loss, the gradient reaching θ_TE through
   h^k), and B^k = S_M(B^{k-1} ∪ τ^k) (Eq. 3–4).
3. h^{K+1} from θ^{K+1}_TE and B^K; sample τ^{K+1}.

The meta-update is PPO on τ^{K+1} over θ_TE, α and θ_policy, plus η Σ_i ‖h_i^{K+1}‖²
(Eq. 10); both terms are averaged over the meta-batch (Eq. 10 divided by its size).
θ^{K+1}_TE and h^{K+1} are recomputed from the stored episodes and buffers so gradients
flow through the fast-updates: first-order by default (∂θ^{k+1}/∂θ^k ≈ I, α still gets
its gradient), ``meta_gradient="second_order"`` differentiates through the inner
gradients too (with the sampled episodes held fixed, like MAML's ``"hessian"``).

The task encoder g is a GRU over x_t = [s_t, a_t, r_t] (steps after termination are
skipped) followed by a fully-connected layer to R^d. The episode buffer is a fixed-size
array pytree (:class:`EpisodeBuffer`) with a validity mask, so it vmaps over tasks.

**AdaptSV** (``adapt="variable"``, the MAESN-like baseline of TESP §5): the same policy
π(a | [s, z]), but the fast-update adapts a single task variable z ∈ R^d whose
initialisation is meta-learned (with per-parameter rates α); no encoder, no buffer. z is
deterministic (TESP's description; MAESN additionally samples it from a learned Gaussian).

**Ablations** (TESP §5.3), named presets in :data:`PRESETS`: V1 ``buffer="all"`` (h is the
mean over every episode seen), V2 ``adapt_policy=True`` (θ_policy is fast-updated too,
with its own learned rates), V3 ``eta=0``, V4 ``inner_lr_mode="fixed", inner_lr=0`` (the
encoder never moves in fast-updates), V5 ``inner_lr_mode="fixed"`` (one constant rate).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.flatten_util import ravel_pytree

from jaxmeta import inner as inner_lib
from jaxmeta import rl
from jaxmeta.algorithms.base import (
    Adapted,
    LearnerState,
    MetaLearner,
    PolicySpec,
    _check_choice,
    _check_positive,
    advantages,
    inner_loss,
    log_prob,
    ppo_epochs,
    sample_meta_batch,
)
from jaxmeta.envs.base import TaskFamily
from jaxmeta.nets import gaussian_kl, gaussian_policy, gaussian_sample
from jaxmeta.rollout import Trajectory, episode_returns, rollout

Array = jax.Array
Params = Any


@dataclasses.dataclass(frozen=True)
class TESPConfig:
    """TESP / AdaptSV configuration. Defaults are small (CPU-sized networks) with the
    paper's hyper-parameters; :func:`paper_config` gives the supplement's sizes.

    ``inner_episodes`` is N (episodes per warm-up and per fast-update), ``buffer_size`` M.
    """

    # networks
    hidden_sizes: tuple[int, ...] = (64, 64)  # policy MLP
    activation: str = "relu"
    init_std: float = 1.0
    gru_size: int = 64
    embedding_size: int = 8  # d
    # what the fast-update adapts
    adapt: str = "encoder"  # encoder (TESP) | variable (AdaptSV)
    adapt_policy: bool = False  # V2: fast-update θ_policy too
    fast_updates: int = 3  # K
    inner_lr: float = 0.001
    inner_lr_mode: str = "per_parameter"  # per_parameter (learned α) | fixed (V4/V5)
    meta_gradient: str = "first_order"  # first_order | second_order
    # episode buffer
    buffer: str = "best"  # best (S_M) | all (V1)
    buffer_size: int = 16  # M
    eta: float = 0.01  # η of Eq. 10 (V3: 0)
    # sampling
    meta_batch_size: int = 20
    inner_episodes: int = 32  # N
    outer_episodes: int = 32
    eval_episodes: int = 32
    # returns
    gamma: float = 0.99
    gae_lambda: float = 0.97
    baseline: str = "linear"  # linear | none
    inner_normalize_advantages: bool = True
    # meta-update (PPO)
    outer_lr: float = 3e-4
    ppo_epochs: int = 5
    ppo_clip: float = 0.15

    def __post_init__(self):
        _check_positive(self, "gru_size", "embedding_size", "fast_updates", "buffer_size",
                        "meta_batch_size", "inner_episodes", "outer_episodes", "eval_episodes",
                        "ppo_epochs")
        if not self.hidden_sizes or any(int(h) <= 0 for h in self.hidden_sizes):
            raise ValueError(
                f"hidden_sizes must be non-empty and positive, got {self.hidden_sizes}")
        _check_choice("adapt", self.adapt, ("encoder", "variable"))
        _check_choice("inner_lr_mode", self.inner_lr_mode, ("per_parameter", "fixed"))
        _check_choice("meta_gradient", self.meta_gradient, ("first_order", "second_order"))
        _check_choice("buffer", self.buffer, ("best", "all"))
        _check_choice("baseline", self.baseline, ("linear", "none"))
        _check_choice("activation", self.activation, ("relu", "tanh"))
        if self.buffer == "best" and self.buffer_size > self.inner_episodes:
            raise ValueError(
                f"buffer_size={self.buffer_size} must be <= inner_episodes="
                f"{self.inner_episodes}: the buffer keeps the best M of the N warm-up episodes "
                "(M < N in TESP Eq. 4)")
        if not self.inner_lr >= 0:
            raise ValueError(f"inner_lr must be >= 0, got {self.inner_lr!r}")
        if not self.eta >= 0:
            raise ValueError(f"eta must be >= 0, got {self.eta!r}")
        for f in ("outer_lr", "init_std", "ppo_clip"):
            if not getattr(self, f) > 0:
                raise ValueError(f"{f} must be positive, got {getattr(self, f)!r}")
        if not 0 <= self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ValueError("gamma and gae_lambda must lie in [0, 1]")

    @property
    def buffer_capacity(self) -> int:
        """Slots of the fixed-size buffer: M, or every episode of one adaptation (V1)."""
        if self.buffer == "all":
            return self.inner_episodes * (self.fast_updates + 1)
        return self.buffer_size


# Named presets: field overrides applied on top of a config (``apply_preset``).
PRESETS: dict[str, dict[str, Any]] = {
    "tesp": {},
    "adaptsv": {"adapt": "variable"},
    "tesp_v1": {"buffer": "all"},
    "tesp_v2": {"adapt_policy": True},
    "tesp_v3": {"eta": 0.0},
    "tesp_v4": {"inner_lr_mode": "fixed", "inner_lr": 0.0},
    "tesp_v5": {"inner_lr_mode": "fixed"},
}

def paper_config(family: str = "reacher2_target") -> TESPConfig:
    """The TESP supplement's settings (the ``paper`` preset): horizon-200 tasks, 20 tasks ×
    32 episodes per rollout (~100k steps per meta-update with warm-up, K = 3 and the
    post-adaptation rollout), M = 16, GRU 256, Adam 3e-4, PPO clip 0.15, γ = 0.99,
    λ = 0.97; policy [256, 256] with d = 8 (2-link reacher, wheeled robot), [512, 512]
    with d = 16 (4-link reacher) or d = 32 (ant)."""
    sizes = {"reacher4_target": ((512, 512), 16), "ant_target": ((512, 512), 32)}
    hidden, d = sizes.get(family, ((256, 256), 8))
    return TESPConfig(hidden_sizes=hidden, gru_size=256, embedding_size=d, inner_episodes=32,
                      outer_episodes=32, eval_episodes=32, buffer_size=16, meta_batch_size=20,
                      outer_lr=3e-4)


def apply_preset(name: str, config: TESPConfig) -> TESPConfig:
    """``config`` with preset ``name``'s fields set (unknown names list the presets)."""
    if name not in PRESETS:
        raise ValueError(f"unknown TESP preset {name!r}; choose one of {sorted(PRESETS)}")
    return dataclasses.replace(config, **PRESETS[name])


# --- the episode buffer -------------------------------------------------------------------


@struct.dataclass
class EpisodeBuffer:
    """The best episodes of one task so far, in fixed-size arrays (leading axis: slots).

    Attributes:
      traj: the stored episodes, a :class:`Trajectory` with ``[C, T, ...]`` leaves.
      ret: their undiscounted returns ``[C]`` (−inf in empty slots).
      valid: 1 for filled slots ``[C]``.
    """

    traj: Trajectory
    ret: Array
    valid: Array


def buffer_init(capacity: int, like: Trajectory) -> EpisodeBuffer:
    """An empty buffer with ``capacity`` slots for episodes shaped like ``like[0]``."""
    traj = jax.tree.map(lambda x: jnp.zeros((capacity,) + x.shape[1:], x.dtype), like)
    return EpisodeBuffer(traj=traj, ret=jnp.full((capacity,), -jnp.inf),
                         valid=jnp.zeros((capacity,)))


def buffer_insert(buf: EpisodeBuffer, new: Trajectory) -> EpisodeBuffer:
    """S_C(B ∪ new): keeps the ``C`` best episodes by return (Eq. 3–4), C = capacity.

    Ties are broken towards the older episode (lower index after concatenation).
    """
    cap = buf.ret.shape[0]
    ret = jnp.concatenate([buf.ret, episode_returns(new)])
    valid = jnp.concatenate([buf.valid, jnp.ones(new.reward.shape[:1])])
    traj = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), buf.traj, new)
    _, idx = jax.lax.top_k(jnp.where(valid > 0, ret, -jnp.inf), cap)
    return EpisodeBuffer(traj=jax.tree.map(lambda x: x[idx], traj), ret=ret[idx],
                         valid=valid[idx])


# --- the task encoder ---------------------------------------------------------------------


class _EncoderNet(nn.Module):
    """g(τ): GRU over [s_t, a_t, r_t] (masked steps keep the state), then a dense layer."""

    gru_size: int
    embedding_size: int

    @nn.compact
    def __call__(self, traj: Trajectory) -> Array:
        x = jnp.concatenate([traj.obs, traj.action, traj.reward[..., None]], axis=-1)
        cell = nn.GRUCell(self.gru_size, name="gru")
        scan = nn.scan(_masked_gru_step, variable_broadcast="params",
                       split_rngs={"params": False})
        carry = jnp.zeros((self.gru_size,), x.dtype)
        final, _ = scan(cell, carry, (x, traj.mask))
        return nn.Dense(self.embedding_size, name="out")(final)


def _masked_gru_step(cell, carry, xs):
    x, m = xs
    new, _ = cell(carry, x)
    carry = m * new + (1.0 - m) * carry
    return carry, None


class Encoder(NamedTuple):
    """The task encoder as pure functions.

    Attributes:
      init: ``key -> params``.
      episode: ``(params, τ [T, ...]) -> g(τ) [d]``.
    """

    init: Callable[[Array], Params]
    episode: Callable[[Params, Trajectory], Array]

    def embed(self, params: Params, buf: EpisodeBuffer) -> Array:
        """h = (1/|B|) Σ_{τ∈B} g(τ) over the filled slots (Eq. 5)."""
        g = jax.vmap(self.episode, in_axes=(None, 0))(params, buf.traj)
        w = buf.valid / jnp.maximum(buf.valid.sum(), 1.0)
        return w @ g


def task_encoder(obs_size: int, action_size: int, horizon: int, gru_size: int,
                 embedding_size: int) -> Encoder:
    """Builds g: GRU(``gru_size``) over (s, a, r), then a dense layer to R^``embedding_size``."""
    net = _EncoderNet(gru_size, embedding_size)
    dummy = Trajectory(obs=jnp.zeros((horizon, obs_size)), action=jnp.zeros((horizon, action_size)),
                       reward=jnp.zeros((horizon,)), done=jnp.zeros((horizon,)),
                       mask=jnp.ones((horizon,)), logp=jnp.zeros((horizon,)))
    return Encoder(init=lambda key: net.init(key, dummy)["params"],
                   episode=lambda params, traj: net.apply({"params": params}, traj))


def embedded_policy(family: TaskFamily, cfg: TESPConfig) -> PolicySpec:
    """The shared policy π(a | [s, h]) (Eq. 7). Its ``condition`` takes the embedding h in
    place of a task: ``spec.fn(θ_policy, h)`` is the policy of one task."""
    size = family.obs_size + cfg.embedding_size
    pol = gaussian_policy(size, family.action_size, cfg.hidden_sizes, cfg.activation,
                          cfg.init_std)

    def condition(obs, h):
        return jnp.concatenate([obs, jnp.broadcast_to(h, obs.shape[:-1] + h.shape)], axis=-1)

    return PolicySpec(pol, condition, size)


# --- the algorithm ------------------------------------------------------------------------


class TESPBatch(NamedTuple):
    """Everything sampled for one task in one meta-iteration.

    Attributes:
      warm: warm-up episodes (h = 0), ``[N, T, ...]``; None for AdaptSV.
      inner: episodes of each fast-update, ``[K, N, T, ...]``.
      inner_adv: their advantages, ``[K, N, T]``.
      buffers: B⁰..B^K, an :class:`EpisodeBuffer` with ``[K+1, C, ...]`` leaves
        (an empty 1-slot placeholder for AdaptSV).
      outer: episodes after the K-th fast-update, ``[N', T, ...]``; ``outer_adv`` theirs.
      old_mean, old_log_std: the sampling policy's action distribution on ``outer.obs``.
      h: the embedding h^{K+1} the outer episodes were sampled with, ``[d]``.
    """

    warm: Trajectory | None
    inner: Trajectory
    inner_adv: Array
    buffers: EpisodeBuffer
    outer: Trajectory
    outer_adv: Array
    old_mean: Array
    old_log_std: Array
    h: Array


class TESPParts(NamedTuple):
    """The pieces of a built TESP learner, for tests and diagnostics.

    Attributes:
      spec: the shared policy; ``encoder``: g (None for AdaptSV).
      embedding: ``(params, fast, buffer) -> h``.
      sample_task: ``(params, task, key) -> TESPBatch``.
      adapted: ``(params, batch) -> (fast_{K+1}, h^{K+1})``, differentiable.
      meta_loss: ``(params, batches) -> loss`` of the meta-update (Eq. 10).
      sample_batches: ``(params, key) -> (tasks, batches)``.
    """

    spec: PolicySpec
    encoder: Encoder | None
    embedding: Callable
    sample_task: Callable
    adapted: Callable
    meta_loss: Callable
    sample_batches: Callable


def _inner_optimizer(cfg: TESPConfig) -> optax.GradientTransformation:
    if cfg.inner_lr_mode == "per_parameter":
        return inner_lib.meta_sgd(cfg.inner_lr)
    return inner_lib.sgd(cfg.inner_lr)


def build_tesp(family: TaskFamily, config: TESPConfig | None = None
               ) -> tuple[MetaLearner, TESPParts]:
    """Builds TESP (or AdaptSV / an ablation, per ``config``) and its parts."""
    cfg = config or TESPConfig()
    spec = embedded_policy(family, cfg)
    use_encoder = cfg.adapt == "encoder"
    encoder = (task_encoder(family.obs_size, family.action_size, family.horizon, cfg.gru_size,
                            cfg.embedding_size) if use_encoder else None)
    inner_opt = _inner_optimizer(cfg)
    learn_lr = cfg.inner_lr_mode == "per_parameter"
    second_order = cfg.meta_gradient == "second_order"
    outer_opt = optax.adam(cfg.outer_lr)
    capacity = cfg.buffer_capacity if use_encoder else 1
    zero_h = jnp.zeros((cfg.embedding_size,))

    # fast parameters: what the fast-update changes (encoder or task variable, ± policy)
    def fast_init(params) -> dict:
        fast = {"encoder": params["encoder"]} if use_encoder else {"z": params["z"]}
        if cfg.adapt_policy:
            fast["policy"] = params["policy"]
        return fast

    def policy_params(params, fast):
        return fast["policy"] if cfg.adapt_policy else params["policy"]

    def embedding(params, fast, buf: EpisodeBuffer) -> Array:
        del params
        return encoder.embed(fast["encoder"], buf) if use_encoder else fast["z"]

    def init(key: Array) -> LearnerState:
        k_pol, k_enc, key = jax.random.split(key, 3)
        params = {"policy": spec.policy.init(k_pol)}
        if use_encoder:
            params["encoder"] = encoder.init(k_enc)
        else:
            params["z"] = jnp.zeros((cfg.embedding_size,))
        params["inner"] = inner_opt.init(fast_init(params))
        return LearnerState(params=params, opt_state=outer_opt.init(params), key=key,
                            iteration=jnp.zeros((), jnp.int32))

    def fast_step(params, fast, buf, traj, adv, stop_grad: bool):
        """One fast-update (Eq. 9): VPG loss of τ^k under π(·|[s, h^k]), h^k = h(fast, B^{k-1})."""

        def loss(f):
            h = embedding(params, f, buf)
            return inner_loss(spec, policy_params(params, f), h, traj, adv, cfg)

        g = jax.grad(loss)(fast)
        if stop_grad:
            g = jax.lax.stop_gradient(g)
        updates, _ = inner_opt.update(g, params["inner"], fast)
        return optax.apply_updates(fast, updates)

    # --- 1. sampling (no gradients) ---------------------------------------------------------
    def adapt_task(params, task, keys, num_steps: int):
        """Warm-up (TESP only) and ``num_steps`` fast-updates.

        Returns (fast, B⁰..B^K, h^{K+1}, warm-up episodes or None, episodes, advantages).
        """
        fast = fast_init(params)
        if use_encoder:
            warm = rollout(family, spec.fn(policy_params(params, fast), zero_h), task, keys[0],
                           cfg.inner_episodes)
            buf = buffer_insert(buffer_init(capacity, warm), warm)
        else:  # AdaptSV: nothing to warm up; a 1-slot placeholder buffer
            warm = None
            shape = jax.eval_shape(lambda: rollout(family, spec.fn(params["policy"], zero_h),
                                                   task, keys[0], 1))
            buf = buffer_init(capacity, jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shape))

        def body(carry, k):
            fast, buf = carry
            h = embedding(params, fast, buf)
            traj = rollout(family, spec.fn(policy_params(params, fast), h), task, k,
                           cfg.inner_episodes)
            adv = advantages(traj, cfg, family.horizon)
            new_fast = fast_step(params, fast, buf, traj, adv, stop_grad=True)
            new_buf = buffer_insert(buf, traj) if use_encoder else buf
            return (new_fast, new_buf), (traj, adv, buf)

        (fast, buf), (inner, inner_adv, bufs) = jax.lax.scan(body, (fast, buf),
                                                             keys[1:num_steps + 1])
        buffers = jax.tree.map(lambda a, b: jnp.concatenate([a, b[None]]), bufs, buf)
        return fast, buffers, embedding(params, fast, buf), warm, inner, inner_adv

    def returns_by_step(warm, inner, last):
        """Mean returns [warm-up (TESP only), τ^1..τ^K, last] of one task."""
        rets = [episode_returns(inner).mean(axis=-1), episode_returns(last).mean()[None]]
        if warm is not None:
            rets.insert(0, episode_returns(warm).mean()[None])
        return jnp.concatenate(rets)

    def sample_task(params, task, key) -> TESPBatch:
        keys = jax.random.split(key, cfg.fast_updates + 2)
        fast, buffers, h, warm, inner, inner_adv = adapt_task(params, task, keys[:-1],
                                                              cfg.fast_updates)
        pol = spec.fn(policy_params(params, fast), h)
        outer = rollout(family, pol, task, keys[-1], cfg.outer_episodes)
        old_mean, old_log_std = pol(outer.obs)
        return TESPBatch(warm, inner, inner_adv, buffers, outer,
                         advantages(outer, cfg, family.horizon), old_mean, old_log_std, h)

    # --- 2. differentiable adaptation from stored episodes ----------------------------------
    def adapted(params, batch: TESPBatch):
        """(fast_{K+1}, h^{K+1}) as functions of θ = {θ_TE or z, α, θ_policy}."""
        bufs = jax.tree.map(lambda x: x[:-1], batch.buffers)

        def body(fast, data):
            traj, adv, buf = data
            return fast_step(params, fast, buf, traj, adv, stop_grad=not second_order), None

        fast, _ = jax.lax.scan(body, fast_init(params), (batch.inner, batch.inner_adv, bufs))
        last = jax.tree.map(lambda x: x[-1], batch.buffers)
        return fast, embedding(params, fast, last)

    def task_terms(params, batch: TESPBatch):
        fast, h = adapted(params, batch)
        out = batch.outer
        logp = log_prob(spec.fn(policy_params(params, fast), h), out)
        adv = rl.normalize(batch.outer_adv, out.mask)
        surr = rl.ppo_clip_loss(logp, out.logp, adv, out.mask, cfg.ppo_clip)
        return surr, jnp.sum(h**2)

    def meta_loss(params, batches):
        surr, h_sq = jax.vmap(task_terms, in_axes=(None, 0))(params, batches)
        return surr.mean() + cfg.eta * h_sq.mean()

    def mean_kl(params, batches):
        def one(batch):
            fast, h = adapted(params, batch)
            mean, log_std = spec.fn(policy_params(params, fast), h)(batch.outer.obs)
            kl = gaussian_kl(batch.old_mean, batch.old_log_std, mean, log_std)
            return rl.masked_mean(kl, batch.outer.mask)

        return jax.vmap(one)(batches).mean()

    # --- 3. the meta-iteration --------------------------------------------------------------
    def sample_batches(params, key):
        return sample_meta_batch(family, cfg.meta_batch_size, sample_task, params, key)

    def update(state: LearnerState):
        key, k_sample = jax.random.split(state.key)
        _, batches = sample_batches(state.params, k_sample)

        (params, opt_state), (losses, gnorms) = ppo_epochs(
            lambda p: meta_loss(p, batches), outer_opt, state.params, state.opt_state,
            cfg.ppo_epochs)

        by_step = jax.vmap(returns_by_step)(batches.warm, batches.inner, batches.outer).mean(0)
        metrics = {
            "pre_return": by_step[0],
            "post_return": by_step[-1],
            "returns_by_step": by_step,
            "embedding_norm": jnp.linalg.norm(batches.h, axis=-1).mean(),
            "policy_std": jnp.exp(state.params["policy"]["log_std"]).mean(),
            "loss": losses[0],
            "kl": mean_kl(params, batches),
            "grad_norm": gnorms[0],
        }
        if learn_lr:
            metrics["inner_lr_mean"] = jnp.mean(ravel_pytree(state.params["inner"].lr)[0])
        return state.replace(params=params, opt_state=opt_state, key=key,
                             iteration=state.iteration + 1), metrics

    # --- test-time adaptation ---------------------------------------------------------------
    def adapt(state: LearnerState, task: Any, key: Array, num_steps: int) -> Adapted:
        """Warm-up (h = 0), ``num_steps`` fast-updates, then ``eval_episodes`` with h^{K+1}.

        ``returns[0]`` is the warm-up return (no task information), ``returns[k]`` the
        return after k fast-updates (the episodes sampled with θ^{k+1}_TE and B^k; the last
        one from the evaluation episodes). The policy is not adapted (except with V2).
        AdaptSV has no warm-up: ``returns[0]`` is that of the initial z (as for MAML).
        """
        if not isinstance(num_steps, int) or num_steps < 0:
            raise ValueError(f"adapt_steps must be a non-negative integer, got {num_steps!r}")
        params = state.params
        keys = jax.random.split(key, num_steps + 2)
        fast, _, h, warm, inner, _ = adapt_task(params, task, keys[:-1], num_steps)
        theta = policy_params(params, fast)
        final = rollout(family, spec.fn(theta, h), task, keys[-1], cfg.eval_episodes)
        rets = returns_by_step(warm, inner, final)
        if use_encoder:  # τ^1 (h^1 from the warm-up buffer, before any fast-update) is not
            rets = jnp.concatenate([rets[:1], rets[2:]])  # one of the K + 1 reported points
        return Adapted(params={"policy": theta, "embedding": h}, returns=rets)

    def act(params: Params, obs: Array, key: Array, task: Any = None) -> Array:
        """Samples from π(·|[obs, h]) with ``params = adapt(...).params``."""
        del task
        mean, log_std = spec.fn(params["policy"], params["embedding"])(obs)
        return gaussian_sample(key, mean, log_std)

    learner = MetaLearner(init=init, update=update, adapt=adapt, act=act, config=cfg,
                          family=family, sample=sample_batches)
    parts = TESPParts(spec=spec, encoder=encoder, embedding=embedding, sample_task=sample_task,
                      adapted=adapted, meta_loss=meta_loss, sample_batches=sample_batches)
    return learner, parts


def make_tesp(family: TaskFamily, config: TESPConfig | None = None) -> MetaLearner:
    """TESP with ``config`` as given (presets: :func:`apply_preset`)."""
    return build_tesp(family, config)[0]


def preset_maker(name: str) -> Callable[[TaskFamily, TESPConfig | None], MetaLearner]:
    """``make_<preset>(family, config)``: TESP with preset ``name`` applied to ``config``."""
    apply_preset(name, TESPConfig())  # validates the name

    def make(family: TaskFamily, config: TESPConfig | None = None) -> MetaLearner:
        return make_tesp(family, apply_preset(name, config or TESPConfig()))

    make.__name__ = f"make_{name}"
    make.__doc__ = f"TESP preset {name!r}: {PRESETS[name] or 'the method as published'}."
    return make
