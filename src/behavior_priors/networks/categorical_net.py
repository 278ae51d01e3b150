"""The discrete counterpart of :class:`~.gaussian_net.GaussianNet`: selected observations (+ an
optional extra input such as the latent z) -> LayerNormMLP torso -> logits of a categorical
distribution over ``num_actions`` actions (grid worlds)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import equinox as eqx
import jax

from behavior_priors.networks.layers import LayerNormMLP, Linear
from behavior_priors.networks.observations import flat_size, network_inputs, resolve_keys
from behavior_priors.ops.distributions import Categorical

Array = jax.Array


class CategoricalNet(eqx.Module):
    """``pi(. | obs[keys], extra)``: a categorical distribution over ``num_actions`` actions.

    Observations are dicts ``{key: [..., *shape]}``; ``extra`` (e.g. z) is ``[*S, ..., E]`` and
    may carry extra leading sample axes. The distribution's ``logits`` are ``[(*S), ..., A]``.
    """

    torso: LayerNormMLP
    head: Linear
    keys: tuple[str, ...] = eqx.field(static=True)
    shapes: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    extra_size: int = eqx.field(static=True)

    def __init__(
        self,
        key_patterns: Sequence[str],
        obs_shapes: Mapping[str, tuple[int, ...]],
        num_actions: int,
        hidden: Sequence[int],
        key: Array,
        *,
        extra_size: int = 0,
    ):
        if num_actions < 2:
            raise ValueError(f"a categorical distribution needs >= 2 actions, got {num_actions}")
        self.keys = resolve_keys(key_patterns, obs_shapes)
        self.shapes = tuple(tuple(obs_shapes[k]) for k in self.keys)
        self.extra_size = int(extra_size)
        k1, k2 = jax.random.split(key)
        self.torso = LayerNormMLP(flat_size(self.keys, obs_shapes) + self.extra_size, hidden, k1)
        # A small last layer starts every policy near the uniform distribution.
        self.head = Linear(self.torso.out_size, num_actions, k2, scale=0.01)

    @property
    def num_actions(self) -> int:
        return self.head.bias.shape[-1]

    def logits(self, obs: Mapping[str, Array], extra: Array | None = None) -> Array:
        """Unnormalised log-probabilities ``[..., A]``."""
        x = network_inputs(obs, self.keys, self.shapes, self.extra_size, extra)
        return self.head(self.torso(x))

    def __call__(self, obs: Mapping[str, Array], extra: Array | None = None) -> Categorical:
        return Categorical(self.logits(obs, extra))
