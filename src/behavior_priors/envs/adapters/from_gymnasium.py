"""B Gymnasium environments as one of our batched environments (:class:`.base.Env`).

Each copy is its own ``gymnasium.Env`` stepped in a Python loop (Gymnasium environments are
single-copy). ``terminated`` becomes LAST with discount 0, ``truncated`` (and not terminated)
LAST with discount 1 and the true final observation; the next ``step`` resets that copy and
returns FIRST (next-step auto-reset, as everywhere in this package).
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np

from behavior_priors.envs.adapters.rules import (
    SuccessRule,
    TaskIdRule,
    TaskIds,
    default_key,
    success_fn,
    task_id_reads_obs,
    warn_if_positions_in_proprio,
    warn_if_unrouted_task_inputs,
)
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
_SLICE = re.compile(r"^-?\d*:-?\d*$")


class FromGymnasium:
    """``num_envs`` Gymnasium environments stepping together under our protocol.

    Args:
      env_fn: builds one ``gymnasium.Env`` (called ``num_envs`` times), e.g.
        ``lambda: gym.make("Pendulum-v1")``. Action spaces must be ``Box`` or ``Discrete``.
      num_envs: B, the number of copies.
      obs_keys: ``{our_key: selector}`` (see ``Selector``; on the command line a selector is a
        list of indices ``[0, 1]``, a slice string ``"0:2"`` or, for a ``Dict`` space, an entry
        name), e.g. ``{"proprio/state": "0:17", "task/goal": "17:19"}``. Default: for a
        ``Dict`` space every entry, under its own name when that already starts with
        ``proprio/``, ``task/`` or ``extero/`` and under ``proprio/<name>`` otherwise; for any
        other space the whole flattened observation as ``proprio/state``.
      task_id: an int (every copy), one int per copy, ``"info:<key>"`` / ``"obs:<entry>"`` read
        at every step, or a callable ``fn(gym_env) -> int`` (see
        :mod:`~behavior_priors.envs.adapters.rules`).
      seed: when given, ``reset(seed)`` is called at construction.
      key_map: for a ``Dict`` space, ``{entry: our_key or None}`` (None drops the entry);
        unnamed entries keep the default above. Route task inputs to ``task/`` so that a prior
        cannot see them: ``key_map={"desired_goal": "task/goal"}``. Not with ``obs_keys``.
      success: the success rule (default ``"auto"``: the environment's ``info["is_success"]``
        or ``info["success"]`` when it reports one); ``info["success"]`` ``[B]`` bool then
        holds it at every step.

    Seeding: ``reset(seed)`` resets copy ``i`` with seed ``seed + i`` (as Gymnasium's vector
    environments do) and seeds its action space alike; later automatic resets continue each
    copy's own generator, so the same seed and actions repeat the same episodes.
    Continuous actions outside the Box are clipped.
    """

    def __init__(
        self,
        env_fn: Callable[[], gym.Env],
        num_envs: int = 1,
        obs_keys: Mapping[str, Selector] | None = None,
        task_id: TaskIdRule = 0,
        seed: int | None = None,
        key_map: Mapping[str, str | None] | None = None,
        success: SuccessRule = "auto",
    ):
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.num_envs = int(num_envs)
        self._options = {
            "obs_keys": obs_keys,
            "task_id": task_id,
            "key_map": key_map,
            "success": success,
        }
        self._env_fn = env_fn
        self._success = success_fn(success)
        self._task_ids = TaskIds(task_id, self.num_envs, sources="both")
        route_mujoco_warnings()
        self.envs = [env_fn() for _ in range(self.num_envs)]
        space = self.envs[0].observation_space
        self._space = space
        if task_id_reads_obs(task_id) and not isinstance(space, gym.spaces.Dict):
            raise ValueError(
                f"task_id={task_id!r} reads an observation entry, but the observation space is "
                f"{type(space).__name__}, not Dict; use 'info:<key>' or a callable"
            )
        if key_map is not None:
            if obs_keys is not None:
                raise ValueError("give obs_keys or key_map, not both")
            obs_keys = self._from_key_map(space, key_map)
        self._selectors = self._resolve(space, obs_keys)
        if obs_keys is None or key_map is not None:
            routes = {k: s for k, (s, _) in self._selectors.items()}
            warn_if_unrouted_task_inputs(routes, "key_map")
            warn_if_positions_in_proprio(routes, "key_map")
        self._spec = {
            k: ArraySpec(shape, np.float32, k) for k, (_, shape) in self._selectors.items()
        }
        self._action_space = self.envs[0].action_space
        self._action_spec = spec_from_action_space(self._action_space)
        self._task_id = np.zeros(self.num_envs, np.int32)
        self._success_now = np.zeros(self.num_envs, bool)
        self._needs_reset = np.zeros(self.num_envs, bool)
        self._obs = [None] * self.num_envs
        self._started = False
        if seed is not None:
            self.reset(seed)

    def spawn(self, num_envs: int) -> FromGymnasium:
        """A fresh adapter with ``num_envs`` new copies from the same ``env_fn`` and options
        (how a training loop builds its evaluation environment from an environment object)."""
        return FromGymnasium(self._env_fn, num_envs, **self._options)

    def render(self, index: int = 0, width: int = 320, height: int = 240) -> np.ndarray:
        """An RGB frame ``[H, W, 3]`` uint8 of copy ``index``: the environment's own
        ``render()``, so its size is the environment's (``width``/``height`` are for the
        protocol; Gymnasium fixes the size at ``make``). Needs ``render_mode="rgb_array"``
        (``gymnasium:<id>`` names set it) and the environment's renderer (e.g. ``pygame`` for
        the classic-control tasks: ``pip install 'behavior-priors[classic-control]'``).

        Raises:
          ImportError: the renderer's package is missing; one line naming what to install.
        """
        env = self.envs[index]
        name = env.spec.id if env.spec else type(env).__name__
        if env.render_mode != "rgb_array":
            raise ValueError(
                f"{name} was made with render_mode={env.render_mode!r}; make it with "
                "render_mode='rgb_array' to record videos"
            )
        try:
            frame = env.render()
        except gym.error.DependencyNotInstalled as e:
            # Gymnasium's message names its own extra; ours installs the same package.
            message = " ".join(str(e).split())
            if "pygame" in message.lower():
                raise ImportError(
                    f"{name} draws its frames with pygame, which is not installed: "
                    "pip install 'behavior-priors[classic-control]'"
                ) from e
            raise ImportError(f"{name} cannot render: {message}") from e
        if frame is None:
            raise ValueError("the environment's render() returned no frame")
        return np.asarray(frame, np.uint8)

    @staticmethod
    def _from_key_map(space, key_map: Mapping[str, str | None]) -> dict[str, str]:
        if not isinstance(space, gym.spaces.Dict):
            raise ValueError(
                f"key_map names Dict entries, but the observation space is "
                f"{type(space).__name__}; use obs_keys with index selectors instead"
            )
        unknown = [n for n in key_map if n not in space.spaces]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(space.spaces), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"key_map names unknown observation {unknown[0]!r}{hint} "
                f"(entries: {', '.join(space.spaces)})"
            )
        out: dict[str, str] = {}
        for name in space.spaces:
            key = default_key(name, key_map)
            if key is None:
                continue
            if key in out:
                raise ValueError(f"observations {out[key]!r} and {name!r} both map to {key!r}")
            out[key] = name
        if not out:
            raise ValueError("no observation left after key_map")
        return out

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
            if isinstance(sel, str) and not is_dict and _SLICE.match(sel):
                sel = slice(*(int(p) if p else None for p in sel.split(":")))
            if isinstance(sel, str):
                if not is_dict:
                    raise ValueError(
                        f"obs_keys[{key!r}] = {sel!r} names an entry, but the observation space "
                        f"is {type(space).__name__}, not Dict; use a slice such as '0:2'"
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
            obs, info = env.reset(seed=None if seed is None else seed + i)
            if seed is not None:
                env.action_space.seed(seed + i)
            self._obs[i] = self._convert(obs)
            self._task_id[i] = self._task_ids.read(i, env, obs, info)
        self._success_now[:] = False
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
                obs, info = env.reset()
                step_type[i] = StepType.FIRST
                self._needs_reset[i] = False
                self._success_now[i] = False
            else:
                a = act[i].item() if isinstance(space, gym.spaces.Discrete) else act[i]
                obs, r, terminated, truncated, info = env.step(a)
                reward[i] = r
                if self._success is not None:
                    self._success_now[i] = self._success(obs, float(r), bool(terminated), info)
                if terminated or truncated:
                    step_type[i] = StepType.LAST
                    discount[i] = 0.0 if terminated else 1.0
                    self._needs_reset[i] = True
            self._obs[i] = self._convert(obs)
            self._task_id[i] = self._task_ids.read(i, env, obs, info)
        return self._timestep(step_type, reward, discount)

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def _timestep(self, step_type, reward, discount) -> TimeStep:
        info = {} if self._success is None else {"success": self._success_now.copy()}
        return TimeStep(step_type, self._stack(), reward, discount, self._task_id.copy(), info)


def _mujoco_warning(text: str) -> None:
    warnings.warn(f"MuJoCo: {text.strip()}", RuntimeWarning, stacklevel=2)


def route_mujoco_warnings() -> None:
    """Send MuJoCo's warnings to Python's ``warnings`` (shown once per message), unless a
    handler is installed already. MuJoCo's default handler also appends them to
    ``MUJOCO_LOG.TXT`` in the working directory, and Gymnasium's MuJoCo models warn as they
    load (HalfCheetah-v5: "'settotalmass' is deprecated"): a run would write outside its run
    directory. Does nothing when MuJoCo is not installed."""
    try:
        import mujoco
    except ImportError:
        return
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(_mujoco_warning)


def from_gymnasium(
    env_fn: Callable[[], gym.Env],
    num_envs: int = 1,
    obs_keys: Mapping[str, Selector] | None = None,
    task_id: TaskIdRule = 0,
    seed: int | None = None,
    key_map: Mapping[str, str | None] | None = None,
    success: SuccessRule = "auto",
) -> FromGymnasium:
    """Wrap ``num_envs`` Gymnasium environments into our protocol; see :class:`FromGymnasium`.

    Example::

        env = from_gymnasium(lambda: gym.make("Pendulum-v1"), num_envs=4,
                             obs_keys={"proprio/cos_sin": slice(0, 2), "proprio/vel": [2]})
    """
    return FromGymnasium(env_fn, num_envs, obs_keys, task_id, seed, key_map, success)
