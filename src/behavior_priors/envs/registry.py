"""Named environments: ``make("pointmass-gtt3", num_envs=8, seed=0)``.

Factories are registered as ``"module:attribute"`` strings and imported on first use, so
listing names costs nothing and optional dependencies (dm_control) are only imported when
their environments are made.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from behavior_priors.envs.base import Env


@dataclass(frozen=True)
class EnvEntry:
    """One registered environment: a factory and the keyword arguments it is called with."""

    name: str
    factory: str  # "package.module:callable"
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def load(self) -> Callable[..., Env]:
        module, _, attr = self.factory.partition(":")
        return getattr(importlib.import_module(module), attr)


_REGISTRY: dict[str, EnvEntry] = {}


def register(name: str, factory: str, description: str = "", **kwargs: Any) -> None:
    """Register ``name``; ``factory`` is ``"module:callable"`` taking ``num_envs``, ``seed``."""
    if name in _REGISTRY:
        raise ValueError(f"environment {name!r} is already registered")
    _REGISTRY[name] = EnvEntry(name, factory, dict(kwargs), description)


def list_envs() -> list[EnvEntry]:
    """All registered environments, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def make(name: str, num_envs: int = 1, seed: int | None = None, **overrides: Any) -> Env:
    """Build a registered environment with ``num_envs`` copies.

    Raises:
      KeyError: unknown name, with the closest registered names as suggestions.
    """
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown environment {name!r}{hint} (see `behavior-priors list`)")
    entry = _REGISTRY[name]
    kwargs = {**entry.kwargs, **overrides}
    env = entry.load()(num_envs=num_envs, **kwargs)
    if seed is not None:
        env.reset(seed)
    return env


# --- Registered environments -----------------------------------------------------------------
# Add entries below with `register(...)`, one block per family.
