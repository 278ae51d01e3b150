"""The verdict rule on hand-made AUCs whose permutation p-values and P(a > b) are known."""

import dataclasses
import math

import numpy as np
import pytest

from behavior_priors.experiments import get_experiment, verdict
from behavior_priors.experiments.stats import (
    difference_interval,
    holm_alphas,
    performance_profile,
    seeds_to_decide,
)
from behavior_priors.experiments.verdict import (
    MARGIN,
    check,
    claim_checks,
    claim_verdict,
    non_inferiority,
)


@pytest.fixture(autouse=True)
def fewer_resamples(monkeypatch):
    """rliable's interval of P(a > b) costs ~3 ms a resample at 10 against 10; these runs are
    clear-cut, so 400 resamples decide them as 2,000 would, five times sooner."""
    monkeypatch.setattr(verdict, "REPS", 400)


# Ten seeds each (a verdict needs 10 per method).
LOW = [0.10, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 0.17, 0.18, 0.19]
HIGH = [0.60, 0.61, 0.62, 0.63, 0.64, 0.65, 0.66, 0.67, 0.68, 0.69]
MIXED = [0.11, 0.61, 0.13, 0.63, 0.15, 0.65, 0.17, 0.67, 0.19, 0.69]


def test_separated_runs_decide_the_check_both_ways():
    # Every run of HIGH beats every run of LOW: P = 1; p is the Monte-Carlo share of 20,000
    # relabellings at least as extreme (exactly 1/184,756 of them), so at most 1e-3.
    c = check("t", "hier", "noprior", "better", HIGH, LOW)
    assert c.outcome == "agree" and c.improvement.point == 1.0
    assert c.p_a_better < 1e-3 and c.p_b_better == 1.0
    assert c.difference.point == pytest.approx(0.5)
    assert c.difference.low <= 0.5 <= c.difference.high
    assert check("t", "hier", "noprior", "better", LOW, HIGH).outcome == "disagree"
    worse = check("t", "hier", "flat", "no-worse", LOW, HIGH)
    assert worse.outcome == "disagree" and "more than the margin" in worse.reason
    better = check("t", "hier", "flat", "no-worse", HIGH, LOW)
    assert better.outcome == "agree" and "excluded" in better.reason


def test_no_significant_difference_is_not_agreement_that_a_is_no_worse():
    """Before: "no-worse" agreed whenever no significant deficit was found."""
    c = check("t", "a", "b", "better", MIXED, MIXED[::-1])
    assert c.outcome == "inconclusive" and c.improvement.point == pytest.approx(0.5)
    n = check("t", "a", "b", "no-worse", MIXED, MIXED[::-1])
    # The runs are spread over 0.1-0.7: the interval of the difference is about +-0.17 wide.
    assert n.outcome == "inconclusive" and n.difference.low < -0.05
    assert n.seeds_needed is not None and n.seeds_needed > 10
    # With a margin wider than that spread, the same runs do show "no worse".
    assert check("t", "a", "b", "no-worse", MIXED, MIXED[::-1], margin=0.3).outcome == "agree"


def test_a_simulated_one_sd_deficit_is_not_agreement():
    """The issue's simulation: 10 against 10 seeds with AUC s.d. 0.07. With no gap the rule
    often agrees; with ``a`` one s.d. (0.07, beyond the 0.05 margin) worse, it agrees at most
    at the interval's one-sided error rate (2.5%) plus the bootstrap's and sampling's slack."""
    rng = np.random.default_rng(0)

    def agree_rate(gap: float, trials: int = 300) -> float:
        agree = 0
        for _ in range(trials):
            a, b = rng.normal(0.5 - gap, 0.07, 10), rng.normal(0.5, 0.07, 10)
            agree += non_inferiority(difference_interval(a, b, reps=500), MARGIN)[0] == "agree"
        return agree / trials

    assert agree_rate(0.07) <= 0.05
    assert agree_rate(0.10) <= 0.01
    assert agree_rate(0.0) >= 0.15  # it can agree: the rule is not "never"


def test_a_decided_outcome_needs_ten_seeds_per_method():
    c = check("t", "a", "b", "better", HIGH[:5], LOW[:5])
    assert c.outcome == "inconclusive"
    assert "would be agree" in c.reason and "have 5 and 5" in c.reason


def test_floor_and_ceiling_are_not_tested_and_one_seed_is_not_enough():
    assert check("t", "a", "b", "better", [1.0] * 5, [0.96] * 5).outcome == "not tested"
    assert check("t", "a", "b", "better", [0.0] * 5, [0.04] * 5).outcome == "not tested"
    # One method at the floor, the other learning: informative.
    assert check("t", "a", "b", "better", HIGH, [0.0] * 10).outcome == "agree"
    one = check("t", "a", "b", "better", [0.9], LOW)
    assert one.outcome == "not tested" and math.isnan(one.p_a_better)
    with pytest.raises(ValueError, match="kind"):
        check("t", "a", "b", "worse", HIGH, LOW)
    with pytest.raises(ValueError, match="margin"):
        check("t", "a", "b", "no-worse", HIGH, LOW, margin=-0.1)


def test_floor_and_ceiling_are_fractions_of_the_metric_range():
    # Returns of 30-55 (a return metric): with the success rate's (0, 1) both would count as
    # "at the ceiling"; without bounds the test is skipped and the runs decide.
    low, high = [30.0 + i for i in range(10)], [50.0 + i for i in range(10)]
    assert check("t", "a", "b", "better", high, low).outcome == "not tested"
    assert check("t", "a", "b", "better", high, low, bounds=None).outcome == "agree"
    # Range (0, 100): the ceiling is 95 and the floor 5.
    assert check("t", "a", "b", "better", [96.0] * 5, [99.0] * 5, (0, 100)).outcome == (
        "not tested"
    )
    assert check("t", "a", "b", "better", [4.0] * 5, [1.0] * 5, (0, 100)).reason.endswith("5)")


def test_holm_levels_match_a_reference_and_a_claim_shares_its_error_rate():
    p = [0.01, 0.04, 0.03, 0.005]
    levels = holm_alphas(p, 0.05)
    # By hand: sorted 0.005 (0.05/4), 0.01 (0.05/3), 0.03 (0.05/2 = 0.025: not rejected),
    # then 0.04 is tested at 0 (the step-down stops).
    assert levels == pytest.approx([0.05 / 3, 0.0, 0.025, 0.0125])
    rejected = [pv < lv for pv, lv in zip(p, levels, strict=True)]
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    assert rejected == list(multitest.multipletests(p, alpha=0.05, method="holm")[0])
    # Two checks of one claim: each is tested at a lower level than alone.
    checks = claim_checks(
        [("t1", "a", "b", "better", HIGH, LOW), ("t2", "a", "b", "better", MIXED, MIXED)]
    )
    # HIGH vs LOW has the smaller p: tested at 0.05 / 2 and rejected, so the other at 0.05.
    assert [c.alpha for c in checks] == pytest.approx([0.025, 0.05])
    assert [c.outcome for c in checks] == ["agree", "inconclusive"]


def test_claim_verdict_combines_checks():
    agree = check("t", "a", "b", "better", HIGH, LOW)
    incon = check("t", "a", "b", "better", MIXED, MIXED)
    dis = check("t", "a", "b", "better", LOW, HIGH)
    untested = check("t", "a", "b", "better", [1.0] * 3, [1.0] * 3)
    assert claim_verdict([agree, untested]) == "agree"
    assert claim_verdict([agree, incon]) == "inconclusive"
    assert claim_verdict([agree, incon, dis]) == "disagree"
    assert claim_verdict([untested]) == claim_verdict([]) == "not tested"


def test_seeds_to_decide_follows_the_normal_approximation():
    # diff 0.1, pooled s.d. of two samples spread +-0.1: n = 2 ((1.645 + 0.842) s / 0.1)^2.
    a, b = [0.5, 0.7, 0.6, 0.4, 0.8], [0.4, 0.6, 0.5, 0.3, 0.7]
    s = float(np.std(a, ddof=1))
    expected = math.ceil(2 * ((1.6449 + 0.8416) * s / 0.1) ** 2)
    assert seeds_to_decide(a, b, margin=None, alpha=0.05) == expected
    assert seeds_to_decide(b, a, margin=None, alpha=0.05) is None  # no observed advantage
    # No-worse within 0.05: the gap to clear is diff + margin = 0.15, two-sided z = 1.96.
    assert seeds_to_decide(a, b, margin=0.05, alpha=0.05) == math.ceil(2 * (1.96 * s / 0.15) ** 2)
    assert seeds_to_decide(b, a, margin=0.05, alpha=0.05) is None  # deficit 0.1 > margin


def test_the_difference_interval_covers_the_true_difference_as_stated():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(200):
        a, b = rng.normal(0.3, 0.1, 10), rng.normal(0.2, 0.1, 10)
        d = difference_interval(a, b, reps=500)
        hits += d.low <= 0.1 <= d.high
    assert 0.85 <= hits / 200 <= 0.99  # percentile bootstrap, n = 10: slightly under 95%


def test_performance_profile_counts_runs_above_each_threshold():
    scores = [0.0, 0.25, 0.5, 0.5, 1.0]
    taus = np.array([-0.1, 0.0, 0.3, 0.5, 0.99, 1.0])
    profile, low, high = performance_profile(scores, taus)
    # Strictly above tau, by hand: 5, 4, 3, 1, 1, 0 of 5.
    np.testing.assert_allclose(profile, [1.0, 0.8, 0.6, 0.2, 0.2, 0.0])
    assert np.all(low <= profile) and np.all(profile <= high)
    assert low[0] == high[0] == 1.0 and low[-1] == high[-1] == 0.0
    single, nan_low, _ = performance_profile([0.4], taus)
    np.testing.assert_allclose(single, [1, 1, 1, 0, 0, 0])
    assert np.all(np.isnan(nan_low))


def test_a_success_rate_has_bounds_and_a_return_has_none():
    e = get_experiment("hier-vs-flat")
    assert e.metric_bounds == (0.0, 1.0)
    assert dataclasses.replace(e, metric="eval/episode_return").metric_bounds is None
