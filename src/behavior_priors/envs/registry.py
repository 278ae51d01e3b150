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

# Native MuJoCo suite (behavior_priors.envs.mujoco): every body on every task family.
# Multi-task entries sample one task per episode; the task id is in `task/id_onehot`.
_MUJOCO_TASK_SETS: dict[str, tuple[str, dict[str, Any], str]] = {
    "gtt3": (
        ("go_to_target:0", "go_to_target:1", "go_to_target:2"),
        {},
        "go to one of 3 targets (task input: which one)",
    ),
    "movebox": (
        ("move_box:0:0", "move_box:0:1", "move_box:1:0", "move_box:1:1"),
        {},
        "move one of 2 boxes to one of 2 targets",
    ),
    "moveheavybox": (
        ("move_box:0:0", "move_box:0:1"),
        {"box_mass_factor": 3.0},
        "move a box 3x heavier than in movebox to one of 2 targets",
    ),
    "gather": (("gather:0:1",), {}, "push two boxes until they touch"),
    "movebox-then-gtt": (
        ("move_box_then_go:0:0:1", "move_box_then_go:0:1:0"),
        {},
        "move the box to one target, then go to the other",
    ),
}
for _body in ("pointmass", "ball", "ant", "quadruped"):
    for _suffix, (_tasks, _extra, _what) in _MUJOCO_TASK_SETS.items():
        register(
            f"{_body}-{_suffix}",
            "behavior_priors.envs.mujoco.env:make_task_env",
            f"MuJoCo {_body}: {_what}",
            body=_body,
            tasks=_tasks,
            **_extra,
        )

# Grid world (behavior_priors.envs.gridworld): one task per goal cell, default goal sets.
register(
    "gridworld-tworooms",
    "behavior_priors.envs.gridworld.env:make_gridworld",
    "grid world, two rooms, 4 corner goals (task id = goal cell index)",
    layout="tworooms",
)
register(
    "gridworld-fourrooms",
    "behavior_priors.envs.gridworld.env:make_gridworld",
    "grid world, four rooms, 4 corner goals (task id = goal cell index)",
    layout="fourrooms",
)

# dm_control reference tasks (optional `dmc` extra; imported only when made).
register(
    "dmc-ant-gtt",
    "behavior_priors.envs.adapters.from_dm_control:ant_go_to_target",
    "dm_control locomotion go-to-target with the Ant (needs the dmc extra)",
)
