"""Layer normalisation against a float64 reference computed in numpy."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from behavior_priors.networks.layers import LayerNorm


@pytest.mark.parametrize("shape", [(7, 16), (3, 5, 64)])
def test_layer_norm_matches_a_float64_reference(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape) * rng.uniform(0.1, 5.0, size=(*shape[:-1], 1)) + 3.0
    norm = LayerNorm(shape[-1])
    norm = _with_scale_and_offset(
        norm, rng.uniform(0.5, 2.0, shape[-1]), rng.normal(size=shape[-1])
    )
    mean = x.mean(-1, keepdims=True)
    want = (x - mean) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * np.asarray(norm.scale)
    want = want + np.asarray(norm.offset)
    np.testing.assert_allclose(norm(jnp.asarray(x, jnp.float32)), want, rtol=1e-4, atol=1e-4)


def _with_scale_and_offset(norm, scale, offset):
    return eqx.tree_at(
        lambda n: (n.scale, n.offset),
        norm,
        (jnp.asarray(scale, jnp.float32), jnp.asarray(offset, jnp.float32)),
    )


def test_layer_norm_of_a_constant_row_is_the_offset_with_finite_gradients():
    x = jnp.full((3, 32), 1234.5678, jnp.float32)
    norm = LayerNorm(32)
    np.testing.assert_allclose(norm(x), jnp.zeros_like(x), atol=1e-2)
    g = jax.grad(lambda x: jnp.sum(norm(x) * jnp.arange(32.0)))(x)
    assert bool(jnp.all(jnp.isfinite(g)))


@pytest.mark.parametrize("lead", [(6,), (1, 4, 3), (2, 3, 5)])
def test_layer_norm_mlp_over_leading_axes_matches_a_float64_reference_row_by_row(lead):
    """The torso flattens its leading axes to one before its products and layer norm; every
    row must still get its own MLP: values against numpy in float64, gradients (input and
    parameters) against the torso applied to one row at a time under vmap."""
    from behavior_priors.networks.layers import LayerNormMLP

    rng = np.random.default_rng(1)
    mlp = LayerNormMLP(7, (16, 8), jax.random.PRNGKey(3))
    x = rng.normal(size=(*lead, 7)).astype(np.float32)

    def reference(x):
        w = [np.asarray(layer.weight, np.float64) for layer in mlp.layers]
        b = [np.asarray(layer.bias, np.float64) for layer in mlp.layers]
        h = x.astype(np.float64) @ w[0].T + b[0]
        h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5)
        h = np.tanh(h * np.asarray(mlp.norm.scale) + np.asarray(mlp.norm.offset))
        h = h @ w[1].T + b[1]
        return np.where(h > 0, h, np.expm1(h))  # elu

    out = mlp(jnp.asarray(x))
    assert out.shape == (*lead, 8)
    np.testing.assert_allclose(out, reference(x), rtol=1e-5, atol=1e-5)

    weights = jnp.asarray(rng.normal(size=(*lead, 8)), jnp.float32)

    def loss(mlp, x):
        return jnp.sum(mlp(x) * weights)

    def loss_by_row(mlp, x):
        rows = jax.vmap(lambda r: mlp(r[None])[0])(x.reshape(-1, 7))
        return jnp.sum(rows.reshape(*lead, 8) * weights)

    got = eqx.filter_grad(loss)(mlp, jnp.asarray(x))
    want = eqx.filter_grad(loss_by_row)(mlp, jnp.asarray(x))
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    dx = jax.grad(loss, argnums=1)(mlp, jnp.asarray(x))
    dx_rows = jax.grad(loss_by_row, argnums=1)(mlp, jnp.asarray(x))
    assert dx.shape == x.shape
    np.testing.assert_allclose(dx, dx_rows, rtol=1e-4, atol=1e-5)


def test_elu_matches_a_float64_reference_in_value_and_gradient():
    """The torsos' ``exp(x) - 1`` ELU against numpy's float64 ``expm1`` form: within a couple
    of float32 roundings everywhere (the two differ most near 0, by about 6e-8), the same
    limits (-1 below, the identity above, NaN kept), and the gradient ``exp(x)`` / 1 (1 at 0,
    as ``jax.nn.elu``)."""
    from behavior_priors.networks.layers import elu

    x = np.concatenate(
        [np.linspace(-30.0, 30.0, 2001), np.linspace(-1e-3, 1e-3, 201), [-1e-30, 0.0, 1e-30]]
    ).astype(np.float32)
    x64 = x.astype(np.float64)
    want = np.where(x64 > 0, x64, np.expm1(x64))
    got = np.asarray(elu(jnp.asarray(x)))
    np.testing.assert_allclose(got, want, rtol=2e-7, atol=1.5e-7)
    np.testing.assert_array_equal(got[x > 0], x[x > 0])  # exactly the identity above 0

    grad = np.asarray(jax.vmap(jax.grad(elu))(jnp.asarray(x)))
    np.testing.assert_allclose(grad, np.where(x64 > 0, 1.0, np.exp(x64)), rtol=1e-6, atol=0)

    edge = np.asarray(elu(jnp.asarray([-np.inf, np.inf, np.nan], jnp.float32)))
    assert edge[0] == -1.0 and edge[1] == np.inf and np.isnan(edge[2])
    assert np.all(np.isfinite(np.asarray(jax.vmap(jax.grad(elu))(jnp.asarray([-1e4, 1e4])))))
