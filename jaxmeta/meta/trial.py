"""Trials of several episodes with memory: the rollout every recurrent, context-based
method (RL², VATE, variBAD) samples with, and its re-computation under a gradient.

A *trial* is one task met for ``E`` consecutive episodes of horizon ``T``. The
environment resets at every episode boundary; the agent's recurrent state (its *carry*)
runs on across them and starts from zeros only at the trial boundary, so what the agent
learnt in episode 1 is still there in episode 2 (Duan et al. 2016; Wang et al. 2016).

At step t the recurrent cell reads the observation s_t and :class:`Prev`, what happened
on the step before: the previous action a_{t−1}, reward r_{t−1}, and the episode-done
flag d_{t−1} (1 when the previous step ended an episode, i.e. s_t is the first state of a
new episode). At the trial's first step all three are zero. Steps after an early
termination are simulated (fixed shapes) but masked: on them neither the carry nor
:class:`Prev` moves, so the next episode's first step sees the last *valid* step.

The same rule (:func:`advance_prev`) runs during the rollout (:func:`trial`) and when the
stored trial is re-read for training (:func:`recurrent_inputs`, :func:`unroll`); the
tests check that the two give the same outputs and that an off-by-one flag would not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxmeta import rl
from jaxmeta.config import Section, check_positive
from jaxmeta.envs.base import TaskFamily
from jaxmeta.nets import ActionDist
from jaxmeta.rollout import Trajectory, count_env_steps

Array = jax.Array
Params = Any

# a trial longer than this many steps is refused: BPTT over it keeps every step's
# activations, and no family here needs more (halfcheetah: 2 × 200)
MAX_TRIAL_STEPS = 20_000


@dataclasses.dataclass(frozen=True)
class TrialConfig(Section):
    """What one update of a recurrent method samples: ``meta_batch_size`` training tasks,
    ``trials_per_task`` trials of ``trial_episodes`` episodes on each; ``eval_trials``
    trials per task in ``adapt``."""

    meta_batch_size: int = 16
    trials_per_task: int = 1
    trial_episodes: int = 3
    eval_trials: int = 4

    def __post_init__(self):
        for f in dataclasses.fields(self):
            check_positive(f.name, getattr(self, f.name))


def check_trialable(family: Any, episodes: int) -> None:
    """Refuses a family whose tasks cannot be met as trials of ``episodes`` episodes: it
    must be a :class:`TaskFamily` (a task pytree the rollout can hold fixed across resets)
    and ``episodes × horizon`` must fit in :data:`MAX_TRIAL_STEPS` (``ValueError`` naming
    the field, before anything is traced)."""
    check_positive("trial_episodes", episodes)
    if not isinstance(family, TaskFamily):
        raise ValueError(f"{type(family).__name__} is not a TaskFamily: a trial holds one "
                         "task fixed while the environment resets, which needs "
                         "sample_tasks/reset/step of a jaxmeta task family")
    steps = episodes * family.horizon
    if steps > MAX_TRIAL_STEPS:
        raise ValueError(
            f"trial_episodes={episodes} × horizon={family.horizon} of {family.name} is "
            f"{steps} steps per trial; back-propagation through a trial keeps every step, "
            f"so at most {MAX_TRIAL_STEPS} are allowed (lower trial_episodes or the horizon)")


class Prev(NamedTuple):
    """What the recurrent cell sees of the previous step (zeros at the trial's start)."""

    action: Array
    reward: Array
    done: Array

    @staticmethod
    def zeros(action_size: int) -> Prev:
        """The trial-start inputs: no previous action, reward or episode end."""
        return Prev(jnp.zeros((action_size,)), jnp.zeros(()), jnp.zeros(()))

    def vector(self) -> Array:
        """``[a_{t−1}, r_{t−1}, d_{t−1}]`` as one vector (the cell's extra input)."""
        return jnp.concatenate([self.action, self.reward[..., None], self.done[..., None]],
                               axis=-1)


def advance_prev(prev: Prev, action: Array, reward: Array, done: Array, mask: Array) -> Prev:
    """:class:`Prev` for the next step: this step's (a, r, done) where it was valid, the
    old one on masked steps."""
    new = Prev(action, reward, done)
    return jax.tree.map(lambda n, o: jnp.where(mask > 0, n, o), new, prev)


class AgentOut(NamedTuple):
    """One step of a recurrent agent: the action distribution's parameters (see
    :class:`jaxmeta.nets.ActionDist`), the value V, and method-specific extras (VATE: the
    posterior's mean and log-std)."""

    dist: tuple
    value: Array
    extra: Any = ()


class RecurrentAgent(NamedTuple):
    """A recurrent policy and critic as pure functions.

    Attributes:
      init: ``key -> params``.
      carry: ``() -> the zero carry`` (the trial-start state).
      step: ``(params, carry, obs [obs_size], prev: Prev) -> (carry, AgentOut)``.
      dist: how ``AgentOut.dist`` becomes actions.
    """

    init: Callable[[Array], Params]
    carry: Callable[[], Any]
    step: Callable[[Params, Any, Array, Prev], tuple[Any, AgentOut]]
    dist: ActionDist


class Trial(NamedTuple):
    """One trial, episode-major: every field ``[E, T, ...]`` (leading axes for batches).

    Attributes:
      traj: the steps (obs s_t, action, reward, done, mask, logp at sampling time);
        ``episode_returns(traj)`` gives each episode's return.
      next_obs: s_{t+1} (what a transition decoder reconstructs).
      value: V at sampling time.
    """

    traj: Trajectory
    next_obs: Array
    value: Array

    def env_steps(self) -> int:
        """Simulated env steps (those of ``traj``)."""
        return count_env_steps(self.traj)

    def flat(self) -> Trial:
        """The trial as one stream of ``E·T`` steps (axes ``[E, T]`` merged)."""
        lead = self.traj.reward.ndim - 2
        return jax.tree.map(lambda x: x.reshape(x.shape[:lead] + (-1,) + x.shape[lead + 2:]),
                            self)


def trial(family: TaskFamily, agent: RecurrentAgent, params: Params, task: Any, key: Array,
          episodes: int, greedy: bool = False) -> tuple[Trial, tuple[Any, Prev]]:
    """Samples one trial of ``episodes`` episodes of ``task`` (no gradient flows).

    Returns:
      (the :class:`Trial` ``[E, T, ...]``, (carry, :class:`Prev`) after its last valid
      step: the agent's memory, to act on from there).
      With ``greedy`` the agent takes its most likely action (``ActionDist.mode``).
    """

    def run_episode(carry_prev, k):
        carry, prev = carry_prev
        k_reset, k_act = jax.random.split(k)
        state0 = family.reset(k_reset, task)

        def body(c, k):
            state, carry, prev, alive = c
            new_carry, out = agent.step(params, carry, state.obs, prev)
            action = agent.dist.mode(out.dist) if greedy else agent.dist.sample(k, out.dist)
            logp = agent.dist.log_prob(out.dist, action)
            nxt = family.step(state, action, task)
            reward, done = nxt.reward * alive, nxt.done * alive
            rec = (Trajectory(state.obs, action, reward, done, alive, logp), nxt.obs, out.value)
            carry = jax.tree.map(lambda n, o: jnp.where(alive > 0, n, o), new_carry, carry)
            prev = advance_prev(prev, action, reward, nxt.done, alive)
            return (nxt, carry, prev, alive * (1.0 - nxt.done)), rec

        keys = jax.random.split(k_act, family.horizon)
        (_, carry, prev, _), rec = jax.lax.scan(body, (state0, carry, prev, jnp.ones(())), keys)
        return (carry, prev), rec

    init = (agent.carry(), Prev.zeros(family.action_size))
    memory, (traj, next_obs, value) = jax.lax.scan(
        run_episode, init, jax.random.split(key, episodes))
    return jax.lax.stop_gradient((Trial(traj, next_obs, value), memory))


def trials(family: TaskFamily, agent: RecurrentAgent, params: Params, task: Any, key: Array,
           num_trials: int, episodes: int) -> Trial:
    """``num_trials`` independent trials of one task ``[num_trials, E, T, ...]``."""
    keys = jax.random.split(key, num_trials)
    return jax.vmap(lambda k: trial(family, agent, params, task, k, episodes)[0])(keys)


def recurrent_inputs(traj: Trajectory) -> Prev:
    """:class:`Prev` of every step of one stored trial stream ``[N]`` (``Trial.flat()``),
    by the rollout's rule (:func:`advance_prev`)."""
    action_size = traj.action.shape[-1]

    def body(prev, x):
        action, reward, done, mask = x
        return advance_prev(prev, action, reward, done, mask), prev

    _, prev = jax.lax.scan(body, Prev.zeros(action_size),
                           (traj.action, traj.reward, traj.done, traj.mask))
    return prev


def unroll(agent: RecurrentAgent, params: Params, obs: Array, prev: Prev, mask: Array
           ) -> AgentOut:
    """The agent re-run over one trial stream ``[N]`` from the zero carry (differentiable
    in ``params``: back-propagation through the whole trial). Masked steps keep the carry."""

    def body(carry, x):
        o, p, m = x
        new, out = agent.step(params, carry, o, p)
        return jax.tree.map(lambda n, c: jnp.where(m > 0, n, c), new, carry), out

    _, outs = jax.lax.scan(body, agent.carry(), (obs, prev, mask))
    return outs


def trial_gae(reward: Array, value: Array, mask: Array, gamma, lambda_) -> Array:
    """GAE over one trial stream ``[N]`` whose only terminal is the trial's end: episode
    boundaries inside a trial are not terminal (the objective is the whole trial's return,
    as in RL² and variBAD). Masked steps (after an early termination) are skipped: they
    pass the next valid step's value and advantage through, undiscounted.

    δ_t = r_t + γ V_next − V_t,  A_t = δ_t + γλ A_next  (V_next = A_next = 0 after the end).
    """

    def body(c, x):
        next_v, next_a = c
        r, v, m = x
        delta = r + gamma * next_v - v
        a = delta + gamma * lambda_ * next_a
        return (jnp.where(m > 0, v, next_v), jnp.where(m > 0, a, next_a)), a * m

    zero = jnp.zeros((), reward.dtype)
    _, adv = jax.lax.scan(body, (zero, zero), (reward, value, mask), reverse=True)
    return adv


class PPOTerms(NamedTuple):
    """The parts of a recurrent PPO loss on a batch of trials (means over valid steps)."""

    policy: Array
    value: Array
    entropy: Array


def ppo_terms(agent: RecurrentAgent, params: Params, flat: Trial, adv: Array, clip
              ) -> tuple[PPOTerms, Any]:
    """PPO-clip (Schulman et al. 2017) over trial streams ``[B, N]``: the clipped
    surrogate with advantages normalised over the batch, the squared error of V to the
    targets A + V_old, and the mean entropy; BPTT over each whole trial.

    Returns:
      (:class:`PPOTerms`, the agent's outputs ``[B, N]``).
    """
    t = flat.traj
    prev = jax.vmap(recurrent_inputs)(t)
    outs = jax.vmap(lambda o, p, m: unroll(agent, params, o, p, m))(t.obs, prev, t.mask)
    logp = agent.dist.log_prob(outs.dist, t.action)
    norm = rl.normalize(adv, t.mask)
    surrogate = rl.ppo_clip_loss(logp, t.logp, norm, t.mask, clip)
    target = jax.lax.stop_gradient(adv + flat.value)
    value = rl.masked_mean((outs.value - target) ** 2, t.mask)
    entropy = rl.masked_mean(agent.dist.entropy(outs.dist), t.mask)
    return PPOTerms(surrogate, value, entropy), outs
