"""A run's learning curve and the numbers read off it: area under the curve, steps to a threshold.

Shared by the reports (:mod:`.report`) and the tuning stage (:mod:`.tuning`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from behavior_priors.training.logger import read_metrics

WALL_KEY = "perf/wall_time_s"


def run_curve(run_dir: str | Path, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(env_steps [N], wall_seconds [N], values [N])`` at the log lines holding ``metric``
    (wall time is NaN on lines without it)."""
    rows = [r for r in read_metrics(run_dir) if isinstance(r.get(metric), int | float)]
    if not rows:
        raise KeyError(f"metric {metric!r} never logged in {run_dir}")
    return (
        np.array([r["env_steps"] for r in rows], np.float64),
        np.array([r.get(WALL_KEY, math.nan) for r in rows], np.float64),
        np.array([r[metric] for r in rows], np.float64),
    )


def area_under_curve(steps: np.ndarray, values: np.ndarray) -> float:
    """Trapezoid area under ``values`` over ``steps``, divided by the span (one point: it)."""
    steps, values = np.asarray(steps, np.float64), np.asarray(values, np.float64)
    if len(steps) == 1:
        return float(values[0])
    span = steps[-1] - steps[0]
    return float(np.sum((values[1:] + values[:-1]) * np.diff(steps)) / 2 / span)


def steps_to_threshold(steps: np.ndarray, values: np.ndarray, threshold: float) -> float | None:
    """The first step at which ``values >= threshold``; ``None`` if never."""
    hit = np.flatnonzero(np.asarray(values) >= threshold)
    return float(steps[hit[0]]) if len(hit) else None
