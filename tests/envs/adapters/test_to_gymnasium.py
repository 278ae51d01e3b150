"""Our environments as Gymnasium environments: env checker, step-type mapping, flattening."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from behavior_priors.envs import StepType
from behavior_priors.envs.adapters import (
    GymnasiumEnv,
    GymnasiumVectorEnv,
    to_gymnasium,
    to_gymnasium_vector,
)
from behavior_priors.envs.gridworld import GridWorld
from behavior_priors.envs.registry import list_envs

RIGHT = 3


def _check_env_strict(env: gym.Env) -> None:
    """``check_env``, failing on its warnings too (except render checks: we have no renderer)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    problems = [str(w.message) for w in caught if "render" not in str(w.message).lower()]
    assert not problems, problems


@pytest.mark.parametrize(
    "kwargs",
    [
        {"layout": "tworooms"},
        {"layout": "fourrooms", "slip": 0.2, "allow_stay": True, "position_encoding": "xy"},
    ],
)
@pytest.mark.parametrize("flatten", [False, True])
def test_gridworld_passes_the_env_checker(kwargs, flatten):
    env = to_gymnasium(GridWorld(**kwargs), flatten=flatten)
    _check_env_strict(env)
    assert isinstance(env.action_space, gym.spaces.Discrete)
    if flatten:
        assert isinstance(env.observation_space, gym.spaces.Box)
    else:
        assert set(env.observation_space.spaces) == {
            "proprio/position",
            "task/goal",
            "task/id_onehot",
            "task/goal_index",
        }


_POINTMASS = sorted(e.name for e in list_envs() if e.name.startswith("pointmass"))


@pytest.mark.parametrize("name", _POINTMASS or ["<none registered>"])
@pytest.mark.parametrize("flatten", [False, True])
def test_registered_continuous_envs_pass_the_env_checker(name, flatten):
    if not _POINTMASS:
        pytest.skip("no 'pointmass*' environment is registered yet")
    env = to_gymnasium(name, flatten=flatten)
    try:
        assert isinstance(env.action_space, gym.spaces.Box)
        # Unbounded observation boxes only warn; every other checker complaint fails the test.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env, skip_render_check=True)
        problems = [
            str(w.message)
            for w in caught
            if "render" not in str(w.message).lower() and "infinity" not in str(w.message)
        ]
        assert not problems, problems
    finally:
        env.close()


def test_terminated_and_truncated_mapping():
    env = to_gymnasium(GridWorld("tworooms", goals=[(1, 3)], start=(1, 1), max_steps=3))
    env.reset(seed=0)
    _, r, terminated, truncated, info = env.step(RIGHT)
    assert (r, terminated, truncated) == (0.0, False, False)
    _, r, terminated, truncated, info = env.step(np.int64(RIGHT))
    assert (r, terminated, truncated) == (1.0, True, False)
    assert info["discount"] == 0.0 and info["success"] and info["task_id"] == 2
    with pytest.raises(RuntimeError, match="reset"):
        env.step(RIGHT)
    env.reset()
    for expected in (False, False, True):
        _, r, terminated, truncated, info = env.step(0)  # up: into the wall, never the goal
        assert (terminated, truncated) == (False, expected)
    assert info["discount"] == 1.0


def test_flat_observation_is_sorted_key_concatenation():
    base = GridWorld("tworooms", position_encoding="xy", seed=0)
    flat = to_gymnasium(GridWorld("tworooms", position_encoding="xy"), flatten=True)
    obs, _ = flat.reset(seed=5)
    ts = base.reset(5)
    keys = sorted(ts.observation)
    expected = np.concatenate([ts.observation[k][0].ravel() for k in keys])
    np.testing.assert_array_equal(obs, expected)
    assert list(flat.flat_slices) == keys
    np.testing.assert_array_equal(
        obs[flat.flat_slices["task/goal"]], ts.observation["task/goal"][0]
    )
    # A subset of keys, by prefix.
    proprio = to_gymnasium(GridWorld("tworooms", position_encoding="xy"), keys=["proprio/"])
    assert list(proprio.observation_space.spaces) == ["proprio/position"]


def test_bad_input():
    with pytest.raises(ValueError, match="num_envs=2"):
        GymnasiumEnv(GridWorld("tworooms", num_envs=2))
    with pytest.raises(ValueError, match="matches nothing"):
        to_gymnasium(GridWorld("tworooms"), keys=["task/goals"])
    with pytest.raises(TypeError, match="registered name"):
        to_gymnasium(GridWorld("tworooms"), slip=0.1)
    env = to_gymnasium(GridWorld("tworooms"))
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="one integer"):
        env.step(1.5)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        env.step(7)


def test_vector_env_next_step_autoreset():
    venv = to_gymnasium_vector(GridWorld("tworooms", goals=[(1, 2)], start=(1, 1), num_envs=2))
    assert isinstance(venv, GymnasiumVectorEnv)
    assert venv.observation_space["task/goal"].shape == (2, 41)
    obs, infos = venv.reset(seed=0)
    assert obs["proprio/position"].shape == (2, 41)
    _, rewards, terminations, truncations, infos = venv.step(np.array([RIGHT, 0]))
    np.testing.assert_array_equal(terminations, [True, False])
    np.testing.assert_array_equal(truncations, [False, False])
    np.testing.assert_array_equal(rewards, [1.0, 0.0])
    np.testing.assert_array_equal(infos["discount"], [0.0, 1.0])
    np.testing.assert_array_equal(infos["success"], [True, False])
    obs, rewards, terminations, _, _ = venv.step(np.array([RIGHT, RIGHT]))
    # Copy 0 restarted (action ignored, reward 0); copy 1 reached the goal.
    np.testing.assert_array_equal(rewards, [0.0, 1.0])
    np.testing.assert_array_equal(terminations, [False, True])
    assert obs["proprio/position"][0].argmax() == 0  # back at (1, 1), state 0
    flat = to_gymnasium_vector("gridworld-fourrooms", num_envs=3, flatten=True)
    assert flat.reset(seed=1)[0].shape == (3, 3 * 104 + 4)  # + task/goal_index of 4 goals
    with pytest.raises(ValueError, match="num_envs"):
        to_gymnasium_vector("gridworld-fourrooms")


def test_gymnasium_step_type_is_consistent_with_ours():
    # Driving the same env directly and through the adapter gives the same episode ends.
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 4, 300)
    direct = GridWorld("tworooms", max_steps=7, seed=0)
    wrapped = to_gymnasium(GridWorld("tworooms", max_steps=7))
    direct.reset(3)
    wrapped.reset(seed=3)
    for a in actions:
        ts = direct.step(np.array([a], np.int32))
        if ts.step_type[0] == StepType.FIRST:
            wrapped.reset()
            continue
        obs, r, terminated, truncated, _ = wrapped.step(int(a))
        assert r == ts.reward[0]
        assert (terminated, truncated) == (bool(ts.terminated()[0]), bool(ts.truncated()[0]))
        np.testing.assert_array_equal(
            obs["proprio/position"], ts.observation["proprio/position"][0]
        )
