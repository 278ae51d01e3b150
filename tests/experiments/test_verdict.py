"""The verdict rule on hand-made AUCs whose permutation p-values and P(a > b) are known."""

import dataclasses
import math

import numpy as np
import pytest

from behavior_priors.experiments import get_experiment
from behavior_priors.experiments.stats import performance_profile
from behavior_priors.experiments.verdict import check, claim_verdict

LOW = [0.10, 0.12, 0.14, 0.16, 0.18]
HIGH = [0.60, 0.62, 0.64, 0.66, 0.68]
MIXED = [0.11, 0.61, 0.13, 0.63, 0.15]


def test_separated_runs_decide_the_check_both_ways():
    # Every run of HIGH beats every run of LOW: P = 1 and p = 1/252, the smallest 5 vs 5 allows.
    c = check("t", "hier", "noprior", "better", HIGH, LOW)
    assert c.outcome == "agree" and c.improvement.point == 1.0
    assert c.p_a_better == pytest.approx(1 / 252) and c.p_b_better == 1.0
    assert check("t", "hier", "noprior", "better", LOW, HIGH).outcome == "disagree"
    assert check("t", "hier", "flat", "no-worse", LOW, HIGH).outcome == "disagree"
    assert check("t", "hier", "flat", "no-worse", HIGH, LOW).reason == "hier significantly better"


def test_overlapping_runs_are_inconclusive_for_better_and_agree_for_no_worse():
    c = check("t", "a", "b", "better", MIXED, MIXED[::-1])
    assert c.outcome == "inconclusive" and c.improvement.point == pytest.approx(0.5)
    n = check("t", "a", "b", "no-worse", MIXED, MIXED[::-1])
    assert n.outcome == "agree" and n.reason == "no significant difference"


def test_floor_and_ceiling_are_not_tested_and_one_seed_is_not_enough():
    assert check("t", "a", "b", "better", [1.0] * 5, [0.96] * 5).outcome == "not tested"
    assert check("t", "a", "b", "better", [0.0] * 5, [0.04] * 5).outcome == "not tested"
    # One method at the floor, the other learning: informative.
    assert check("t", "a", "b", "better", HIGH, [0.0] * 5).outcome == "agree"
    one = check("t", "a", "b", "better", [0.9], LOW)
    assert one.outcome == "not tested" and math.isnan(one.p_a_better)
    with pytest.raises(ValueError, match="kind"):
        check("t", "a", "b", "worse", HIGH, LOW)


def test_floor_and_ceiling_are_fractions_of_the_metric_range():
    # Returns of 30-55 (a return metric): with the success rate's (0, 1) both would count as
    # "at the ceiling"; without bounds the test is skipped and the runs decide.
    low, high = [30.0, 31.0, 32.0, 33.0, 34.0], [50.0, 51.0, 52.0, 53.0, 54.0]
    assert check("t", "a", "b", "better", high, low).outcome == "not tested"
    assert check("t", "a", "b", "better", high, low, bounds=None).outcome == "agree"
    # Range (0, 100): the ceiling is 95 and the floor 5.
    assert check("t", "a", "b", "better", [96.0] * 5, [99.0] * 5, (0, 100)).outcome == (
        "not tested"
    )
    assert check("t", "a", "b", "better", [4.0] * 5, [1.0] * 5, (0, 100)).reason.endswith("5)")
    assert check("t", "a", "b", "better", high, low, (0, 100)).outcome == "agree"


def test_claim_verdict_combines_checks():
    agree = check("t", "a", "b", "better", HIGH, LOW)
    incon = check("t", "a", "b", "better", MIXED, MIXED)
    dis = check("t", "a", "b", "better", LOW, HIGH)
    untested = check("t", "a", "b", "better", [1.0] * 3, [1.0] * 3)
    assert claim_verdict([agree, untested]) == "agree"
    assert claim_verdict([agree, incon]) == "inconclusive"
    assert claim_verdict([agree, incon, dis]) == "disagree"
    assert claim_verdict([untested]) == claim_verdict([]) == "not tested"


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
