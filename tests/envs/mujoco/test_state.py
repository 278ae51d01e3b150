"""Exact save and restore of MuJoCo task environments (what checkpoints rely on)."""

import numpy as np
import pytest

from behavior_priors.envs.registry import make


@pytest.mark.parametrize("name", ["pointmass-gtt3", "ball-movebox-then-gtt", "ant-movebox"])
def test_set_state_continues_bit_identically_across_episode_ends(name):
    env = make(name, num_envs=3, seed=0, episode_seconds=2.0)
    n = env.action_spec().shape[0]
    rng = np.random.default_rng(0)
    for _ in range(25):
        env.step(rng.uniform(-1, 1, (3, n)))
    copy = make(name, num_envs=3, seed=123, episode_seconds=2.0)  # another seed: all overwritten
    copy.set_state(env.get_state())
    for actions in rng.uniform(-1, 1, (90, 3, n)):  # crosses two auto-resets per copy
        a, b = env.step(actions), copy.step(actions)
        for k in a.observation:
            np.testing.assert_array_equal(a.observation[k], b.observation[k])
        np.testing.assert_array_equal(a.reward, b.reward)
        np.testing.assert_array_equal(a.step_type, b.step_type)
        np.testing.assert_array_equal(a.task_id, b.task_id)


def test_state_of_another_model_is_a_clear_error():
    state = make("pointmass-gtt3", num_envs=2, seed=0).get_state()
    with pytest.raises(ValueError, match="another body, arena or number of copies"):
        make("ant-gtt3", num_envs=2, seed=0).set_state(state)
    with pytest.raises(ValueError, match="number of copies"):
        make("pointmass-gtt3", num_envs=3, seed=0).set_state(state)


def test_snapshot_reports_world_positions():
    env = make("pointmass-movebox", num_envs=2, seed=0)
    snap = env.snapshot(1)
    assert snap["targets"].shape == (2, 2) and snap["boxes"].shape == (2, 2)
    assert np.all(np.abs(snap["body_xy"]) < snap["half_size"])
    assert snap["task"].startswith("move_box")
    with pytest.raises(IndexError):
        env.snapshot(2)
