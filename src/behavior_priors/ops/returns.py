"""Discounted returns of one sequence; batch them with ``jax.vmap``.

Same index convention as :mod:`behavior_priors.ops.retrace`: ``r_t[t]`` and ``discount_t[t]``
belong to the transition from x_t to x_{t+1}; ``discount_t`` is gamma times continuation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def discounted_returns(r_t: Array, discount_t: Array, bootstrap_value: Array | float) -> Array:
    """``G_t = r_t + discount_t * G_{t+1}``, with ``G_T = bootstrap_value``.

    Args:
      r_t: ``[T]`` rewards.
      discount_t: ``[T]`` gamma times continuation (0 at termination cuts the sum).
      bootstrap_value: scalar value of the state after the last transition.

    Returns:
      ``[T]`` returns from every step of the sequence.
    """
    if jnp.ndim(r_t) != 1 or jnp.shape(discount_t) != jnp.shape(r_t):
        raise ValueError(
            f"r_t and discount_t must both have shape [T]; got {jnp.shape(r_t)}, "
            f"{jnp.shape(discount_t)}"
        )

    def step(g_tp1, xs):
        r, d = xs
        g = r + d * g_tp1
        return g, g

    init = jnp.asarray(bootstrap_value, dtype=jnp.result_type(r_t))
    _, g = jax.lax.scan(step, init, (r_t, discount_t.astype(init.dtype)), reverse=True)
    return g


def episode_return(r_t: Array) -> Array:
    """Undiscounted sum of rewards over the last axis: ``[..., T] -> [...]``."""
    return jnp.sum(r_t, axis=-1)
