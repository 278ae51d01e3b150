"""The batched MuJoCo task environment: B copies (one ``MjData`` each) of one compiled model.

Physics per control step, per copy: ``mj_step2; mj_step(nstep=n-1); mj_step1``. This does the
same work as ``mj_step(nstep=n)`` (``mj_step`` = ``mj_step1`` + ``mj_step2``), but ends with the
position and velocity stages of the *new* state computed, so that sensors (all observations
are MuJoCo sensors, copied with one array copy per copy) describe the state after the step
rather than one physics step before it.

Instability: MuJoCo resets an ``MjData`` to the model's default pose when it finds NaN or
huge values in qpos, qvel or qacc (and logs a warning); a copy can also blow up while staying
finite. After each step a copy is declared unstable when its clock went backwards (MuJoCo reset
it), any sensor value is not finite, or the root or a box left the arena by more than its size.
That copy returns LAST with discount 1 and reward 0, keeps its previous (finite) observation,
sets ``info["unstable"]`` and increments ``info["unstable_resets"]``; it restarts on the next
step like any other LAST. The other copies are unaffected.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from behavior_priors.envs.base import (
    ArraySpec,
    BoundedArraySpec,
    StepType,
    TimeStep,
    check_actions,
    generator_state_from_array,
    generator_state_to_array,
)
from behavior_priors.envs.mujoco.arena import ArenaLayout, build_arena
from behavior_priors.envs.mujoco.bodies import Body, get_body
from behavior_priors.envs.mujoco.tasks import Kind, Task, TaskSetEvaluator, parse_task

_log = logging.getLogger(__name__)


def _log_mujoco_warning(message: str) -> None:
    _log.warning("MuJoCo: %s", message)


def _route_mujoco_warnings() -> None:
    """Send MuJoCo's warnings to Python logging instead of ``MUJOCO_LOG.TXT`` in the cwd.

    MuJoCo's default handler appends to a file in the current directory; a library must not
    write outside the run directory. A handler someone else installed is left alone.
    """
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(_log_mujoco_warning)


@dataclass(frozen=True)
class TaskEnvConfig:
    """Everything that defines a MuJoCo task environment (apart from ``num_envs`` and seed).

    Attributes:
      body: body name (``pointmass``, ``ball``, ``ant``, ``quadruped``) or a :class:`Body`.
      tasks: the task set, as :class:`Task` or strings like ``"move_box:0:1"``; each episode
        of each copy samples one uniformly; its index is the stable ``task_id``.
      num_targets, num_boxes: arena objects; at least what the tasks need (None: exactly that).
      box_mass_factor: multiplies the box mass (``> 1`` for the "heavier box" tasks).
      shaped: add the dense shaping term (see :mod:`.tasks`).
      shaping_weight: weight of the dense term relative to ``reward_scale``.
      terminate_on_success: end the episode (LAST, discount 0) when the task is achieved;
        otherwise the episode runs to the time limit and reward keeps flowing while achieved.
      control_dt, physics_dt: seconds per control step and per physics step.
      episode_seconds: time limit (None: the body's default: 10 s point mass, 15 s ball, 20 s
        Ant and quadruped).
      reward_scale, success_bonus: see :mod:`.tasks`.
      min_separation: minimum distance between spawned objects, in body scales.
      joint_noise: uniform noise (rad) added to the initial joint angles of legged bodies.
    """

    body: str | Body = "pointmass"
    tasks: tuple[Task | str, ...] = ("go_to_target:0",)
    num_targets: int | None = None
    num_boxes: int | None = None
    box_mass_factor: float = 1.0
    shaped: bool = False
    shaping_weight: float = 0.1
    terminate_on_success: bool = False
    control_dt: float = 0.05
    physics_dt: float = 0.005
    episode_seconds: float | None = None
    reward_scale: float = 10.0
    success_bonus: float = 5.0
    min_separation: float = 2.0
    joint_noise: float = 0.1

    def __post_init__(self):
        # Options arrive from the command line (`--env-kwargs`) and from run.json: check them
        # here, so a wrong value fails at once with its name instead of training on garbage.
        problems = []
        for name in ("shaped", "terminate_on_success"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                problems.append(f"{name} must be True or False, got {getattr(self, name)!r}")
        may_be_zero = {
            "box_mass_factor": False,
            "shaping_weight": True,
            "control_dt": False,
            "physics_dt": False,
            "episode_seconds": False,
            "reward_scale": False,
            "success_bonus": True,
            "min_separation": True,
            "joint_noise": True,
        }
        for name, zero_ok in may_be_zero.items():
            value = getattr(self, name)
            if value is None and name == "episode_seconds":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                problems.append(f"{name} must be a number, got {value!r}")
            elif not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
                bound = ">= 0" if zero_ok else "> 0"
                problems.append(f"{name} must be a finite number {bound}, got {value!r}")
        for name in ("num_targets", "num_boxes"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0
            ):
                problems.append(f"{name} must be None or an integer >= 0, got {value!r}")
        if not problems and self.physics_dt > self.control_dt:
            problems.append("physics_dt must not exceed control_dt")
        if not problems and self.episode_seconds is not None:
            if self.episode_seconds < self.control_dt:
                problems.append("episode_seconds must be at least one control step")
        if isinstance(self.tasks, str) or not self.tasks:
            problems.append(f"tasks must be a non-empty sequence of tasks, got {self.tasks!r}")
        else:
            for task in self.tasks:
                if not isinstance(task, Task | str):
                    problems.append(f"a task must be a Task or a string, got {task!r}")
                else:
                    try:
                        parse_task(task)
                    except ValueError as e:
                        problems.append(str(e))
        if problems:
            raise ValueError("invalid MuJoCo task env options: " + "; ".join(problems))


def _sensor_columns(model: mujoco.MjModel, names: Sequence[str]) -> np.ndarray:
    """Columns of ``sensordata`` for sensor names, ``"name"`` (all) or ``"name[i]"`` (one)."""
    cols: list[int] = []
    for name in names:
        base, _, index = name.partition("[")
        sid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR, base)
        if sid < 0:
            raise KeyError(f"model has no sensor {base!r}")
        adr, dim = int(model.sensor_adr[sid]), int(model.sensor_dim[sid])
        cols += [adr + int(index.rstrip("]"))] if index else list(range(adr, adr + dim))
    return np.array(cols, np.int64)


def _as_index(cols: np.ndarray) -> slice | np.ndarray:
    """A slice when ``cols`` is contiguous (a view instead of a gather)."""
    if len(cols) and np.array_equal(cols, np.arange(cols[0], cols[0] + len(cols))):
        return slice(int(cols[0]), int(cols[0]) + len(cols))
    return cols


class MujocoTaskEnv:
    """B copies of a body in a walled arena running tasks from a set (see :class:`TaskEnvConfig`).

    Implements :class:`behavior_priors.envs.base.Env`. Observations (float32, ``[B, ...]``):

    * ``proprio/...``: the body's sensors (see :mod:`.bodies`).
    * ``task/targets`` [K, 2]: target positions in the body's yaw frame (x forward, y left),
      divided by the body scale.
    * ``task/boxes`` [M, 2]: box centres, same frame and units (only when M > 0).
    * ``task/phase`` [1]: 1 once the sub-goal of ``move_box_then_go`` is reached (only when
      such a task is in the set).
    * ``task/id_onehot`` [T]: the task id (only when the set has T > 1 tasks).

    ``info``: ``success`` [B] bool (task achieved at some step of the current episode),
    ``unstable`` [B] bool (this step was cut by an unstable simulation), ``unstable_resets``
    [B] int64 (count since the last ``reset``).
    """

    def __init__(self, config: TaskEnvConfig, num_envs: int = 1, seed: int | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        _route_mujoco_warnings()
        self.config = config
        self.num_envs = num_envs
        self.body = get_body(config.body)
        self.tasks: list[Task] = [parse_task(t) for t in config.tasks]
        if not self.tasks:
            raise ValueError("config.tasks is empty")
        self.task_names = [t.name for t in self.tasks]
        n_sub = config.control_dt / config.physics_dt
        if abs(n_sub - round(n_sub)) > 1e-6 or round(n_sub) < 1:
            raise ValueError(
                f"control_dt {config.control_dt} must be a whole multiple of physics_dt "
                f"{config.physics_dt}"
            )
        self.n_substeps = round(n_sub)
        seconds = config.episode_seconds or self.body.episode_seconds
        self.episode_steps = round(seconds / config.control_dt)

        need_k = max(t.num_targets() for t in self.tasks)
        need_m = max(t.num_boxes() for t in self.tasks)
        k = need_k if config.num_targets is None else config.num_targets
        m = need_m if config.num_boxes is None else config.num_boxes
        if k < need_k or m < need_m:
            raise ValueError(
                f"tasks {self.task_names} need {need_k} targets and {need_m} boxes; "
                f"got num_targets={k}, num_boxes={m}"
            )
        scale = self.body.scale
        self.layout = ArenaLayout.for_scale(scale, k, m, config.box_mass_factor)
        self.touch_pairs = sorted({(t.box, t.other) for t in self.tasks if t.kind == Kind.GATHER})

        spec = mujoco.MjSpec()
        spec.modelname = f"{self.body.name}_arena"
        spec.option.timestep = config.physics_dt
        spec.compiler.degree = False  # all angles in this package are radians
        spec.visual.global_.offwidth = 1280
        spec.visual.global_.offheight = 960
        self.body.build(spec)
        build_arena(spec, self.layout, self.touch_pairs)
        spec.add_sensor(name="clock", type=mujoco.mjtSensor.mjSENS_CLOCK)
        self.spec = spec
        self.model = spec.compile()
        self._datas = [mujoco.MjData(self.model) for _ in range(num_envs)]
        # Views into each MjData's memory, made once: attribute access costs more than a copy.
        self._ctrl = [d.ctrl for d in self._datas]
        self._sensordata = [d.sensordata for d in self._datas]

        model = self.model
        self._proprio = {
            key: _as_index(_sensor_columns(model, names))
            for key, names in self.body.proprio.items()
        }
        self._root_pos = _as_index(_sensor_columns(model, ["root_pos"]))
        self._root_xaxis = _as_index(_sensor_columns(model, ["root_xaxis"]))
        self._clock = int(_sensor_columns(model, ["clock"])[0])
        self._box_cols = _sensor_columns(model, [f"box_{i}_pos" for i in range(m)])
        self._box_xy = self._box_cols.reshape(m, 3)[:, :2].ravel() if m else None
        self._touch_cols = _sensor_columns(
            model, [f"boxes_{i}_{j}_dist" for i, j in self.touch_pairs]
        )
        pos_cols = [_sensor_columns(model, ["root_pos"])] + ([self._box_cols] if m else [])
        self._bounded_cols = np.concatenate(pos_cols)
        self._bound = 2.0 * self.layout.half_size + 2.0 * scale
        root_joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "torso")
        self._root_qpos = int(model.jnt_qposadr[model.body_jntadr[root_joint]])
        self._box_qpos = [
            int(model.jnt_qposadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, f"box_{i}")])
            for i in range(m)
        ]
        self._target_mocap = [
            int(
                model.body_mocapid[
                    mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"target_{i}")
                ]
            )
            for i in range(k)
        ]
        # Hinge joints of the body start at their spring's rest angle when they have a spring,
        # else at the middle of their range (legs under the torso), plus noise.
        torso_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "torso")
        hinges = [
            j
            for j in range(model.njnt)
            if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE and model.jnt_bodyid[j] != torso_id
        ]
        self._hinge_qpos = np.array([model.jnt_qposadr[j] for j in hinges], np.int64)
        self._hinge_init = np.array(
            [
                model.qpos_spring[model.jnt_qposadr[j]]
                if model.jnt_stiffness[j] > 0
                else 0.5 * (model.jnt_range[j, 0] + model.jnt_range[j, 1])
                if model.jnt_limited[j]
                else 0.0
                for j in hinges
            ]
        )

        self.evaluator = TaskSetEvaluator(
            self.tasks,
            target_radius=self.layout.target_radius,
            touch_tolerance=0.01 * scale,
            touch_pairs=self.touch_pairs,
            shaping_scale=self.layout.half_size,
            reward_scale=config.reward_scale,
            success_bonus=config.success_bonus,
            shaping_weight=config.shaping_weight if config.shaped else 0.0,
        )

        self._action_spec = BoundedArraySpec(
            shape=(model.nu,),
            dtype=np.float32,
            name="action",
            minimum=model.actuator_ctrlrange[:, 0].astype(np.float32),
            maximum=model.actuator_ctrlrange[:, 1].astype(np.float32),
        )
        self.actuator_names = [model.actuator(i).name for i in range(model.nu)]
        self._obs_spec = {
            key: ArraySpec((len(_sensor_columns(model, names)),), np.float32, key)
            for key, names in self.body.proprio.items()
        }
        self._obs_spec["task/targets"] = ArraySpec((k, 2), np.float32, "task/targets")
        if m:
            self._obs_spec["task/boxes"] = ArraySpec((m, 2), np.float32, "task/boxes")
        if self.evaluator.has_phase:
            self._obs_spec["task/phase"] = ArraySpec((1,), np.float32, "task/phase")
        if len(self.tasks) > 1:
            n = len(self.tasks)
            self._obs_spec["task/id_onehot"] = ArraySpec((n,), np.float32, "task/id_onehot")
            self._onehot = np.eye(n, dtype=np.float32)

        b = num_envs
        nsens = model.nsensordata
        self._sens = np.zeros((b, nsens))
        self._sens_prev = np.zeros((b, nsens))
        self._targets = np.zeros((b, k, 2))
        self._task_id = np.zeros(b, np.int32)
        self._t = np.zeros(b, np.int64)
        self._phase = np.zeros(b, bool)
        self._succeeded = np.zeros(b, bool)
        self._needs_reset = np.zeros(b, bool)
        self._unstable_resets = np.zeros(b, np.int64)
        # One generator per seed group (reset_groups): copy i draws from group i // group_size.
        self._rngs = [np.random.default_rng(seed)]
        self._group_size = num_envs
        self._renderers: dict = {}
        self._started = False
        if seed is not None:
            self.reset(seed)

    # -- protocol ------------------------------------------------------------------------------

    def observation_spec(self) -> dict[str, ArraySpec]:
        return dict(self._obs_spec)

    def action_spec(self) -> BoundedArraySpec:
        return self._action_spec

    def reset(self, seed: int | None = None) -> TimeStep:
        """Start a new episode in every copy; ``seed`` re-seeds the environment's generator."""
        if seed is not None:
            self._rngs, self._group_size = [np.random.default_rng(seed)], self.num_envs
        self._unstable_resets[:] = 0
        for i in range(self.num_envs):
            self._reset_copy(i)
        self._needs_reset[:] = False
        self._started = True
        b = self.num_envs
        return TimeStep(
            step_type=np.full(b, StepType.FIRST, np.int8),
            observation=self._observe(),
            reward=np.zeros(b, np.float32),
            discount=np.ones(b, np.float32),
            task_id=self._task_id.copy(),
            info={
                "success": np.zeros(b, bool),
                "unstable": np.zeros(b, bool),
                "unstable_resets": self._unstable_resets.copy(),
            },
        )

    def reset_groups(self, seeds: Sequence[int]) -> TimeStep:
        """Start every copy, the copies split into ``len(seeds)`` equal groups of consecutive
        copies, group g drawing from a generator seeded with ``seeds[g]``: group g's copies
        then run exactly as the copies of an environment of ``num_envs // len(seeds)`` copies
        reset with ``seeds[g]`` (seed-batched training, :mod:`behavior_priors.envs.groups`)."""
        seeds = [int(s) for s in seeds]
        if not seeds or self.num_envs % len(seeds):
            raise ValueError(
                f"{self.num_envs} copies do not split into {len(seeds)} equal seed groups"
            )
        self._rngs = [np.random.default_rng(s) for s in seeds]
        self._group_size = self.num_envs // len(seeds)
        return self.reset()

    def step(self, actions: np.ndarray) -> TimeStep:
        """Advance every copy by one control step; see :mod:`behavior_priors.envs.base`."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        act = check_actions(actions, self._action_spec, self.num_envs)
        ctrl = np.clip(act, self._action_spec.minimum, self._action_spec.maximum).astype(np.float64)
        self._sens, self._sens_prev = self._sens_prev, self._sens
        sens, datas, ctrls, views = self._sens, self._datas, self._ctrl, self._sensordata
        model, n = self.model, self.n_substeps - 1
        step1, step2, step_n = mujoco.mj_step1, mujoco.mj_step2, mujoco.mj_step
        resetting = self._needs_reset
        any_reset = bool(resetting.any())
        active = np.flatnonzero(~resetting).tolist() if any_reset else range(self.num_envs)
        for i in active:
            d = datas[i]
            ctrls[i][:] = ctrl[i]
            step2(model, d)
            if n:
                step_n(model, d, n)
            step1(model, d)
            sens[i] = views[i]
        if any_reset:
            for i in np.flatnonzero(resetting).tolist():
                self._reset_copy(i)

        unstable = self._check_unstable(resetting)
        if unstable.any():
            # Keep the last finite observation; MuJoCo's reset pose (or garbage) is not one.
            sens[unstable] = self._sens_prev[unstable]
            self._unstable_resets += unstable

        self._t += 1
        self._t[resetting] = 0
        xy = sens[:, self._root_pos][:, :2]
        boxes = (
            sens[:, self._box_xy].reshape(self.num_envs, -1, 2)
            if self._box_xy is not None
            else None
        )
        touch = sens[:, self._touch_cols] if len(self._touch_cols) else None
        reward, achieved, phase = self.evaluator(
            self._task_id, xy, self._targets, boxes, touch, self._phase, self._succeeded
        )
        live = ~(resetting | unstable)
        achieved &= live
        reward[~live] = 0.0
        self._phase = np.where(live, phase, self._phase)
        self._succeeded |= achieved
        terminated = achieved & self.config.terminate_on_success
        last = live & (terminated | (self._t >= self.episode_steps)) | unstable
        step_type = np.where(resetting, StepType.FIRST, np.where(last, StepType.LAST, StepType.MID))
        discount = np.where(terminated, 0.0, 1.0).astype(np.float32)
        self._needs_reset = last
        return TimeStep(
            step_type=step_type.astype(np.int8),
            observation=self._observe(),
            reward=reward,
            discount=discount,
            task_id=self._task_id.copy(),
            info={
                "success": self._succeeded.copy(),
                "unstable": unstable,
                "unstable_resets": self._unstable_resets.copy(),
            },
        )

    # -- exact save and restore (checkpoints that resume mid-episode) -------------------------

    _STATE_ARRAYS = (
        "_sens",
        "_sens_prev",
        "_targets",
        "_task_id",
        "_t",
        "_phase",
        "_succeeded",
        "_needs_reset",
        "_unstable_resets",
    )

    def get_state(self) -> dict[str, np.ndarray]:
        """Everything that determines future steps, as numpy arrays: each copy's full MuJoCo
        state (``mj_getState`` with ``mjSTATE_INTEGRATION``: physics, controls, mocap targets and
        the solver warm start), episode
        bookkeeping and the generator state. :meth:`set_state` on an environment built from
        the same config continues bit-identically. (Seed groups: :meth:`get_group_state`.)"""
        self._one_group("get_state")
        return self.get_group_state(0)

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Inverse of :meth:`get_state`; a clear error if it came from another model."""
        self._one_group("set_state")
        self.set_group_state(0, state)

    def get_group_state(self, group: int) -> dict[str, np.ndarray]:
        """:meth:`get_state` of seed group ``group`` alone (:meth:`reset_groups`): what
        :meth:`get_state` of an environment of the group's copies would return."""
        copies = self._group_copies(group)
        full = mujoco.mjtState.mjSTATE_INTEGRATION
        size = mujoco.mj_stateSize(self.model, full)
        physics = np.zeros((len(copies), size))
        for j, i in enumerate(copies):
            mujoco.mj_getState(self.model, self._datas[i], physics[j], full)
        state = {k: np.array(getattr(self, k)[_as_slice(copies)]) for k in self._STATE_ARRAYS}
        state["physics"] = physics
        state["started"] = np.array(self._started)
        state["rng"] = generator_state_to_array(self._rngs[group])
        return state

    def set_group_state(self, group: int, state: dict[str, np.ndarray]) -> None:
        """Inverse of :meth:`get_group_state` (also takes a :meth:`get_state` of an environment
        with the group's number of copies)."""
        copies = self._group_copies(group)
        full = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.asarray(state["physics"])
        expected = (len(copies), mujoco.mj_stateSize(self.model, full))
        if physics.shape != expected:
            raise ValueError(
                f"environment state has physics of shape {physics.shape}, this environment "
                f"needs {expected} (another body, arena or number of copies?)"
            )
        for k in self._STATE_ARRAYS:
            current = getattr(self, k)
            value = np.asarray(state[k], current.dtype)
            part = _as_slice(copies)
            if value.shape != current[part].shape:
                raise ValueError(
                    f"environment state '{k}' has shape {value.shape}, expected "
                    f"{current[part].shape}"
                )
            current[part] = value
        for j, i in enumerate(copies):
            mujoco.mj_setState(self.model, self._datas[i], physics[j], full)
            # Recompute derived quantities (sensors, contacts) exactly as after a step.
            mujoco.mj_forward(self.model, self._datas[i])
        self._started = bool(state["started"])
        generator_state_from_array(self._rngs[group], state["rng"])

    def _group_copies(self, group: int) -> range:
        n = self._group_size
        if not 0 <= group < len(self._rngs):
            raise IndexError(f"seed group {group} out of range for {len(self._rngs)} groups")
        return range(group * n, (group + 1) * n)

    def _one_group(self, what: str) -> None:
        if len(self._rngs) != 1:
            raise ValueError(
                f"{what}: this environment runs {len(self._rngs)} seed groups; use "
                f"{what.replace('_state', '_group_state')}(group)"
            )

    def close(self) -> None:
        """Free the renderers' GL contexts (call it before exit when you rendered: with EGL,
        contexts left to interpreter shutdown print harmless errors)."""
        _close_renderers(self._renderers)

    # -- extras --------------------------------------------------------------------------------

    def data(self, index: int) -> mujoco.MjData:
        """The ``MjData`` of copy ``index`` (for inspection, rendering or fault injection)."""
        return self._datas[index]

    @property
    def task_id(self) -> np.ndarray:
        """[B] int32: the task each copy is running now."""
        return self._task_id.copy()

    def snapshot(self, index: int = 0) -> dict[str, np.ndarray | float | str]:
        """World-frame positions of copy ``index`` for schematic (top-down) drawings that need
        no OpenGL: ``body_xy`` [2], ``heading`` (rad), ``targets`` [K, 2], ``boxes`` [M, 2],
        ``half_size``, ``target_radius``, ``box_half``, ``body_scale`` and the ``task`` name."""
        if not 0 <= index < self.num_envs:
            raise IndexError(f"index {index} out of range for {self.num_envs} copies")
        d = self._datas[index]
        root = d.qpos[self._root_qpos : self._root_qpos + 2]
        xaxis = self._sens[index][self._root_xaxis]
        boxes = [d.qpos[a : a + 2].copy() for a in self._box_qpos]
        return {
            "body_xy": np.array(root, np.float64),
            "heading": float(math.atan2(xaxis[1], xaxis[0])),
            "targets": self._targets[index].copy(),
            "boxes": np.array(boxes, np.float64).reshape(-1, 2),
            "half_size": float(self.layout.half_size),
            "target_radius": float(self.layout.target_radius),
            "box_half": float(self.layout.box_half),
            "body_scale": float(self.body.scale),
            "task": self.task_names[int(self._task_id[index])],
        }

    @property
    def cameras(self) -> tuple[str, ...]:
        """The camera names :meth:`render` takes: ``"top"`` (the fitted overhead view), then the
        model's other named cameras (``"track"``); an integer camera id works too."""
        names = [self.model.camera(i).name for i in range(self.model.ncam)]
        return ("top", *(n for n in names if n and n != "top"))

    def view(
        self, camera: str | int = "top", width: int = 320, height: int = 240
    ) -> mujoco.MjvCamera | int:
        """What :meth:`render` passes to ``mujoco.Renderer.update_scene`` for ``camera``.

        ``"top"`` is a free camera straight above the arena's centre, its distance fitted to the
        walls and to the frame's aspect ratio ``width / height`` (:func:`.rendering.top_view`),
        so that the walls, targets, boxes and the body are in frame at every step. (The model's
        own fixed camera named ``top`` has a fixed field of view that crops the walls' tops; it
        stays reachable by its id.) Other names and integer ids pick the model's cameras.

        Raises:
          ValueError: an unknown camera, in one line that lists the valid ones.
        """
        from behavior_priors.envs.mujoco.rendering import arena_extent, top_view

        if isinstance(camera, str) and camera == "top":
            half_width, top = arena_extent(self.model)
            fovy = float(self.model.vis.global_.fovy)  # a free camera's field of view
            return top_view(half_width, top, fovy, aspect=width / height)
        ncam = self.model.ncam
        if isinstance(camera, int | np.integer) and not isinstance(camera, bool):
            if 0 <= camera < ncam:
                return int(camera)
        elif isinstance(camera, str):
            index = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
            if index >= 0:
                return index
        names = ", ".join(repr(n) for n in self.cameras)
        raise ValueError(
            f"unknown camera {camera!r}; cameras: {names} ('top': overhead, fitted to the "
            f"arena; 'track': behind the body) or a camera id 0..{ncam - 1}"
        )

    def render(
        self, index: int = 0, camera: str | int = "top", width: int = 320, height: int = 240
    ) -> np.ndarray:
        """An RGB frame ``[height, width, 3]`` uint8 of copy ``index``.

        Cameras (:meth:`view`): ``"top"`` (the default: from above, fitted to the arena, so the
        body and every target and box are always in frame), ``"track"`` (behind and above the
        body, following it without turning; near a wall it can lose the body behind the wall),
        or a camera id. Needs an OpenGL backend; see :mod:`.rendering` for headless set-up.
        """
        from behavior_priors.envs.mujoco.rendering import make_renderer

        if not 0 <= index < self.num_envs:
            raise IndexError(f"index {index} out of range for {self.num_envs} copies")
        view = self.view(camera, width, height)
        key = (width, height)
        if key not in self._renderers:
            self._renderers[key] = make_renderer(self.model, width=width, height=height)
        renderer = self._renderers[key]
        renderer.update_scene(self._datas[index], camera=view)
        return renderer.render()

    # -- internals -----------------------------------------------------------------------------

    def _check_unstable(self, resetting: np.ndarray) -> np.ndarray:
        sens, prev = self._sens, self._sens_prev
        # A clock that did not advance by a full control step means MuJoCo reset the copy.
        clock_reset = sens[:, self._clock] < prev[:, self._clock] + 0.5 * self.config.control_dt
        bad = ~np.isfinite(sens).all(axis=1)
        escaped = (np.abs(sens[:, self._bounded_cols]) > self._bound).any(axis=1)
        return ~resetting & (clock_reset | bad | escaped)

    def _reset_copy(self, i: int) -> None:
        """Sample a new episode for copy ``i``: task, layout, initial pose; fill its sensors."""
        rng = self._rngs[i // self._group_size]
        model, d, layout = self.model, self._datas[i], self.layout
        scale = self.body.scale
        self._task_id[i] = rng.integers(len(self.tasks))
        k, m = layout.num_targets, layout.num_boxes
        # Keep a body's width between any box and the walls, so every box can be pushed.
        free = layout.half_size - scale
        points = _sample_separated(
            rng,
            half=np.array([free] * (1 + k) + [free - layout.box_half * math.sqrt(2)] * m),
            min_dist=self.config.min_separation * scale,
        )
        mujoco.mj_resetData(model, d)
        yaw = rng.uniform(-math.pi, math.pi)
        self.body.spawn(d, self._root_qpos, points[0], yaw)
        if len(self._hinge_qpos):
            noise = rng.uniform(-1, 1, len(self._hinge_qpos)) * self.config.joint_noise
            d.qpos[self._hinge_qpos] = self._hinge_init + noise
        for j, mocap in enumerate(self._target_mocap):
            d.mocap_pos[mocap] = (*points[1 + j], 0.001)
        self._targets[i] = points[1 : 1 + k]
        for j, adr in enumerate(self._box_qpos):
            box_yaw = rng.uniform(-math.pi, math.pi)
            d.qpos[adr : adr + 3] = (*points[1 + k + j], layout.box_half)
            d.qpos[adr + 3 : adr + 7] = (math.cos(box_yaw / 2), 0, 0, math.sin(box_yaw / 2))
        mujoco.mj_forward(model, d)
        self._sens[i] = self._sensordata[i]
        self._t[i] = 0
        self._phase[i] = False
        self._succeeded[i] = False

    def _observe(self) -> dict[str, np.ndarray]:
        sens = self._sens
        s32 = sens.astype(np.float32)  # fresh each step, so views of it are safe to return
        obs = {key: s32[:, idx] for key, idx in self._proprio.items()}
        pos = sens[:, self._root_pos]
        head = sens[:, self._root_xaxis][:, :2]
        # Heading projected onto the floor; a body standing on its nose falls back to +x.
        norm = np.linalg.norm(head, axis=1, keepdims=True)
        head = np.where(norm > 1e-6, head / np.maximum(norm, 1e-6), np.array([1.0, 0.0]))
        cos, sin = head[:, None, 0], head[:, None, 1]
        inv_scale = 1.0 / self.body.scale

        def ego(points: np.ndarray) -> np.ndarray:  # [B, N, 2] world -> [B, N, 2] egocentric
            dx = points[..., 0] - pos[:, None, 0]
            dy = points[..., 1] - pos[:, None, 1]
            out = np.stack([cos * dx + sin * dy, cos * dy - sin * dx], axis=-1)
            return (out * inv_scale).astype(np.float32)

        obs["task/targets"] = ego(self._targets)
        if self._box_xy is not None:
            obs["task/boxes"] = ego(sens[:, self._box_xy].reshape(self.num_envs, -1, 2))
        if self.evaluator.has_phase:
            obs["task/phase"] = self._phase[:, None].astype(np.float32)
        if len(self.tasks) > 1:
            obs["task/id_onehot"] = self._onehot[self._task_id]
        return obs


def _close_renderers(renderers: dict) -> None:
    for renderer in renderers.values():
        renderer.close()
    renderers.clear()


def _sample_separated(
    rng: np.random.Generator, half: np.ndarray, min_dist: float, tries: int = 200
) -> np.ndarray:
    """Points [n, 2], point p uniform in ``[-half[p], half[p]]^2``, pairwise ``min_dist`` apart.

    Rejection sampling, one point at a time; raises if the arena is too small to fit them.
    """
    n = len(half)
    points = np.zeros((n, 2))
    for p in range(n):
        for _ in range(tries):
            cand = rng.uniform(-half[p], half[p], 2)
            if p == 0 or np.min(np.linalg.norm(points[:p] - cand, axis=1)) >= min_dist:
                points[p] = cand
                break
        else:
            raise RuntimeError(
                f"could not place {n} objects {min_dist:.2f} m apart in the arena "
                f"(half-width {half[p]:.2f} m for object {p}); lower min_separation"
            )
    return points


def _as_slice(r: range) -> slice:
    return slice(r.start, r.stop)


def make_task_env(
    num_envs: int = 1,
    seed: int | None = None,
    body: str | Body = "pointmass",
    tasks: Sequence[Task | str] = ("go_to_target:0",),
    **config,
) -> MujocoTaskEnv:
    """Factory for the registry: ``make_task_env(8, seed=0, body="ant", tasks=[...])``.

    Keyword arguments are fields of :class:`TaskEnvConfig`; unknown ones raise ``TypeError``
    naming the closest field.
    """
    fields = [f.name for f in dataclasses.fields(TaskEnvConfig)]
    for key in config:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"unknown option {key!r} for a MuJoCo task env{hint}")
    if isinstance(tasks, str):  # `--env-kwargs tasks=go_to_target:0,go_to_target:1`
        tasks = [t for t in tasks.split(",") if t.strip()]
    elif not isinstance(tasks, list | tuple):  # e.g. `--env-kwargs tasks=42` reads as an int
        raise ValueError(
            f"tasks must be a list of task names, got {tasks!r}: e.g. ['go_to_target:0', "
            "'move_box:0:1'], on the command line --env-kwargs "
            "tasks=go_to_target:0,move_box:0:1 (the kinds: behavior-priors list tasks)"
        )
    return MujocoTaskEnv(TaskEnvConfig(body=body, tasks=tuple(tasks), **config), num_envs, seed)
