"""Layers that accept any number of leading batch dimensions.

Equinox's own ``nn.Linear`` works on a single example and needs ``vmap`` for batches; the
learner applies networks to ``[B, T+1, ...]`` and ``[S, B, T+1, ...]`` arrays, so these layers
broadcast over leading axes instead (one matmul, no nested vmaps).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp

Array = jax.Array


class Linear(eqx.Module):
    """``y = x W^T + b`` over the last axis: ``[..., in] -> [..., out]``."""

    weight: Array  # [out, in]
    bias: Array  # [out]

    def __init__(self, in_size: int, out_size: int, key: Array, scale: float = 1.0):
        # Variance-scaling (fan-in, uniform) as in Acme/haiku's default for MLPs.
        bound = scale * math.sqrt(3.0 / max(in_size, 1))
        self.weight = jax.random.uniform(key, (out_size, in_size), jnp.float32, -bound, bound)
        self.bias = jnp.zeros((out_size,), jnp.float32)

    def __call__(self, x: Array) -> Array:
        return x @ self.weight.T + self.bias


class LayerNorm(eqx.Module):
    """Layer normalisation over the last axis with a learned scale and offset
    (:func:`layer_norm`)."""

    scale: Array
    offset: Array
    eps: float = eqx.field(static=True, default=1e-5)

    def __init__(self, size: int):
        self.scale = jnp.ones((size,), jnp.float32)
        self.offset = jnp.zeros((size,), jnp.float32)

    def __call__(self, x: Array) -> Array:
        return layer_norm(x, self.scale, self.offset, self.eps)


def _row_mean(x: Array) -> Array:
    """``[..., n] -> [..., 1]``: the mean over the last axis, as a product with a column of
    ``1/n``. On the CPU, XLA runs each reduction over the last axis as a kernel of its own,
    with no fusion into the elementwise work around it; the layer normalisations' forward and
    backward passes made about 30 of the demo update's 53 such kernels. As products (with the
    closed-form gradient of :func:`layer_norm`) the update took 0.88x as long
    (``benchmarks/update_ab.py``; docs/benchmarks.md, "Layer normalisation as products")."""
    n = x.shape[-1]
    return x @ jnp.full((n, 1), 1.0 / n, x.dtype)


def _normalise(x: Array, eps: float) -> tuple[Array, Array]:
    """``x [..., n]`` -> ``(x_hat [..., n], 1/std [..., 1])``, the variance as
    ``E[x^2] - E[x]^2`` (both means from one pass over ``x``, as Flax's fast variance),
    clipped at 0 against rounding."""
    mean = _row_mean(x)
    var = jnp.maximum(_row_mean(x * x) - mean * mean, 0.0)
    rstd = jax.lax.rsqrt(var + eps)
    return (x - mean) * rstd, rstd


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def layer_norm(x: Array, scale: Array, offset: Array, eps: float = 1e-5) -> Array:
    """``(x - mean) / sqrt(var + eps) * scale + offset`` over the last axis: ``x [..., n]``,
    ``scale, offset [n]`` -> ``[..., n]``.

    Its gradient is the closed form (Ba et al. 2016), with ``g`` the output's cotangent and
    ``x_hat`` the normalised input: ``dx = (g s - mean(g s) - x_hat mean(g s x_hat)) / std``,
    ``d scale = sum(g x_hat)``, ``d offset = sum(g)`` over the leading axes; two means per row
    where autodiff of the forward pass makes five (tested against autodiff of the textbook
    formula). First-order only: no forward-mode or second derivatives."""
    return _normalise(x, eps)[0] * scale + offset


def _layer_norm_fwd(x, scale, offset, eps):
    x_hat, rstd = _normalise(x, eps)
    return x_hat * scale + offset, (x_hat, rstd, scale)


def _layer_norm_bwd(eps, residuals, g):
    x_hat, rstd, scale = residuals
    gs = g * scale
    dx = rstd * (gs - _row_mean(gs) - x_hat * _row_mean(gs * x_hat))
    leading = tuple(range(g.ndim - 1))
    return dx, jnp.sum(g * x_hat, axis=leading), jnp.sum(g, axis=leading)


layer_norm.defvjp(_layer_norm_fwd, _layer_norm_bwd)


class LayerNormMLP(eqx.Module):
    """Linear -> LayerNorm -> tanh, then (Linear -> elu) for the other hidden layers.

    This is Acme's ``LayerNormMLP``, the torso the paper's authors used: the normalised first
    layer keeps inputs of very different scales (joint angles, distances, one-hot ids) usable
    without an observation normaliser.
    """

    layers: tuple[Linear, ...]
    norm: LayerNorm
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(self, in_size: int, hidden: Sequence[int], key: Array):
        if not hidden:
            raise ValueError("LayerNormMLP needs at least one hidden layer")
        keys = jax.random.split(key, len(hidden))
        sizes = [in_size, *hidden]
        self.layers = tuple(
            Linear(a, b, k) for a, b, k in zip(sizes[:-1], sizes[1:], keys, strict=True)
        )
        self.norm = LayerNorm(hidden[0])
        self.activation = jax.nn.elu

    @property
    def out_size(self) -> int:
        return self.layers[-1].bias.shape[0]

    def __call__(self, x: Array) -> Array:
        h = jnp.tanh(self.norm(self.layers[0](x)))
        for layer in self.layers[1:]:
            h = self.activation(layer(h))
        return h
