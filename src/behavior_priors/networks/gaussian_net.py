"""The building block of every policy and prior: selected observations (+ an optional extra
input such as the latent z) -> LayerNormMLP torso -> Gaussian head."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import equinox as eqx
import jax

from behavior_priors.networks.heads import GaussianHead
from behavior_priors.networks.layers import LayerNormMLP
from behavior_priors.networks.observations import flat_size, network_inputs, resolve_keys
from behavior_priors.ops.distributions import DiagGaussian

Array = jax.Array

# Upper bound of the scale of Gaussians over normalised actions in [-1, 1].
ACTION_MAX_SCALE = 1.0


class GaussianNet(eqx.Module):
    """``pi(. | obs[keys], extra)``: a diagonal Gaussian over ``out_size`` dimensions.

    Observations are dicts ``{key: [..., *shape]}``; ``extra`` (e.g. z) is ``[*S, ..., E]`` and
    may carry extra leading sample axes, to which the observation features are broadcast.
    """

    torso: LayerNormMLP
    head: GaussianHead
    keys: tuple[str, ...] = eqx.field(static=True)
    shapes: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    extra_size: int = eqx.field(static=True)

    def __init__(
        self,
        key_patterns: Sequence[str],
        obs_shapes: Mapping[str, tuple[int, ...]],
        out_size: int,
        hidden: Sequence[int],
        key: Array,
        *,
        extra_size: int = 0,
        min_scale: float = 0.1,
        tanh_mean: bool = True,
    ):
        self.keys = resolve_keys(key_patterns, obs_shapes)
        self.shapes = tuple(tuple(obs_shapes[k]) for k in self.keys)
        self.extra_size = int(extra_size)
        k1, k2 = jax.random.split(key)
        in_size = flat_size(self.keys, obs_shapes) + self.extra_size
        self.torso = LayerNormMLP(in_size, hidden, k1)
        # Action heads (tanh means, actions in [-1, 1]) bound their scale; see GaussianHead.
        max_scale = ACTION_MAX_SCALE if tanh_mean else None
        self.head = GaussianHead(
            self.torso.out_size, out_size, k2, min_scale, tanh_mean, max_scale=max_scale
        )

    def features(self, obs: Mapping[str, Array], extra: Array | None = None) -> Array:
        """The torso's input ``[..., F (+E)]``."""
        return network_inputs(obs, self.keys, self.shapes, self.extra_size, extra)

    def preactivations(
        self, obs: Mapping[str, Array], extra: Array | None = None
    ) -> tuple[Array, Array]:
        """The head's ``(loc_pre, scale_pre)``, each ``[..., D]``: ``self(obs, extra)`` is
        ``self.head.distribution(*self.preactivations(obs, extra))``."""
        return self.head.preactivations(self.torso(self.features(obs, extra)))

    def __call__(self, obs: Mapping[str, Array], extra: Array | None = None) -> DiagGaussian:
        return self.head(self.torso(self.features(obs, extra)))
