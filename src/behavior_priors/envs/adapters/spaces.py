"""Conversions between our specs and Gymnasium spaces, and observation-key selection."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

import gymnasium as gym
import numpy as np

from behavior_priors.envs.base import ArraySpec, BoundedArraySpec, DiscreteSpec

# The observation-key convention of :mod:`behavior_priors.envs`.
KEY_PREFIXES = ("proprio/", "task/", "extero/")


def check_key(key: str, what: str = "observation key") -> str:
    """Return ``key`` if it follows the ``proprio/``, ``task/``, ``extero/`` convention."""
    if not isinstance(key, str) or not key.startswith(KEY_PREFIXES) or key in KEY_PREFIXES:
        raise ValueError(
            f"{what} {key!r} must be a string starting with one of {', '.join(KEY_PREFIXES)} "
            "followed by a name (e.g. 'proprio/state')"
        )
    return key


def select_keys(patterns: Sequence[str] | None, available: Sequence[str]) -> tuple[str, ...]:
    """Sorted keys matching ``patterns`` (exact keys, or prefixes ending in ``/``); all if None."""
    if patterns is None:
        return tuple(sorted(available))
    if isinstance(patterns, str):
        raise TypeError(f"keys must be a sequence of strings, got the string {patterns!r}")
    selected: set[str] = set()
    for p in patterns:
        matches = (
            {k for k in available if k.startswith(p)} if p.endswith("/") else {p} & set(available)
        )
        if not matches:
            close = difflib.get_close_matches(p, list(available), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"observation key {p!r} matches nothing{hint} "
                f"(available: {', '.join(sorted(available))})"
            )
        selected |= matches
    return tuple(sorted(selected))


def box_from_spec(spec: ArraySpec) -> gym.spaces.Box:
    """A float32 Box of the spec's shape; bounded when the spec is a :class:`BoundedArraySpec`."""
    if isinstance(spec, BoundedArraySpec):
        low = np.broadcast_to(np.asarray(spec.minimum, np.float32), spec.shape).copy()
        high = np.broadcast_to(np.asarray(spec.maximum, np.float32), spec.shape).copy()
        return gym.spaces.Box(low, high, tuple(spec.shape), np.float32)
    return gym.spaces.Box(-np.inf, np.inf, tuple(spec.shape), np.float32)


def action_space_from_spec(spec: BoundedArraySpec | DiscreteSpec) -> gym.spaces.Space:
    """``Discrete(n)`` for a :class:`DiscreteSpec`; a float32 ``Box`` for a bounded spec."""
    if isinstance(spec, DiscreteSpec):
        if spec.shape != ():
            raise ValueError(f"only scalar discrete actions are supported, got shape {spec.shape}")
        return gym.spaces.Discrete(spec.num_values)
    low = np.broadcast_to(np.asarray(spec.minimum, np.float32), spec.shape)
    high = np.broadcast_to(np.asarray(spec.maximum, np.float32), spec.shape)
    return gym.spaces.Box(low.copy(), high.copy(), tuple(spec.shape), np.float32)


def spec_from_action_space(space: gym.spaces.Space) -> BoundedArraySpec | DiscreteSpec:
    """Our action spec for a Gymnasium ``Box`` or ``Discrete`` space."""
    if isinstance(space, gym.spaces.Discrete):
        return DiscreteSpec(int(space.n), "action")
    if isinstance(space, gym.spaces.Box):
        return BoundedArraySpec(
            tuple(space.shape),
            np.float32,
            "action",
            minimum=np.asarray(space.low, np.float32),
            maximum=np.asarray(space.high, np.float32),
        )
    raise TypeError(
        f"unsupported Gymnasium action space {space!r}: only Box and Discrete can be adapted"
    )


def flat_layout(spec: Mapping[str, ArraySpec], keys: Sequence[str]) -> dict[str, slice]:
    """Where each key lands in the flat vector that concatenates ``keys`` in order."""
    out, start = {}, 0
    for k in keys:
        size = int(np.prod(spec[k].shape, dtype=np.int64))
        out[k] = slice(start, start + size)
        start += size
    return out
