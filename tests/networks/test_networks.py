"""Networks: observation selection, shapes over leading axes, heads and priors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from behavior_priors.networks import (
    AR1HighPrior,
    Critic,
    FlatPolicy,
    HierarchicalPolicy,
    LearnedARHighPrior,
    NormalHighPrior,
    resolve_keys,
)
from behavior_priors.networks.heads import saturated_fraction, saturation
from behavior_priors.networks.observations import concat_observations, with_sample_copies
from behavior_priors.networks.policies import sample_entropy

SHAPES = {"proprio/joints": (3,), "proprio/vel": (2,), "task/target": (2, 2), "extero/range": (4,)}
KEY = jax.random.PRNGKey(0)


def _obs(lead=(5,), seed=0):
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(rng.normal(size=(*lead, *s)), jnp.float32) for k, s in SHAPES.items()}


def test_resolve_keys_prefixes_and_exact_keys():
    assert resolve_keys(["proprio/"], SHAPES) == ("proprio/joints", "proprio/vel")
    assert resolve_keys(["task/target", "proprio/vel"], SHAPES) == ("proprio/vel", "task/target")
    with pytest.raises(
        ValueError, match=r"'task/targte' matches nothing; did you mean task/target"
    ):
        resolve_keys(["task/targte"], SHAPES)
    with pytest.raises(ValueError, match="matches nothing"):
        resolve_keys(["goal/"], SHAPES)
    with pytest.raises(TypeError, match="sequence of strings"):
        resolve_keys("proprio/", SHAPES)


def test_unknown_key_is_an_error_at_construction():
    with pytest.raises(ValueError, match="matches nothing"):
        FlatPolicy(["proprio/", "task/goal"], SHAPES, 2, (8,), KEY)


def test_concat_flattens_in_key_order_over_any_leading_shape():
    obs = _obs((2, 3))
    x = concat_observations(obs, ("proprio/vel", "task/target"), SHAPES)
    assert x.shape == (2, 3, 6)
    np.testing.assert_array_equal(x[..., :2], obs["proprio/vel"])
    np.testing.assert_array_equal(x[..., 2:], obs["task/target"].reshape(2, 3, 4))


def test_policy_reads_only_its_keys():
    # Information asymmetry is real: changing a key the network does not read changes nothing.
    pi = FlatPolicy(["proprio/"], SHAPES, 2, (16,), KEY)
    obs = _obs()
    obs2 = {**obs, "task/target": obs["task/target"] + 10.0}
    np.testing.assert_array_equal(pi(obs).loc, pi(obs2).loc)
    obs3 = {**obs, "proprio/vel": obs["proprio/vel"] + 1.0}
    assert not np.allclose(pi(obs).loc, pi(obs3).loc)


def test_heads_respect_min_scale_and_tanh_mean():
    pi = FlatPolicy(["proprio/"], SHAPES, 3, (16,), KEY, min_scale=0.25)
    big = {k: 1e3 * v for k, v in _obs().items()}
    d = pi(big)
    assert np.all(np.asarray(d.scale) >= 0.25) and np.all(np.abs(np.asarray(d.loc)) <= 1.0)


def test_saturation_is_a_hinge_on_the_preactivations_beyond_the_bound():
    """Hand values: 0.5 * sum of squared excesses over |u| = 3, zero gradient inside."""
    loc_pre = jnp.asarray([[4.0, -5.0], [2.9, 0.0]])
    scale_pre = jnp.asarray([[0.0, 3.5], [-3.0, -10.0]])
    np.testing.assert_allclose(
        saturation((loc_pre, scale_pre)), [0.5 * (1 + 4 + 0.25), 0.5 * 49], rtol=1e-6
    )
    assert float(saturated_fraction((loc_pre, scale_pre))) == 4 / 8
    g_loc, g_scale = jax.grad(lambda p: jnp.sum(saturation(p)))((loc_pre, scale_pre))
    np.testing.assert_allclose(g_loc, [[1.0, -2.0], [0.0, 0.0]])
    np.testing.assert_allclose(g_scale, [[0.0, 0.5], [0.0, -7.0]])


def test_a_policy_forward_gives_its_distribution_and_the_heads_preactivations():
    pi = FlatPolicy(["proprio/"], SHAPES, 3, (16,), KEY)
    obs = _obs((4, 2))
    d, (loc_pre, scale_pre) = pi.forward(obs)
    np.testing.assert_array_equal(d.loc, pi(obs).loc)
    np.testing.assert_array_equal(d.scale, pi(obs).scale)
    np.testing.assert_allclose(d.loc, np.tanh(loc_pre), rtol=1e-6)
    np.testing.assert_allclose(d.scale, 0.1 + 0.9 / (1 + np.exp(-np.asarray(scale_pre))), 1e-6)
    h = HierarchicalPolicy(["task/", "proprio/"], ["proprio/"], SHAPES, 2, 4, (16,), KEY)
    sample = h.sample(obs, KEY, 5)
    assert [u.shape for u in sample.low_preactivations] == [(5, 4, 2, 2)] * 2
    np.testing.assert_allclose(sample.low.loc, np.tanh(sample.low_preactivations[0]), 1e-6)
    # A caller that passes the distribution in gets no pre-activations (nothing recomputed).
    assert pi.sample(obs, KEY, 1, top=d).low_preactivations is None


def test_hierarchical_policy_shapes_and_joint_log_prob():
    pi = HierarchicalPolicy(["task/", "proprio/"], ["proprio/"], SHAPES, 2, 4, (16, 8), KEY)
    obs = _obs((5, 7))
    s = pi.sample(obs, jax.random.PRNGKey(1), num_samples=3)
    assert s.action.shape == (3, 5, 7, 2) and s.latent.shape == (3, 5, 7, 4)
    lp = pi.log_prob(obs, s.action[0], s.latent[0])
    want = pi.high(obs).log_prob(s.latent[0]) + pi.low(obs, s.latent[0]).log_prob(s.action[0])
    np.testing.assert_allclose(lp, want, rtol=1e-6)
    held = pi.log_prob(obs, s.action[0], s.latent[0], jnp.zeros((5, 7)))
    np.testing.assert_allclose(held, pi.low(obs, s.latent[0]).log_prob(s.action[0]), rtol=1e-6)


@pytest.mark.parametrize("hierarchical", [False, True])
def test_a_precomputed_top_gives_what_the_policy_computes_itself(hierarchical):
    """The losses compute the observation-only part (pi, or pi^H) once over a window and pass
    time slices of it to ``sample`` / ``log_prob`` / the KL: a slice of ``top`` over the window
    must be exactly ``top`` of the sliced observations, and using it must change nothing."""
    if hierarchical:
        pi = HierarchicalPolicy(["task/", "proprio/"], ["proprio/"], SHAPES, 2, 4, (16, 8), KEY)
    else:
        pi = FlatPolicy(["task/", "proprio/"], SHAPES, 2, (16, 8), KEY)
    obs = _obs((3, 6))
    later = jax.tree.map(lambda x: x[:, 1:], obs)
    top_later = jax.tree.map(lambda x: x[:, 1:], pi.top(obs))
    for a, b in zip(jax.tree.leaves(top_later), jax.tree.leaves(pi.top(later)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    k = jax.random.PRNGKey(5)
    given, own = pi.sample(later, k, 2, top=top_later), pi.sample(later, k, 2)
    np.testing.assert_allclose(given.action, own.action, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(given.latent, own.latent, rtol=1e-5, atol=1e-6)
    lp_given = pi.log_prob(later, own.action[0], own.latent[0], top=top_later)
    np.testing.assert_allclose(lp_given, pi.log_prob(later, own.action[0], own.latent[0]), 1e-5)


def test_with_sample_copies_stacks_copies_then_the_other_states():
    obs, other = _obs((3, 4), seed=1), _obs((3, 4), seed=2)
    both = with_sample_copies(obs, 2, other, ("proprio/joints", "task/target"))
    assert set(both) == {"proprio/joints", "task/target"}
    assert both["task/target"].shape == (3, 3, 4, 2, 2)
    for k in both:
        np.testing.assert_array_equal(both[k][0], obs[k])
        np.testing.assert_array_equal(both[k][1], obs[k])
        np.testing.assert_array_equal(both[k][2], other[k])


@pytest.mark.parametrize("kind", ["flat", "hierarchical", "hierarchical-discrete"])
def test_sample_and_log_prob_is_sample_then_log_prob(kind):
    """The critic's targets take S samples at the next states and the taken actions'
    log-probability at the current ones from one low-level pass over both: the same numbers as
    ``sample`` and ``log_prob`` called apart (same random draws, same values)."""
    if kind == "flat":
        pi = FlatPolicy(["task/", "proprio/"], SHAPES, 2, (16, 8), KEY)
    else:
        discrete = kind.endswith("discrete")
        pi = HierarchicalPolicy(
            ["task/", "proprio/"], ["proprio/"], SHAPES, 3, 4, (16, 8), KEY, discrete=discrete
        )
    obs = _obs((3, 7))
    nxt, now = jax.tree.map(lambda x: x[:, 1:], obs), jax.tree.map(lambda x: x[:, :-1], obs)
    top = pi.top(obs)
    top_nxt, top_now = (
        jax.tree.map(lambda x, s=s: x[:, s], top) for s in (slice(1, None), slice(None, -1))
    )
    taken = pi.sample(now, jax.random.PRNGKey(3), 1)
    action, latent = taken.action[0], taken.latent[0]
    sampled = (jnp.arange(18).reshape(3, 6) % 3 != 0).astype(jnp.float32)  # some z held
    k = jax.random.PRNGKey(4)
    got, got_lp = pi.sample_and_log_prob(nxt, k, 4, top_nxt, now, action, latent, sampled, top_now)
    want = pi.sample(nxt, k, 4, top=top_nxt)
    want_lp = pi.log_prob(now, action, latent, sampled, top=top_now)
    np.testing.assert_allclose(got_lp, want_lp, rtol=1e-5, atol=1e-5)
    assert got.action.shape == want.action.shape == (4, 3, 6, *action.shape[2:])
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_sample_entropy_is_the_low_level_entropy_and_bounds_the_marginal_from_below():
    """The entropy the losses take from a policy sample is E_z H(pi^L(.|z, x)): equal to
    -E[log pi^L(a|z)] by brute-force Monte Carlo, and below the marginal entropy H(a|x) =
    -E log int pi^H(z) pi^L(a|z) dz (estimated with an inner average over z), as a lower bound
    must be; it leaves out H(z), which does not change behaviour. Exact for flat policies."""
    pi = HierarchicalPolicy(["task/", "proprio/"], ["proprio/"], SHAPES, 2, 4, (16, 8), KEY)
    # A latent that matters: large weights from z to the low level's mean, narrow components.
    pi = eqx.tree_at(
        lambda p: (p.low.torso.layers[0].weight, p.low.head.loc.weight),
        pi,
        replace_fn=lambda w: w * 30.0,
    )
    pi = eqx.tree_at(lambda p: p.low.head.scale.bias, pi, replace_fn=lambda b: b - 10.0)
    obs = _obs((3,))
    s = pi.sample(obs, jax.random.PRNGKey(2), num_samples=20_000)
    low_mc = -jnp.mean(pi.low(obs, s.latent).log_prob(s.action), axis=0)
    np.testing.assert_allclose(sample_entropy(s), low_mc, atol=0.05)
    np.testing.assert_allclose(
        sample_entropy(s), pi.entropy(obs, jax.random.PRNGKey(3), 20_000), atol=0.02
    )
    # The marginal: log pi(a|x) ~ log mean_j pi^L(a|z_j), z_j ~ pi^H, over 2000 outer actions.
    outer = s.action[:2000]
    z_inner = pi.high(obs).sample(jax.random.PRNGKey(5), (2000,))  # [J, 3, Dz]
    low_inner = pi.low(obs, z_inner)  # [J, 3, Da]
    log_p = jax.vmap(lambda a: jax.nn.logsumexp(low_inner.log_prob(a[None]), axis=0))(outer)
    marginal = -jnp.mean(log_p - jnp.log(2000.0), axis=0)
    assert np.all(np.asarray(marginal) > np.asarray(sample_entropy(s)) + 0.2), (
        marginal,
        sample_entropy(s),
    )
    flat = FlatPolicy(["proprio/"], SHAPES, 2, (8,), KEY)
    one = flat.sample(obs, jax.random.PRNGKey(4), 1)
    np.testing.assert_allclose(sample_entropy(one), flat(obs).entropy(), rtol=1e-6)


def test_low_level_needs_latent():
    pi = HierarchicalPolicy(["task/"], ["proprio/"], SHAPES, 2, 4, (16,), KEY)
    with pytest.raises(ValueError, match="extra input of size 4"):
        pi.low(_obs(), None)


def test_fixed_high_priors():
    z_prev = jnp.asarray(np.random.default_rng(0).normal(size=(6, 3)), jnp.float32)
    first = jnp.array([True, False, False, False, False, True])
    ar = AR1HighPrior(3, 0.8)(None, z_prev, first)
    np.testing.assert_allclose(ar.loc[1:5], 0.8 * z_prev[1:5], rtol=1e-6)
    np.testing.assert_allclose(ar.scale[1:5], 0.6, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(ar.loc)[[0, 5]], 0.0)
    np.testing.assert_array_equal(np.asarray(ar.scale)[[0, 5]], 1.0)
    n = NormalHighPrior(3)(None, z_prev, first)
    assert n.loc.shape == (6, 3) and float(n.scale.min()) == 1.0
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        AR1HighPrior(3, 1.0)


def test_ar1_prior_keeps_the_standard_normal_stationary():
    # Simulate the chain z_t ~ N(a z_{t-1}, 1 - a^2) from z_0 ~ N(0, 1): marginals stay N(0, 1).
    prior, key = AR1HighPrior(2, 0.9), jax.random.PRNGKey(3)
    z = jax.random.normal(key, (20_000, 2))
    for _ in range(20):
        key, sub = jax.random.split(key)
        z = prior(None, z, jnp.zeros(20_000, bool)).sample(sub)
    np.testing.assert_allclose(np.std(z, 0), 1.0, atol=0.03)
    np.testing.assert_allclose(np.mean(z, 0), 0.0, atol=0.03)


def test_learned_ar_prior_depends_on_previous_latent_only():
    p = LearnedARHighPrior(3, (16,), KEY)
    z = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32)
    d = p(None, z, jnp.zeros(4, bool))
    assert d.loc.shape == (4, 3)
    assert not np.allclose(p(None, z[::-1], jnp.zeros(4, bool)).loc, d.loc)


def test_critic_with_and_without_latent_broadcasts_samples():
    obs = _obs((5,))
    q = Critic(["proprio/", "task/"], SHAPES, 2, (16, 16), KEY)
    assert q(obs, jnp.zeros((5, 2))).shape == (5,)
    assert q(obs, jnp.zeros((7, 5, 2))).shape == (7, 5)
    qz = Critic(["proprio/"], SHAPES, 2, (16,), KEY, latent_size=3)
    assert qz(obs, jnp.zeros((7, 5, 2)), jnp.zeros((7, 5, 3))).shape == (7, 5)
    with pytest.raises(ValueError, match="needs the latent"):
        qz(obs, jnp.zeros((5, 2)))


def test_the_critic_sees_clipped_actions_but_passes_their_gradient_straight_through():
    """Q(x, a) = Q(x, clip(a)) in value; d/da is the gradient at the clipped action, so an
    action outside the box still gets the signal of the nearest action inside (the exact
    gradient there is 0, which left saturated policies with no gradient at all)."""
    from behavior_priors.networks import Critic

    critic = Critic(["proprio/", "task/"], SHAPES, 2, (16,), KEY)
    obs = _obs((3,))
    outside = jnp.asarray([[1.7, -0.2], [-3.0, 2.5], [0.3, -1.4]])
    inside = jnp.clip(outside, -1.0, 1.0)
    np.testing.assert_allclose(critic(obs, outside), critic(obs, inside), rtol=1e-6)

    def grad(a):
        return jax.grad(lambda a: jnp.sum(critic(obs, a)))(a)

    np.testing.assert_allclose(grad(outside), grad(inside), rtol=1e-5, atol=1e-7)
    assert np.all(np.abs(np.asarray(grad(outside))) > 0)


@pytest.mark.parametrize("max_scale", [None, 1.0])
@pytest.mark.parametrize("lead", [(), (5,), (1, 4, 3), (2, 3, 5)])
def test_a_gaussian_head_over_leading_axes_squashes_each_row_as_numpy_does(lead, max_scale):
    """The head squashes its rows flattened to [N, D]: each row's loc and scale must be the
    numpy formulas of that row's preactivations, with the leading axes given back."""
    from behavior_priors.networks.heads import GaussianHead

    head = GaussianHead(6, 3, KEY, min_scale=0.1, tanh_mean=True, max_scale=max_scale)
    rng = np.random.default_rng(2)
    loc_pre = rng.normal(size=(*lead, 3)).astype(np.float32) * 3
    scale_pre = rng.normal(size=(*lead, 3)).astype(np.float32) * 3
    dist = head.distribution(jnp.asarray(loc_pre), jnp.asarray(scale_pre))
    assert dist.loc.shape == dist.scale.shape == (*lead, 3)
    np.testing.assert_allclose(dist.loc, np.tanh(loc_pre.astype(np.float64)), atol=1e-6)
    s = scale_pre.astype(np.float64)
    if max_scale is None:
        want = np.log1p(np.exp(-np.abs(s))) + np.maximum(s, 0) + 0.1
    else:
        want = 0.1 + (max_scale - 0.1) / (1 + np.exp(-s))
    np.testing.assert_allclose(dist.scale, want, rtol=1e-6, atol=1e-6)
