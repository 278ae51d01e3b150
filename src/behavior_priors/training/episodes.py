"""Per-copy episode bookkeeping for batched environments, and the episode figures every loop
logs (overall and per task)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from behavior_priors.envs.base import TimeStep

# Per-task metrics are named ``<group>/<figure>/task_<label>``, e.g.
# ``charts/episode_return/task_go_to_target_0`` or ``eval/success_rate/task_3``.
TASK_PREFIX = "task_"


@dataclass
class EpisodeStats:
    """Finished episodes: return, length, success (any step reported success), task id and
    the copy that ran each (its index in the batch), one list entry per episode.

    ``reports_success``: whether the environment has a notion of success (reports
    ``info["success"]``); without one every success is False and says nothing, so per-task
    success rates are not computed.
    """

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)
    task_ids: list[int] = field(default_factory=list)
    copies: list[int] = field(default_factory=list)
    reports_success: bool = True

    def __len__(self) -> int:
        return len(self.returns)

    def extend(self, other: EpisodeStats) -> None:
        self.returns += other.returns
        self.lengths += other.lengths
        self.successes += other.successes
        self.task_ids += other.task_ids
        self.copies += other.copies
        # An empty accumulator (True) takes the flag of what it collects.
        self.reports_success = self.reports_success and other.reports_success

    def select(self, episodes: Iterable[int]) -> EpisodeStats:
        """The episodes at the indices ``episodes``, in that order."""
        idx = list(episodes)
        return EpisodeStats(
            [self.returns[i] for i in idx],
            [self.lengths[i] for i in idx],
            [self.successes[i] for i in idx],
            [self.task_ids[i] for i in idx],
            [self.copies[i] for i in idx],
            self.reports_success,
        )

    def outcomes(self) -> list[tuple[float, bool, int]]:
        """``(return, success, task id)`` of each episode: what the training loops keep of
        their recent episodes (:func:`recent_metrics`)."""
        return list(zip(self.returns, self.successes, self.task_ids, strict=True))

    def summary(self) -> dict[str, float]:
        if not self.returns:
            return {}
        return {
            "episode_return": float(np.mean(self.returns)),
            "episode_length": float(np.mean(self.lengths)),
            "success_rate": float(np.mean(self.successes)),
            "episodes": float(len(self.returns)),
        }

    def metrics(self, prefix: str, task_names: Sequence[str] | None = None) -> dict[str, float]:
        """:meth:`summary` as ``{prefix}/<name>`` (e.g. ``eval/episode_return``) and, in a
        multi-task environment, each task's mean return and success rate
        (:func:`per_task_means`; success only where the environment reports it).
        ``task_names``: the environment's names of its tasks, by id (:func:`task_names_of`)."""
        out = {f"{prefix}/{k}": v for k, v in self.summary().items()}
        values: dict[str, Sequence[float]] = {"episode_return": self.returns}
        if self.reports_success:
            values["success_rate"] = self.successes
        out.update(per_task_means(prefix, self.task_ids, values, task_names))
        return out


def per_task_means(
    prefix: str,
    task_ids: Sequence[int],
    values: Mapping[str, Sequence[float]],
    task_names: Sequence[str] | None = None,
) -> dict[str, float]:
    """Each task's mean of per-episode figures: the one computation of per-task metrics,
    shared by every loop (training windows) and by evaluation.

    Args:
      prefix: the metric group, ``"charts"`` (training episodes) or ``"eval"``.
      task_ids: ``[N]`` the task of each episode; a negative id is unknown (a window restored
        from a checkpoint written before task ids were kept) and left out.
      values: ``{figure: [N]}`` per-episode values, e.g. ``{"episode_return": returns,
        "success_rate": successes}`` (booleans count as 0/1).
      task_names: the environment's task names indexed by task id, when it has them
        (:func:`task_names_of`).

    Returns:
      ``{f"{prefix}/{figure}/task_{label}": mean over that task's episodes}`` for every task
      with an episode among these (``label``: :func:`task_labels`), so the episode-weighted
      mean of a figure's per-task means is its mean over the known-task episodes. Empty for a
      single-task environment: fewer than two task names and episodes of one task only.
    """
    ids = np.asarray(task_ids, np.int64).reshape(-1)
    known = ids >= 0
    present = np.unique(ids[known])  # sorted: the same key order on every line
    # Decided from the environment's task list where it has one, so that a multi-task run
    # logs per-task figures even on a line whose episodes happen to share one task.
    multi_task = len(task_names or ()) > 1 or len(present) > 1
    if not multi_task or not len(present):
        return {}
    labels = task_labels(task_names)
    out: dict[str, float] = {}
    for name, column in values.items():
        v = np.asarray(column, np.float64).reshape(-1)
        if v.shape != ids.shape:
            raise ValueError(f"{name}: {v.shape[0]} values for {ids.shape[0]} task ids")
        for t in present:
            label = labels[t] if labels is not None and t < len(labels) else str(int(t))
            out[f"{prefix}/{name}/{TASK_PREFIX}{label}"] = float(v[ids == t].mean())
    return out


def task_labels(task_names: Sequence[str] | None) -> list[str] | None:
    """The task names as they appear in metric names: characters other than letters, digits,
    ``_``, ``-`` and ``.`` become ``_`` (``go_to_target:0`` -> ``go_to_target_0``), since
    TensorBoard renames tags with others and ``/`` would nest them. ``None`` (use the integer
    ids) when there are no names or two would share a label."""
    if not task_names:
        return None
    labels = [re.sub(r"[^\w.-]", "_", str(n)) for n in task_names]
    return labels if len(set(labels)) == len(labels) else None


def task_names_of(env: Any) -> list[str] | None:
    """An environment's task names, indexed by task id (its optional ``task_names``
    attribute: the native MuJoCo suite has one), or ``None``."""
    names = getattr(env, "task_names", None)
    return [str(n) for n in names] if names else None


def recent_metrics(
    recent: Iterable[tuple[float, bool, int]],
    task_names: Sequence[str] | None = None,
    reports_success: bool = True,
) -> dict[str, float]:
    """The ``charts/`` figures of a training loop's recent episodes: the mean return and
    success rate, and per task (:func:`per_task_means`; success only where the environment
    reports it). ``recent``: ``(return, success, task id)`` of each episode
    (:meth:`EpisodeStats.outcomes`); empty gives ``{}``."""
    recent = list(recent)
    if not recent:
        return {}
    returns, successes, task_ids = zip(*recent, strict=True)
    # Summed in order as before per-task figures existed, so a run logs the same numbers.
    out = {
        "charts/episode_return": float(sum(returns) / len(returns)),
        "charts/success_rate": float(sum(map(float, successes)) / len(successes)),
    }
    values: dict[str, Sequence[float]] = {"episode_return": returns}
    if reports_success:
        values["success_rate"] = successes
    out.update(per_task_means("charts", task_ids, values, task_names))
    return out


def recent_state(recent: Iterable[tuple[float, bool, int]]) -> dict[str, np.ndarray]:
    """The checkpoint entries of a loop's recent episodes: ``recent`` ``[N, 2]`` (return,
    success; the layout of checkpoints before task ids were kept) and ``recent_task_ids``
    ``[N]`` int64."""
    recent = list(recent)
    return {
        "recent": np.array([(r, s) for r, s, _ in recent], np.float64).reshape(-1, 2),
        "recent_task_ids": np.array([t for _, _, t in recent], np.int64),
    }


def recent_from_state(episodes: Mapping[str, Any]) -> list[tuple[float, bool, int]]:
    """Inverse of :func:`recent_state`, from a checkpoint's ``"episodes"`` entry; episodes of a
    checkpoint without task ids get task id -1 (unknown: left out of per-task figures)."""
    pairs = np.asarray(episodes["recent"], np.float64).reshape(-1, 2)
    ids = episodes.get("recent_task_ids")
    ids = np.full(len(pairs), -1, np.int64) if ids is None else np.asarray(ids, np.int64)
    if ids.shape != (len(pairs),):
        raise ValueError(f"{len(pairs)} recent episodes but {ids.size} task ids")
    return [(float(r), bool(s), int(t)) for (r, s), t in zip(pairs, ids, strict=True)]


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a success probability from ``successes`` out of ``trials``
    (95% for the default ``z``). Unlike the normal approximation it stays inside [0, 1] and is
    not empty at 0 or ``trials`` successes, which is where small evaluations often land."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes}/{trials}")
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


class EpisodeTracker:
    """Accumulates rewards of B copies and reports episodes as they end (at LAST steps)."""

    def __init__(self, num_envs: int):
        self.returns = np.zeros(num_envs, np.float64)
        self.lengths = np.zeros(num_envs, np.int64)
        self.success = np.zeros(num_envs, bool)
        # Whether the environment reports success (info["success"]) at all: an environment
        # has it at every step or never, so the latest timestep tells.
        self.reports_success = False

    def observe(self, ts: TimeStep) -> EpisodeStats:
        """Feed the timestep returned by ``reset`` or ``step``; returns episodes that ended."""
        self.reports_success = "success" in ts.info
        first = ts.first()
        self.returns[first] = 0.0
        self.lengths[first] = 0
        self.success[first] = False
        mid_or_last = ~first
        self.returns[mid_or_last] += ts.reward[mid_or_last]
        self.lengths[mid_or_last] += 1
        if "success" in ts.info:
            self.success |= np.asarray(ts.info["success"], bool) & mid_or_last
        done = EpisodeStats(reports_success=self.reports_success)
        for i in np.flatnonzero(ts.last()):
            done.returns.append(float(self.returns[i]))
            done.lengths.append(int(self.lengths[i]))
            done.successes.append(bool(self.success[i]))
            done.task_ids.append(int(ts.task_id[i]))
            done.copies.append(int(i))
        return done
