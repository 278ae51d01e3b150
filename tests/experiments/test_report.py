"""Report statistics: hand-derived curves, bootstrap intervals against a known distribution."""

import json
import math

import numpy as np
import pytest

from behavior_priors.experiments import Experiment, ExperimentTask, build_report, run_specs
from behavior_priors.experiments.report import (
    area_under_curve,
    permutation_p_value,
    steps_to_threshold,
)
from behavior_priors.experiments.stats import improvement_interval, iqm_interval
from behavior_priors.training.plotting import bootstrap_ci

TWO = Experiment(
    name="two",
    description="",
    claim="",
    methods=("noprior", "hier"),
    tasks=(ExperimentTask("gtt1", "gtt1", "pointmass"),),
    total_env_steps=300,
    seeds=2,
    threshold=0.5,
)


def test_area_and_threshold_by_hand():
    steps = np.array([100.0, 200.0, 300.0])
    values = np.array([0.0, 0.5, 1.0])
    # Trapezoids: (0 + 0.5) / 2 * 100 + (0.5 + 1) / 2 * 100 = 100, over a span of 200.
    assert area_under_curve(steps, values) == pytest.approx(0.5)
    assert area_under_curve(steps[:1], values[:1]) == 0.0
    assert steps_to_threshold(steps, values, 0.5) == 200.0
    assert steps_to_threshold(steps, values, 0.99) == 300.0
    assert steps_to_threshold(steps, values, 1.01) is None


def test_permutation_p_value_by_hand_and_by_sampling():
    # 20 ways to pick 3 of 6 values; only {1, 2, 3} itself reaches the observed difference 2.
    assert permutation_p_value([1, 2, 3], [0, 0, 0]) == pytest.approx(1 / 20)
    # Ties count: with x = y every split's difference is >= 0.
    assert permutation_p_value([1, 1], [1, 1]) == 1.0
    # x = [3, 1], y = [2, 0]: observed 2 - 1 = 1. The 6 splits give differences {3,1}: 1,
    # {3,2}: 2, {3,0}: 0, {1,2}: 0, {1,0}: -2, {2,0}: -1; two reach 1.
    assert permutation_p_value([3, 1], [2, 0]) == pytest.approx(2 / 6)
    # Random splits approximate the exact value when the exact count is too large.
    rng = np.random.default_rng(1)
    x, y = rng.normal(0.5, 1, 8), rng.normal(0, 1, 8)
    exact = permutation_p_value(x, y)
    sampled = permutation_p_value(x, y, max_exact=1000)
    assert sampled == pytest.approx(exact, abs=0.05)
    assert math.isnan(permutation_p_value([], [1.0]))


def _fake_run(run_dir, evals, wall_per_step=0.01):
    """A finished run directory whose metrics.jsonl holds ``evals`` = [(steps, success)]."""
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text("{}")
    lines = []
    for steps, success in evals:
        lines.append({"env_steps": steps, "charts/episode_return": 1.0})  # no eval: ignored
        lines.append(
            {
                "env_steps": steps,
                "eval/success_rate": success,
                "perf/wall_time_s": steps * wall_per_step,
            }
        )
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    (run_dir / "final_eval.json").write_text(json.dumps({"eval/success_rate": evals[-1][1]}))


def test_report_numbers_by_hand(tmp_path):
    curves = {
        ("noprior", 0): [(100, 0.0), (200, 0.0), (300, 0.25)],
        ("noprior", 1): [(100, 0.0), (200, 0.5), (300, 0.75)],
        ("hier", 0): [(100, 0.5), (200, 1.0), (300, 1.0)],
        # seed 1 of hier is missing: the report lists it and summarises one seed
    }
    for spec in run_specs(TWO, tmp_path):
        if (spec.method, spec.seed) in curves:
            _fake_run(spec.run_dir, curves[spec.method, spec.seed])
    report = build_report(TWO, tmp_path)
    assert report.missing == ["gtt1/hier/seed1"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    by = {m["method"]: m for m in summary["methods"]}
    noprior, hier = by["noprior"], by["hier"]
    assert noprior["final"]["values"] == [0.25, 0.75]
    assert noprior["final"]["mean"] == pytest.approx(0.5)
    # AUCs: seed 0: ((0 + 0) / 2 * 100 + (0 + 0.25) / 2 * 100) / 200 = 0.0625;
    # seed 1: ((0 + 0.5) / 2 * 100 + (0.5 + 0.75) / 2 * 100) / 200 = 0.4375.
    assert noprior["auc"]["values"] == pytest.approx([0.0625, 0.4375])
    assert noprior["steps_to_threshold"] == [None, 200.0]
    assert hier["seeds"] == [0]
    assert hier["final"]["values"] == [1.0]
    assert hier["auc"]["mean"] == pytest.approx((0.75 * 100 + 1.0 * 100) / 200)
    assert hier["steps_to_threshold"] == [100.0]
    assert hier["wall_minutes"]["values"] == pytest.approx([300 * 0.01 / 60])
    text = report.path.read_text()
    assert "| gtt1 | noprior | 2 | 0.50 [" in text
    assert "200 (1/2)" in text and "100 (1/1)" in text
    assert "gtt1/hier/seed1" in text
    assert "hier - noprior" not in text  # one seed of hier: no comparison
    assert report.figure.stat().st_size > 1000
    # Two seeds: the IQM trims nothing (a quarter of 2 runs rounds to 0), so it is the mean.
    assert noprior["final_iqm"]["point"] == pytest.approx(0.5)
    assert hier["auc_iqm"]["point"] == pytest.approx(0.875)
    # Built again from the same runs, the page is the same, byte for byte (seeded bootstrap).
    assert build_report(TWO, tmp_path).path.read_text() == text


def test_iqm_and_probability_of_improvement_by_hand():
    """IQM of 5 runs: the mean of the middle 3 (a quarter, rounded down, trimmed from each
    end). P(X > Y): over the 25 pairs of x = [.9, .8, .95, .7, .85] and y = [.1, .2, .75, .3,
    .4], only (0.7, 0.75) is not an improvement: 24/25. Ties count a half."""
    iqm = iqm_interval([1.0, 0.1, 0.6, 0.5, 0.7])
    assert iqm.point == pytest.approx((0.5 + 0.6 + 0.7) / 3)
    assert 0.1 <= iqm.low <= iqm.point <= iqm.high <= 1.0
    # Seeded: the same whatever NumPy's global generator holds (rliable draws its resamples
    # from it; a fresh process starts it from OS entropy), and that state is left as it was.
    for other in (1, 7, 123):
        np.random.seed(other)  # noqa: NPY002 (the global generator rliable draws from)
        before = np.random.get_state()[1].copy()  # noqa: NPY002
        assert iqm_interval([1.0, 0.1, 0.6, 0.5, 0.7]) == iqm
        np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002
    better = improvement_interval([0.9, 0.8, 0.95, 0.7, 0.85], [0.1, 0.2, 0.75, 0.3, 0.4])
    assert better.point == pytest.approx(24 / 25)
    assert better.low <= better.point <= better.high == 1.0
    same = improvement_interval([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    assert (same.point, same.low, same.high) == (0.5, 0.5, 0.5)
    assert math.isnan(improvement_interval([1.0], [0.0, 1.0]).point)
    assert iqm_interval([0.3]).point == 0.3 and math.isnan(iqm_interval([0.3]).low)
    assert math.isnan(iqm_interval([]).point)


def test_report_compares_with_rliable_and_the_permutation_test(tmp_path):
    curves = {
        ("noprior", 0): [(100, 0.0), (200, 0.0), (300, 0.25)],
        ("noprior", 1): [(100, 0.0), (200, 0.5), (300, 0.75)],
        ("hier", 0): [(100, 0.5), (200, 1.0), (300, 1.0)],
        ("hier", 1): [(100, 0.75), (200, 1.0), (300, 1.0)],
    }
    for spec in run_specs(TWO, tmp_path):
        _fake_run(spec.run_dir, curves[spec.method, spec.seed])
    text = build_report(TWO, tmp_path).path.read_text()
    # Both AUCs of hier (0.875, 0.9375) exceed both of noprior (0.0625, 0.4375): P = 1.
    assert "| gtt1 | hier - noprior | 1.00 [1.00, 1.00] | +0.656 | 0.167 |" in text


def test_bootstrap_interval_covers_normal_mean():
    """The 95% percentile-bootstrap interval of a mean of n normal draws: about
    mean +- 1.96 sigma / sqrt(n) wide, and covering the true mean about 95% of the time."""
    rng = np.random.default_rng(0)
    n, trials, sigma = 40, 300, 2.0
    covered, widths = 0, []
    for t in range(trials):
        x = rng.normal(1.0, sigma, size=(n, 1))
        mean, low, high = bootstrap_ci(x, num_resamples=1000, seed=t)
        assert mean[0] == pytest.approx(x.mean())
        covered += low[0] <= 1.0 <= high[0]
        widths.append(high[0] - low[0])
    # Binomial(300, 0.95) has sd 1.3%; the percentile bootstrap under-covers slightly at n=40.
    assert 0.89 <= covered / trials <= 0.99
    expected = 2 * 1.96 * sigma / math.sqrt(n) * math.sqrt((n - 1) / n)
    assert np.mean(widths) == pytest.approx(expected, rel=0.05)


def test_bootstrap_interval_of_constant_and_single_seed():
    mean, low, high = bootstrap_ci(np.full((5, 3), 0.25))
    np.testing.assert_allclose([mean, low, high], 0.25)
    mean, low, high = bootstrap_ci(np.array([[0.1, 0.2]]))
    np.testing.assert_allclose(low, mean)
    np.testing.assert_allclose(high, mean)
    with pytest.raises(ValueError, match="num_seeds"):
        bootstrap_ci(np.zeros(3))


def test_reproduce_without_rliable_says_so_before_training(monkeypatch, tmp_path, capsys):
    """Without the ``experiments`` extra, ``reproduce`` stops at once with one line naming it,
    instead of failing at the report after training every run."""
    import sys

    from behavior_priors.cli import main

    monkeypatch.setitem(sys.modules, "rliable", None)  # import rliable raises ImportError
    assert main(["reproduce", "smoke", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "behavior-priors[experiments]" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
