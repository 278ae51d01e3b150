"""Aggregate statistics over seeds with ``rliable`` (Agarwal et al., 2021), the field's standard.

* :func:`iqm_interval`: the interquartile mean (IQM) of per-seed scores with rliable's
  stratified-bootstrap 95% interval. The IQM drops the lowest and highest quarter of the runs,
  so one lucky or stuck seed moves it less than the mean, yet it uses more runs than a median.
* :func:`improvement_interval`: the probability of improvement P(X > Y) (ties count a half) of
  one method's scores over another's, with its bootstrap interval.
* :func:`performance_profile`: the score distribution, the share of runs scoring above each
  threshold tau, with its bootstrap band.
* :func:`permutation_p_value`: the one-sided permutation test of a difference of means, exact
  over all relabellings of the seeds (plain NumPy; the honest test at 3-5 seeds).

Both are seeded, so a report built twice from the same runs is the same, byte for byte. Needs
the ``experiments`` extra (``pip install 'behavior-priors[experiments]'``); ``rliable`` pins
``arch<8``, whose 7.x releases fail to import with pandas 3, hence the extra's ``pandas<3``.
"""

from __future__ import annotations

import itertools
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


def performance_profile(
    scores: Sequence[float], taus: Sequence[float], reps: int = REPS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """rliable's performance profile of per-seed ``scores`` [N] at thresholds ``taus`` [T]: the
    share of runs whose score is above tau, ``(profile [T], low [T], high [T])`` with its
    stratified-bootstrap 95% band (no band, NaN, for fewer than 2 runs)."""
    x = np.asarray(scores, np.float64)
    taus = np.asarray(taus, np.float64)
    library, _ = _rliable()
    profile = library.score_distributions(x[:, None], taus)
    if x.size < 2:
        nan = np.full(taus.shape, math.nan)
        return profile, nan, nan
    _, ci = _estimates(
        library, {"m": x[:, None]}, lambda s: library.score_distributions(s, taus), reps, seed
    )
    return profile, np.asarray(ci["m"][0]), np.asarray(ci["m"][1])


def permutation_p_value(x, y, max_exact: int = 20_000, seed: int = 0) -> float:
    """One-sided p-value of ``mean(x) - mean(y)`` under random relabelling of the pooled
    values: the share of splits into groups of ``len(x)`` and ``len(y)`` whose difference is at
    least the observed one. Exact when the number of splits is at most ``max_exact``."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) == 0 or len(y) == 0:
        return math.nan
    pooled, n = np.concatenate([x, y]), len(x)
    observed = x.mean() - y.mean()
    if math.comb(len(pooled), n) <= max_exact:
        groups = np.array(list(itertools.combinations(range(len(pooled)), n)))
        mask = np.zeros((len(groups), len(pooled)), bool)
        np.put_along_axis(mask, groups, True, axis=1)
    else:
        rng = np.random.default_rng(seed)
        order = np.argsort(rng.random((max_exact, len(pooled))), axis=1)
        mask = np.zeros((max_exact, len(pooled)), bool)
        np.put_along_axis(mask, order[:, :n], True, axis=1)
    diffs = (mask @ pooled) / n - ((~mask) @ pooled) / len(y)
    return float(np.mean(diffs >= observed - 1e-12))


def difference_interval(
    x: Sequence[float],
    y: Sequence[float],
    confidence: float = 0.95,
    reps: int = REPS,
    seed: int = 0,
) -> Interval:
    """``mean(x) - mean(y)`` of scores ``x`` [N] and ``y`` [M] (an effect size in the metric's
    units) with its percentile-bootstrap interval, each group resampled on its own (strata =
    methods, as rliable's stratified bootstrap). NaN bounds when either has fewer than 2 runs."""
    from scipy import stats as scipy_stats

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.size == 0 or y.size == 0:
        return NAN
    point = float(x.mean() - y.mean())
    if x.size < 2 or y.size < 2:
        return Interval(point, math.nan, math.nan)
    if np.ptp(x) == 0 and np.ptp(y) == 0:  # no spread: every resample gives the point
        return Interval(point, point, point)
    result = scipy_stats.bootstrap(
        (x, y),
        lambda a, b, axis: a.mean(axis=axis) - b.mean(axis=axis),
        n_resamples=reps,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        random_state=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    return Interval(point, float(ci.low), float(ci.high))


def holm_alphas(p_values: Sequence[float], alpha: float) -> list[float]:
    """The level each of ``k`` hypotheses is tested at by Holm's step-down procedure: sorted
    by p-value, the i-th smallest (from 0) at ``alpha / (k - i)`` while every smaller one is
    rejected, and at 0 (never rejected) after the first that is not. ``p < level`` rejects.
    Controls the family-wise error rate at ``alpha`` for any dependence between the tests."""
    k = len(p_values)
    levels = [0.0] * k
    for rank, i in enumerate(sorted(range(k), key=lambda j: p_values[j])):
        level = alpha / (k - rank)
        levels[i] = level
        if not p_values[i] < level:
            break
    return levels


def seeds_to_decide(
    x: Sequence[float], y: Sequence[float], *, margin: float | None, alpha: float
) -> int | None:
    """Seeds per method that would decide a check if the observed difference and spread held
    (a normal approximation): for "better" (``margin`` None), a one-sided test at ``alpha``
    with 80% power; for "no-worse within ``margin``", a two-sided ``1 - alpha`` interval whose
    lower end clears ``-margin``. ``None`` when no sample size would (no observed advantage,
    or an observed deficit beyond the margin)."""
    from scipy.stats import norm

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.size < 2 or y.size < 2:
        return None
    diff = x.mean() - y.mean()
    sd = math.sqrt(
        (x.var(ddof=1) * (x.size - 1) + y.var(ddof=1) * (y.size - 1)) / (x.size + y.size - 2)
    )
    if margin is None:
        gap, z = diff, norm.ppf(1 - alpha) + norm.ppf(0.8)
    else:
        gap, z = diff + margin, norm.ppf(1 - alpha / 2)
    if gap <= 0:
        return None
    if sd == 0:
        return 2
    return max(2, math.ceil(2 * (z * sd / gap) ** 2))
