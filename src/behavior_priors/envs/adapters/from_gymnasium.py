"""B Gymnasium environments as one of our batched environments (:class:`.base.Env`).

Each copy is its own ``gymnasium.Env`` stepped in a Python loop (Gymnasium environments are
single-copy). ``terminated`` becomes LAST with discount 0, ``truncated`` (and not terminated)
LAST with discount 1 and the true final observation; the next ``step`` resets that copy and
returns FIRST (next-step auto-reset, as everywhere in this package).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np

from behavior_priors.envs.adapters.spaces import KEY_PREFIXES, check_key, spec_from_action_space
from behavior_priors.envs.base import (
    ArraySpec,
    BoundedArraySpec,
    DiscreteSpec,
    StepType,
    TimeStep,
    check_actions,
)

# A selector picks one of our observation entries out of a Gymnasium observation: a slice or
# integer indices into the flattened observation (``gymnasium.spaces.flatten``: Box entries
# flattened, Discrete one-hot, Dict entries concatenated in sorted key order), or, for a
# ``Dict`` space, the name of an entry (kept in its own shape when it is a Box).
Selector = slice | Sequence[int] | np.ndarray | str


class FromGymnasium:
    """``num_envs`` Gymnasium environments stepping together under our protocol.

    Args:
      env_fn: builds one ``gymnasium.Env`` (called ``num_envs`` times), e.g.
        ``lambda: gym.make("Pendulum-v1")``. Action spaces must be ``Box`` or ``Discrete``.
      num_envs: B, the number of copies.
      obs_keys: ``{our_key: selector}`` (see ``Selector``), e.g. ``{"proprio/state":
        slice(0, 17), "task/goal": slice(17, 19)}``. Default: for a ``Dict`` space every entry,
        under its own name when that already starts with ``proprio/``, ``task/`` or ``extero/``
        and under ``proprio/<name>`` otherwise; for any other space the whole flattened
        observation as ``proprio/state``.
      task_id: the task id every copy reports (Gymnasium environments are single-task).
      seed: when given, ``reset(seed)`` is called at construction.

    Seeding: ``reset(seed)`` resets copy ``i`` with seed ``seed + i`` (as Gymnasium's vector
    environments do); later automatic resets continue each copy's own generator.
    Continuous actions outside the Box are clipped. ``info`` is empty.
    """

    def __init__(
        self,
        env_fn: Callable[[], gym.Env],
        num_envs: int = 1,
        obs_keys: Mapping[str, Selector] | None = None,
        task_id: int = 0,
        seed: int | None = None,
    ):
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.num_envs = int(num_envs)
        self.envs = [env_fn() for _ in range(self.num_envs)]
        space = self.envs[0].observation_space
        self._space = space
        self._selectors = self._resolve(space, obs_keys)
        self._spec = {
            k: ArraySpec(shape, np.float32, k) for k, (_, shape) in self._selectors.items()
        }
        self._action_space = self.envs[0].action_space
        self._action_spec = spec_from_action_space(self._action_space)
        self._task_id = np.full(self.num_envs, task_id, np.int32)
        self._needs_reset = np.zeros(self.num_envs, bool)
        self._obs = [None] * self.num_envs
        self._started = False
        if seed is not None:
            self.reset(seed)

    # -- selectors -----------------------------------------------------------------------------

    @staticmethod
    def _resolve(space: gym.spaces.Space, obs_keys) -> dict[str, tuple[Selector, tuple[int, ...]]]:
        """``{our_key: (selector, per-copy shape)}``, validated against ``space``."""
        is_dict = isinstance(space, gym.spaces.Dict)
        if obs_keys is None:
            if is_dict:
                obs_keys = {
                    (name if name.startswith(KEY_PREFIXES) else f"proprio/{name}"): name
                    for name in space.spaces
                }
            else:
                obs_keys = {"proprio/state": slice(None)}
        if not obs_keys:
            raise ValueError("obs_keys is empty: map at least one observation entry to a key")
        flat_dim = gym.spaces.flatdim(space)
        out = {}
        for key, sel in obs_keys.items():
            check_key(key)
            if isinstance(sel, str):
                if not is_dict:
                    raise ValueError(
                        f"obs_keys[{key!r}] = {sel!r} names an entry, but the observation space "
                        f"is {type(space).__name__}, not Dict; use a slice"
                    )
                if sel not in space.spaces:
                    close = difflib.get_close_matches(sel, list(space.spaces), n=3)
                    hint = f"; did you mean {', '.join(close)}?" if close else ""
                    raise ValueError(
                        f"obs_keys[{key!r}]: no entry {sel!r} in the observation space{hint} "
                        f"(entries: {', '.join(space.spaces)})"
                    )
                sub = space.spaces[sel]
                shape = (
                    tuple(sub.shape)
                    if isinstance(sub, gym.spaces.Box)
                    else (gym.spaces.flatdim(sub),)
                )
            elif isinstance(sel, slice):
                shape = (len(range(*sel.indices(flat_dim))),)
            else:
                idx = np.asarray(sel)
                if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
                    raise ValueError(
                        f"obs_keys[{key!r}]: expected a slice, an entry name or integer indices, "
                        f"got {sel!r}"
                    )
                if idx.size and (idx.min() < -flat_dim or idx.max() >= flat_dim):
                    raise ValueError(
                        f"obs_keys[{key!r}]: indices out of range for a flat observation of "
                        f"size {flat_dim}"
                    )
                sel, shape = idx, (idx.size,)
            if 0 in shape:
                raise ValueError(
                    f"obs_keys[{key!r}] selects nothing from a flat observation of size {flat_dim}"
                )
            out[key] = (sel, shape)
        return out

    def _convert(self, obs) -> dict[str, np.ndarray]:
        """One copy's Gymnasium observation -> ``{our_key: per-copy array}``."""
        space, flat = self._space, None
        out = {}
        for key, (sel, shape) in self._selectors.items():
            if isinstance(sel, str):
                sub = space.spaces[sel]
                value = (
                    obs[sel]
                    if isinstance(sub, gym.spaces.Box)
                    else gym.spaces.flatten(sub, obs[sel])
                )
            else:
                if flat is None:
                    flat = gym.spaces.flatten(space, obs)
                value = flat[sel]
            out[key] = np.asarray(value, np.float32).reshape(shape)
        return out

    def _stack(self) -> dict[str, np.ndarray]:
        return {k: np.stack([o[k] for o in self._obs]) for k in self._selectors}

    # -- protocol ------------------------------------------------------------------------------

    def observation_spec(self) -> dict[str, ArraySpec]:
        return dict(self._spec)

    def action_spec(self) -> BoundedArraySpec | DiscreteSpec:
        return self._action_spec

    def reset(self, seed: int | None = None) -> TimeStep:
        for i, env in enumerate(self.envs):
            obs, _ = env.reset(seed=None if seed is None else seed + i)
            self._obs[i] = self._convert(obs)
        self._needs_reset[:] = False
        self._started = True
        b = self.num_envs
        return self._timestep(
            np.full(b, StepType.FIRST, np.int8), np.zeros(b, np.float32), np.ones(b, np.float32)
        )

    def step(self, actions: np.ndarray) -> TimeStep:
        """Advance every copy with ``actions`` ``[B, *action_shape]``."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        act = check_actions(actions, self._action_spec, self.num_envs)
        space = self._action_space
        if isinstance(space, gym.spaces.Discrete):
            act = act.astype(np.int64) + int(space.start)  # our actions start at 0
        else:
            act = np.clip(act, space.low, space.high).astype(space.dtype)
        b = self.num_envs
        step_type = np.full(b, StepType.MID, np.int8)
        reward = np.zeros(b, np.float32)
        discount = np.ones(b, np.float32)
        for i, env in enumerate(self.envs):
            if self._needs_reset[i]:
                obs, _ = env.reset()
                step_type[i] = StepType.FIRST
                self._needs_reset[i] = False
            else:
                a = act[i].item() if isinstance(space, gym.spaces.Discrete) else act[i]
                obs, r, terminated, truncated, _ = env.step(a)
                reward[i] = r
                if terminated or truncated:
                    step_type[i] = StepType.LAST
                    discount[i] = 0.0 if terminated else 1.0
                    self._needs_reset[i] = True
            self._obs[i] = self._convert(obs)
        return self._timestep(step_type, reward, discount)

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def _timestep(self, step_type, reward, discount) -> TimeStep:
        return TimeStep(step_type, self._stack(), reward, discount, self._task_id.copy(), {})


def from_gymnasium(
    env_fn: Callable[[], gym.Env],
    num_envs: int = 1,
    obs_keys: Mapping[str, Selector] | None = None,
    task_id: int = 0,
    seed: int | None = None,
) -> FromGymnasium:
    """Wrap ``num_envs`` Gymnasium environments into our protocol; see :class:`FromGymnasium`.

    Example::

        env = from_gymnasium(lambda: gym.make("Pendulum-v1"), num_envs=4,
                             obs_keys={"proprio/cos_sin": slice(0, 2), "proprio/vel": [2]})
    """
    return FromGymnasium(env_fn, num_envs, obs_keys, task_id, seed)
