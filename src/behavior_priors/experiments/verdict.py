"""The verdict on a claim, decided by a fixed rule from the runs' AUCs (not by the reader).

A claim is checked as pairs ``(a, b, kind)`` (:attr:`~.registry.Experiment.verdict`) on each
task. On the per-seed AUCs (the mean success during training, so "learns faster" counts):

* ``a`` is **significantly better** than ``b`` when the one-sided permutation p-value of
  ``mean(a) - mean(b)`` is below the check's level *and* the 95% interval of rliable's
  probability of improvement P(a > b) lies above 0.5; ``b`` better than ``a`` likewise;
* ``"better"`` (the claim says ``a`` learns faster): **agree** if ``a`` is significantly
  better, **disagree** if ``b`` is, else **inconclusive**;
* ``"no-worse"`` (``a`` learns at least as fast, within a non-inferiority ``margin`` stated in
  the metric's units, :data:`MARGIN` by default): on the bootstrap interval of
  ``mean(a) - mean(b)`` at confidence ``1 - level``, **agree** if its lower end is above
  ``-margin`` (a larger deficit is excluded), **disagree** if its upper end is below
  ``-margin`` (a deficit beyond the margin is shown), else **inconclusive**. No significant
  difference is never "agree" on its own: with few or noisy seeds it is inconclusive;
* a decided outcome needs at least :data:`MIN_SEEDS` seeds per method; with fewer it is
  **inconclusive**, saying what it would have been;
* **not tested** when the setting cannot tell the methods apart: both AUCs' interquartile
  means at or above ``CEILING`` (both solve it from the start) or at or below ``FLOOR``
  (neither learns anything), as fractions of the metric's range ``bounds`` (a success rate's
  ``(0, 1)``); a metric without known bounds (a return) skips this test.

Several checks of one claim (:func:`claim_checks`) share the family-wise error rate ``ALPHA``
by Holm's step-down procedure on their p-values (a "no-worse" check's interval uses its
level too). Each check reports the effect size (difference of mean AUCs with its interval)
and, when inconclusive, the seeds per method that would decide it if the observed difference
and spread held (:func:`~.stats.seeds_to_decide`).

The claim's verdict: *not tested* if every check is; else *disagree* if any check disagrees;
*agree* if every tested check agrees; *inconclusive* otherwise. A report with runs not yet
finished says *pending* instead (:mod:`.report`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from behavior_priors.experiments.stats import (
    REPS,
    Interval,
    difference_interval,
    holm_alphas,
    improvement_interval,
    iqm_interval,
    permutation_p_value,
    seeds_to_decide,
)

ALPHA = 0.05
CEILING = 0.95
FLOOR = 0.05
MARGIN = 0.05  # the default non-inferiority margin, in AUC units (success rate: 5 points)
MIN_SEEDS = 10
# 2: non-inferiority margin, 10 seeds per method, Holm. Pages record it; the index marks
# verdicts given by an older rule.
RULE_VERSION = 2
_NAN = Interval(math.nan, math.nan, math.nan)


@dataclass(frozen=True)
class Check:
    """The outcome of one check ``(a, b, kind)`` on one task."""

    task: str
    a: str
    b: str
    kind: str
    outcome: str  # "agree", "disagree", "inconclusive", "not tested"
    reason: str
    improvement: Interval
    p_a_better: float
    p_b_better: float
    difference: Interval = _NAN  # mean(a) - mean(b), the effect size, at confidence 1 - alpha
    margin: float = MARGIN
    alpha: float = ALPHA  # the level this check was tested at (after Holm)
    seeds_needed: int | None = None  # per method, to decide an inconclusive check

    def row(self) -> str:
        claim = (
            f"{self.a} faster than {self.b}"
            if self.kind == "better"
            else (f"{self.a} at least as fast as {self.b} (margin {self.margin:g})")
        )
        p = f"{self.p_a_better:.3f} / {self.p_b_better:.3f}"
        diff = self.difference.text("+.3f")
        if self.outcome == "inconclusive":
            need = f"~{self.seeds_needed}" if self.seeds_needed else "none would (see why)"
        else:
            need = ""
        return (
            f"| {self.task} | {claim} | {diff} | {self.improvement.text()} | {p} | "
            f"{self.alpha:.3g} | **{self.outcome}** | {self.reason} | {need} |"
        )


ROW_HEADER = (
    "| task | claim | AUC difference a - b | P(a > b) | p (a better / b better) | level "
    "| outcome | why | seeds per method to decide |",
    "|---|---|---|---|---|---|---|---|---|",
)


def check(
    task: str,
    a: str,
    b: str,
    kind: str,
    auc_a: Sequence[float],
    auc_b: Sequence[float],
    bounds: tuple[float, float] | None = (0.0, 1.0),
    *,
    margin: float = MARGIN,
    alpha: float = ALPHA,
) -> Check:
    """Apply the rule of the module docstring to the per-seed AUCs of ``a`` [N] and ``b`` [M];
    ``bounds``: the metric's range (``None``: unknown, no floor or ceiling); ``margin``: the
    non-inferiority margin of a "no-worse" check, in the metric's units; ``alpha``: the level
    this check is tested at (:func:`claim_checks` lowers it for a claim of several checks)."""
    if kind not in ("better", "no-worse"):
        raise ValueError(f"kind must be 'better' or 'no-worse', got {kind!r}")
    if not margin >= 0 or not 0 <= alpha < 1:
        raise ValueError(f"margin must be >= 0 and alpha in [0, 1), got {margin!r}, {alpha!r}")
    if min(len(auc_a), len(auc_b)) < 2:
        return Check(
            task, a, b, kind, "not tested", "fewer than 2 seeds", _NAN, math.nan, math.nan,
            margin=margin, alpha=alpha,
        )  # fmt: skip
    improvement = improvement_interval(auc_a, auc_b, reps=REPS)
    p_ab = permutation_p_value(auc_a, auc_b)
    p_ba = permutation_p_value(auc_b, auc_a)
    # An interval at level 0 (a Holm step that cannot reject) would be the whole line.
    difference = difference_interval(auc_a, auc_b, confidence=1 - max(alpha, 1e-6), reps=REPS)
    iqm_a, iqm_b = iqm_interval(auc_a, reps=REPS).point, iqm_interval(auc_b, reps=REPS).point
    n_min = min(len(auc_a), len(auc_b))

    def result(outcome: str, reason: str) -> Check:
        needed = None
        if outcome == "inconclusive":
            needed = seeds_to_decide(
                auc_a, auc_b, margin=margin if kind == "no-worse" else None, alpha=alpha or ALPHA
            )
            if needed is not None:
                needed = max(needed, MIN_SEEDS)
        return Check(
            task, a, b, kind, outcome, reason, improvement, p_ab, p_ba,
            difference, margin, alpha, needed,
        )  # fmt: skip

    if bounds is not None:
        low, high = bounds
        ceiling, floor = low + CEILING * (high - low), low + FLOOR * (high - low)
        if min(iqm_a, iqm_b) >= ceiling:
            return result("not tested", f"both AUCs at the ceiling (IQM >= {ceiling:g})")
        if max(iqm_a, iqm_b) <= floor:
            return result("not tested", f"both AUCs at the floor (IQM <= {floor:g})")
    a_better = p_ab < alpha and improvement.low > 0.5
    b_better = p_ba < alpha and improvement.high < 0.5
    if kind == "better":
        if a_better:
            outcome, reason = "agree", f"{a} significantly better"
        elif b_better:
            outcome, reason = "disagree", f"{b} significantly better"
        else:
            return result("inconclusive", "no significant difference at these seeds")
    else:
        outcome, reason = non_inferiority(difference, margin, a)
        if outcome == "inconclusive":
            return result(outcome, reason)
    if n_min < MIN_SEEDS:
        return result(
            "inconclusive",
            f"would be {outcome} ({reason}), but a verdict needs {MIN_SEEDS} seeds per method "
            f"(have {len(auc_a)} and {len(auc_b)})",
        )
    return result(outcome, reason)


def non_inferiority(difference: Interval, margin: float, a: str = "a") -> tuple[str, str]:
    """``(outcome, reason)`` of "``a`` is no worse than ``b`` within ``margin``" from the
    interval of ``mean(a) - mean(b)``: agree when its lower end is above ``-margin``, disagree
    when its upper end is below ``-margin``, inconclusive when it straddles ``-margin``."""
    if difference.low > -margin:
        return "agree", f"a deficit beyond the margin is excluded (lower end {difference.low:+.3f})"
    if difference.high < -margin:
        return "disagree", f"{a} worse by more than the margin (upper end {difference.high:+.3f})"
    return "inconclusive", f"the interval reaches across -{margin:g} at these seeds"


def claim_checks(
    items: Sequence[tuple[str, str, str, str, Sequence[float], Sequence[float]]],
    bounds: tuple[float, float] | None = (0.0, 1.0),
    *,
    margin: float = MARGIN,
    alpha: float = ALPHA,
) -> list[Check]:
    """The checks ``(task, a, b, kind, auc_a, auc_b)`` of one claim, each at its Holm level:
    the family of checks keeps its chance of any false "agree" or "disagree" at ``alpha``.
    A check's p-value for the ordering is the smaller of its two one-sided ones."""
    p = [
        min(permutation_p_value(x, y), permutation_p_value(y, x))
        if min(len(x), len(y)) >= 2
        else 1.0
        for *_, x, y in items
    ]
    levels = holm_alphas(p, alpha)
    return [
        check(*item, bounds, margin=margin, alpha=level)
        for item, level in zip(items, levels, strict=True)
    ]


def claim_verdict(checks: Sequence[Check]) -> str:
    """The claim's verdict from its checks (module docstring); ``"not tested"`` for none."""
    tested = [c.outcome for c in checks if c.outcome != "not tested"]
    if not tested:
        return "not tested"
    if "disagree" in tested:
        return "disagree"
    if all(o == "agree" for o in tested):
        return "agree"
    return "inconclusive"


WHAT_WOULD_CHANGE = {
    "agree": "a significant difference the other way, or this one vanishing with more seeds "
    "(p >= 0.05, or the interval of P(a > b) reaching 0.5); a setting or tuning grid where "
    "the baseline does better.",
    "disagree": "more seeds or a larger tuning grid in which the claimed method is no longer "
    "significantly worse; a setting closer to the paper's (bodies, budgets) where it wins.",
    "inconclusive": "more seeds (the table's last column estimates how many would decide each "
    "check if the observed difference held; a verdict needs at least 10 per method), or a "
    "budget at which the curves separate.",
    "not tested": "a setting where the baseline is neither at 0 nor at 1 within the budget.",
}
