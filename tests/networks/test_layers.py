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
