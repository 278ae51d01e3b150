"""Environments: a batched protocol with dict observations, the native MuJoCo task suite,
a multi-task grid world, and adapters to and from Gymnasium and dm_control.

Observation keys (one convention across every task, so that information asymmetry is pure
configuration: each network names the keys or prefixes it reads):

* ``proprio/<name>``: body-internal signals (joint angles and velocities, body-frame
  velocities, accelerometer, ...). What a task-agnostic prior sees.
* ``task/<name>``: task information: egocentric target positions, box positions relative to
  targets, a one-hot task id ``task/id_onehot``. What only the policy sees.
* ``extero/<name>``: egocentric surroundings (rangefinders, wall distances).

All values are float32 with the batch axis first: ``{key: [B, *shape]}``.
See :mod:`behavior_priors.envs.base` for step semantics, :mod:`behavior_priors.envs.registry`
for naming an environment by one string (registered names, ``gymnasium:<id>``,
``dm_control:<domain>-<task>``, ``<module>:<callable>``, plugins), and docs/envs.md.

Importing this package registers our environments as Gymnasium ids
``behavior_priors/<name>`` (:func:`~behavior_priors.envs.adapters.to_gymnasium.
register_gymnasium_ids`).
"""

from behavior_priors.envs.adapters.to_gymnasium import register_gymnasium_ids
from behavior_priors.envs.base import (
    ArraySpec,
    BoundedArraySpec,
    DiscreteSpec,
    Env,
    StepType,
    TimeStep,
    check_actions,
)

register_gymnasium_ids()

__all__ = [
    "ArraySpec",
    "BoundedArraySpec",
    "DiscreteSpec",
    "Env",
    "StepType",
    "TimeStep",
    "check_actions",
]
