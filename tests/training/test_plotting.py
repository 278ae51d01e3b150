import json

import numpy as np
import pytest

from behavior_priors.training.plotting import aggregate, bootstrap_ci, group_runs, plot_runs


def test_bootstrap_ci_covers_the_true_mean_at_the_nominal_rate():
    # Monte Carlo coverage check: 95% intervals from 10 seeds of N(0, 1) contain 0 ~ 90-97% of
    # the time (the percentile bootstrap is a little narrow for small n).
    rng = np.random.default_rng(0)
    values = rng.normal(size=(400, 10, 1))
    hits = 0
    for i, v in enumerate(values):
        _, lo, hi = bootstrap_ci(v, num_resamples=500, seed=i)
        hits += bool(lo[0] <= 0.0 <= hi[0])
    assert 0.88 <= hits / 400 <= 0.98


def test_bootstrap_ci_edge_cases():
    m, lo, hi = bootstrap_ci(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal([m, lo, hi], [[1, 2]] * 3)
    m, lo, hi = bootstrap_ci(np.array([[1.0], [3.0], [2.0]]))
    assert m[0] == 2.0 and 1.0 <= lo[0] <= 2.0 <= hi[0] <= 3.0
    with pytest.raises(ValueError, match="num_seeds"):
        bootstrap_ci(np.zeros(3))


def _write_run(path, steps, values):
    path.mkdir(parents=True)
    with (path / "metrics.jsonl").open("w") as f:
        for s, v in zip(steps, values, strict=True):
            f.write(json.dumps({"env_steps": s, "charts/episode_return": v}) + "\n")


def test_aggregate_interpolates_runs_onto_a_common_grid(tmp_path):
    _write_run(tmp_path / "a-seed0", [0, 10, 20], [0.0, 1.0, 2.0])
    _write_run(tmp_path / "a-seed1", [0, 5, 15, 30], [2.0, 2.5, 3.5, 5.0])
    steps, mean, lo, hi, n = aggregate(
        [tmp_path / "a-seed0", tmp_path / "a-seed1"], "charts/episode_return", num_points=3
    )
    np.testing.assert_allclose(steps, [0, 10, 20])  # up to the shortest run
    np.testing.assert_allclose(mean, [1.0, 2.0, 3.0])
    assert n == 2 and np.all(lo <= mean) and np.all(mean <= hi)
    with pytest.raises(KeyError, match="never logged"):
        aggregate([tmp_path / "a-seed0"], "eval/episode_return")


def test_group_runs_and_plot(tmp_path):
    for name in ("hier-seed0", "hier-seed1", "flat-seed0"):
        _write_run(tmp_path / name, [0, 10], [0.0, 1.0])
    groups = group_runs(sorted(tmp_path.iterdir()))
    assert sorted(groups) == ["flat", "hier"] and len(groups["hier"]) == 2
    out = plot_runs(sorted(tmp_path.iterdir()), tmp_path / "curves.png")
    assert out.stat().st_size > 1000 and out.read_bytes()[:4] == b"\x89PNG"


def test_seeds_logged_at_the_same_steps_keep_those_steps(tmp_path):
    """Evaluations of seeds of one config share their steps: plotted where they were taken
    (no interpolation), so a run evaluated once is one point, which the plot marks."""
    _write_run(tmp_path / "b-seed0", [100, 200], [1.0, 3.0])
    _write_run(tmp_path / "b-seed1", [100, 200], [3.0, 5.0])
    steps, mean, *_ = aggregate(
        [tmp_path / "b-seed0", tmp_path / "b-seed1"], "charts/episode_return"
    )
    np.testing.assert_array_equal(steps, [100, 200])
    np.testing.assert_array_equal(mean, [2.0, 4.0])
    _write_run(tmp_path / "once", [300], [7.0])
    steps, mean, *_ = aggregate([tmp_path / "once"], "charts/episode_return")
    assert list(steps) == [300] and list(mean) == [7.0]
    out = plot_runs([tmp_path / "once"], tmp_path / "once.png")
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_default_panels_show_success_only_where_there_is_some():
    from behavior_priors.training.plotting import default_metrics

    never = [{"env_steps": 10, "eval/success_rate": 0.0, "eval/episode_return": -900.0}]
    assert default_metrics(never) == ("charts/episode_return", "eval/episode_return")
    some = [*never, {"env_steps": 20, "eval/success_rate": 0.25}]
    assert default_metrics(some) == ("charts/episode_return", "eval/success_rate")
