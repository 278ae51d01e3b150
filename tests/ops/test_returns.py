import jax
import numpy as np
import pytest

from behavior_priors.ops import discounted_returns, episode_return


def test_discounted_returns_by_hand():
    r = np.array([1.0, 2.0, 3.0], np.float32)
    d = np.array([0.5, 0.5, 0.5], np.float32)
    # G2 = 3 + .5*10 = 8; G1 = 2 + .5*8 = 6; G0 = 1 + .5*6 = 4
    np.testing.assert_allclose(discounted_returns(r, d, 10.0), [4.0, 6.0, 8.0])
    d[1] = 0.0  # termination after step 1
    np.testing.assert_allclose(discounted_returns(r, d, 10.0), [2.0, 2.0, 8.0])
    np.testing.assert_allclose(jax.jit(discounted_returns)(r, d, 10.0), [2.0, 2.0, 8.0])


def test_episode_return_and_errors():
    np.testing.assert_allclose(episode_return(np.ones((2, 5))), [5.0, 5.0])
    with pytest.raises(ValueError, match="shape"):
        discounted_returns(np.ones(3), np.ones(4), 0.0)
