"""Our batched environments as Gymnasium environments, so peer libraries can train on our tasks.

* :class:`GymnasiumEnv` / :func:`to_gymnasium`: one copy as a ``gymnasium.Env`` (what
  Stable-Baselines3 and sbx wrap in their own vector envs).
* :class:`GymnasiumVectorEnv` / :func:`to_gymnasium_vector`: all B copies as a
  ``gymnasium.vector.VectorEnv`` in next-step autoreset mode, which is exactly our semantics.

Step types map as: termination (LAST, discount 0) -> ``terminated=True``; time-limit
truncation (LAST, discount 1) -> ``truncated=True``.

Observations are a ``Dict`` of float32 ``Box`` entries named by our keys, or, with
``flatten=True``, one float32 ``Box`` concatenating the selected entries, each flattened, in
**sorted key order** (the order :attr:`GymnasiumEnv.flat_slices` records).

Every environment :func:`behavior_priors.envs.registry.list_envs` names is also a Gymnasium id
``behavior_priors/<name>`` once :mod:`behavior_priors.envs` is imported (or named with
Gymnasium's module prefix, which imports it)::

    import behavior_priors.envs  # registers the ids
    env = gymnasium.make("behavior_priors/pointmass-gtt3", flatten=True)
    env = gymnasium.make("behavior_priors.envs:behavior_priors/gridworld-tworooms")

``gymnasium.make`` keyword arguments are :func:`to_gymnasium`'s: ``keys``, ``flatten`` and the
environment's own options.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from behavior_priors.envs.adapters.spaces import (
    action_space_from_spec,
    box_from_spec,
    flat_layout,
    select_keys,
)
from behavior_priors.envs.base import DiscreteSpec, Env, StepType, TimeStep


class _ObservationView:
    """Shared by both adapters: which keys are exposed, and how (dict or one flat vector)."""

    def __init__(self, env: Env, keys: Sequence[str] | None, flatten: bool):
        spec = env.observation_spec()
        self.keys = select_keys(keys, list(spec))
        self.flatten = flatten
        self.flat_slices = flat_layout(spec, self.keys)
        boxes = {k: box_from_spec(spec[k]) for k in self.keys}
        if flatten:
            low = np.concatenate([boxes[k].low.ravel() for k in self.keys])
            high = np.concatenate([boxes[k].high.ravel() for k in self.keys])
            self.space: gym.spaces.Space = gym.spaces.Box(low, high, low.shape, np.float32)
        else:
            self.space = gym.spaces.Dict(boxes)

    def __call__(self, obs: dict[str, np.ndarray]) -> Any:
        """``{key: [B, ...]}`` -> a batched dict or a ``[B, F]`` array."""
        if self.flatten:
            b = next(iter(obs.values())).shape[0]
            parts = [np.asarray(obs[k], np.float32).reshape(b, -1) for k in self.keys]
            return np.concatenate(parts, axis=1)
        return {k: np.asarray(obs[k], np.float32) for k in self.keys}


class GymnasiumEnv(gym.Env):
    """One copy of one of our environments (``num_envs == 1``) as a ``gymnasium.Env``.

    Args:
      env: an :class:`~behavior_priors.envs.base.Env` with ``num_envs == 1``.
      keys: observation keys (or prefixes ending in ``/``) to expose; all when None.
      flatten: expose one flat float32 ``Box`` (sorted key order) instead of a ``Dict``.

    ``info`` carries the environment's per-copy info entries, plus ``task_id`` and ``discount``.
    ``step`` after the end of an episode without ``reset`` raises ``RuntimeError``.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's convention)

    def __init__(self, env: Env, keys: Sequence[str] | None = None, flatten: bool = False):
        if env.num_envs != 1:
            raise ValueError(
                f"GymnasiumEnv wraps a single copy, got num_envs={env.num_envs}; "
                "use to_gymnasium_vector for a batch"
            )
        self.env = env
        self._view = _ObservationView(env, keys, flatten)
        self.observation_space = self._view.space
        self._action_spec = env.action_spec()
        self.action_space = action_space_from_spec(self._action_spec)
        self._done = True

    @property
    def flat_slices(self) -> dict[str, slice]:
        """Where each observation key lies in the flat observation (when ``flatten``)."""
        return dict(self._view.flat_slices)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        ts = self.env.reset(seed)
        self._done = False
        return self._obs(ts), self._info(ts)

    def step(self, action):
        if self._done:
            raise RuntimeError("the episode is over (or never started); call reset() before step()")
        ts = self.env.step(self._batch_action(action))
        if ts.step_type[0] == StepType.FIRST:
            raise RuntimeError(
                "the wrapped environment reset itself; it must start episodes only on reset()"
            )
        terminated = bool(ts.terminated()[0])
        truncated = bool(ts.truncated()[0])
        self._done = terminated or truncated
        return self._obs(ts), float(ts.reward[0]), terminated, truncated, self._info(ts)

    def close(self) -> None:
        self.env.close()

    def _batch_action(self, action) -> np.ndarray:
        if isinstance(self._action_spec, DiscreteSpec):
            a = np.asarray(action)
            if a.shape not in ((), (1,)) or not np.issubdtype(a.dtype, np.integer):
                raise ValueError(f"a discrete action is one integer, got {action!r}")
            return a.reshape(1).astype(np.int32)
        a = np.asarray(action, np.float32)
        if a.shape != tuple(self._action_spec.shape):
            raise ValueError(f"action must have shape {self._action_spec.shape}, got {a.shape}")
        return a[None]

    def _obs(self, ts: TimeStep):
        obs = self._view(ts.observation)
        return obs[0] if self._view.flatten else {k: v[0] for k, v in obs.items()}

    @staticmethod
    def _info(ts: TimeStep) -> dict[str, Any]:
        info = {k: np.asarray(v)[0] for k, v in ts.info.items()}
        info["task_id"] = int(ts.task_id[0])
        info["discount"] = float(ts.discount[0])
        return info


class GymnasiumVectorEnv(VectorEnv):
    """All B copies of one of our environments as a ``gymnasium.vector.VectorEnv``.

    Uses Gymnasium's next-step autoreset mode: the step after an episode ends ignores that
    copy's action and returns its first observation with reward 0 and ``terminated`` and
    ``truncated`` both False. ``infos`` holds our per-copy info arrays plus ``task_id`` and
    ``discount``.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def __init__(self, env: Env, keys: Sequence[str] | None = None, flatten: bool = False):
        self.env = env
        self.num_envs = env.num_envs
        self._view = _ObservationView(env, keys, flatten)
        self.single_observation_space = self._view.space
        self.single_action_space = action_space_from_spec(env.action_spec())
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._discrete = isinstance(env.action_spec(), DiscreteSpec)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        ts = self.env.reset(seed)
        return self._view(ts.observation), self._infos(ts)

    def step(self, actions):
        a = np.asarray(actions)
        ts = self.env.step(
            a.astype(np.int32) if self._discrete and np.issubdtype(a.dtype, np.integer) else a
        )
        return (
            self._view(ts.observation),
            ts.reward.astype(np.float32),
            ts.terminated(),
            ts.truncated(),
            self._infos(ts),
        )

    def close_extras(self, **kwargs) -> None:
        self.env.close()

    @staticmethod
    def _infos(ts: TimeStep) -> dict[str, np.ndarray]:
        return {**ts.info, "task_id": ts.task_id, "discount": ts.discount}


def _as_env(env: Env | str, num_envs: int, kwargs: dict) -> Env:
    if isinstance(env, str):
        from behavior_priors.envs.registry import make

        return make(env, num_envs=num_envs, **kwargs)
    if kwargs:
        raise TypeError(
            f"keyword arguments {sorted(kwargs)} only apply when env is a registered name"
        )
    return env


GYMNASIUM_NAMESPACE = "behavior_priors"


def _registered_id(name: str, **kwargs: Any) -> GymnasiumEnv:
    """The entry point of ``behavior_priors/<name>``: ``kwargs`` are options of ``name``'s
    environment (and ``keys``, ``flatten``); which environment is fixed by the id."""
    if "env" in kwargs:
        raise TypeError(
            f"gymnasium id {GYMNASIUM_NAMESPACE}/{name} is the environment {name!r}; an 'env' "
            "keyword cannot choose another one"
        )
    return to_gymnasium(name, **kwargs)


def register_gymnasium_ids() -> list[str]:
    """Register ``behavior_priors/<name>`` in Gymnasium's registry for every environment of
    ours that is not there yet; returns the ids registered now. Idempotent."""
    from behavior_priors.envs.registry import list_envs

    added = []
    for entry in list_envs():
        env_id = f"{GYMNASIUM_NAMESPACE}/{entry.name}"
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            # Bound to the name, not a keyword: gymnasium.make(id, **kwargs) lets kwargs
            # override registered ones, and an `env` keyword (from a run folder's env_kwargs)
            # would otherwise choose any `module:callable` under an id that names no code.
            entry_point=functools.partial(_registered_id, entry.name),
            disable_env_checker=True,  # our GymnasiumEnv checks its own inputs
        )
        added.append(env_id)
    return added


def to_gymnasium(
    env: Env | str, keys: Sequence[str] | None = None, flatten: bool = False, **make_kwargs
) -> GymnasiumEnv:
    """A single-copy ``gymnasium.Env`` of ``env`` (an Env with one copy, or a registered name).

    Example::

        gym_env = to_gymnasium("gridworld-tworooms", flatten=True)
        obs, info = gym_env.reset(seed=0)
    """
    return GymnasiumEnv(_as_env(env, 1, make_kwargs), keys, flatten)


def to_gymnasium_vector(
    env: Env | str,
    num_envs: int | None = None,
    keys: Sequence[str] | None = None,
    flatten: bool = False,
    **make_kwargs,
) -> GymnasiumVectorEnv:
    """All copies of ``env`` as a next-step-autoreset ``gymnasium.vector.VectorEnv``.

    ``num_envs`` is needed when ``env`` is a registered name, and ignored otherwise.
    """
    if isinstance(env, str) and num_envs is None:
        raise ValueError("num_envs is required when env is a registered name")
    return GymnasiumVectorEnv(_as_env(env, num_envs or 1, make_kwargs), keys, flatten)
