"""How the agent's actions map onto an environment's action space, continuous or discrete.

The agent works in a normalised box [-1, 1]^Da (continuous) or with integer actions 0..A-1
(discrete); :class:`ActionLayout` holds what the run needs to know about the environment's
space to size the networks and the replay, and to turn the agent's actions into the
environment's, and it is what ``run.json`` records so that a saved run can act without
building its environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from behavior_priors.agents.svg0 import to_env_action
from behavior_priors.envs.base import DiscreteSpec


@dataclass(frozen=True)
class ActionLayout:
    """Attributes:
    size: Da for a box, the number of actions A when ``discrete``.
    discrete: integer actions.
    minimum, maximum: the box's bounds ``[Da]`` (``None`` when discrete).
    """

    size: int
    discrete: bool
    minimum: np.ndarray | None = None
    maximum: np.ndarray | None = None

    @classmethod
    def from_spec(cls, spec: Any) -> ActionLayout:
        """From an environment's action spec; ``ValueError`` for anything but a bounded box or
        a :class:`~behavior_priors.envs.base.DiscreteSpec`."""
        if isinstance(spec, DiscreteSpec):
            return cls(int(spec.num_values), True)
        if not hasattr(spec, "minimum"):
            raise ValueError(
                f"the agent needs a bounded box or a discrete action space, got {spec!r}"
            )
        shape = tuple(spec.shape)
        lo = np.broadcast_to(np.asarray(spec.minimum, np.float32), shape).ravel()
        hi = np.broadcast_to(np.asarray(spec.maximum, np.float32), shape).ravel()
        return cls(int(np.prod(shape)), False, lo, hi)

    @classmethod
    def from_env_specs(cls, specs: dict[str, Any]) -> ActionLayout:
        """From the ``env_specs`` of a ``run.json`` (:meth:`to_env_specs`)."""
        if "num_actions" in specs:
            return cls(int(specs["num_actions"]), True)
        lo = np.asarray(specs["action_minimum"], np.float32)
        return cls(len(lo), False, lo, np.asarray(specs["action_maximum"], np.float32))

    def to_env_specs(self) -> dict[str, Any]:
        if self.discrete:
            return {"num_actions": self.size}
        return {"action_minimum": self.minimum.tolist(), "action_maximum": self.maximum.tolist()}

    @property
    def replay_shape(self) -> tuple[int, ...]:
        """Shape of one action in replay: ``()`` for discrete actions, ``(Da,)`` otherwise."""
        return () if self.discrete else (self.size,)

    @property
    def replay_dtype(self) -> Any:
        return np.int32 if self.discrete else np.float32

    def to_env(self, action: Any) -> np.ndarray:
        """The agent's actions ``[B, Da]`` (or ``[B]``) as the environment takes them."""
        return to_env_action(action, self.minimum, self.maximum)

    def random(self, rng: np.random.Generator, num_envs: int) -> np.ndarray:
        """Uniformly random environment actions for ``num_envs`` copies."""
        if self.discrete:
            return rng.integers(self.size, size=num_envs).astype(np.int32)
        return rng.uniform(self.minimum, self.maximum, size=(num_envs, self.size)).astype(
            np.float32
        )
