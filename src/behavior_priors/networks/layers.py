"""Layers that accept any number of leading batch dimensions.

Equinox's own ``nn.Linear`` works on a single example and needs ``vmap`` for batches; the
learner applies networks to ``[B, T+1, ...]`` and ``[S, B, T+1, ...]`` arrays, so these layers
broadcast over leading axes instead (one matmul, no nested vmaps).
"""

from __future__ import annotations

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
    """Layer normalisation over the last axis with a learned scale and offset."""

    scale: Array
    offset: Array
    eps: float = eqx.field(static=True, default=1e-5)

    def __init__(self, size: int):
        self.scale = jnp.ones((size,), jnp.float32)
        self.offset = jnp.zeros((size,), jnp.float32)

    def __call__(self, x: Array) -> Array:
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.var(x, axis=-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + self.eps) * self.scale + self.offset


def elu(x: Array) -> Array:
    """``x`` where ``x > 0``, else ``exp(x) - 1``: the ELU (alpha = 1), elementwise.

    ``jax.nn.elu`` computes the negative side with ``expm1``, whose CPU kernel XLA emits at
    about twice the cost of ``exp``: on ``[1600, 64]``, the demo's target critic, 147 us
    against 74 for the forward pass. ``exp(x) - 1`` differs from ``expm1(x)`` by at most one
    float32 rounding of the subtraction (about 6e-8 near 0, where ``expm1`` keeps relative
    precision that an activation does not need); the gradient is ``exp(x)`` on the negative
    side, as before.
    """
    return jnp.where(x > 0, x, jnp.exp(jnp.where(x > 0, 0.0, x)) - 1.0)


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
        self.activation = elu

    @property
    def out_size(self) -> int:
        return self.layers[-1].bias.shape[0]

    def __call__(self, x: Array) -> Array:
        """``[..., in] -> [..., out]``, computed on the rows flattened to ``[N, in]``."""
        # One leading axis, not the learner's [S, B, T+1]: XLA's CPU kernels for the layer
        # norm's row reductions (and their gradients) ran up to 5x slower on 4-d arrays such as
        # [1, 32, 11, 64] than on [352, 64]; flat, the demo's update took 0.90x the time with
        # the same function (docs/benchmarks.md, "Flat rows for the torsos").
        lead = x.shape[:-1]
        h = x.reshape(-1, x.shape[-1])
        h = jnp.tanh(self.norm(self.layers[0](h)))
        for layer in self.layers[1:]:
            h = self.activation(layer(h))
        return h.reshape(*lead, h.shape[-1])
