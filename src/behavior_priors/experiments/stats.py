"""Aggregate statistics over seeds with ``rliable`` (Agarwal et al., 2021), the field's standard.

* :func:`iqm_interval`: the interquartile mean (IQM) of per-seed scores with rliable's
  stratified-bootstrap 95% interval. The IQM drops the lowest and highest quarter of the runs,
  so one lucky or stuck seed moves it less than the mean, yet it uses more runs than a median.
* :func:`improvement_interval`: the probability of improvement P(X > Y) (ties count a half) of
  one method's scores over another's, with its bootstrap interval.

Both are seeded, so a report built twice from the same runs is the same, byte for byte. Needs
the ``experiments`` extra (``pip install 'behavior-priors[experiments]'``); ``rliable`` pins
``arch<8``, whose 7.x releases fail to import with pandas 3, hence the extra's ``pandas<3``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

REPS = 2_000  # bootstrap resamples: intervals stable to about 0.01 on scores in [0, 1]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% bootstrap interval."""

    point: float
    low: float
    high: float

    def text(self, fmt: str = ".2f") -> str:
        if math.isnan(self.point):
            return "-"
        return f"{self.point:{fmt}} [{self.low:{fmt}}, {self.high:{fmt}}]"


NAN = Interval(math.nan, math.nan, math.nan)


def require_rliable() -> None:
    """Raise the :func:`_rliable` ``ImportError`` now if the extra is missing."""
    _rliable()


def _rliable():
    try:
        from rliable import library, metrics
    except ImportError as e:  # the optional extra
        raise ImportError(
            f"experiment reports need rliable: pip install 'behavior-priors[experiments]' ({e})"
        ) from e
    return library, metrics


def _estimates(library, scores: dict, func: Callable, reps: int, seed: int):
    """rliable's ``get_interval_estimates``, seeded. rliable 1.2 draws its resampling indices
    from NumPy's *global* generator (``np.random.choice`` in ``StratifiedBootstrap.
    update_indices``), not from the ``RandomState`` it is given, so the same runs gave other
    intervals in another process. The global generator is seeded for the call and its state put
    back afterwards. The ``RandomState`` still goes in: rliable hands it to ``arch`` under a
    keyword ``arch`` deprecates, a warning only the libraries can act on."""
    saved = np.random.get_state()  # noqa: NPY002 (the legacy global generator rliable uses)
    np.random.seed(seed)  # noqa: NPY002
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="random_state is deprecated")
            return library.get_interval_estimates(
                scores, func, reps=reps, random_state=np.random.RandomState(seed)
            )
    finally:
        np.random.set_state(saved)  # noqa: NPY002


def iqm_interval(scores: Sequence[float], reps: int = REPS, seed: int = 0) -> Interval:
    """IQM of per-seed ``scores`` [N] and its stratified-bootstrap 95% interval (one task, so
    the strata are the runs of that task). Fewer than 2 scores: the point, no interval."""
    x = np.asarray(scores, np.float64)
    if x.size == 0:
        return NAN
    library, metrics = _rliable()
    if x.size == 1:
        return Interval(float(x[0]), math.nan, math.nan)
    point, ci = _estimates(
        library, {"m": x[:, None]}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps, seed
    )
    return Interval(float(point["m"][0]), float(ci["m"][0, 0]), float(ci["m"][1, 0]))


def improvement_interval(
    x: Sequence[float], y: Sequence[float], reps: int = REPS, seed: int = 0
) -> Interval:
    """P(X > Y) of scores ``x`` [N] over ``y`` [M] (each run of x against each run of y,
    ties a half) and its bootstrap 95% interval; NaN when either has fewer than 2 runs."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.size < 2 or y.size < 2:
        return NAN
    library, metrics = _rliable()
    point, ci = _estimates(
        library, {"p": (x[:, None], y[:, None])}, metrics.probability_of_improvement, reps, seed
    )
    low, high = np.asarray(ci["p"], np.float64).reshape(2)
    return Interval(float(point["p"]), float(low), float(high))
