"""The environment protocol: batched copies, dict observations, specs, dm_env-style steps.

An environment holds B copies of a task that step together. All arrays carry the batch axis
first. Observations are a dict of named float32 arrays ``{key: [B, *shape]}`` whose keys follow
the convention of :mod:`behavior_priors.envs` (``proprio/``, ``task/``, ``extero/``).

Step semantics (the dm_env convention, batched, with *next-step* auto-reset):

* ``reset(seed)`` starts every copy and returns step type FIRST (reward 0, discount 1).
* ``step(actions)`` advances every copy. A copy whose episode ends returns step type LAST with
  the **true final observation**; its ``discount`` is 0 on termination (a terminal state: do not
  bootstrap) and 1 on time-limit truncation (bootstrap from that final observation).
* On the following ``step`` that copy ignores its action, resets, and returns FIRST with reward
  0 and discount 1. So a LAST -> FIRST pair in a stream is not a transition; replay and
  Retrace cut traces there.
* ``task_id`` ``[B]`` int32 is the stable integer of the task each copy is running (0 for
  single-task environments); it is also in the observation as ``task/id_onehot`` where a
  multi-task environment exposes it. An environment may name its tasks with an optional
  attribute ``task_names`` (a sequence indexed by task id; the native MuJoCo suite has one):
  per-task metrics then carry the names instead of the ids.

Randomness is explicit: ``reset(seed)`` seeds a numpy ``Generator`` per environment; the same
seed and actions give the same numbers.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np


class StepType(enum.IntEnum):
    """Where a step lies in its episode (values match ``dm_env.StepType``)."""

    FIRST = 0
    MID = 1
    LAST = 2


@dataclass(frozen=True)
class ArraySpec:
    """Shape and dtype of one observation entry for a single copy (no batch axis)."""

    shape: tuple[int, ...]
    dtype: Any = np.float32
    name: str = ""

    def validate(self, value: np.ndarray, batch: int | None = None) -> None:
        """Raise ``ValueError`` if ``value`` (``[B, *shape]`` when ``batch``) does not fit."""
        expected = self.shape if batch is None else (batch, *self.shape)
        if tuple(np.shape(value)) != tuple(expected):
            raise ValueError(
                f"{self.name or 'array'}: expected shape {expected}, got {tuple(np.shape(value))}"
            )


@dataclass(frozen=True)
class BoundedArraySpec(ArraySpec):
    """A box ``[minimum, maximum]`` of shape ``shape``: continuous actions, or bounded
    observations (adapters use the bounds for tight Gymnasium spaces)."""

    minimum: np.ndarray = field(default_factory=lambda: np.array(-1.0, np.float32))
    maximum: np.ndarray = field(default_factory=lambda: np.array(1.0, np.float32))


@dataclass(frozen=True)
class DiscreteSpec:
    """A discrete action space with ``num_values`` actions ``0..num_values-1``."""

    num_values: int
    name: str = "action"
    shape: tuple[int, ...] = ()
    dtype: Any = np.int32


class TimeStep(NamedTuple):
    """What ``reset`` and ``step`` return; every array has the batch axis first.

    Attributes:
      step_type: ``[B]`` int8, a :class:`StepType` per copy.
      observation: ``{key: [B, *shape]}`` float32 arrays.
      reward: ``[B]`` float32 (0 on FIRST).
      discount: ``[B]`` float32: 0 on termination, 1 otherwise (truncation included).
      task_id: ``[B]`` int32 stable task integers.
      info: extra per-copy arrays, e.g. ``success`` ``[B]`` bool, ``unstable_resets`` ``[B]``.
    """

    step_type: np.ndarray
    observation: dict[str, np.ndarray]
    reward: np.ndarray
    discount: np.ndarray
    task_id: np.ndarray
    info: dict[str, np.ndarray]

    def first(self) -> np.ndarray:
        return self.step_type == StepType.FIRST

    def last(self) -> np.ndarray:
        return self.step_type == StepType.LAST

    def terminated(self) -> np.ndarray:
        """``[B]`` bool: episode ended in a terminal state (do not bootstrap)."""
        return self.last() & (self.discount == 0.0)

    def truncated(self) -> np.ndarray:
        """``[B]`` bool: episode cut by the time limit (bootstrap from the final observation)."""
        return self.last() & (self.discount != 0.0)


@runtime_checkable
class Env(Protocol):
    """A batch of ``num_envs`` copies of a task; see the module docstring for semantics."""

    num_envs: int

    def observation_spec(self) -> dict[str, ArraySpec]:
        """Per-copy spec of every observation key."""
        ...

    def action_spec(self) -> BoundedArraySpec | DiscreteSpec:
        """Per-copy action spec."""
        ...

    def reset(self, seed: int | None = None) -> TimeStep:
        """Start a new episode in every copy."""
        ...

    def step(self, actions: np.ndarray) -> TimeStep:
        """Advance every copy with ``actions`` of shape ``[B, *action_spec.shape]``."""
        ...

    def close(self) -> None: ...


def check_actions(actions: Any, spec: BoundedArraySpec | DiscreteSpec, num_envs: int) -> np.ndarray:
    """Validate a batch of actions against ``spec``; return it as a numpy array.

    Raises ``ValueError`` naming the problem: wrong shape, NaN/inf, or an out-of-range discrete
    action. Continuous actions outside the box are clipped by environments, not rejected.
    """
    arr = np.asarray(actions)
    expected = (num_envs, *spec.shape)
    if arr.shape != expected:
        raise ValueError(
            f"actions must have shape {expected} ([num_envs, *action_shape]), got {arr.shape}"
        )
    if isinstance(spec, DiscreteSpec):
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"discrete actions must be integers, got dtype {arr.dtype}")
        if np.any((arr < 0) | (arr >= spec.num_values)):
            raise ValueError(f"discrete actions must lie in [0, {spec.num_values}), got {arr}")
        return arr.astype(np.int32)
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr).reshape(num_envs, -1).all(axis=1)).ravel()
        raise ValueError(f"actions contain NaN or inf (copies {bad.tolist()})")
    return arr


def generator_state_to_array(rng: np.random.Generator) -> np.ndarray:
    """A numpy ``Generator``'s state as a ``uint8`` array of JSON text (for checkpoints).

    JSON, not pickle: a checkpoint is user data that may come from someone else, and loading it
    must never run code. The 128-bit integers of PCG64 are exact in JSON.
    """
    return np.frombuffer(json.dumps(rng.bit_generator.state).encode(), np.uint8).copy()


def generator_state_from_array(rng: np.random.Generator, array: Any) -> None:
    """Set ``rng``'s state from :func:`generator_state_to_array`'s output.

    Raises:
      ValueError: the bytes are not such a state (corrupt, another generator, or the pickle of
        older versions, which is refused rather than executed).
    """
    raw = np.asarray(array, np.uint8).tobytes()
    if raw[:1] == b"\x80":
        raise ValueError(
            "the environment's generator state is stored as pickle (written by an older "
            "version); pickle can run code, so it is not loaded: resume from a checkpoint "
            "written by this version or start a new run"
        )
    try:
        state = json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"the environment's generator state is corrupt ({e})") from None
    expected = type(rng.bit_generator).__name__
    if not isinstance(state, dict) or state.get("bit_generator") != expected:
        raise ValueError(f"the environment's generator state is not a {expected} state")
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"the environment's generator state is invalid ({e})") from None


def spawn_like(env: Env, num_envs: int) -> Env:
    """A new environment of ``env``'s kind with ``num_envs`` copies, from its ``spawn(num_envs)``
    method (the Gymnasium and dm_control adapters have one): how a training loop given an
    environment object builds its evaluation environment.

    Raises:
      ValueError: ``env`` has no ``spawn``; the message says how to name the environment
        instead, so that every process can build it.
    """
    spawn = getattr(env, "spawn", None)
    if not callable(spawn):
        raise ValueError(
            f"{type(env).__name__} has no spawn(num_envs), so an evaluation environment of the "
            "same kind cannot be built from it: name the environment by a string in config.env "
            "(a registered name, 'gymnasium:<id>', 'dm_control:<domain>-<task>' or "
            "'<module>:<callable>'; docs/envs.md) instead of passing an object, or pass eval_env"
        )
    return spawn(num_envs)
