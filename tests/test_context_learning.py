"""Learning tests of the recurrent, context-based learners: on a small gridworld (3×3,
goals outside the start's 2×2 block, trials of 2 episodes × 6 steps) RL² and VATE learn
to explore in episode 1 and exploit in episode 2."""

import jax
import numpy as np
import pytest

from jaxmeta import algorithms, envs

FLAT = dict(meta_batch_size=16, trial_episodes=2, gamma=0.95, gru_size=32, hidden_sizes=(32,),
            value_hidden_sizes=(32,), ppo_epochs=4, entropy_coef=0.05, eval_trials=8,
            latent_size=4, reward_likelihood="bernoulli", reward_decoder_input="next_state",
            vae_batch_trials=16, elbo_starts=6, decoder_hidden_sizes=(16,))
ITERATIONS, SEEDS, TASKS = 400, 2, 10
MARGIN = 0.5  # return units; the goal pays 1 per step, a step elsewhere costs 0.1


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["rl2", "vate"])
def test_episode_two_beats_episode_one_on_held_out_goals(algo):
    fam = envs.make("gridworld", size=3, horizon=6)
    learner = algorithms.make(algo, fam, algorithms.config_with(algo, **FLAT))
    # one member at a time (lax.map): a vmapped init batches the orthogonal initialisers'
    # QRs, which can deadlock jaxlib's CPU thread pool (jaxmeta.runs.compiled_init)
    states = jax.lax.map(learner.init, jax.random.split(jax.random.PRNGKey(0), SEEDS))
    tasks = fam.sample_tasks(jax.random.PRNGKey(9), TASKS, "test")
    keys = jax.random.split(jax.random.PRNGKey(3), TASKS)
    per_episode = jax.jit(jax.vmap(lambda st: jax.vmap(
        lambda t, k: learner.adapt(st, t, k, 1).returns)(tasks, keys).mean(0)))
    before = np.asarray(per_episode(states))
    train = jax.jit(lambda s: jax.lax.scan(lambda s, _: jax.vmap(learner.update)(s), s, None,
                                           length=ITERATIONS)[0])
    after = np.asarray(per_episode(train(states)))  # [seeds, episode]
    gain = after[:, 1] - after[:, 0]
    assert np.all(gain > MARGIN), (algo, before, after)
    assert np.all(after[:, 1] > before[:, 1] + 1.0), (algo, before, after)
