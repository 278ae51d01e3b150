"""Observation selection by key: how information asymmetry is configured.

Every network names the observation keys it reads, either exact keys (``"task/target"``) or
prefixes ending in ``/`` (``"proprio/"``: every key under it). Selection is resolved once, at
construction, against the environment's observation spec, so a key that does not exist is an
error there and not a silent zero later.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

Array = jax.Array


def resolve_keys(
    patterns: Sequence[str], obs_shapes: Mapping[str, tuple[int, ...]]
) -> tuple[str, ...]:
    """Expand key patterns against the available keys; sorted, without duplicates.

    Args:
      patterns: exact keys, or prefixes ending in ``/``.
      obs_shapes: ``{key: per-example shape}`` of what the environment provides.

    Raises:
      ValueError: a pattern matches no key (with suggestions), or no pattern is given.
    """
    if isinstance(patterns, str):
        raise TypeError(
            f"observation keys must be a sequence of strings, got the string {patterns!r}"
        )
    if not patterns:
        raise ValueError("a network must read at least one observation key")
    selected: set[str] = set()
    for pattern in patterns:
        if pattern.endswith("/"):
            matches = {k for k in obs_shapes if k.startswith(pattern)}
        else:
            matches = {pattern} if pattern in obs_shapes else set()
        if not matches:
            close = difflib.get_close_matches(pattern, list(obs_shapes), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"observation key {pattern!r} matches nothing{hint} "
                f"(available: {', '.join(sorted(obs_shapes))})"
            )
        selected |= matches
    return tuple(sorted(selected))


def with_sample_copies(
    obs: Mapping[str, Array],
    num_samples: int,
    other: Mapping[str, Array],
    keys: Sequence[str],
) -> dict[str, Array]:
    """``{key: [S + 1, ..., *shape]}``: ``num_samples`` copies of ``obs[key]`` (the states that
    S sampled inputs go with), then ``other[key]``, for ``keys``.

    One network pass over S samples at some states and one input at others (the bootstrap
    samples at the next states and the actions taken at the current ones) then costs one set of
    matrix products instead of two (docs/benchmarks.md, "One pass instead of two").
    """
    return {
        k: jnp.concatenate([jnp.broadcast_to(obs[k], (num_samples, *obs[k].shape)), other[k][None]])
        for k in keys
    }


def flat_size(keys: Sequence[str], obs_shapes: Mapping[str, tuple[int, ...]]) -> int:
    """Total number of features of ``keys`` once each entry is flattened."""
    return sum(math.prod(obs_shapes[k]) for k in keys)


def concat_observations(
    obs: Mapping[str, Array], keys: Sequence[str], obs_shapes: Mapping[str, tuple[int, ...]]
) -> Array:
    """Concatenate the selected entries, each flattened: ``{k: [..., *shape_k]} -> [..., F]``.

    The leading (batch) dimensions are whatever precedes each entry's per-example shape.
    """
    parts = []
    for k in keys:
        x = jnp.asarray(obs[k], jnp.float32)
        lead = x.shape[: x.ndim - len(obs_shapes[k])]
        parts.append(jnp.reshape(x, (*lead, -1)))
    return jnp.concatenate(parts, axis=-1)


def obs_shapes_from_spec(spec: Mapping[str, object]) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` from an environment's observation spec (anything with ``.shape``)."""
    return {k: tuple(getattr(v, "shape", v)) for k, v in spec.items()}


def network_inputs(
    obs: Mapping[str, Array],
    keys: Sequence[str],
    shapes: Sequence[tuple[int, ...]],
    extra_size: int = 0,
    extra: Array | None = None,
) -> Array:
    """The flattened observations ``obs[keys]`` followed by ``extra`` (e.g. the latent z):
    ``[..., F (+E)]``.

    ``extra`` is ``[*S, ..., E]`` and may carry extra leading sample axes, to which the
    observation features are broadcast. Raises ``ValueError`` when ``extra`` is missing or has
    the wrong width while ``extra_size > 0``.
    """
    x = concat_observations(obs, keys, dict(zip(keys, shapes, strict=True)))
    if not extra_size:
        return x
    if extra is None or extra.shape[-1] != extra_size:
        got = None if extra is None else extra.shape
        raise ValueError(f"this network needs an extra input of size {extra_size}; got {got}")
    lead = jnp.broadcast_shapes(x.shape[:-1], extra.shape[:-1])
    return jnp.concatenate(
        [
            jnp.broadcast_to(x, (*lead, x.shape[-1])),
            jnp.broadcast_to(extra, (*lead, extra.shape[-1])),
        ],
        axis=-1,
    )
