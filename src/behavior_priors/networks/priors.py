"""Behaviour priors pi0 (docs/paper.md sections 1-2).

* :class:`FlatPrior`: ``pi0(a | x^D)`` on restricted keys.
* :class:`HierarchicalPrior`: ``pi0(a|x) = int pi0^H(z | .) pi0^L(a | z, x) dz`` with a high-level
  prior from :data:`HighPrior` and either a separate low level or none, meaning the low level
  is *shared* with the policy's (``pi0^L = pi^L``), so the regulariser is the KL over z alone.

High-level priors take ``(obs, prev_latent, first)``: the autoregressive ones condition on
z_{t-1}; at the first step of an episode (``first``) they return ``N(0, I)``, the stationary
marginal of AR(1), since there is no previous latent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp

from behavior_priors.networks.categorical_net import CategoricalNet
from behavior_priors.networks.gaussian_net import GaussianNet
from behavior_priors.networks.heads import GaussianHead
from behavior_priors.networks.layers import LayerNormMLP
from behavior_priors.networks.policies import action_net
from behavior_priors.ops.distributions import Categorical, DiagGaussian

Array = jax.Array


class FlatPrior(eqx.Module):
    """``pi0(a | x[keys])``: the same family as :class:`~.policies.FlatPolicy` (Gaussian, or
    categorical when ``discrete``)."""

    net: GaussianNet | CategoricalNet

    def __init__(
        self,
        keys: Sequence[str],
        obs_shapes: Mapping[str, tuple[int, ...]],
        action_size: int,
        hidden: Sequence[int],
        key: Array,
        min_scale: float = 0.1,
        discrete: bool = False,
    ):
        self.net = action_net(keys, obs_shapes, action_size, hidden, key, min_scale, discrete)

    def __call__(self, obs: Mapping[str, Array]) -> DiagGaussian | Categorical:
        return self.net(obs)


def _where_first(first: Array | None, dist: DiagGaussian) -> DiagGaussian:
    """Replace ``dist`` by N(0, I) where ``first`` (shape ``[...]``) is true."""
    if first is None:
        return dist
    f = jnp.asarray(first, bool)[..., None]
    return DiagGaussian(jnp.where(f, 0.0, dist.loc), jnp.where(f, 1.0, dist.scale))


class LearnedHighPrior(eqx.Module):
    """``pi0^H(z | x^D)``: learned, conditioned on restricted keys (the paper's default)."""

    net: GaussianNet

    def __init__(
        self,
        keys: Sequence[str],
        obs_shapes: Mapping[str, tuple[int, ...]],
        latent_size: int,
        hidden: Sequence[int],
        key: Array,
        min_scale: float = 0.1,
    ):
        self.net = GaussianNet(
            keys, obs_shapes, latent_size, hidden, key, min_scale=min_scale, tanh_mean=False
        )

    def __call__(
        self, obs: Mapping[str, Array], prev_latent: Array | None = None, first: Array | None = None
    ) -> DiagGaussian:
        del prev_latent, first
        return self.net(obs)


class NormalHighPrior(eqx.Module):
    """Fixed isotropic ``N(0, I)``; no parameters."""

    latent_size: int = eqx.field(static=True)

    def __call__(
        self, obs: Mapping[str, Array], prev_latent: Array | None = None, first: Array | None = None
    ) -> DiagGaussian:
        lead = _leading_shape(obs, prev_latent)
        return DiagGaussian(
            jnp.zeros((*lead, self.latent_size)), jnp.ones((*lead, self.latent_size))
        )


class AR1HighPrior(eqx.Module):
    """Fixed ``N(a z_{t-1}, (1 - a^2) I)``; its stationary marginal is ``N(0, I)``."""

    latent_size: int = eqx.field(static=True)
    coefficient: float = eqx.field(static=True)

    def __check_init__(self):
        if not 0.0 <= self.coefficient < 1.0:
            raise ValueError(f"AR(1) coefficient must be in [0, 1), got {self.coefficient}")

    def __call__(
        self, obs: Mapping[str, Array], prev_latent: Array | None = None, first: Array | None = None
    ) -> DiagGaussian:
        if prev_latent is None:
            raise ValueError("the AR(1) prior needs prev_latent (z_{t-1})")
        a = self.coefficient
        scale = jnp.full_like(prev_latent, math.sqrt(1.0 - a * a))
        return _where_first(first, DiagGaussian(a * prev_latent, scale))


class LearnedARHighPrior(eqx.Module):
    """Learned ``N(mu(z_{t-1}), sigma(z_{t-1}))``: an MLP on the previous latent only."""

    torso: LayerNormMLP
    head: GaussianHead
    latent_size: int = eqx.field(static=True)

    def __init__(self, latent_size: int, hidden: Sequence[int], key: Array, min_scale: float = 0.1):
        k1, k2 = jax.random.split(key)
        self.torso = LayerNormMLP(latent_size, hidden, k1)
        self.head = GaussianHead(self.torso.out_size, latent_size, k2, min_scale, tanh_mean=False)
        self.latent_size = int(latent_size)

    def __call__(
        self, obs: Mapping[str, Array], prev_latent: Array | None = None, first: Array | None = None
    ) -> DiagGaussian:
        if prev_latent is None:
            raise ValueError("the learned autoregressive prior needs prev_latent (z_{t-1})")
        return _where_first(first, self.head(self.torso(prev_latent)))


HighPrior = LearnedHighPrior | NormalHighPrior | AR1HighPrior | LearnedARHighPrior


class HierarchicalPrior(eqx.Module):
    """``pi0^H`` plus a separate low level ``pi0^L(a | z, x)``, or ``low=None`` when shared."""

    high: HighPrior
    low: GaussianNet | CategoricalNet | None

    @property
    def shares_low_level(self) -> bool:
        return self.low is None


def _leading_shape(obs: Mapping[str, Array], prev_latent: Array | None) -> tuple[int, ...]:
    if prev_latent is not None:
        return prev_latent.shape[:-1]
    # Without a latent, take the batch shape from any observation entry's leading axes is
    # ambiguous (entries have different ranks); callers of fixed priors pass prev_latent.
    raise ValueError("fixed high-level priors need prev_latent to know the batch shape")


Prior = FlatPrior | HierarchicalPrior
