"""The verdict on a claim, decided by a fixed rule from the runs' AUCs (not by the reader).

A claim is checked as pairs ``(a, b, kind)`` (:attr:`~.registry.Experiment.verdict`) on each
task. On the per-seed AUCs (the mean success during training, so "learns faster" counts):

* ``a`` is **significantly better** than ``b`` when the one-sided permutation p-value of
  ``mean(a) - mean(b)`` is below ``ALPHA`` *and* the 95% interval of rliable's probability of
  improvement P(a > b) lies above 0.5; ``b`` better than ``a`` likewise;
* ``"better"`` (the claim says ``a`` learns faster): **agree** if ``a`` is significantly
  better, **disagree** if ``b`` is, else **inconclusive** at this number of seeds;
* ``"no-worse"`` (``a`` learns at least as fast): **disagree** if ``b`` is significantly
  better, else **agree** (saying whether ``a`` was significantly better or no different);
* **not tested** when the setting cannot tell the methods apart: both AUCs' interquartile
  means at or above ``CEILING`` (both solve it from the start) or at or below ``FLOOR``
  (neither learns anything), as fractions of the metric's range ``bounds`` (a success rate's
  ``(0, 1)``); a metric without known bounds (a return) skips this test.

The claim's verdict: *not tested* if every check is; else *disagree* if any check disagrees;
*agree* if every tested check agrees; *inconclusive* otherwise. A report with runs not yet
finished says *pending* instead (:mod:`.report`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from behavior_priors.experiments.stats import (
    Interval,
    improvement_interval,
    iqm_interval,
    permutation_p_value,
)

ALPHA = 0.05
CEILING = 0.95
FLOOR = 0.05


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

    def row(self) -> str:
        claim = (
            f"{self.a} faster than {self.b}"
            if self.kind == "better"
            else (f"{self.a} at least as fast as {self.b}")
        )
        p = f"{self.p_a_better:.3f} / {self.p_b_better:.3f}"
        return (
            f"| {self.task} | {claim} | {self.improvement.text()} | {p} | **{self.outcome}** "
            f"| {self.reason} |"
        )


def check(
    task: str,
    a: str,
    b: str,
    kind: str,
    auc_a: Sequence[float],
    auc_b: Sequence[float],
    bounds: tuple[float, float] | None = (0.0, 1.0),
) -> Check:
    """Apply the rule of the module docstring to the per-seed AUCs of ``a`` [N] and ``b`` [M];
    ``bounds``: the metric's range (``None``: unknown, no floor or ceiling)."""
    if kind not in ("better", "no-worse"):
        raise ValueError(f"kind must be 'better' or 'no-worse', got {kind!r}")
    if min(len(auc_a), len(auc_b)) < 2:
        return Check(
            task,
            a,
            b,
            kind,
            "not tested",
            "fewer than 2 seeds",
            Interval(math.nan, math.nan, math.nan),
            math.nan,
            math.nan,
        )
    improvement = improvement_interval(auc_a, auc_b)
    p_ab = permutation_p_value(auc_a, auc_b)
    p_ba = permutation_p_value(auc_b, auc_a)
    iqm_a, iqm_b = iqm_interval(auc_a).point, iqm_interval(auc_b).point

    def result(outcome: str, reason: str) -> Check:
        return Check(task, a, b, kind, outcome, reason, improvement, p_ab, p_ba)

    if bounds is not None:
        low, high = bounds
        ceiling, floor = low + CEILING * (high - low), low + FLOOR * (high - low)
        if min(iqm_a, iqm_b) >= ceiling:
            return result("not tested", f"both AUCs at the ceiling (IQM >= {ceiling:g})")
        if max(iqm_a, iqm_b) <= floor:
            return result("not tested", f"both AUCs at the floor (IQM <= {floor:g})")
    a_better = p_ab < ALPHA and improvement.low > 0.5
    b_better = p_ba < ALPHA and improvement.high < 0.5
    if kind == "better":
        if a_better:
            return result("agree", f"{a} significantly better")
        if b_better:
            return result("disagree", f"{b} significantly better")
        return result("inconclusive", "no significant difference at these seeds")
    if b_better:
        return result("disagree", f"{b} significantly better")
    if a_better:
        return result("agree", f"{a} significantly better")
    return result("agree", "no significant difference")


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
    "inconclusive": "more seeds (5 against 5 gives p >= 1/252; the interval of P(a > b) "
    "narrows with more runs), or a budget at which the curves separate.",
    "not tested": "a setting where the baseline is neither at 0 nor at 1 within the budget.",
}
