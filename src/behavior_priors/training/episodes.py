"""Per-copy episode bookkeeping for batched environments."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from behavior_priors.envs.base import TimeStep


@dataclass
class EpisodeStats:
    """Finished episodes: return, length, success (any step reported success) and task id."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)
    task_ids: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.returns)

    def extend(self, other: EpisodeStats) -> None:
        self.returns += other.returns
        self.lengths += other.lengths
        self.successes += other.successes
        self.task_ids += other.task_ids

    def summary(self) -> dict[str, float]:
        if not self.returns:
            return {}
        return {
            "episode_return": float(np.mean(self.returns)),
            "episode_length": float(np.mean(self.lengths)),
            "success_rate": float(np.mean(self.successes)),
            "episodes": float(len(self.returns)),
        }


class EpisodeTracker:
    """Accumulates rewards of B copies and reports episodes as they end (at LAST steps)."""

    def __init__(self, num_envs: int):
        self.returns = np.zeros(num_envs, np.float64)
        self.lengths = np.zeros(num_envs, np.int64)
        self.success = np.zeros(num_envs, bool)

    def observe(self, ts: TimeStep) -> EpisodeStats:
        """Feed the timestep returned by ``reset`` or ``step``; returns episodes that ended."""
        first = ts.first()
        self.returns[first] = 0.0
        self.lengths[first] = 0
        self.success[first] = False
        mid_or_last = ~first
        self.returns[mid_or_last] += ts.reward[mid_or_last]
        self.lengths[mid_or_last] += 1
        if "success" in ts.info:
            self.success |= np.asarray(ts.info["success"], bool) & mid_or_last
        done = EpisodeStats()
        for i in np.flatnonzero(ts.last()):
            done.returns.append(float(self.returns[i]))
            done.lengths.append(int(self.lengths[i]))
            done.successes.append(bool(self.success[i]))
            done.task_ids.append(int(ts.task_id[i]))
        return done
