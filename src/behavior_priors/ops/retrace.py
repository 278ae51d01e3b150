"""Retrace targets (Munos et al., 2016) for one sequence; batch them with ``jax.vmap``.

Index convention (rlax style: the ``_t`` suffix is the time index of the step an entry
belongs to, ``_tp1`` the step after it). A sequence holds T transitions, t = 0..T-1:

  ``q_t[t]``        Q_target(x_t, a_t): the target critic at the state and action taken.
  ``v_tp1[t]``      V(x_{t+1}): the (regularised) value of the *next* state. For the last
                    transition of an episode cut by a time limit this is the value of the
                    true final observation, which is why it is passed separately from ``q_t``.
  ``r_t[t]``        reward received after taking a_t in x_t.
  ``discount_t[t]`` gamma * continuation: gamma inside an episode, 0 when x_{t+1} is terminal.
  ``log_rhos[t]``   log pi(a_t|x_t) - log mu(a_t|x_t), target over behaviour policy.

The target is the definition in docs/paper.md section 3, with ``gamma^{s-t}`` generalised to the
product of per-step discounts so that a termination inside the sequence cuts the sum:

  Q_ret_t = q_t + sum_{s>=t} (prod_{i=t}^{s-1} discount_i) (prod_{i=t+1}^{s} c_i) delta_s
  delta_s = r_s + discount_s * v_tp1[s] - q_t[s],    c_i = lambda * min(1, exp(log_rhos[i]))

computed by the equivalent backward recursion

  Q_ret_{T-1} = r_{T-1} + discount_{T-1} v_tp1[T-1]
  Q_ret_t     = r_t + discount_t ( v_tp1[t] + trace_t c_{t+1} (Q_ret_{t+1} - q_t[t+1]) ).

``log_rhos[0]`` does not enter (the first action is the one being evaluated).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def _check_rank1(name: str, x: Array, length: int | None) -> int:
    if jnp.ndim(x) != 1:
        raise ValueError(
            f"{name} must have shape [T] for one sequence (vmap for batches); got {jnp.shape(x)}"
        )
    if length is not None and x.shape[0] != length:
        raise ValueError(f"{name} has length {x.shape[0]}, expected T={length}")
    return x.shape[0]


def retrace_targets(
    q_t: Array,
    v_tp1: Array,
    r_t: Array,
    discount_t: Array,
    log_rhos: Array,
    lambda_: float | Array,
    trace_mask_t: Array | None = None,
) -> Array:
    """Retrace targets for one sequence of T transitions (see the module docstring).

    Args:
      q_t: ``[T]`` target-critic values Q'(x_t, a_t).
      v_tp1: ``[T]`` values V(x_{t+1}) of the next states.
      r_t: ``[T]`` rewards.
      discount_t: ``[T]`` gamma times continuation (0 at termination).
      log_rhos: ``[T]`` log importance ratios log pi(a_t|x_t) - log mu(a_t|x_t).
      lambda_: Retrace lambda in [0, 1]; scalar.
      trace_mask_t: optional ``[T]``; 0 where the trace must not continue from step t to t+1
        although ``discount_t`` bootstraps (a time-limit truncation inside the window, after
        which the window's next step belongs to a new episode). Defaults to all ones.

    Returns:
      ``[T]`` Retrace targets, with gradients stopped.
    """
    T = _check_rank1("q_t", q_t, None)
    for name, x in (
        ("v_tp1", v_tp1),
        ("r_t", r_t),
        ("discount_t", discount_t),
        ("log_rhos", log_rhos),
    ):
        _check_rank1(name, x, T)
    if trace_mask_t is None:
        trace_mask_t = jnp.ones_like(discount_t)
    else:
        _check_rank1("trace_mask_t", trace_mask_t, T)

    dtype = jnp.result_type(q_t, v_tp1, r_t)
    c_t = lambda_ * jnp.minimum(1.0, jnp.exp(log_rhos)).astype(dtype)
    # Shift so that entry t holds what multiplies the correction coming back from step t+1;
    # the last step has no successor inside the window.
    c_tp1 = jnp.concatenate([c_t[1:], jnp.zeros((1,), dtype)])
    q_tp1 = jnp.concatenate([q_t[1:], jnp.zeros((1,), dtype)])

    def step(g_tp1, xs):
        r, disc, v, mask, c, q_next = xs
        g = r + disc * (v + mask * c * (g_tp1 - q_next))
        return g, g

    xs = (r_t, discount_t, v_tp1, trace_mask_t.astype(dtype), c_tp1, q_tp1)
    # g_tp1 for the last step is multiplied by c_tp1 = 0, so its initial value is irrelevant.
    # Unrolled (up to 16 steps at a time): on the CPU each iteration of a rolled loop is a few
    # separate kernel launches, which cost more than the arithmetic of a short window.
    _, targets = jax.lax.scan(step, jnp.zeros((), dtype), xs, reverse=True, unroll=min(T, 16))
    return jax.lax.stop_gradient(targets)


def retrace_targets_discrete(
    q_t: Array,
    a_t: Array,
    r_t: Array,
    discount_t: Array,
    pi_t: Array,
    log_mu_t: Array,
    lambda_: float | Array,
    regulariser_t: Array | None = None,
    trace_mask_t: Array | None = None,
) -> Array:
    """Retrace for discrete actions, from full Q tables over T+1 steps (grid-world agents).

    The bootstrap value of a state is ``V(x) = sum_a pi(a|x) Q(x, a) - regulariser(x)``, where
    the regulariser is e.g. ``alpha * KL(pi(.|x) || pi0(.|x))``.

    Args:
      q_t: ``[T+1, A]`` target-critic values of every action at x_0..x_T.
      a_t: ``[T+1]`` integer actions taken (the last one is not used).
      r_t: ``[T]`` rewards.
      discount_t: ``[T]`` gamma times continuation.
      pi_t: ``[T+1, A]`` target-policy probabilities.
      log_mu_t: ``[T+1]`` behaviour log-probabilities of the actions taken.
      lambda_: Retrace lambda.
      regulariser_t: optional ``[T+1]`` value subtracted from V at each state.
      trace_mask_t: optional ``[T]``, as in :func:`retrace_targets`.

    Returns:
      ``[T]`` targets for Q(x_t, a_t), t = 0..T-1, gradients stopped.
    """
    if jnp.ndim(q_t) != 2 or jnp.shape(pi_t) != jnp.shape(q_t):
        raise ValueError(
            f"q_t and pi_t must both have shape [T+1, A]; got {jnp.shape(q_t)}, {jnp.shape(pi_t)}"
        )
    T = q_t.shape[0] - 1
    _check_rank1("a_t", a_t, T + 1)
    _check_rank1("log_mu_t", log_mu_t, T + 1)
    a_t = a_t.astype(jnp.int32)
    q_a = jnp.take_along_axis(q_t, a_t[:, None], axis=-1)[:, 0]
    v = jnp.sum(pi_t * q_t, axis=-1)
    if regulariser_t is not None:
        _check_rank1("regulariser_t", regulariser_t, T + 1)
        v = v - regulariser_t
    pi_a = jnp.take_along_axis(pi_t, a_t[:, None], axis=-1)[:, 0]
    log_rhos = jnp.log(pi_a) - log_mu_t
    return retrace_targets(q_a[:-1], v[1:], r_t, discount_t, log_rhos[:-1], lambda_, trace_mask_t)
