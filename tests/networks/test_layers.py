"""Layer normalisation: values and gradients against the textbook formula under autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from behavior_priors.networks.layers import LayerNorm, layer_norm


def _reference(x, scale, offset, eps=1e-5):
    """Two-pass mean and variance, differentiated by JAX."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps) * scale + offset


def _inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    n = shape[-1]
    # Rows of different scales and offsets, as a first layer's pre-activations are.
    x = rng.normal(size=shape) * rng.uniform(0.1, 5.0, size=(*shape[:-1], 1)) + 3.0
    return (
        jnp.asarray(x, jnp.float32),
        jnp.asarray(rng.uniform(0.5, 2.0, n), jnp.float32),
        jnp.asarray(rng.normal(size=n), jnp.float32),
    )


@pytest.mark.parametrize("shape", [(7, 16), (3, 5, 64), (2, 3, 4, 8)])
def test_layer_norm_matches_the_textbook_formula_and_its_gradients(shape):
    x, scale, offset = _inputs(shape)
    np.testing.assert_allclose(
        layer_norm(x, scale, offset), _reference(x, scale, offset), rtol=1e-4, atol=1e-4
    )
    # A cotangent that is not constant per row, so that every term of the closed form counts.
    w = jnp.asarray(np.random.default_rng(1).normal(size=shape), jnp.float32)

    def loss(fn):
        return lambda x, s, o: jnp.sum(jnp.tanh(fn(x, s, o)) * w)

    ours = jax.grad(loss(layer_norm), argnums=(0, 1, 2))(x, scale, offset)
    ref = jax.grad(loss(_reference), argnums=(0, 1, 2))(x, scale, offset)
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    # The input's gradient of a normalised row sums to 0 per row (shifting x changes nothing).
    np.testing.assert_allclose(jnp.sum(ours[0], axis=-1), 0.0, atol=1e-4)


def test_layer_norm_gradients_under_vmap_and_jit():
    """A module called inside ``vmap`` (several seeds' networks at once) sums each instance's
    scale gradient over its own rows only."""
    x, scale, offset = _inputs((4, 6, 16))
    scales = jnp.stack([scale, 2 * scale, scale + 1, scale * 0.5])

    def loss(fn, s, x):
        return jnp.sum(fn(x, s, offset) ** 3)

    ours = jax.jit(jax.vmap(jax.grad(lambda s, x: loss(layer_norm, s, x))))(scales, x)
    ref = jax.vmap(jax.grad(lambda s, x: loss(_reference, s, x)))(scales, x)
    # float32 rounding, cubed: elements near 0 are held to a tolerance scaled by the largest.
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-4 * float(jnp.max(jnp.abs(ref))))


def test_layer_norm_of_a_constant_row_is_the_offset():
    """Zero variance: the rounding of E[x^2] - E[x]^2 must not go negative (no NaN)."""
    x = jnp.full((3, 32), 1234.5678, jnp.float32)
    norm = LayerNorm(32)
    out = norm(x)
    np.testing.assert_allclose(out, jnp.zeros_like(x), atol=1e-2)
    g = jax.grad(lambda x: jnp.sum(norm(x) * jnp.arange(32.0)))(x)
    assert bool(jnp.all(jnp.isfinite(g)))
