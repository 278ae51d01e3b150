"""The hierarchical KL bound and the Monte Carlo marginal KL.

With linear-Gaussian low levels, a ~ N(W z + b, diag s^2), the marginal of a latent mixture is
the Gaussian N(W m + b, W diag(S^2) W^T + diag(s^2)), so the true marginal KL has a closed form
to check both the Monte Carlo estimator and the bound against.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from behavior_priors.ops import (
    DiagGaussian,
    gaussian_kl,
    hierarchical_kl_bound,
    latent_mixture_log_prob,
    marginal_kl_mc,
)


def full_gaussian_kl(m0, c0, m1, c1):
    """KL(N(m0, c0) || N(m1, c1)) for full covariances, float64."""
    k = len(m0)
    c1_inv = np.linalg.inv(c1)
    d = m1 - m0
    return 0.5 * (
        np.trace(c1_inv @ c0)
        + d @ c1_inv @ d
        - k
        + np.linalg.slogdet(c1)[1]
        - np.linalg.slogdet(c0)[1]
    )


class LinearLow:
    """pi^L(a|z) = N(W z + b, diag(s^2)), for any leading shape of z."""

    def __init__(self, rng, dz, da):
        self.W = rng.normal(size=(da, dz)) * 0.8
        self.b = rng.normal(size=da) * 0.5
        self.s = rng.uniform(0.3, 1.0, size=da)

    def __call__(self, z):
        loc = z @ jnp.asarray(self.W.T, jnp.float32) + jnp.asarray(self.b, jnp.float32)
        return DiagGaussian(loc, jnp.broadcast_to(jnp.asarray(self.s, jnp.float32), loc.shape))

    def marginal(self, high):
        m, S = np.asarray(high.loc, np.float64), np.asarray(high.scale, np.float64)
        return self.W @ m + self.b, self.W @ np.diag(S**2) @ self.W.T + np.diag(self.s**2)


class TanhLow(LinearLow):
    """A nonlinear low level: mean tanh(W z + b)."""

    def __call__(self, z):
        d = super().__call__(z)
        return d._replace(loc=2.0 * jnp.tanh(d.loc))


def _high(rng, dz):
    return DiagGaussian(
        jnp.asarray(rng.normal(size=dz), jnp.float32),
        jnp.asarray(rng.uniform(0.4, 1.5, size=dz), jnp.float32),
    )


def _bound(high_p, low_p, high_q, low_q, key, num_samples=20_000):
    z = high_p.sample(key, (num_samples,))
    return hierarchical_kl_bound(high_p, high_q, low_p(z), low_q(z))


def test_mixture_log_prob_matches_gaussian_marginal():
    rng = np.random.default_rng(0)
    high, low = _high(rng, 2), LinearLow(rng, 2, 3)
    mean, cov = low.marginal(high)
    a = jnp.asarray(rng.multivariate_normal(mean, cov, size=5), jnp.float32)
    est = latent_mixture_log_prob(jax.random.PRNGKey(0), a, high, low, num_inner=20_000)
    from scipy import stats

    np.testing.assert_allclose(est, stats.multivariate_normal(mean, cov).logpdf(a), atol=0.03)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_monte_carlo_marginal_kl_matches_closed_form(seed):
    rng = np.random.default_rng(seed)
    dz, da = 2, 3
    hp, hq = _high(rng, dz), _high(rng, dz)
    lp, lq = LinearLow(rng, dz, da), LinearLow(rng, dz, da)
    exact = full_gaussian_kl(*lp.marginal(hp), *lq.marginal(hq))
    est = marginal_kl_mc(jax.random.PRNGKey(seed), hp, lp, hq, lq, num_outer=2048, num_inner=2048)
    np.testing.assert_allclose(est, exact, rtol=0.05, atol=0.03)


@pytest.mark.parametrize("seed", range(6))
def test_bound_is_above_the_true_marginal_kl(seed):
    rng = np.random.default_rng(100 + seed)
    dz, da = 2, 2
    hp, hq = _high(rng, dz), _high(rng, dz)
    lp, lq = LinearLow(rng, dz, da), LinearLow(rng, dz, da)
    exact = full_gaussian_kl(*lp.marginal(hp), *lq.marginal(hq))
    b = _bound(hp, lp, hq, lq, jax.random.PRNGKey(seed))
    # The sampled low term has Monte Carlo error; 20k samples keep it well below 1%.
    assert float(b.total) >= exact * 0.99 - 1e-3, (float(b.total), exact)
    np.testing.assert_allclose(b.high, gaussian_kl(hp, hq), rtol=1e-6)
    np.testing.assert_allclose(b.total, b.high + b.low, rtol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_bound_is_above_monte_carlo_kl_for_nonlinear_low_levels(seed):
    rng = np.random.default_rng(200 + seed)
    hp, hq = _high(rng, 2), _high(rng, 2)
    lp, lq = TanhLow(rng, 2, 2), TanhLow(rng, 2, 2)
    b = _bound(hp, lp, hq, lq, jax.random.PRNGKey(seed))
    est = marginal_kl_mc(jax.random.PRNGKey(7), hp, lp, hq, lq, num_outer=2048, num_inner=2048)
    assert float(b.total) >= float(est) - 0.05, (float(b.total), float(est))


def test_identical_policies_give_zero():
    rng = np.random.default_rng(3)
    h, low = _high(rng, 3), TanhLow(rng, 3, 2)
    z = h.sample(jax.random.PRNGKey(0), (64,))
    b = hierarchical_kl_bound(h, h, low(z), low(z))
    np.testing.assert_allclose([b.high, b.low, b.total], 0.0, atol=1e-6)
    est = marginal_kl_mc(jax.random.PRNGKey(1), h, low, h, low, num_outer=2048, num_inner=2048)
    np.testing.assert_allclose(est, 0.0, atol=0.02)


def test_shared_low_level_gives_exactly_the_high_level_kl():
    rng = np.random.default_rng(4)
    hp = DiagGaussian(jnp.asarray(rng.normal(size=(5, 3)), jnp.float32), jnp.ones((5, 3)))
    hq = DiagGaussian(jnp.zeros((5, 3)), 2.0 * jnp.ones((5, 3)))
    b = hierarchical_kl_bound(hp, hq)
    np.testing.assert_array_equal(b.low, np.zeros(5))
    np.testing.assert_array_equal(b.total, gaussian_kl(hp, hq))
    # Passing the same low level explicitly agrees (its KL term is exactly zero).
    low = LinearLow(rng, 3, 2)
    z = hp.sample(jax.random.PRNGKey(0), (8,))
    np.testing.assert_allclose(
        hierarchical_kl_bound(hp, hq, low(z), low(z)).total, b.total, rtol=1e-6
    )


def test_bound_batches_and_jits():
    rng = np.random.default_rng(5)
    hp = DiagGaussian(jnp.asarray(rng.normal(size=(4, 2)), jnp.float32), jnp.ones((4, 2)))
    hq = DiagGaussian(jnp.zeros((4, 2)), jnp.ones((4, 2)))
    low_p, low_q = LinearLow(rng, 2, 3), LinearLow(rng, 2, 3)

    @jax.jit
    def f(key):
        z = hp.sample(key, (16,))
        return hierarchical_kl_bound(hp, hq, low_p(z), low_q(z))

    out = f(jax.random.PRNGKey(0))
    assert out.total.shape == (4,) and np.all(np.asarray(out.low) >= 0)


def test_bad_arguments():
    h = DiagGaussian(jnp.zeros((4, 2)), jnp.ones((4, 2)))
    low = DiagGaussian(jnp.zeros((4, 3)), jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="both low-level"):
        hierarchical_kl_bound(h, h, low, None)
    with pytest.raises(ValueError, match="leading sample axis"):
        hierarchical_kl_bound(h, h, low, low)


def _expected_low_kl(high, lp, lq):
    """E_{z~N(m, diag S^2)} KL(N(W_p z + b_p, s_p^2) || N(W_q z + b_q, s_q^2)) in closed form,
    float64: per action dimension i, with D = W_p - W_q and d = b_p - b_q, the mean difference
    D z + d has E[(D z + d)_i^2] = (D m + d)_i^2 + sum_j D_ij^2 S_j^2."""
    m, S = np.asarray(high.loc, np.float64), np.asarray(high.scale, np.float64)
    D, d = lp.W - lq.W, lp.b - lq.b
    sq = (D @ m + d) ** 2 + (D**2) @ (S**2)
    return float(np.sum(np.log(lq.s / lp.s) + (lp.s**2 + sq) / (2 * lq.s**2) - 0.5))


@pytest.mark.parametrize("seed", range(3))
def test_low_level_term_equals_the_closed_form_expected_kl(seed):
    """The low-level term of the bound is E_z KL(pi^L(.|z) || pi0^L(.|z)) with z ~ pi^H: for
    linear-Gaussian low levels it has a closed form. The test can fail: the reversed
    KL(pi0^L || pi^L) and a doubled term both miss it by far more than the tolerance."""
    rng = np.random.default_rng(300 + seed)
    hp, hq = _high(rng, 3), _high(rng, 3)
    lp, lq = LinearLow(rng, 3, 2), LinearLow(rng, 3, 2)
    b = _bound(hp, lp, hq, lq, jax.random.PRNGKey(seed), num_samples=200_000)
    want = _expected_low_kl(hp, lp, lq)
    reversed_ = _expected_low_kl(hp, lq, lp)
    tol = 0.01 * want + 1e-3  # Monte Carlo error of 200k samples: well below 0.5%
    assert abs(float(b.low) - want) < tol, (float(b.low), want)
    assert abs(reversed_ - want) > 5 * tol and want > 5 * tol, (reversed_, want)
    # The high-level term by hand: sum_j log(S_q/S_p) + (S_p^2 + (m_p - m_q)^2) / (2 S_q^2) - 1/2.
    mp, sp = np.asarray(hp.loc, np.float64), np.asarray(hp.scale, np.float64)
    mq, sq = np.asarray(hq.loc, np.float64), np.asarray(hq.scale, np.float64)
    high = np.sum(np.log(sq / sp) + (sp**2 + (mp - mq) ** 2) / (2 * sq**2) - 0.5)
    np.testing.assert_allclose(float(b.high), high, rtol=1e-5)
