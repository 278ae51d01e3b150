"""Distributions against scipy.stats and Monte Carlo."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from behavior_priors.ops import Categorical, DiagGaussian, categorical_kl, gaussian_kl


def _random_gaussian(rng, shape):
    return DiagGaussian(
        jnp.asarray(rng.normal(size=shape), jnp.float32),
        jnp.asarray(rng.uniform(0.2, 2.0, size=shape), jnp.float32),
    )


def test_gaussian_log_prob_and_entropy_match_scipy():
    rng = np.random.default_rng(0)
    d = _random_gaussian(rng, (4, 3, 5))
    x = rng.normal(size=(4, 3, 5)).astype(np.float32)
    ref = stats.norm(np.asarray(d.loc), np.asarray(d.scale))
    np.testing.assert_allclose(d.log_prob(x), ref.logpdf(x).sum(-1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d.entropy(), ref.entropy().sum(-1), rtol=1e-5, atol=1e-5)
    assert d.log_prob(x).shape == (4, 3)


def test_gaussian_log_prob_matches_multivariate_normal():
    rng = np.random.default_rng(1)
    d = _random_gaussian(rng, (3,))
    x = rng.normal(size=(3,))
    mvn = stats.multivariate_normal(np.asarray(d.loc), np.diag(np.asarray(d.scale) ** 2))
    np.testing.assert_allclose(d.log_prob(x), mvn.logpdf(x), rtol=1e-5)


def test_gaussian_samples_have_right_moments_and_are_reparameterised():
    d = DiagGaussian(jnp.array([1.0, -2.0]), jnp.array([0.5, 3.0]))
    x = d.sample(jax.random.PRNGKey(0), (200_000,))
    assert x.shape == (200_000, 2)
    np.testing.assert_allclose(x.mean(0), d.loc, atol=0.03)
    np.testing.assert_allclose(x.std(0), d.scale, rtol=0.01)

    # d/dloc E[x] = 1 and d/dscale E[x^2] = 2*scale: gradients flow through the sample.
    key = jax.random.PRNGKey(1)
    g_loc = jax.grad(lambda m: d._replace(loc=m).sample(key, (50_000,)).mean(0).sum())(d.loc)
    np.testing.assert_allclose(g_loc, [1.0, 1.0], rtol=1e-5)

    def second_moment(s):
        return jnp.square(d._replace(scale=s).sample(key, (50_000,)) - d.loc).mean(0).sum()

    np.testing.assert_allclose(jax.grad(second_moment)(d.scale), 2 * d.scale, rtol=0.03)


def test_gaussian_kl_matches_closed_form_and_monte_carlo():
    rng = np.random.default_rng(2)
    p, q = _random_gaussian(rng, (6, 4)), _random_gaussian(rng, (6, 4))
    mp, sp, mq, sq = (np.asarray(a, np.float64) for a in (p.loc, p.scale, q.loc, q.scale))
    # Full-covariance formula: 0.5 [tr(Sq^-1 Sp) + (mq-mp)^T Sq^-1 (mq-mp) - k + ln(|Sq|/|Sp|)].
    ref = 0.5 * (
        (sp**2 / sq**2).sum(-1)
        + ((mq - mp) ** 2 / sq**2).sum(-1)
        - 4
        + np.log((sq**2).prod(-1) / (sp**2).prod(-1))
    )
    np.testing.assert_allclose(gaussian_kl(p, q), ref, rtol=1e-5, atol=1e-6)
    x = p.sample(jax.random.PRNGKey(3), (400_000,))
    mc = (p.log_prob(x) - q.log_prob(x)).mean(0)
    np.testing.assert_allclose(p.kl(q), mc, atol=0.05, rtol=0.02)


def test_gaussian_kl_of_identical_is_zero_and_broadcasts():
    p = DiagGaussian(jnp.ones((5, 2)), 0.3 * jnp.ones((5, 2)))
    np.testing.assert_allclose(gaussian_kl(p, p), np.zeros(5), atol=1e-7)
    q = DiagGaussian(jnp.zeros(2), jnp.ones(2))  # broadcast against [5, 2]
    assert gaussian_kl(p, q).shape == (5,)


def test_categorical_matches_scipy():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(3, 6)).astype(np.float32)
    c = Categorical(jnp.asarray(logits))
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    a = np.array([0, 5, 2])
    np.testing.assert_allclose(c.log_prob(a), np.log(p[np.arange(3), a]), rtol=1e-5)
    np.testing.assert_allclose(c.entropy(), [stats.entropy(pi) for pi in p], rtol=1e-5)
    logits2 = rng.normal(size=(3, 6)).astype(np.float32)
    p2 = np.exp(logits2) / np.exp(logits2).sum(-1, keepdims=True)
    np.testing.assert_allclose(
        categorical_kl(c, Categorical(jnp.asarray(logits2))),
        [stats.entropy(pi, qi) for pi, qi in zip(p, p2, strict=True)],
        rtol=1e-5,
    )
    assert c.mode().tolist() == p.argmax(-1).tolist()


def test_categorical_sample_frequencies():
    c = Categorical(jnp.log(jnp.array([0.1, 0.2, 0.7])))
    a = c.sample(jax.random.PRNGKey(0), (100_000,))
    assert a.shape == (100_000,)
    np.testing.assert_allclose(np.bincount(np.asarray(a), minlength=3) / 1e5, c.probs, atol=0.01)
    batch = Categorical(jnp.zeros((4, 3)))
    assert batch.sample(jax.random.PRNGKey(1), (7,)).shape == (7, 4)


def test_categorical_zero_probability_categories_give_no_nan():
    c = Categorical(jnp.array([0.0, -jnp.inf, 0.0]))
    q = Categorical(jnp.array([1.0, 2.0, 3.0]))
    assert np.isfinite(c.entropy())
    np.testing.assert_allclose(c.entropy(), np.log(2), rtol=1e-6)
    assert np.isfinite(c.kl(q))


@pytest.mark.parametrize("jit", [False, True])
def test_methods_work_under_jit_and_vmap(jit):
    def f(loc, scale, x):
        d = DiagGaussian(loc, scale)
        return d.log_prob(x) + d.entropy() + d.kl(DiagGaussian(jnp.zeros_like(loc), scale))

    g = jax.vmap(f)
    if jit:
        g = jax.jit(g)
    out = g(jnp.ones((3, 2)), jnp.ones((3, 2)), jnp.zeros((3, 2)))
    assert out.shape == (3,) and np.all(np.isfinite(out))


@pytest.mark.parametrize(
    "x_shape, p_shape, q_shape",
    [((5, 2), (2,), (5, 2)), ((3, 1, 4, 3), (2, 4, 3), (1, 4, 3)), ((4, 0), (4, 0), (4, 0))],
)
def test_gaussian_formulas_on_flat_rows_keep_every_broadcast(x_shape, p_shape, q_shape):
    """log_prob, entropy and KL must be scipy's, element by element, over the broadcast
    leading shape (an empty event axis gives 0), and a sample must be ``loc + scale * eps``
    with the very noise ``jax.random.normal`` draws for its shape."""
    rng = np.random.default_rng(3)
    p, q = _random_gaussian(rng, p_shape), _random_gaussian(rng, q_shape)
    x = rng.normal(size=x_shape).astype(np.float32)
    ref = stats.norm(np.asarray(p.loc, np.float64), np.asarray(p.scale, np.float64))
    lead = np.broadcast_shapes(x_shape, p_shape)[:-1]
    want = np.broadcast_to(ref.logpdf(x.astype(np.float64)).sum(-1), lead)
    np.testing.assert_allclose(p.log_prob(x), want, rtol=1e-5, atol=1e-5)
    assert p.entropy().shape == p_shape[:-1]
    np.testing.assert_allclose(p.entropy(), ref.entropy().sum(-1), rtol=1e-5, atol=1e-5)

    sp, sq = (np.asarray(d.scale, np.float64) for d in (p, q))
    mp, mq = (np.asarray(d.loc, np.float64) for d in (p, q))
    kl = (np.log(sq / sp) + (sp**2 + (mp - mq) ** 2) / (2 * sq**2) - 0.5).sum(-1)
    assert gaussian_kl(p, q).shape == np.broadcast_shapes(p_shape, q_shape)[:-1]
    np.testing.assert_allclose(gaussian_kl(p, q), kl, rtol=1e-5, atol=1e-5)

    key = jax.random.PRNGKey(4)
    got = p.sample(key, (3,))
    eps = jax.random.normal(key, (3, *p_shape))
    np.testing.assert_array_equal(got, p.loc + p.scale * eps)
