"""VATE's VAE: the ELBO against a numpy reference, likelihoods, noise per seed, presets and
bad input."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmeta import algorithms
from jaxmeta.algorithms.vate import VATEConfig
from jaxmeta.algorithms.vate.vae import bernoulli_nll, elbo_terms, gaussian_nll
from tests.helpers import tiny_family, tiny_learner

KEY = jax.random.PRNGKey(0)


def _np_kl(m1, s1, m2, s2):
    """KL(N(m1, e^{2 s1}) ‖ N(m2, e^{2 s2})), summed over the last axis (closed form)."""
    v1, v2 = np.exp(2 * s1), np.exp(2 * s2)
    return np.sum(s2 - s1 + (v1 + (m1 - m2) ** 2) / (2 * v2) - 0.5, axis=-1)


@pytest.mark.parametrize("decode, kl_to", list(itertools.product(
    ["all", "past"], ["prior", "previous"])))
def test_elbo_matches_numpy(decode, kl_to):
    rng = np.random.default_rng(0)
    n, lat = 5, 3
    mu, ls = rng.normal(size=(n, lat)), 0.3 * rng.normal(size=(n, lat))
    starts = np.array([0, 2, 3, 4])
    nll = rng.uniform(0.1, 2.0, size=(len(starts), n))
    mask = np.array([1.0, 1.0, 1.0, 0.0, 1.0])  # step 3 masked: not decoded, no ELBO term
    beta = 0.7
    rows = []
    for k, t in enumerate(starts):
        if not mask[t]:
            continue
        js = [j for j in range(n) if mask[j] and (decode == "all" or j < t)]
        recon = sum(nll[k, j] for j in js)
        if kl_to == "prior":
            kl = _np_kl(mu[t], ls[t], 0 * mu[t], 0 * ls[t])
        else:
            pm, ps = (mu[t - 1], ls[t - 1]) if t > 0 else (0 * mu[t], 0 * ls[t])
            kl = _np_kl(mu[t], ls[t], pm, ps)
        rows.append((recon, kl))
    recon, kl = np.mean(rows, axis=0)
    got = elbo_terms(jnp.array(mu), jnp.array(ls), jnp.array(nll), jnp.array(starts),
                     jnp.array(mask), decode, kl_to, beta)
    np.testing.assert_allclose(got.reconstruction, recon, rtol=1e-5)
    np.testing.assert_allclose(got.kl, kl, rtol=1e-5)
    np.testing.assert_allclose(got.loss, recon + beta * kl, rtol=1e-5)


def test_likelihoods_match_numpy():
    x, mean = np.array([0.3, -1.0]), np.array([0.1, 0.5])
    np.testing.assert_allclose(gaussian_nll(mean, x),
                               0.5 * (x - mean) ** 2 + 0.5 * np.log(2 * np.pi), rtol=1e-6)
    logit, y = np.array([0.4, -2.0], np.float32), np.array([1.0, 0.0], np.float32)
    p = 1 / (1 + np.exp(-logit))
    np.testing.assert_allclose(bernoulli_nll(logit, y), -(y * np.log(p) + (1 - y) * np.log(1 - p)),
                               rtol=1e-5)


def test_every_seed_draws_its_own_reparameterisation_noise():
    learner = tiny_learner("vate")
    state = learner.init(KEY)
    s = learner.sample(state, KEY)
    state = state.replace(opt_state={**state.opt_state, "aux": learner_aux(learner, state, s)})
    loss = lambda st: learner.meta_loss(st.params, st, s)
    other = state.replace(key=jax.random.PRNGKey(7))  # same parameters, another seed's key
    assert float(loss(state)) != float(loss(other))
    assert float(loss(state)) == float(loss(state))


def learner_aux(learner, state, s):
    """The buffer after observing ``s`` (what ``update`` does before its epochs)."""
    from jaxmeta.meta import buffer

    flat = s.batches.flat()
    flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), flat)
    return buffer.add(state.opt_state["aux"], flat)


def test_presets_fix_the_variants():
    fam = tiny_family()
    v = algorithms.make("varibad", fam, VATEConfig(gru_size=4, latent_size=2))
    assert (v.config.kl_to, v.config.decode, v.config.rl_into_encoder) == (
        "previous", "all", False)
    past = algorithms.make("vate_past_decoding", fam, VATEConfig(gru_size=4))
    assert past.config.decode == "past"
    with pytest.raises(ValueError, match="varibad fixes decode='all'"):
        algorithms.make("varibad", fam, VATEConfig(decode="past"))


def test_bad_vate_config_is_refused():
    with pytest.raises(ValueError, match="latent_size must be a positive integer"):
        VATEConfig(latent_size=0)
    with pytest.raises(ValueError, match=r"decoder='pixels'.*'reward', 'transition', 'both'"):
        VATEConfig(decoder="pixels")
    with pytest.raises(ValueError, match="vae_buffer_trials=4 must hold"):
        algorithms.config_with("vate", meta_batch_size=8, vae_buffer_trials=4)
    with pytest.raises(ValueError, match="reward_levels"):
        algorithms.make("vate", tiny_family(), VATEConfig(reward_likelihood="bernoulli"))
    with pytest.raises(ValueError, match="trial_episodes must be a positive integer"):
        algorithms.config_with("rl2", trial_episodes=0)
