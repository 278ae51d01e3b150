"""KL divergences between flat and latent-variable (hierarchical) policies.

For the hierarchy of docs/paper.md section 2,

    pi (a|x) = int pi^H (z|x) pi^L (a|z,x) dz,    pi0(a|x) = int pi0^H(z|x) pi0^L(a|z,x) dz,

the marginal KL is intractable; the learner uses the upper bound (chain rule of KL plus the
fact that marginalising cannot increase KL)

    KL(pi || pi0) <= KL(pi^H || pi0^H) + E_{z ~ pi^H}[ KL(pi^L(.|z) || pi0^L(.|z)) ],

with both terms analytic for Gaussians and the expectation estimated by samples of z.
:func:`marginal_kl_mc` estimates the true marginal KL by nested Monte Carlo, for diagnostics.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from behavior_priors.ops.distributions import Categorical, DiagGaussian, gaussian_kl

Array = jax.Array


class HierarchicalKL(NamedTuple):
    """The two terms of the bound and their sum, each shape ``[...]``."""

    high: Array
    low: Array
    total: Array


def hierarchical_kl_bound(
    high_policy: DiagGaussian,
    high_prior: DiagGaussian,
    low_policy_given_z: DiagGaussian | Categorical | None = None,
    low_prior_given_z: DiagGaussian | Categorical | None = None,
) -> HierarchicalKL:
    """The upper bound on KL(pi || pi0) for latent-variable policies.

    Args:
      high_policy: pi^H(z|x), shape ``[..., Dz]``.
      high_prior: pi0^H(z|x^D), shape ``[..., Dz]``.
      low_policy_given_z: pi^L(a|z_s, x) evaluated at S samples ``z_s ~ pi^H`` stacked on a
        leading sample axis: shape ``[S, ..., Da]`` (a ``Categorical`` with logits
        ``[S, ..., A]`` for discrete actions). ``None`` when the low level is shared
        with the prior (then the low term is exactly 0).
      low_prior_given_z: pi0^L(a|z_s, x) at the same samples, shape ``[S, ..., Da]``; ``None``
        exactly when ``low_policy_given_z`` is ``None``.

    Returns:
      ``HierarchicalKL(high, low, total)``, each ``[...]``; ``low`` is the sample mean of the
      analytic low-level KL over the S samples.
    """
    if (low_policy_given_z is None) != (low_prior_given_z is None):
        raise ValueError(
            "give both low-level distributions (separate low levels) or neither (shared low level)"
        )
    kl_high = gaussian_kl(high_policy, high_prior)
    if low_policy_given_z is None:
        kl_low = jnp.zeros_like(kl_high)
    else:
        leaf = low_policy_given_z[0]  # loc, or logits: [S, ..., event]
        if leaf.ndim != high_policy.loc.ndim + 1:
            raise ValueError(
                "low-level distributions need a leading sample axis: expected rank "
                f"{high_policy.loc.ndim + 1}, got shape {leaf.shape}"
            )
        kl_low = jnp.mean(low_policy_given_z.kl(low_prior_given_z), axis=0)
    return HierarchicalKL(kl_high, kl_low, kl_high + kl_low)


LowLevel = Callable[[Array], DiagGaussian]


def latent_mixture_log_prob(
    key: Array,
    a: Array,
    high: DiagGaussian,
    low_fn: LowLevel,
    num_inner: int,
) -> Array:
    """Estimate ``log int p^H(z) p^L(a|z) dz`` by ``log mean_m p^L(a|z_m)``, ``z_m ~ p^H``.

    Consistent as ``num_inner`` grows; biased low for finite ``num_inner`` (Jensen).

    Args:
      key: PRNG key.
      a: actions, shape ``[N, ..., Da]`` (N outer samples over the batch ``[...]``).
      high: p^H(z), shape ``[..., Dz]``.
      low_fn: maps latents ``[M, N, ..., Dz]`` to p^L(a|z) of shape ``[M, N, ..., Da]``.
      num_inner: M, latent samples per action.

    Returns:
      ``[N, ...]`` log-density estimates.
    """
    z = high.sample(key, (num_inner, a.shape[0]))
    log_p = low_fn(z).log_prob(a[None])
    return jax.scipy.special.logsumexp(log_p, axis=0) - math.log(num_inner)


def marginal_kl_mc(
    key: Array,
    high_p: DiagGaussian,
    low_p_fn: LowLevel,
    high_q: DiagGaussian,
    low_q_fn: LowLevel,
    num_outer: int = 1024,
    num_inner: int = 1024,
) -> Array:
    """Nested Monte Carlo estimate of the marginal ``KL(p(a) || q(a))`` of two latent mixtures.

    ``KL = E_{a~p}[log p(a) - log q(a)]`` with ``a = f^L(f^H(eps_1), eps_2)`` sampled from p and
    both log-densities estimated by :func:`latent_mixture_log_prob`. A diagnostic: use it to see
    how loose :func:`hierarchical_kl_bound` is, not inside a loss.

    Args:
      key: PRNG key.
      high_p, high_q: high levels, shape ``[..., Dz]``.
      low_p_fn, low_q_fn: low levels: latents ``[*S, ..., Dz]`` -> ``DiagGaussian [*S, ..., Da]``
        for any leading sample shape S.
      num_outer: N, actions sampled from p.
      num_inner: M, latents per action for each log-density.

    Returns:
      ``[...]`` KL estimates.
    """
    k_z, k_a, k_p, k_q = jax.random.split(key, 4)
    z = high_p.sample(k_z, (num_outer,))
    a = low_p_fn(z).sample(k_a)
    log_p = latent_mixture_log_prob(k_p, a, high_p, low_p_fn, num_inner)
    log_q = latent_mixture_log_prob(k_q, a, high_q, low_q_fn, num_inner)
    return jnp.mean(log_p - log_q, axis=0)
