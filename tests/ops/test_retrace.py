"""Retrace against a brute-force double loop over the definition in docs/paper.md section 3."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from behavior_priors.ops import retrace_targets, retrace_targets_discrete


def brute_force_retrace(q, v_tp1, r, discount, log_rhos, lam, trace_mask=None):
    """The definition, term by term, in float64:

    Q_ret_t = q_t + sum_{s>=t} (prod_{i=t}^{s-1} discount_i * mask_i)(prod_{i=t+1}^{s} c_i)
                              (r_s + discount_s v_tp1[s] - q_s).
    """
    q, v_tp1, r, discount, log_rhos = (
        np.asarray(a, np.float64) for a in (q, v_tp1, r, discount, log_rhos)
    )
    T = len(q)
    mask = np.ones(T) if trace_mask is None else np.asarray(trace_mask, np.float64)
    c = lam * np.minimum(1.0, np.exp(log_rhos))
    out = np.zeros(T)
    for t in range(T):
        total = q[t]
        for s in range(t, T):
            weight = 1.0
            for i in range(t, s):
                weight *= discount[i] * mask[i]
            for i in range(t + 1, s + 1):
                weight *= c[i]
            total += weight * (r[s] + discount[s] * v_tp1[s] - q[s])
        out[t] = total
    return out


def _random_sequence(rng, T, gamma=0.95, p_end=0.2):
    q = rng.normal(size=T) * 3
    v = rng.normal(size=T) * 3
    r = rng.normal(size=T)
    ends = rng.random(T) < p_end  # terminations inside the sequence
    discount = np.where(ends, 0.0, gamma)
    log_rhos = rng.normal(size=T)
    return [np.asarray(a, np.float32) for a in (q, v, r, discount, log_rhos)]


@given(
    seed=st.integers(0, 2**31 - 1),
    T=st.integers(1, 12),
    lam=st.floats(0.0, 1.0),
    masked=st.booleans(),
)
def test_matches_brute_force(seed, T, lam, masked):
    rng = np.random.default_rng(seed)
    q, v, r, discount, log_rhos = _random_sequence(rng, T)
    mask = (rng.random(T) > 0.2).astype(np.float32) if masked else None
    got = retrace_targets(q, v, r, discount, log_rhos, lam, mask)
    want = brute_force_retrace(q, v, r, discount, log_rhos, lam, mask)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_lambda_zero_gives_one_step_td():
    rng = np.random.default_rng(0)
    q, v, r, discount, log_rhos = _random_sequence(rng, 8)
    got = retrace_targets(q, v, r, discount, log_rhos, 0.0)
    np.testing.assert_allclose(got, r + discount * v, rtol=1e-6)


def test_on_policy_lambda_one_gives_bootstrapped_n_step_return():
    # pi = mu so c = 1, and the critic is consistent with the value (q_{t+1} = v_tp1[t]):
    # Q_ret telescopes to the discounted sum of rewards bootstrapped from v_tp1[T-1].
    T, gamma = 6, 0.9
    rng = np.random.default_rng(1)
    r = rng.normal(size=T).astype(np.float32)
    q = rng.normal(size=T).astype(np.float32)
    v = np.append(q[1:], np.float32(2.5))
    discount = np.full(T, gamma, np.float32)
    got = retrace_targets(q, v, r, discount, np.zeros(T, np.float32), 1.0)
    want = [
        sum(gamma ** (s - t) * r[s] for s in range(t, T)) + gamma ** (T - t) * 2.5 for t in range(T)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_zero_discount_cuts_the_trace():
    rng = np.random.default_rng(2)
    q, v, r, discount, log_rhos = _random_sequence(rng, 6, p_end=0.0)
    discount[2] = 0.0  # episode terminates after step 2
    base = retrace_targets(q, v, r, discount, log_rhos, 1.0)
    # Nothing after the termination may influence targets at or before it.
    r2, q2, v2 = r.copy(), q.copy(), v.copy()
    r2[3:] += 100.0
    q2[3:] -= 50.0
    v2[3:] += 7.0
    changed = retrace_targets(q2, v2, r2, discount, log_rhos, 1.0)
    np.testing.assert_allclose(changed[:3], base[:3], rtol=1e-6)
    np.testing.assert_allclose(base[2], r[2], rtol=1e-6)  # terminal step: just the reward


def test_trace_mask_cuts_trace_but_keeps_bootstrap():
    # Time-limit truncation after step 1 inside the window: bootstrap from v_tp1[1] (the true
    # final observation) and ignore the next episode.
    T = 4
    q = np.zeros(T, np.float32)
    v = np.array([1.0, 5.0, 1.0, 1.0], np.float32)
    r = np.ones(T, np.float32)
    discount = np.full(T, 0.5, np.float32)
    mask = np.array([1, 0, 1, 1], np.float32)
    got = retrace_targets(q, v, r, discount, np.zeros(T, np.float32), 1.0, mask)
    # t=1: 1 + 0.5*5 = 3.5; t=0: 1 + 0.5*(1 + 1*(3.5 - 0)) = 3.25
    np.testing.assert_allclose(got[:2], [3.25, 3.5], rtol=1e-6)


def test_truncated_importance_weights():
    # rho > 1 is truncated at 1; rho < 1 shrinks the trace.
    T = 2
    q = np.zeros(T, np.float32)
    v = np.zeros(T, np.float32)
    r = np.array([0.0, 1.0], np.float32)
    discount = np.ones(T, np.float32)
    high = retrace_targets(q, v, r, discount, np.log(np.array([1.0, 5.0], np.float32)), 1.0)
    low = retrace_targets(q, v, r, discount, np.log(np.array([1.0, 0.25], np.float32)), 1.0)
    np.testing.assert_allclose(high[0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(low[0], 0.25, rtol=1e-6)


def test_jit_vmap_and_stopped_gradients():
    rng = np.random.default_rng(3)
    batch = [np.stack(a) for a in zip(*[_random_sequence(rng, 5) for _ in range(4)], strict=True)]
    f = jax.vmap(retrace_targets, in_axes=(0, 0, 0, 0, 0, None))
    eager = f(*batch, 0.9)
    jitted = jax.jit(f)(*batch, 0.9)
    assert eager.shape == (4, 5)
    np.testing.assert_allclose(eager, jitted, rtol=1e-6, atol=1e-6)
    for i in range(4):
        np.testing.assert_allclose(
            eager[i], brute_force_retrace(*[b[i] for b in batch], 0.9), rtol=1e-5, atol=1e-5
        )
    rest = [b[0] for b in batch[1:]]
    grad = jax.grad(lambda q: retrace_targets(q, *rest, 0.9).sum())(batch[0][0])
    np.testing.assert_array_equal(grad, np.zeros(5))


def test_bad_shapes_raise():
    x = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="v_tp1 has length 3"):
        retrace_targets(x, x[:3], x, x, x, 1.0)
    with pytest.raises(ValueError, match=r"shape \[T\]"):
        retrace_targets(np.zeros((2, 4)), x, x, x, x, 1.0)


def test_discrete_matches_continuous_form():
    rng = np.random.default_rng(5)
    T, A = 7, 4
    q = rng.normal(size=(T + 1, A)).astype(np.float32)
    logits = rng.normal(size=(T + 1, A))
    pi = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    a = rng.integers(0, A, size=T + 1)
    log_mu = np.log(rng.uniform(0.1, 0.9, size=T + 1)).astype(np.float32)
    r = rng.normal(size=T).astype(np.float32)
    discount = np.where(rng.random(T) < 0.2, 0.0, 0.99).astype(np.float32)
    reg = rng.uniform(0, 0.5, size=T + 1).astype(np.float32)
    got = retrace_targets_discrete(q, a, r, discount, pi, log_mu, 0.95, reg)
    q_a = q[np.arange(T + 1), a]
    v = (pi * q).sum(-1) - reg
    log_rhos = np.log(pi[np.arange(T + 1), a]) - log_mu
    want = brute_force_retrace(q_a[:-1], v[1:], r, discount, log_rhos[:-1], 0.95)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"\[T\+1, A\]"):
        retrace_targets_discrete(q, a, r, discount, pi[:, :2], log_mu, 0.95)


def test_float32_in_float32_out():
    x = jnp.zeros(3, jnp.float32)
    assert retrace_targets(x, x, x, x, x, 1.0).dtype == jnp.float32
