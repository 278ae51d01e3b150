"""Critics ``Q(x, a)`` and, as an option, ``Q(x, z, a)``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp

from behavior_priors.networks.layers import LayerNormMLP, Linear
from behavior_priors.networks.observations import concat_observations, flat_size, resolve_keys

Array = jax.Array


class Critic(eqx.Module):
    """``Q(x[keys], [z,] a) -> [...]``; a LayerNormMLP torso and a linear output.

    ``obs`` entries are ``[..., *shape]``; ``action`` (and ``latent``) may carry extra leading
    sample axes ``[*S, ..., D]``, to which the observation features are broadcast. Actions are
    clipped to the normalised box [-1, 1] first, as the environment does.
    """

    torso: LayerNormMLP
    out: Linear
    keys: tuple[str, ...] = eqx.field(static=True)
    shapes: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    latent_size: int = eqx.field(static=True)

    def __init__(
        self,
        keys: Sequence[str],
        obs_shapes: Mapping[str, tuple[int, ...]],
        action_size: int,
        hidden: Sequence[int],
        key: Array,
        latent_size: int = 0,
    ):
        self.keys = resolve_keys(keys, obs_shapes)
        self.shapes = tuple(tuple(obs_shapes[k]) for k in self.keys)
        self.latent_size = int(latent_size)
        k1, k2 = jax.random.split(key)
        in_size = flat_size(self.keys, obs_shapes) + action_size + self.latent_size
        self.torso = LayerNormMLP(in_size, hidden, k1)
        self.out = Linear(self.torso.out_size, 1, k2)

    def __call__(
        self, obs: Mapping[str, Array], action: Array, latent: Array | None = None
    ) -> Array:
        x = concat_observations(obs, self.keys, dict(zip(self.keys, self.shapes, strict=True)))
        # The environment executes the action clipped to the normalised box, so Q(x, a) is
        # Q(x, clip(a)); without this the critic extrapolates outside the box.
        parts = [jnp.clip(action, -1.0, 1.0)]
        if self.latent_size:
            if latent is None:
                raise ValueError("this critic is Q(x, z, a) and needs the latent")
            parts.insert(0, latent)
        lead = jnp.broadcast_shapes(x.shape[:-1], *(p.shape[:-1] for p in parts))
        x = jnp.concatenate(
            [jnp.broadcast_to(p, (*lead, p.shape[-1])) for p in [x, *parts]], axis=-1
        )
        return self.out(self.torso(x))[..., 0]
