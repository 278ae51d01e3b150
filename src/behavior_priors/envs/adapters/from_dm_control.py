"""dm_control suite and composer environments (any ``dm_env.Environment``) as our batched Env.

dm_env already speaks our language: FIRST/MID/LAST step types and a discount that is 0 at
termination and 1 at a time limit. This adapter keeps both as they are, renames observations
to our keys, converts to float32, and batches B copies (stepped in a Python loop: a dm_control
environment is one simulation).

dm_control is an optional dependency (the ``dmc`` extra) and is imported only when an adapter
is built.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

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
from behavior_priors.envs.adapters.spaces import check_key
from behavior_priors.envs.base import (
    ArraySpec,
    BoundedArraySpec,
    DiscreteSpec,
    StepType,
    TimeStep,
    check_actions,
)

_MISSING = (
    "dm_control is not installed; install the optional extra with "
    "`pip install 'behavior-priors[dmc]'` (dm-control==1.0.50)"
)


def require_dm_control() -> None:
    """Raise ``ImportError`` naming the ``dmc`` extra when dm_control is missing."""
    try:
        import dm_control  # noqa: F401
        import dm_env  # noqa: F401
    except ImportError as err:
        raise ImportError(_MISSING) from err


class FromDmControl:
    """``num_envs`` dm_env environments (dm_control suite or composer) under our protocol.

    Args:
      env_fn: builds one ``dm_env.Environment`` with a dict observation (called ``num_envs``
        times), e.g. ``lambda: suite.load("cartpole", "balance")``.
      num_envs: B, the number of copies.
      key_map: ``{dm_control_name: our_key or None}``; None drops an observation. Unmapped names
        become ``proprio/<name>`` (e.g. ``proprio/walker/joints_pos``); map task inputs such as
        ``walker/target`` to ``task/...`` so that a prior cannot see them.
      task_id: an int (every copy), one int per copy, ``"obs:<dm_control_name>"`` read at every
        step (a scalar id or a one-hot), or a callable ``fn(dm_env) -> int`` (see
        :mod:`~behavior_priors.envs.adapters.rules`).
      seed: when given, ``reset(seed)`` is called at construction.
      success: the success rule (default None: dm_control tasks define no success), e.g.
        ``"reward>=1"`` for a sparse task, ``"terminated_positive"``, or a callable
        ``fn(observation, reward, terminated, info)`` with ``info`` holding the dm_env
        ``discount``; ``info["success"]`` ``[B]`` bool then holds it at every step.

    Observations are float32; scalar entries get shape ``(1,)``; entries of size 0 (e.g. an
    Ant's empty force sensors) are dropped. Step types and discounts are dm_env's own; after a
    LAST the next ``step`` resets that copy and returns FIRST (reward 0, discount 1).

    Seeding: ``reset(seed)`` re-seeds every random generator copy ``i`` owns with ``seed + i``
    in place (a composer environment's ``random_state`` and its task's ``random`` when it has
    one; a suite environment's ``task.random``), so the same seed and actions repeat the same
    episodes. Continuous actions are clipped to the action spec's bounds.
    """

    def __init__(
        self,
        env_fn: Callable[[], Any],
        num_envs: int = 1,
        key_map: Mapping[str, str | None] | None = None,
        task_id: TaskIdRule = 0,
        seed: int | None = None,
        success: SuccessRule = None,
    ):
        require_dm_control()
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.num_envs = int(num_envs)
        self._env_fn = env_fn
        self._options = {"key_map": key_map, "task_id": task_id, "success": success}
        self._success = success_fn(success)
        self._task_ids = TaskIds(task_id, self.num_envs, sources="obs")
        self.envs = [env_fn() for _ in range(self.num_envs)]
        dm_obs_spec = self.envs[0].observation_spec()
        if not isinstance(dm_obs_spec, Mapping):
            raise TypeError("the dm_env environment must have a dict observation spec")
        key_map = dict(key_map or {})
        unknown = [n for n in key_map if n not in dm_obs_spec]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(dm_obs_spec), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"key_map names unknown observation {unknown[0]!r}{hint} "
                f"(observations: {', '.join(dm_obs_spec)})"
            )
        self._names: dict[str, str] = {}  # our key -> dm_control name
        self._spec: dict[str, ArraySpec] = {}
        entry = re.sub(r"\[\d+\]$", "", task_id[4:]) if task_id_reads_obs(task_id) else None
        if entry is not None and entry not in dm_obs_spec:
            raise ValueError(
                f"task_id={task_id!r}: no observation {entry!r} "
                f"(observations: {', '.join(dm_obs_spec)})"
            )
        for name, spec in dm_obs_spec.items():
            key = default_key(name, key_map)
            if key is None or int(np.prod(spec.shape, dtype=np.int64)) == 0:
                continue
            check_key(key, f"key_map[{name!r}]")
            if key in self._names:
                raise ValueError(
                    f"observations {self._names[key]!r} and {name!r} both map to {key!r}"
                )
            self._names[key] = name
            self._spec[key] = ArraySpec(tuple(spec.shape) or (1,), np.float32, key)
        if not self._spec:
            raise ValueError("no observation left after key_map")
        warn_if_unrouted_task_inputs(self._names, "key_map")
        warn_if_positions_in_proprio(self._names, "key_map")
        self._action_spec = _action_spec(self.envs[0].action_spec())
        self._task_id = np.zeros(self.num_envs, np.int32)
        self._success_now = np.zeros(self.num_envs, bool)
        self._needs_reset = np.zeros(self.num_envs, bool)
        self._obs: list[dict[str, np.ndarray]] = [{} for _ in range(self.num_envs)]
        self._started = False
        if seed is not None:
            self.reset(seed)

    def spawn(self, num_envs: int) -> FromDmControl:
        """A fresh adapter with ``num_envs`` new copies from the same ``env_fn`` and options
        (how a training loop builds its evaluation environment from an environment object)."""
        return FromDmControl(self._env_fn, num_envs, **self._options)

    def render(self, index: int = 0, width: int = 320, height: int = 240) -> np.ndarray:
        """An RGB frame ``[height, width, 3]`` uint8 of copy ``index`` from its first camera."""
        return self.envs[index].physics.render(height=height, width=width, camera_id=0)

    def observation_spec(self) -> dict[str, ArraySpec]:
        return dict(self._spec)

    def action_spec(self) -> BoundedArraySpec | DiscreteSpec:
        return self._action_spec

    def reset(self, seed: int | None = None) -> TimeStep:
        for i, env in enumerate(self.envs):
            if seed is not None:
                _reseed(env, seed + i)
            ts = env.reset()
            self._obs[i] = self._convert(ts.observation)
            self._task_id[i] = self._task_ids.read(i, env, ts.observation, None)
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
        if isinstance(self._action_spec, BoundedArraySpec):
            act = np.clip(act, self._action_spec.minimum, self._action_spec.maximum).astype(
                np.float64
            )
        b = self.num_envs
        step_type = np.empty(b, np.int8)
        reward = np.zeros(b, np.float32)
        discount = np.ones(b, np.float32)
        for i, env in enumerate(self.envs):
            if self._needs_reset[i]:
                ts = env.reset()
                step_type[i] = StepType.FIRST
                self._success_now[i] = False
            else:
                ts = env.step(act[i])
                step_type[i] = int(ts.step_type)
                reward[i] = 0.0 if ts.reward is None else float(np.sum(ts.reward))
                discount[i] = 1.0 if ts.discount is None else float(ts.discount)
                if self._success is not None:
                    terminated = step_type[i] == StepType.LAST and discount[i] == 0.0
                    self._success_now[i] = self._success(
                        ts.observation, float(reward[i]), terminated, {"discount": discount[i]}
                    )
            self._needs_reset[i] = step_type[i] == StepType.LAST
            self._obs[i] = self._convert(ts.observation)
            self._task_id[i] = self._task_ids.read(i, env, ts.observation, None)
        return self._timestep(step_type, reward, discount)

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def _convert(self, obs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return {
            key: np.asarray(obs[name], np.float32).reshape(self._spec[key].shape)
            for key, name in self._names.items()
        }

    def _timestep(self, step_type, reward, discount) -> TimeStep:
        obs = {k: np.stack([o[k] for o in self._obs]) for k in self._spec}
        info = {} if self._success is None else {"success": self._success_now.copy()}
        return TimeStep(step_type, obs, reward, discount, self._task_id.copy(), info)


def _action_spec(spec: Any) -> BoundedArraySpec | DiscreteSpec:
    import dm_env.specs

    if isinstance(spec, dm_env.specs.DiscreteArray):
        return DiscreteSpec(int(spec.num_values), "action")
    if isinstance(spec, dm_env.specs.BoundedArray):
        low, high = spec.minimum, spec.maximum
    elif isinstance(spec, dm_env.specs.Array):
        low, high = -np.inf, np.inf
    else:
        raise TypeError(f"unsupported dm_env action spec {spec!r} (need one array spec)")
    return BoundedArraySpec(
        tuple(spec.shape),
        np.float32,
        "action",
        minimum=np.broadcast_to(np.asarray(low, np.float32), spec.shape).copy(),
        maximum=np.broadcast_to(np.asarray(high, np.float32), spec.shape).copy(),
    )


def _reseed(env: Any, seed: int) -> None:
    """Re-seed, in place, every random generator of a dm_control environment that decides its
    episodes: a composer environment's ``random_state`` and a task's ``random`` (a suite task
    draws its initial states from it; a composer task may keep its own next to the
    environment's). The first gets ``seed`` itself (as ``suite.load(..., task_kwargs={"random":
    seed})`` would), any other its own stream derived from ``seed``."""
    states = []
    for owner, attr in ((env, "random_state"), (getattr(env, "task", None), "random")):
        state = getattr(owner, attr, None) if owner is not None else None
        if isinstance(state, np.random.RandomState) and all(state is not s for s in states):
            states.append(state)
    if not states:
        raise ValueError(
            f"cannot re-seed {type(env).__name__}: it has neither a composer `random_state` nor a "
            "task `random`; seed it in env_fn and call reset() without a seed"
        )
    for k, state in enumerate(states):
        state.seed(seed if k == 0 else int(np.random.SeedSequence([seed, k]).generate_state(1)[0]))


def from_dm_control(
    env_fn: Callable[[], Any],
    num_envs: int = 1,
    key_map: Mapping[str, str | None] | None = None,
    task_id: TaskIdRule = 0,
    seed: int | None = None,
    success: SuccessRule = None,
) -> FromDmControl:
    """Wrap ``num_envs`` dm_control environments into our protocol; see :class:`FromDmControl`.

    Example::

        from dm_control import suite
        env = from_dm_control(lambda: suite.load("cartpole", "balance"), num_envs=4, seed=0)
    """
    return FromDmControl(env_fn, num_envs, key_map, task_id, seed, success)


def ant_go_to_target(
    num_envs: int = 1,
    seed: int | None = None,
    time_limit: float = 20.0,
    arena_size: tuple[float, float] = (8.0, 8.0),
    moving_target: bool = False,
) -> FromDmControl:
    """dm_control's locomotion go-to-target with the Ant walker on a flat floor.

    The paper-style reference task (and the baseline of the throughput benchmark). The target's
    position in the walker's frame, ``walker/target``, becomes ``task/target``; every other
    observation is under ``proprio/walker/...``. A step succeeds when the task pays its reward
    of 1 (the walker within the target's tolerance). Built from bundled assets (no download).
    """
    require_dm_control()
    from dm_control import composer
    from dm_control.locomotion.arenas import floors
    from dm_control.locomotion.tasks import go_to_target
    from dm_control.locomotion.walkers import ant

    def build():
        task = go_to_target.GoToTarget(
            walker=ant.Ant(), arena=floors.Floor(size=arena_size), moving_target=moving_target
        )
        return composer.Environment(
            task, time_limit=time_limit, strip_singleton_obs_buffer_dim=True
        )

    return FromDmControl(
        build, num_envs, {"walker/target": "task/target"}, 0, seed, success="reward>=1"
    )
