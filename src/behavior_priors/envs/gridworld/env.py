"""A vectorised multi-task grid world implementing :class:`behavior_priors.envs.base.Env`.

B copies of an agent move on the same map; each copy runs one goal task per episode, drawn
uniformly from the configured goal set. The whole batch steps with a handful of numpy array
operations (a table look-up per step), no per-copy Python loop.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np

from behavior_priors.envs.base import (
    ArraySpec,
    BoundedArraySpec,
    DiscreteSpec,
    StepType,
    TimeStep,
    check_actions,
    generator_state_from_array,
    generator_state_to_array,
)
from behavior_priors.envs.gridworld.layouts import (
    ACTION_NAMES,
    DEFAULT_GOALS,
    Layout,
    get_layout,
)

POSITION_ENCODINGS = ("onehot", "xy")


class GridWorld:
    """B copies of a grid-world agent, each going to one goal cell per episode.

    Tasks: one task per goal cell; the task id is the goal's state index, i.e. its position in
    the row-major order of the layout's free cells (:mod:`.layouts`), so ids are stable across
    runs that use different goal sets. ``num_tasks`` is the number of free cells and
    ``task/id_onehot`` has that width; ``goal_ids`` lists the ids this environment samples.

    Actions (``DiscreteSpec``): 0 up, 1 down, 2 left, 3 right, and 4 stay when ``allow_stay``.
    A move into a wall leaves the agent where it is. With probability ``slip`` the executed
    action is instead drawn uniformly from all actions (it may equal the intended one, so the
    agent does something other than intended with probability ``slip * (A - 1) / A``).

    Rewards: ``goal_reward`` (default 1) on the step that enters the goal cell, which ends the
    episode by termination (LAST, discount 0); ``step_reward`` (default 0) on every other step.
    After ``max_steps`` steps without reaching the goal the episode is truncated (LAST,
    discount 1, reward ``step_reward``). A copy starts on a uniformly drawn free cell other
    than its goal, or on the fixed ``start`` cell.

    Observations (float32, ``[B, ...]``), with ``position_encoding``:

    * ``"onehot"`` (default): ``proprio/position`` ``[S]`` one-hot of the agent's cell over the
      S free cells; exact tabular state, so a network can represent any tabular policy, as in
      the Distral grid world.
    * ``"xy"``: ``proprio/position`` ``[2]`` = (column, row) / (W - 1, H - 1), in [0, 1], row 0
      at the top.

    ``task/goal`` is the goal cell in the same encoding and ``task/id_onehot`` ``[S]`` the task
    id (with ``"onehot"`` the two coincide); ``task/goal_index`` ``[G]`` is the one-hot index of
    the goal in ``goal_ids`` (compact: per-task networks such as Distral's columns need only G).
    The agent's position is under ``proprio/`` and the goal only under ``task/``: a prior
    reading ``proprio/`` sees where it is, never where to go.

    ``info``: ``success`` ``[B]`` bool (the goal was entered on this step) and ``state`` ``[B]``
    int32 (the agent's state index, for tabular methods).

    Tabular access: :meth:`transition_matrix` (slip included), :attr:`next_state` (the
    deterministic move table), :meth:`state_of` and :attr:`layout`.
    """

    def __init__(
        self,
        layout: str = "fourrooms",
        goals: str | Sequence[Sequence[int]] = "default",
        num_envs: int = 1,
        seed: int | None = None,
        *,
        start: str | Sequence[int] = "random",
        slip: float = 0.0,
        allow_stay: bool = False,
        max_steps: int = 100,
        goal_reward: float = 1.0,
        step_reward: float = 0.0,
        position_encoding: str = "onehot",
    ):
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if not 0.0 <= float(slip) <= 1.0:
            raise ValueError(f"slip is a probability in [0, 1], got {slip!r}")
        if int(max_steps) != max_steps or max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
        if position_encoding not in POSITION_ENCODINGS:
            close = difflib.get_close_matches(position_encoding, POSITION_ENCODINGS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"unknown position_encoding {position_encoding!r}{hint} "
                f"(choose from {', '.join(POSITION_ENCODINGS)})"
            )
        self.layout: Layout = get_layout(layout)
        self.num_envs = int(num_envs)
        self.num_actions = 5 if allow_stay else 4
        self.action_names = ACTION_NAMES[: self.num_actions]
        self.slip = float(slip)
        self.max_steps = int(max_steps)
        self.goal_reward = float(goal_reward)
        self.step_reward = float(step_reward)
        self.position_encoding = position_encoding
        self.num_tasks = self.layout.num_cells
        self.goal_ids = self._parse_goals(goals)
        self.fixed_start = None if _is_random(start) else self.layout.state_of(start)
        if self.fixed_start is not None and self.fixed_start in self.goal_ids:
            raise ValueError(f"the fixed start cell {tuple(start)} is also a goal cell")
        if self.fixed_start is None and self.num_tasks < 2:
            raise ValueError("a random start needs at least two free cells")

        # Position of each state in goal_ids (-1: not a goal of this environment).
        self._goal_position = np.full(self.num_tasks, -1, np.int64)
        self._goal_position[list(self.goal_ids)] = np.arange(len(self.goal_ids))
        self.next_state = self.layout.next_state_table(self.num_actions)  # [S, A]
        self._encoded = self._encode_table()  # [S, D] position encoding of every state
        # Every entry lies in [0, 1]; bounded specs let adapters expose tight Gymnasium boxes.
        self._spec = {
            key: BoundedArraySpec((width,), np.float32, key, np.float32(0.0), np.float32(1.0))
            for key, width in (
                ("proprio/position", self._encoded.shape[1]),
                ("task/goal", self._encoded.shape[1]),
                ("task/id_onehot", self.num_tasks),
                ("task/goal_index", len(self.goal_ids)),
            )
        }
        self._action_spec = DiscreteSpec(self.num_actions, "action")
        b = self.num_envs
        self._state = np.zeros(b, np.int64)
        self._goal = np.zeros(b, np.int64)
        self._t = np.zeros(b, np.int64)
        self._needs_reset = np.zeros(b, bool)
        self._rng = np.random.default_rng(seed)
        self._started = False
        if seed is not None:
            self.reset(seed)

    # -- construction helpers ------------------------------------------------------------------

    def _parse_goals(self, goals: str | Sequence[Sequence[int]]) -> tuple[int, ...]:
        if isinstance(goals, str):
            if goals == "all":
                return tuple(range(self.num_tasks))
            if goals == "default":
                if self.layout.name not in DEFAULT_GOALS:
                    raise ValueError(
                        "a custom layout has no default goals; pass goals='all' or cells"
                    )
                cells = DEFAULT_GOALS[self.layout.name]
            else:
                raise ValueError(
                    "goals must be 'default', 'all' or a sequence of (row, col) cells, "
                    f"got {goals!r}"
                )
        else:
            cells = list(goals)
        if len(cells) == 0:
            raise ValueError("the goal set is empty")
        ids = tuple(self.layout.state_of(c) for c in cells)
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate goal cells in {cells!r}")
        return ids

    def _encode_table(self) -> np.ndarray:
        if self.position_encoding == "onehot":
            return np.eye(self.num_tasks, dtype=np.float32)
        h, w = self.layout.shape
        rows, cols = self.layout.cells[:, 0], self.layout.cells[:, 1]
        return np.stack([cols / (w - 1), rows / (h - 1)], axis=1).astype(np.float32)

    # -- protocol ------------------------------------------------------------------------------

    # -- checkpointing -------------------------------------------------------------------------

    _STATE_ARRAYS = ("_state", "_goal", "_t", "_needs_reset")

    def get_state(self) -> dict[str, np.ndarray]:
        """Everything that determines future steps (cells, goals, step counts, pending resets,
        the generator), as numpy arrays; :meth:`set_state` on an environment built with the same
        options continues identically (training runs resume exactly)."""
        state = {k.lstrip("_"): self.__dict__[k].copy() for k in self._STATE_ARRAYS}
        state["started"] = np.array(self._started)
        state["rng"] = generator_state_to_array(self._rng)
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Inverse of :meth:`get_state`; a clear error for a state of another shape."""
        for k in self._STATE_ARRAYS:
            current = self.__dict__[k]
            value = np.asarray(state[k.lstrip("_")], current.dtype)
            if value.shape != current.shape:
                raise ValueError(
                    f"grid-world state '{k.lstrip('_')}' has shape {value.shape}, expected "
                    f"{current.shape} (another number of copies?)"
                )
            current[...] = value
        self._started = bool(state["started"])
        generator_state_from_array(self._rng, state["rng"])

    def observation_spec(self) -> dict[str, ArraySpec]:
        return dict(self._spec)

    def action_spec(self) -> DiscreteSpec:
        return self._action_spec

    def reset(self, seed: int | None = None) -> TimeStep:
        """Start a new episode in every copy; ``seed`` re-seeds the environment's generator."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._new_episodes(np.ones(self.num_envs, bool))
        self._needs_reset[:] = False
        self._started = True
        b = self.num_envs
        return self._timestep(
            np.full(b, StepType.FIRST, np.int8),
            np.zeros(b, np.float32),
            np.ones(b, np.float32),
            np.zeros(b, bool),
        )

    def step(self, actions: np.ndarray) -> TimeStep:
        """Advance every copy; actions ``[B]`` int in ``[0, num_actions)``."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        act = check_actions(actions, self._action_spec, self.num_envs)
        b, rng = self.num_envs, self._rng
        # Slip noise is drawn for every copy (the stream must not depend on which copies are
        # resetting), and not at all without slip, so that a deterministic grid world draws
        # only at episode starts (then a copy reset by hand and one reset automatically agree).
        if self.slip > 0.0:
            slipped = rng.random(b) < self.slip
            executed = np.where(slipped, rng.integers(0, self.num_actions, b), act)
        else:
            executed = act
        resetting = self._needs_reset
        live = ~resetting
        self._state = np.where(live, self.next_state[self._state, executed], self._state)
        self._t += 1
        reached = live & (self._state == self._goal)
        truncated = live & ~reached & (self._t >= self.max_steps)
        reward = np.where(reached, self.goal_reward, self.step_reward).astype(np.float32)
        reward[resetting] = 0.0
        if resetting.any():
            self._new_episodes(resetting)
        last = reached | truncated
        step_type = np.where(resetting, StepType.FIRST, np.where(last, StepType.LAST, StepType.MID))
        discount = np.where(reached, 0.0, 1.0).astype(np.float32)
        self._needs_reset = last
        return self._timestep(step_type.astype(np.int8), reward, discount, reached)

    def close(self) -> None:
        pass

    # -- internals -----------------------------------------------------------------------------

    def _new_episodes(self, mask: np.ndarray) -> None:
        """Draw a task and a start cell for the copies in ``mask`` ``[B]`` bool."""
        n = int(mask.sum())
        goals = np.asarray(self.goal_ids)[self._rng.integers(0, len(self.goal_ids), n)]
        if self.fixed_start is None:
            # Uniform over the S - 1 free cells other than the goal: draw from S - 1 and skip it.
            r = self._rng.integers(0, self.num_tasks - 1, n)
            starts = r + (r >= goals)
        else:
            starts = np.full(n, self.fixed_start)
        self._goal[mask] = goals
        self._state[mask] = starts
        self._t[mask] = 0

    def _timestep(self, step_type, reward, discount, success) -> TimeStep:
        onehot = np.zeros((self.num_envs, self.num_tasks), np.float32)
        onehot[np.arange(self.num_envs), self._goal] = 1.0
        goal_index = np.zeros((self.num_envs, len(self.goal_ids)), np.float32)
        goal_index[np.arange(self.num_envs), self._goal_position[self._goal]] = 1.0
        return TimeStep(
            step_type=step_type,
            observation={
                "proprio/position": self._encoded[self._state],
                "task/goal": self._encoded[self._goal],
                "task/id_onehot": onehot,
                "task/goal_index": goal_index,
            },
            reward=reward,
            discount=discount,
            task_id=self._goal.astype(np.int32),
            info={"success": success.copy(), "state": self._state.astype(np.int32)},
        )

    # -- tabular access ------------------------------------------------------------------------

    def state_of(self, cell: Sequence[int]) -> int:
        """State index (= task id of that goal) of the free cell ``(row, col)``."""
        return self.layout.state_of(cell)

    def transition_matrix(self) -> np.ndarray:
        """``[S, A, S]`` float64: ``P[s, a, s']``, slip included; rows sum to 1.

        Goals are not absorbing here (the matrix is shared by all tasks); a task ends when its
        goal state is entered, see :func:`behavior_priors.envs.gridworld.tabular.value_iteration`.
        """
        s, a = self.next_state.shape
        det = np.zeros((s, a, s))
        det[np.arange(s)[:, None], np.arange(a)[None, :], self.next_state] = 1.0
        return (1.0 - self.slip) * det + self.slip * det.mean(axis=1, keepdims=True)

    def render(self, copy: int = 0) -> str:
        """Text picture of copy ``copy``: ``A`` the agent, ``G`` its goal."""
        cells = self.layout.cells
        marks = {tuple(cells[self._goal[copy]]): "G", tuple(cells[self._state[copy]]): "A"}
        return self.layout.render(marks)


def _is_random(start) -> bool:
    if isinstance(start, str):
        if start != "random":
            raise ValueError(f"start must be 'random' or a (row, col) cell, got {start!r}")
        return True
    return False


def make_gridworld(num_envs: int = 1, seed: int | None = None, **kwargs) -> GridWorld:
    """Registry factory: ``make_gridworld(8, seed=0, layout="tworooms", slip=0.1)``.

    Keyword arguments are those of :class:`GridWorld`; unknown ones raise ``TypeError``.
    """
    return GridWorld(num_envs=num_envs, seed=seed, **kwargs)
