"""Tasks of the MuJoCo suite: what counts as success and what is rewarded, vectorised over copies.

Task kinds (indices refer to the arena's targets ``0..K-1`` and boxes ``0..M-1``):

* ``go_to_target:k``: the body's root is within the target radius of target ``k`` (xy).
* ``move_box:m:k``: box ``m``'s centre is within the target radius of target ``k``.
* ``gather:m:n``: boxes ``m`` and ``n`` touch (MuJoCo geom distance below 1% of the body scale).
* ``move_box_then_go:m:k:j``: box ``m`` has been on target ``k`` (the *sub-goal*, sticky) and
  the body is now at target ``j``.

"Move a heavier box" is ``move_box`` in an arena whose boxes are heavier (``box_mass_factor``).

Rewards (per control step, per copy), with ``achieved_t`` the condition above at step t:

    r_t = reward_scale * achieved_t
        + success_bonus * [achieved for the first time this episode]
        + success_bonus * [sub-goal reached for the first time]          (move_box_then_go)
        + reward_scale * shaping_weight * dense_t                         (shaped variant only)

``dense_t`` in [0, 1] rises as the relevant distances shrink (body to target; body to box and
box to target; body to nearest box and box to box; for move_box_then_go the sub-goal part then
the body to the second target), each through ``1 - tanh(distance / arena_half_size)``.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class Kind(enum.IntEnum):
    GO_TO_TARGET = 0
    MOVE_BOX = 1
    GATHER = 2
    MOVE_BOX_THEN_GO = 3


_ARITY = {
    Kind.GO_TO_TARGET: 1,
    Kind.MOVE_BOX: 2,
    Kind.GATHER: 2,
    Kind.MOVE_BOX_THEN_GO: 3,
}


@dataclass(frozen=True)
class Task:
    """One task: a kind and the indices of the targets and boxes it involves.

    Attributes:
      kind: the :class:`Kind`.
      target: target index (go_to_target, move_box, move_box_then_go).
      box: box index (move_box, gather, move_box_then_go).
      other: second box (gather) or second target (move_box_then_go).
    """

    kind: Kind
    target: int = 0
    box: int = 0
    other: int = 0

    @property
    def name(self) -> str:
        args = {
            Kind.GO_TO_TARGET: (self.target,),
            Kind.MOVE_BOX: (self.box, self.target),
            Kind.GATHER: (self.box, self.other),
            Kind.MOVE_BOX_THEN_GO: (self.box, self.target, self.other),
        }[self.kind]
        return ":".join([self.kind.name.lower(), *map(str, args)])

    def num_targets(self) -> int:
        """Targets the arena needs for this task."""
        if self.kind == Kind.GATHER:
            return 0
        if self.kind == Kind.MOVE_BOX_THEN_GO:
            return max(self.target, self.other) + 1
        return self.target + 1

    def num_boxes(self) -> int:
        """Boxes the arena needs for this task."""
        if self.kind == Kind.GO_TO_TARGET:
            return 0
        if self.kind == Kind.GATHER:
            return max(self.box, self.other) + 1
        return self.box + 1


def go_to_target(target: int) -> Task:
    return Task(Kind.GO_TO_TARGET, target=target)


def move_box(box: int, target: int) -> Task:
    return Task(Kind.MOVE_BOX, target=target, box=box)


def gather(box: int, other_box: int) -> Task:
    if box == other_box:
        raise ValueError(f"gather needs two different boxes, got {box} twice")
    return Task(Kind.GATHER, box=box, other=other_box)


def move_box_then_go(box: int, target: int, then_target: int) -> Task:
    if target == then_target:
        raise ValueError(f"move_box_then_go needs two different targets, got {target} twice")
    return Task(Kind.MOVE_BOX_THEN_GO, target=target, box=box, other=then_target)


_BUILDERS = {
    Kind.GO_TO_TARGET: go_to_target,
    Kind.MOVE_BOX: move_box,
    Kind.GATHER: gather,
    Kind.MOVE_BOX_THEN_GO: move_box_then_go,
}


def parse_task(task: str | Task) -> Task:
    """``"move_box:0:1"`` -> ``Task``; raises ``ValueError`` with suggestions on bad names."""
    if isinstance(task, Task):
        return task
    kind_name, *args = task.strip().split(":")
    kinds = {k.name.lower(): k for k in Kind}
    if kind_name not in kinds:
        close = difflib.get_close_matches(kind_name, list(kinds), n=2)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown task kind {kind_name!r}{hint} (kinds: {', '.join(kinds)})")
    kind = kinds[kind_name]
    if len(args) != _ARITY[kind] or not all(a.isdigit() for a in args):
        usage = {1: "k", 2: "m:k" if kind == Kind.MOVE_BOX else "m:n", 3: "m:k:j"}[_ARITY[kind]]
        raise ValueError(f"task {task!r}: expected '{kind_name}:{usage}' with integer indices")
    return _BUILDERS[kind](*map(int, args))


class TaskSetEvaluator:
    """Evaluates rewards for B copies each running one task of a fixed set, vectorised.

    Args:
      tasks: the task set; a copy's ``task_id`` indexes it.
      target_radius: "at target" / "box on target" tolerance, m.
      touch_tolerance: gather succeeds when the boxes' signed distance is below this, m.
      touch_pairs: the box pairs whose distance sensors exist, in sensor order.
      shaping_scale: distances are squashed by ``tanh(d / shaping_scale)``.
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        target_radius: float,
        touch_tolerance: float,
        touch_pairs: Sequence[tuple[int, int]],
        shaping_scale: float,
        reward_scale: float,
        success_bonus: float,
        shaping_weight: float,
    ):
        self.tasks = list(tasks)
        self.kind = np.array([t.kind for t in tasks], np.int64)
        self.target = np.array([t.target for t in tasks], np.int64)
        self.box = np.array([t.box for t in tasks], np.int64)
        self.other = np.array([t.other for t in tasks], np.int64)
        pairs = list(touch_pairs)
        self.pair = np.array(
            [pairs.index((t.box, t.other)) if t.kind == Kind.GATHER else 0 for t in tasks],
            np.int64,
        )
        self.kinds = sorted(set(self.kind.tolist()))
        self.has_phase = Kind.MOVE_BOX_THEN_GO in self.kinds
        self.radius = target_radius
        self.touch_tolerance = touch_tolerance
        self.shaping_scale = shaping_scale
        self.reward_scale = reward_scale
        self.success_bonus = success_bonus
        self.shaping_weight = shaping_weight

    def __call__(
        self,
        task_id: np.ndarray,
        body_xy: np.ndarray,
        targets: np.ndarray,
        boxes: np.ndarray | None,
        touch_dist: np.ndarray | None,
        phase: np.ndarray,
        succeeded: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rewards for one step.

        Args:
          task_id: [B] int, index into the task set.
          body_xy: [B, 2] root position, m.
          targets: [B, K, 2] target positions, m.
          boxes: [B, M, 2] box positions, m (None if M = 0).
          touch_dist: [B, P] signed box-pair distances, m (None if no gather task).
          phase: [B] bool, sub-goal reached earlier this episode (move_box_then_go).
          succeeded: [B] bool, task achieved earlier this episode.

        Returns:
          reward [B] float32, achieved [B] bool (condition holds now), phase [B] bool (updated).
        """
        n = task_id.shape[0]
        rows = np.arange(n)
        kind = self.kind[task_id]
        achieved = np.zeros(n, bool)
        dense = np.zeros(n) if self.shaping_weight else None
        new_phase = phase
        subgoal = None

        def close(d: np.ndarray) -> np.ndarray:
            return 1.0 - np.tanh(d / self.shaping_scale)

        t1 = targets[rows, self.target[task_id]] if targets.shape[1] else None
        for k in self.kinds:
            mask = kind == k if len(self.kinds) > 1 else slice(None)
            if k == Kind.GO_TO_TARGET:
                d = np.linalg.norm(body_xy - t1, axis=-1)
                cond = d < self.radius
                part = close(d) if dense is not None else None
            elif k == Kind.GATHER:
                cond = touch_dist[rows, self.pair[task_id]] < self.touch_tolerance
                part = None
                if dense is not None:
                    a = boxes[rows, self.box[task_id]]
                    b = boxes[rows, self.other[task_id]]
                    near = np.minimum(
                        np.linalg.norm(body_xy - a, axis=-1), np.linalg.norm(body_xy - b, axis=-1)
                    )
                    part = 0.5 * close(near) + 0.5 * close(np.linalg.norm(a - b, axis=-1))
            else:  # MOVE_BOX, MOVE_BOX_THEN_GO
                box = boxes[rows, self.box[task_id]]
                d_box = np.linalg.norm(box - t1, axis=-1)
                on_target = d_box < self.radius
                part = None
                if dense is not None:
                    part = 0.5 * close(np.linalg.norm(body_xy - box, axis=-1)) + 0.5 * close(d_box)
                if k == Kind.MOVE_BOX:
                    cond = on_target
                else:
                    mine = kind == k
                    t2 = targets[rows, self.other[task_id]]
                    d2 = np.linalg.norm(body_xy - t2, axis=-1)
                    new_phase = phase | (on_target & mine)
                    subgoal = new_phase & ~phase
                    cond = new_phase & (d2 < self.radius)
                    if dense is not None:
                        part = np.where(new_phase, 0.5 + 0.5 * close(d2), 0.5 * part)
            achieved[mask] = cond[mask]
            if dense is not None:
                dense[mask] = part[mask]

        reward = self.reward_scale * achieved + self.success_bonus * (achieved & ~succeeded)
        if subgoal is not None:
            reward = reward + self.success_bonus * subgoal
        if dense is not None:
            reward = reward + self.reward_scale * self.shaping_weight * dense
        return reward.astype(np.float32), achieved, new_phase
