"""Seed groups: one batched environment whose copies are S runs' environments side by side.

Seed-batched training (:mod:`behavior_priors.training.multiseed`) steps S seeds' environments
with one call. The copies of an environment of ``S * B`` copies are split into S groups of B
consecutive copies; group g must run exactly as an environment of B copies reset with
``seeds[g]`` would, so that each seed's run is the run ``train`` makes with that seed. An
environment supports this with three methods:

* ``reset_groups(seeds) -> TimeStep``: reset every copy, group g from ``seeds[g]``;
* ``get_group_state(g)`` / ``set_group_state(g, state)``: group g's part of ``get_state`` /
  ``set_state``, in the format of an environment of B copies (so a seed's checkpoint resumes
  as an ordinary run, and an ordinary run's checkpoint fills a group).

The native MuJoCo suite implements them (one generator per group). :func:`make_seed_groups`
returns such an environment, or else a :class:`StackedEnv` of S separate environments, which
implements the same methods by stepping each in turn (the grid world, the adapters).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from behavior_priors.envs.base import Env, TimeStep
from behavior_priors.envs.registry import make


def supports_seed_groups(env: Any) -> bool:
    """Whether ``env`` steps seed groups natively (has ``reset_groups``)."""
    return callable(getattr(env, "reset_groups", None))


def make_seed_groups(name: str, seeds: Sequence[int], copies: int, **kwargs: Any) -> Env:
    """An environment of ``len(seeds) * copies`` copies in seed groups of ``copies``, not yet
    reset: ``make(name, num_envs=len(seeds) * copies, **kwargs)`` when that environment
    supports seed groups, else a :class:`StackedEnv` of ``len(seeds)`` environments."""
    first = make(name, num_envs=copies, **kwargs)
    if not supports_seed_groups(first):
        return StackedEnv([first] + [make(name, num_envs=copies, **kwargs) for _ in seeds[1:]])
    if len(seeds) == 1:
        return first
    first.close()
    return make(name, num_envs=copies * len(seeds), **kwargs)


class StackedEnv:
    """S environments of B copies each, seen as one environment of S * B copies in seed
    groups: ``step`` steps each in turn and concatenates what they return. ``get_state`` /
    ``set_state`` exist when the parts have them."""

    def __init__(self, envs: Sequence[Env]):
        envs = list(envs)
        if not envs:
            raise ValueError("StackedEnv needs at least one environment")
        sizes = {e.num_envs for e in envs}
        if len(sizes) != 1:
            raise ValueError(f"stacked environments must have equal copies, got {sorted(sizes)}")
        self.envs = envs
        self.group_size = envs[0].num_envs
        self.num_envs = self.group_size * len(envs)

    @property
    def task_names(self) -> list[str] | None:
        """The parts' task names (the optional attribute of :mod:`behavior_priors.envs.base`)."""
        return getattr(self.envs[0], "task_names", None)

    def observation_spec(self):
        return self.envs[0].observation_spec()

    def action_spec(self):
        return self.envs[0].action_spec()

    def reset(self, seed: int | None = None) -> TimeStep:
        if seed is not None and len(self.envs) > 1:
            raise ValueError("a StackedEnv of several seed groups is reset by reset_groups(seeds)")
        return concat_timesteps([e.reset(seed) for e in self.envs])

    def reset_groups(self, seeds: Sequence[int]) -> TimeStep:
        if len(seeds) != len(self.envs):
            raise ValueError(f"{len(self.envs)} seed groups but {len(seeds)} seeds")
        return concat_timesteps([e.reset(int(s)) for e, s in zip(self.envs, seeds, strict=True)])

    def step(self, actions: np.ndarray) -> TimeStep:
        n = self.group_size
        parts = [e.step(actions[g * n : (g + 1) * n]) for g, e in enumerate(self.envs)]
        return concat_timesteps(parts)

    def get_group_state(self, group: int) -> dict[str, Any]:
        return self.envs[group].get_state()

    def set_group_state(self, group: int, state: dict[str, Any]) -> None:
        self.envs[group].set_state(state)

    def has_state(self) -> bool:
        """Whether the parts can save and restore their state mid-episode."""
        return all(callable(getattr(e, "get_state", None)) for e in self.envs)

    def close(self) -> None:
        for e in self.envs:
            e.close()


def group_state_supported(env: Any) -> bool:
    """Whether a seed-grouped ``env`` can checkpoint each group's state mid-episode."""
    if isinstance(env, StackedEnv):
        return env.has_state()
    return callable(getattr(env, "get_group_state", None))


def concat_timesteps(steps: list[TimeStep]) -> TimeStep:
    """Timesteps of several environments as one of all their copies, in order (the info
    entries every one has)."""
    if len(steps) == 1:
        return steps[0]
    info_keys = set.intersection(*(set(s.info) for s in steps))
    return TimeStep(
        step_type=np.concatenate([s.step_type for s in steps]),
        observation={
            k: np.concatenate([s.observation[k] for s in steps]) for k in steps[0].observation
        },
        reward=np.concatenate([s.reward for s in steps]),
        discount=np.concatenate([s.discount for s in steps]),
        task_id=np.concatenate([s.task_id for s in steps]),
        info={k: np.concatenate([np.asarray(s.info[k]) for s in steps]) for k in info_keys},
    )
