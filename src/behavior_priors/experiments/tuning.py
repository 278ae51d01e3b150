"""The tuning stage: the same number of candidate settings for every method, the best selected.

Each method trained from scratch gets the candidates of :class:`~.registry.Tuning`, every
candidate trained for the stage's seeds on its task (never one of the experiment's tasks), into
``out/tuning/c<k>/<method>/seed<s>/``. A method's candidate with the highest mean AUC of the
experiment's metric over its seeds (the mean metric during training) is selected, the first on a
tie; the experiment's runs of that method then use it. Transferred methods keep their source's
settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from behavior_priors.experiments.curves import area_under_curve, run_curve
from behavior_priors.experiments.registry import Experiment

TUNING_DIR = "tuning"


def tuning_run_dir(out: str | Path, candidate: int, method: str, seed: int) -> Path:
    """Where the tuning run of ``method``'s candidate ``candidate`` and ``seed`` lives."""
    return Path(out) / TUNING_DIR / f"c{candidate}" / method / f"seed{seed}"


@dataclass(frozen=True)
class TuningResult:
    """One method's tuning outcome.

    Attributes:
      candidates: the candidate settings, in the grid's order.
      aucs: ``[candidate][seed]`` AUC of the experiment's metric on the tuning task.
      selected: index of the candidate with the highest mean AUC (first on a tie).
    """

    method: str
    candidates: tuple[Mapping[str, Any], ...]
    aucs: tuple[tuple[float, ...], ...]
    selected: int

    @property
    def settings(self) -> Mapping[str, Any]:
        return self.candidates[self.selected]

    @property
    def means(self) -> list[float]:
        return [float(np.mean(a)) for a in self.aucs]


def select(aucs: list[list[float]], tolerance: float = 1e-9) -> int:
    """The index of the highest mean, the first of those within ``tolerance`` of it."""
    means = [float(np.mean(a)) for a in aucs]
    best = max(means)
    return next(i for i, m in enumerate(means) if m >= best - tolerance)


def tuning_results(experiment: Experiment, out: str | Path) -> dict[str, TuningResult]:
    """The tuning outcome of every method whose tuning runs have all finished (none if the
    experiment does not tune)."""
    tuning = experiment.tuning
    if tuning is None:
        return {}
    results = {}
    for method, candidates in tuning.grid.items():
        dirs = [
            [tuning_run_dir(out, k, method, s) for s in range(tuning.seeds)]
            for k in range(len(candidates))
        ]
        if not all((d / "final_eval.json").exists() for row in dirs for d in row):
            continue
        aucs = [
            [area_under_curve(*_steps_values(run_curve(d, experiment.metric))) for d in row]
            for row in dirs
        ]
        results[method] = TuningResult(
            method,
            tuple(candidates),
            tuple(tuple(a) for a in aucs),
            select(aucs),
        )
    return results


def _steps_values(curve):
    steps, _, values = curve
    return steps, values
