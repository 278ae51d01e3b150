"""Per-copy episode bookkeeping for batched environments."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from behavior_priors.envs.base import TimeStep


@dataclass
class EpisodeStats:
    """Finished episodes: return, length, success (any step reported success), task id and
    the copy that ran each (its index in the batch)."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)
    task_ids: list[int] = field(default_factory=list)
    copies: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.returns)

    def extend(self, other: EpisodeStats) -> None:
        self.returns += other.returns
        self.lengths += other.lengths
        self.successes += other.successes
        self.task_ids += other.task_ids
        self.copies += other.copies

    def summary(self) -> dict[str, float]:
        if not self.returns:
            return {}
        return {
            "episode_return": float(np.mean(self.returns)),
            "episode_length": float(np.mean(self.lengths)),
            "success_rate": float(np.mean(self.successes)),
            "episodes": float(len(self.returns)),
        }


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
            done.copies.append(int(i))
        return done
