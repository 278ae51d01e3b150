"""Critics ``Q(x, a)`` and, as an option, ``Q(x, z, a)``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp

from behavior_priors.networks.layers import LayerNormMLP, Linear
from behavior_priors.networks.observations import (
    concat_observations,
    flat_size,
    network_inputs,
    resolve_keys,
)

Array = jax.Array


def clip_straight_through(action: Array) -> Array:
    """``clip(action, -1, 1)`` in value, the identity in gradient, ``[..., Da]``.

    The environment executes the action clipped to the normalised box, so Q(x, a) is
    Q(x, clip(a)) (without the clip the critic extrapolates outside the box). The exact gradient
    of that is zero outside the box: a policy whose samples leave it gets no signal back from
    them, and once its tanh mean and its scale saturate at the bounds it gets none at all and
    stops learning for good (in 4 of 15 seed runs of the point-mass learning test the return
    stayed near random; in 2 of them the policy gradient norm was 0.001 or less from 10k steps
    on). The straight-through gradient is the
    critic's gradient at the clipped action, which points back into the box whenever Q improves
    inwards.
    """
    return action + jax.lax.stop_gradient(jnp.clip(action, -1.0, 1.0) - action)


class Critic(eqx.Module):
    """``Q(x[keys], [z,] a) -> [...]``; a LayerNormMLP torso and a linear output.

    ``obs`` entries are ``[..., *shape]``; ``action`` (and ``latent``) may carry extra leading
    sample axes ``[*S, ..., D]``, to which the observation features are broadcast. Actions are
    clipped to the normalised box [-1, 1] first, as the environment does, with a straight-through
    gradient (:func:`clip_straight_through`).
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
        parts = [clip_straight_through(action)]
        if self.latent_size:
            if latent is None:
                raise ValueError("this critic is Q(x, z, a) and needs the latent")
            parts.insert(0, latent)
        lead = jnp.broadcast_shapes(x.shape[:-1], *(p.shape[:-1] for p in parts))
        x = jnp.concatenate(
            [jnp.broadcast_to(p, (*lead, p.shape[-1])) for p in [x, *parts]], axis=-1
        )
        return self.out(self.torso(x))[..., 0]


class DiscreteCritic(eqx.Module):
    """``Q(x[keys], [z,] .) -> [..., A]``: one output per discrete action (DQN style), so the
    expectation ``sum_a pi(a|x) Q(x, a)`` is exact and needs one forward pass.

    ``__call__(obs, action, latent)`` has the interface of :class:`Critic` (integer actions
    ``[*S, ...]`` -> ``[*S, ...]``); :meth:`values` returns every action's value and
    :meth:`expected` the expectation under action probabilities ``[*S, ..., A]``.
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
        num_actions: int,
        hidden: Sequence[int],
        key: Array,
        latent_size: int = 0,
    ):
        self.keys = resolve_keys(keys, obs_shapes)
        self.shapes = tuple(tuple(obs_shapes[k]) for k in self.keys)
        self.latent_size = int(latent_size)
        k1, k2 = jax.random.split(key)
        self.torso = LayerNormMLP(flat_size(self.keys, obs_shapes) + self.latent_size, hidden, k1)
        self.out = Linear(self.torso.out_size, num_actions, k2)

    def values(self, obs: Mapping[str, Array], latent: Array | None = None) -> Array:
        """``Q(x, [z,] a)`` for every action: ``[(*S), ..., A]``."""
        if self.latent_size and latent is None:
            raise ValueError("this critic is Q(x, z, a) and needs the latent")
        x = network_inputs(obs, self.keys, self.shapes, self.latent_size, latent)
        return self.out(self.torso(x))

    def __call__(
        self, obs: Mapping[str, Array], action: Array, latent: Array | None = None
    ) -> Array:
        q = self.values(obs, latent)
        a = jnp.asarray(action).astype(jnp.int32)
        lead = jnp.broadcast_shapes(q.shape[:-1], a.shape)
        q = jnp.broadcast_to(q, (*lead, q.shape[-1]))
        return jnp.take_along_axis(q, jnp.broadcast_to(a, lead)[..., None], axis=-1)[..., 0]

    def expected(
        self, obs: Mapping[str, Array], probs: Array, latent: Array | None = None
    ) -> Array:
        """``sum_a probs[..., a] Q(x, [z,] a)``: ``[*S, ...]`` for ``probs [*S, ..., A]``."""
        return jnp.sum(probs * self.values(obs, latent), axis=-1)
