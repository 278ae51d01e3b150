"""Diagonal Gaussian and categorical distributions as small JAX pytrees.

Both are ``NamedTuple``s, so they pass through ``jit``, ``vmap`` and ``grad`` unchanged, and
every method is batched over all leading dimensions: a ``DiagGaussian`` with ``loc`` of shape
``[..., D]`` describes ``prod(...)`` independent ``D``-dimensional Gaussians, and its
``log_prob``, ``entropy`` and ``kl`` return shape ``[...]`` (the event dimension is summed).

We keep our own instead of distrax because distrax pulls a nightly TensorFlow Probability
build; these few formulas are tested against ``scipy.stats`` and Monte Carlo instead.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array

_LOG_2PI = math.log(2.0 * math.pi)


class DiagGaussian(NamedTuple):
    """Gaussian with diagonal covariance; the last axis is the event axis.

    Attributes:
      loc: means, shape ``[..., D]``.
      scale: standard deviations (> 0), shape ``[..., D]``.
    """

    loc: Array
    scale: Array

    @property
    def event_size(self) -> int:
        return self.loc.shape[-1]

    def sample(self, key: Array, sample_shape: tuple[int, ...] = ()) -> Array:
        """Reparameterised sample ``loc + scale * eps``: shape ``[*sample_shape, ..., D]``.

        Gradients flow to ``loc`` and ``scale`` (this is what SVG(0) differentiates).
        """
        shape = tuple(sample_shape) + jnp.shape(self.loc)
        eps = jax.random.normal(key, shape, dtype=jnp.result_type(self.loc))
        return self.loc + self.scale * eps

    def log_prob(self, x: Array) -> Array:
        """Log-density of ``x`` (shape ``[..., D]``, broadcastable), summed over D: ``[...]``."""
        z = (x - self.loc) / self.scale
        return jnp.sum(-0.5 * jnp.square(z) - jnp.log(self.scale) - 0.5 * _LOG_2PI, axis=-1)

    def sample_and_log_prob(
        self, key: Array, sample_shape: tuple[int, ...] = ()
    ) -> tuple[Array, Array]:
        """A reparameterised sample and its log-density (shapes ``[*S, ..., D]``, ``[*S, ...]``)."""
        x = self.sample(key, sample_shape)
        return x, self.log_prob(x)

    def entropy(self) -> Array:
        """Differential entropy, shape ``[...]``."""
        return jnp.sum(0.5 + 0.5 * _LOG_2PI + jnp.log(self.scale), axis=-1)

    def mode(self) -> Array:
        """The mean, used by deterministic evaluation: shape ``[..., D]``."""
        return self.loc

    def kl(self, other: DiagGaussian) -> Array:
        """Analytic ``KL(self || other)``, shape ``[...]`` (broadcast of both batch shapes)."""
        return gaussian_kl(self, other)


def gaussian_kl(p: DiagGaussian, q: DiagGaussian) -> Array:
    """Analytic ``KL(p || q)`` for diagonal Gaussians, summed over the event axis.

    Per dimension: ``log(s_q/s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2``.

    Args:
      p, q: ``DiagGaussian`` with broadcastable shapes ``[..., D]``.

    Returns:
      KL, shape ``[...]``; non-negative up to float rounding.
    """
    var_ratio = jnp.square(p.scale / q.scale)
    mean_term = jnp.square((p.loc - q.loc) / q.scale)
    return 0.5 * jnp.sum(var_ratio + mean_term - 1.0 - jnp.log(var_ratio), axis=-1)


def standard_normal_like(loc: Array) -> DiagGaussian:
    """``N(0, I)`` with the shape and dtype of ``loc`` (the fixed high-level prior)."""
    return DiagGaussian(jnp.zeros_like(loc), jnp.ones_like(loc))


class Categorical(NamedTuple):
    """Categorical distribution over the last axis of ``logits`` (shape ``[..., K]``).

    Logits need not be normalised; every method normalises with ``log_softmax``.
    """

    logits: Array

    @property
    def num_categories(self) -> int:
        return self.logits.shape[-1]

    @property
    def log_probs(self) -> Array:
        """Normalised log-probabilities, shape ``[..., K]``."""
        return jax.nn.log_softmax(self.logits, axis=-1)

    @property
    def probs(self) -> Array:
        """Probabilities, shape ``[..., K]``."""
        return jax.nn.softmax(self.logits, axis=-1)

    def sample(self, key: Array, sample_shape: tuple[int, ...] = ()) -> Array:
        """Integer samples, shape ``[*sample_shape, ...]`` (not differentiable)."""
        shape = tuple(sample_shape) + jnp.shape(self.logits)[:-1]
        return jax.random.categorical(key, self.logits, axis=-1, shape=shape)

    def log_prob(self, a: Array) -> Array:
        """Log-probability of integer actions ``a`` (shape ``[...]``): shape ``[...]``."""
        a = jnp.asarray(a)
        log_p = jnp.broadcast_to(self.log_probs, (*jnp.shape(a), self.num_categories))
        return jnp.take_along_axis(log_p, a[..., None].astype(jnp.int32), axis=-1)[..., 0]

    def sample_and_log_prob(
        self, key: Array, sample_shape: tuple[int, ...] = ()
    ) -> tuple[Array, Array]:
        a = self.sample(key, sample_shape)
        return a, self.log_prob(a)

    def entropy(self) -> Array:
        """Shannon entropy in nats, shape ``[...]``."""
        log_p = self.log_probs
        # xlogy-style guard: a category with probability 0 contributes 0, not nan.
        return -jnp.sum(jnp.where(log_p > -jnp.inf, jnp.exp(log_p) * log_p, 0.0), axis=-1)

    def mode(self) -> Array:
        """Most likely category, shape ``[...]``."""
        return jnp.argmax(self.logits, axis=-1)

    def kl(self, other: Categorical) -> Array:
        """``KL(self || other)``, shape ``[...]``."""
        return categorical_kl(self, other)


def categorical_kl(p: Categorical, q: Categorical) -> Array:
    """``KL(p || q) = sum_k p_k (log p_k - log q_k)``, shape ``[...]``.

    Categories where ``p_k = 0`` contribute 0 (no ``0 * -inf`` nan).
    """
    log_p, log_q = p.log_probs, q.log_probs
    term = jnp.where(log_p > -jnp.inf, jnp.exp(log_p) * (log_p - log_q), 0.0)
    return jnp.sum(term, axis=-1)
