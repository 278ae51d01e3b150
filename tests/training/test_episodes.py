"""Episode bookkeeping helpers."""

import numpy as np
import pytest

from behavior_priors.training.episodes import wilson_interval


def test_wilson_interval_matches_the_hand_computed_value_and_its_coverage():
    # 8 of 10, z = 1.96: centre (0.8 + 0.19208) / 1.38416, half-width 1.96 * 0.160013 / 1.38416.
    low, high = wilson_interval(8, 10)
    np.testing.assert_allclose([low, high], [0.49016, 0.94335], atol=1e-4)
    # At the edges it stays inside [0, 1] and is not empty.
    assert wilson_interval(0, 16)[0] == 0.0 and wilson_interval(0, 16)[1] > 0.15
    assert wilson_interval(16, 16)[1] == 1.0 and wilson_interval(16, 16)[0] < 0.85
    # Coverage by simulation: close to 95% for p = 0.3 and 50 trials.
    rng = np.random.default_rng(0)
    hits = [
        lo <= 0.3 <= hi
        for lo, hi in (wilson_interval(int(k), 50) for k in rng.binomial(50, 0.3, size=4000))
    ]
    assert 0.93 < np.mean(hits) < 0.97


@pytest.mark.parametrize(("successes", "trials"), [(1, 0), (-1, 5), (6, 5)])
def test_wilson_interval_rejects_impossible_counts(successes, trials):
    with pytest.raises(ValueError, match="successes <= trials"):
        wilson_interval(successes, trials)
