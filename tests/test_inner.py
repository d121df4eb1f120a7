"""Inner-loop optimizers: the update formulas, the shape of Meta-SGD's rates, and rates
that are traced (swept) values."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxmeta.meta import inner

PARAMS = {"w": jnp.array([[1.0, -2.0]]), "b": jnp.array([0.5])}
GRADS = {"w": jnp.array([[0.2, 0.4]]), "b": jnp.array([-1.0])}


def test_sgd_is_theta_minus_lr_grad():
    opt = inner.sgd(0.1)
    state = opt.init(PARAMS)
    updates, _ = opt.update(GRADS, state, PARAMS)
    new = optax.apply_updates(PARAMS, updates)
    np.testing.assert_allclose(new["w"], [[0.98, -2.04]], rtol=1e-6)
    np.testing.assert_allclose(new["b"], [0.6], rtol=1e-6)


def test_meta_sgd_uses_per_parameter_rates():
    opt = inner.meta_sgd(0.1)
    state = opt.init(PARAMS)
    assert state.lr["w"].shape == (1, 2) and float(state.lr["b"][0]) == pytest.approx(0.1)
    state = state._replace(lr={"w": jnp.array([[0.0, 1.0]]), "b": jnp.array([2.0])})
    updates, _ = opt.update(GRADS, state, PARAMS)
    new = optax.apply_updates(PARAMS, updates)
    np.testing.assert_allclose(new["w"], [[1.0, -2.4]], rtol=1e-6)  # α = 0 freezes w[0]
    np.testing.assert_allclose(new["b"], [2.5], rtol=1e-6)


def test_negative_rates_are_refused():
    with pytest.raises(ValueError, match="inner_lr"):
        inner.sgd(-0.1)
    with pytest.raises(ValueError, match="inner_lr"):
        inner.meta_sgd(-1.0)


def test_rates_may_be_traced_and_vmapped():
    """A swept inner rate is a traced array: one compiled update serves every value."""

    def step(lr):
        opt = inner.sgd(lr)
        updates, _ = opt.update(GRADS, opt.init(PARAMS), PARAMS)
        return optax.apply_updates(PARAMS, updates)["b"]

    got = jax.jit(jax.vmap(step))(jnp.array([0.0, 0.1, 1.0]))
    np.testing.assert_allclose(got[:, 0], [0.5, 0.6, 1.5], rtol=1e-6)
    lr = jax.jit(lambda a: inner.meta_sgd(a).init(PARAMS).lr["w"])(jnp.float32(0.3))
    np.testing.assert_allclose(lr, [[0.3, 0.3]])
