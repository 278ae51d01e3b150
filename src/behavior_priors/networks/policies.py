"""Policies: flat, and hierarchical with a Gaussian latent z (docs/paper.md section 2).

Continuous actions live in the normalised box [-1, 1] (Gaussian means squashed with tanh;
samples may exceed it and are clipped by the actor before reaching the environment). With
``discrete=True`` the action distribution (the flat policy's, or the low level's) is categorical
over ``action_size`` actions and actions are integers ``[...]`` instead of ``[..., Da]``; the
latent z of a hierarchical policy stays Gaussian.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from behavior_priors.networks.categorical_net import CategoricalNet
from behavior_priors.networks.gaussian_net import GaussianNet
from behavior_priors.networks.observations import with_sample_copies
from behavior_priors.ops.distributions import Categorical, DiagGaussian

Array = jax.Array


class PolicySample(NamedTuple):
    """A reparameterised sample from a policy, with the distributions it came from.

    Shapes for S samples at states ``[...]``: ``action [S, ..., Da]`` (``[S, ...]`` integers
    for discrete actions), ``latent [S, ..., Dz]`` (``Dz = 0`` for flat policies), ``high``
    (``None`` for flat) ``[..., Dz]``, ``low`` ``[S, ..., Da]`` for hierarchical (conditioned on
    each z) or ``[..., Da]`` for flat (a ``Categorical`` with logits ``[..., A]`` when discrete).
    Discrete samples carry no gradient: losses take the exact expectation over ``low``.

    ``low_preactivations``: the bounded action head's ``(loc_pre, scale_pre)`` behind ``low``
    (shaped like ``low.loc``), for the losses' :func:`~behavior_priors.networks.heads.
    saturation` term; ``None`` for discrete actions, or when the caller passed in ``top``.
    """

    action: Array
    latent: Array
    high: DiagGaussian | None
    low: DiagGaussian | Categorical
    low_preactivations: tuple[Array, Array] | None = None


def action_net(
    keys: Sequence[str],
    obs_shapes: Mapping[str, tuple[int, ...]],
    action_size: int,
    hidden: Sequence[int],
    key: Array,
    min_scale: float,
    discrete: bool,
    extra_size: int = 0,
) -> GaussianNet | CategoricalNet:
    """The network of an action distribution: a bounded Gaussian over ``action_size``
    dimensions, or a categorical over ``action_size`` actions when ``discrete``."""
    if discrete:
        return CategoricalNet(keys, obs_shapes, action_size, hidden, key, extra_size=extra_size)
    return GaussianNet(
        keys, obs_shapes, action_size, hidden, key, extra_size=extra_size, min_scale=min_scale
    )


def net_forward(
    net: GaussianNet | CategoricalNet, obs: Mapping[str, Array], extra: Array | None = None
) -> tuple[DiagGaussian | Categorical, tuple[Array, Array] | None]:
    """``(net(obs, extra), pre-activations)``: a bounded action head's ``(loc_pre, scale_pre)``
    from the same pass, or ``None`` for a categorical net."""
    if isinstance(net, GaussianNet) and net.head.tanh_mean:
        pre = net.preactivations(obs, extra)
        return net.head.distribution(*pre), pre
    return net(obs, extra), None


def _empty_latent(action: Array, discrete: bool) -> Array:
    lead = action.shape if discrete else action.shape[:-1]
    return jnp.zeros((*lead, 0), jnp.float32)


class FlatActing(eqx.Module):
    """Sampling, log-probabilities and entropy of a policy without a latent: whatever subclass
    defines ``__call__(obs) -> distribution`` and the fields ``discrete`` and ``latent_size``
    (:class:`FlatPolicy`, and Distral's :class:`~behavior_priors.networks.DistralPolicy`)."""

    def top(
        self, obs: Mapping[str, Array], prev_latent: Array | None = None
    ) -> DiagGaussian | Categorical:
        """The distribution that depends on ``obs`` alone: here pi(.|x) itself, ``[...]``
        (``prev_latent`` is ignored: a flat policy has no latent)."""
        del prev_latent
        return self(obs)

    def sample(
        self,
        obs: Mapping[str, Array],
        key: Array,
        num_samples: int,
        stop_latent_gradient: bool = False,
        top: DiagGaussian | Categorical | None = None,
        prev_latent: Array | None = None,
    ) -> PolicySample:
        """S samples; ``top``: ``self.top(obs)`` when the caller has it already."""
        del stop_latent_gradient, prev_latent  # no latent
        pi, pre = self.forward(obs) if top is None else (top, None)
        a = pi.sample(key, (num_samples,))
        return PolicySample(a, _empty_latent(a, self.discrete), None, pi, pre)

    def sample_and_log_prob(
        self,
        obs: Mapping[str, Array],
        key: Array,
        num_samples: int,
        top: DiagGaussian | Categorical,
        obs_taken: Mapping[str, Array],
        action: Array,
        latent: Array,
        latent_sampled: Array,
        top_taken: DiagGaussian | Categorical,
    ) -> tuple[PolicySample, Array]:
        """``(self.sample(obs, key, num_samples, top=top), self.log_prob(obs_taken, action,
        latent, latent_sampled, top=top_taken))``: what the critic's targets need (samples at
        the next states, the taken actions' log-probabilities at the current ones). A flat
        policy has both from ``top`` and ``top_taken``, with no further network pass."""
        return self.sample(obs, key, num_samples, top=top), self.log_prob(
            obs_taken, action, latent, latent_sampled, top=top_taken
        )

    def forward(
        self, obs: Mapping[str, Array]
    ) -> tuple[DiagGaussian | Categorical, tuple[Array, Array] | None]:
        """``(self(obs), None)``; a policy with a bounded Gaussian head also returns its
        pre-activations (see :func:`net_forward`)."""
        return self(obs), None

    def log_prob(
        self,
        obs: Mapping[str, Array],
        action: Array,
        latent: Array | None = None,
        latent_sampled: Array | None = None,
        top: DiagGaussian | Categorical | None = None,
        prev_latent: Array | None = None,
    ) -> Array:
        """``log pi(a|x)``: ``[...]``; ``top`` as in :meth:`sample`."""
        del latent, latent_sampled, prev_latent
        return (self(obs) if top is None else top).log_prob(action)

    def entropy(
        self,
        obs: Mapping[str, Array],
        key: Array,
        num_samples: int,
        prev_latent: Array | None = None,
    ) -> Array:
        """``H(pi(.|x))``, exact: ``[...]``."""
        del key, num_samples, prev_latent
        return self(obs).entropy()


class FlatPolicy(FlatActing):
    """``pi(a | x[keys])``: a diagonal Gaussian, or a categorical when ``discrete``."""

    net: GaussianNet | CategoricalNet
    latent_size: int = eqx.field(static=True)
    discrete: bool = eqx.field(static=True)

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
        self.latent_size = 0
        self.discrete = bool(discrete)

    def __call__(self, obs: Mapping[str, Array]) -> DiagGaussian | Categorical:
        return self.net(obs)

    def forward(
        self, obs: Mapping[str, Array]
    ) -> tuple[DiagGaussian | Categorical, tuple[Array, Array] | None]:
        return net_forward(self.net, obs)


class HierarchicalPolicy(eqx.Module):
    """``pi(a|x) = int pi^H(z | x[high_keys] [, z_{t-1}]) pi^L(a | z, x[low_keys]) dz``.

    The high level sees task information; the low level sees what it needs to act plus z, so z
    is how the task reaches the body. The low level may be shared with the prior.

    With ``autoregressive=True`` the high level also reads the previous latent z_{t-1}
    (``prev_latent``), so that it can follow an autoregressive high-level prior
    N(a z_{t-1}, .): a pi^H blind to z_{t-1} could only match such a prior's marginal, never its
    temporal correlation. The agent turns it on for the AR(1) and learned-AR priors.
    """

    high: GaussianNet
    low: GaussianNet | CategoricalNet
    latent_size: int = eqx.field(static=True)
    discrete: bool = eqx.field(static=True)
    autoregressive: bool = eqx.field(static=True)

    def __init__(
        self,
        high_keys: Sequence[str],
        low_keys: Sequence[str],
        obs_shapes: Mapping[str, tuple[int, ...]],
        action_size: int,
        latent_size: int,
        hidden: Sequence[int],
        key: Array,
        min_scale: float = 0.1,
        discrete: bool = False,
        autoregressive: bool = False,
    ):
        if latent_size <= 0:
            raise ValueError(f"latent_size must be positive, got {latent_size}")
        k1, k2 = jax.random.split(key)
        # The latent mean is not squashed: its scale is set by the KL to the high-level prior.
        self.high = GaussianNet(
            high_keys,
            obs_shapes,
            latent_size,
            hidden,
            k1,
            extra_size=latent_size if autoregressive else 0,
            min_scale=min_scale,
            tanh_mean=False,
        )
        self.low = action_net(
            low_keys, obs_shapes, action_size, hidden, k2, min_scale, discrete, latent_size
        )
        self.latent_size = int(latent_size)
        self.discrete = bool(discrete)
        self.autoregressive = bool(autoregressive)

    def top(self, obs: Mapping[str, Array], prev_latent: Array | None = None) -> DiagGaussian:
        """The distribution that depends on the state alone: pi^H(z|x [, z_{t-1}]),
        ``[..., Dz]``. ``prev_latent [..., Dz]`` (z_{t-1}, zeros at an episode's first step) is
        read only by an autoregressive high level, which requires it."""
        if not self.autoregressive:
            return self.high(obs)
        if prev_latent is None:
            raise ValueError("this policy's high level is autoregressive and needs prev_latent")
        return self.high(obs, prev_latent)

    def sample(
        self,
        obs: Mapping[str, Array],
        key: Array,
        num_samples: int,
        stop_latent_gradient: bool = False,
        top: DiagGaussian | None = None,
        prev_latent: Array | None = None,
    ) -> PolicySample:
        """Sample z ~ pi^H then a ~ pi^L(.|z), both reparameterised (z only, when the actions
        are discrete).

        ``stop_latent_gradient`` cuts the gradient path from the action back into z: the low
        level is given a gradient-stopped copy of z (it still learns from the action), while
        the returned ``latent`` keeps its path into the high level, so a critic Q(x, z, a) fed
        with it still trains pi^H through dQ/dz. ``top``: ``self.top(obs, prev_latent)`` when
        the caller has it already (one high-level pass, not two).
        """
        kz, ka = jax.random.split(key)
        high = self.top(obs, prev_latent) if top is None else top
        z = high.sample(kz, (num_samples,))
        z_low = jax.lax.stop_gradient(z) if stop_latent_gradient else z
        low, pre = net_forward(self.low, obs, z_low)
        return PolicySample(low.sample(ka), z, high, low, pre)

    def sample_and_log_prob(
        self,
        obs: Mapping[str, Array],
        key: Array,
        num_samples: int,
        top: DiagGaussian,
        obs_taken: Mapping[str, Array],
        action: Array,
        latent: Array,
        latent_sampled: Array,
        top_taken: DiagGaussian,
    ) -> tuple[PolicySample, Array]:
        """``(self.sample(obs, key, num_samples, top=top), self.log_prob(obs_taken, action,
        latent, latent_sampled, top=top_taken))``, the same numbers, from one low-level pass
        over the S sampled z's at ``obs`` and the taken z at ``obs_taken`` stacked (one set of
        matrix products instead of two; docs/benchmarks.md, "One pass instead of two").

        Shapes: ``obs`` and ``top`` ``[...]``, ``obs_taken``, ``action``, ``latent``,
        ``latent_sampled`` and ``top_taken`` ``[...]`` too (the same leading shape)."""
        kz, ka = jax.random.split(key)
        z = top.sample(kz, (num_samples,))
        both = with_sample_copies(obs, num_samples, obs_taken, self.low.keys)
        low_both, pre_both = net_forward(self.low, both, jnp.concatenate([z, latent[None]]))
        low, pre = jax.tree.map(lambda x: x[:num_samples], (low_both, pre_both))
        taken = jax.tree.map(lambda x: x[num_samples], low_both)
        log_high = top_taken.log_prob(latent) * latent_sampled
        sample = PolicySample(low.sample(ka), z, top, low, pre)
        return sample, taken.log_prob(action) + log_high

    def log_prob(
        self,
        obs: Mapping[str, Array],
        action: Array,
        latent: Array,
        latent_sampled: Array | None = None,
        top: DiagGaussian | None = None,
        prev_latent: Array | None = None,
    ) -> Array:
        """Joint ``log pi(z, a | x)``; only ``log pi^L(a|z,x)`` where z was held, not sampled.

        Shapes: ``action [..., Da]`` (``[...]`` discrete), ``latent [..., Dz]``,
        ``latent_sampled [...]`` -> ``[...]``; ``top`` as in :meth:`sample`.
        """
        log_low = self.low(obs, latent).log_prob(action)
        log_high = (self.top(obs, prev_latent) if top is None else top).log_prob(latent)
        if latent_sampled is not None:
            log_high = log_high * latent_sampled
        return log_low + log_high

    def entropy(
        self,
        obs: Mapping[str, Array],
        key: Array,
        num_samples: int,
        prev_latent: Array | None = None,
    ) -> Array:
        """``E_{z~pi^H} H(pi^L(.|z, x))`` from ``num_samples`` samples of z, ``[...]``.

        This is the entropy the agent regularises: it is a lower bound on the marginal H(a|x)
        (conditioning cannot increase entropy) and depends only on what acts. The differential
        entropy of z is left out on purpose: it is unbounded (any invertible rescaling of z that
        the low level undoes leaves behaviour unchanged and adds log|det|), so a bonus on it only
        inflates the latent's scale.
        """
        z = self.top(obs, prev_latent).sample(key, (num_samples,))
        return jnp.mean(self.low(obs, z).entropy(), axis=0)


Policy = FlatPolicy | HierarchicalPolicy


def sample_entropy(sample: PolicySample) -> Array:
    """The entropy :meth:`HierarchicalPolicy.entropy` (or :meth:`FlatPolicy.entropy`) estimates,
    from the distributions a :class:`PolicySample` already holds: ``mean_s H(pi^L(.|z_s))``
    over its S latent samples (exact for flat policies), ``[...]``.

    The losses use it instead of a second low-level pass over fresh z samples: the same unbiased
    estimate, from the S samples already drawn, at no extra network cost.
    """
    if sample.high is None:
        return sample.low.entropy()
    return jnp.mean(sample.low.entropy(), axis=0)
