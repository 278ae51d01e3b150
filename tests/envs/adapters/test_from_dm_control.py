"""dm_control suite and composer environments under our protocol."""

import sys

import numpy as np
import pytest

pytest.importorskip("dm_control", reason="the dmc extra is not installed")

import dm_env
from dm_control import suite
from dm_env import specs

from behavior_priors.envs import BoundedArraySpec, DiscreteSpec, Env, StepType
from behavior_priors.envs.adapters import FromDmControl, from_dm_control
from behavior_priors.envs.adapters.from_dm_control import require_dm_control
from behavior_priors.envs.registry import make


def _cartpole(time_limit: float = 0.1):
    # 0.1 s at cartpole's 0.01 s control step: 10 steps per episode.
    return suite.load("cartpole", "balance", task_kwargs={"time_limit": time_limit})


class Terminating(dm_env.Environment):
    """A dm_env environment that terminates after ``n`` steps with discount 0."""

    def __init__(self, n: int = 2):
        self.n, self.t, self.steps = n, 0, 0

    def reset(self):
        self.t = 0
        return dm_env.restart({"x": np.float64(self.t), "goal": np.ones(2)})

    def step(self, action):
        self.steps += 1
        self.t += 1
        obs = {"x": np.float64(self.t), "goal": np.ones(2)}
        reward = float(action)
        return (
            dm_env.termination(reward, obs) if self.t >= self.n else dm_env.transition(reward, obs)
        )

    def observation_spec(self):
        return {
            "x": specs.Array((), np.float64, "x"),
            "goal": specs.Array((2,), np.float64, "goal"),
        }

    def action_spec(self):
        return specs.DiscreteArray(3)


def test_suite_task_keys_step_types_and_time_limit():
    env = from_dm_control(_cartpole, num_envs=2, key_map={"velocity": "proprio/vel"}, seed=0)
    assert isinstance(env, Env)
    assert {k: v.shape for k, v in env.observation_spec().items()} == {
        "proprio/position": (3,),
        "proprio/vel": (2,),
    }
    spec = env.action_spec()
    assert isinstance(spec, BoundedArraySpec) and spec.shape == (1,)
    ts = env.reset(0)
    assert (ts.step_type == StepType.FIRST).all() and ts.observation[
        "proprio/vel"
    ].dtype == np.float32
    types = []
    for _ in range(10):
        ts = env.step(np.full((2, 1), 5.0))  # outside [-1, 1]: clipped, not rejected
        types.append(ts.step_type.copy())
    assert all((t == StepType.MID).all() for t in types[:-1])
    assert (ts.step_type == StepType.LAST).all()
    np.testing.assert_array_equal(ts.discount, [1.0, 1.0])  # a time limit: bootstrap
    assert ts.truncated().all() and (ts.reward > 0).all()
    ts = env.step(np.zeros((2, 1)))
    assert (ts.step_type == StepType.FIRST).all()
    np.testing.assert_array_equal(ts.reward, 0.0)


def test_seeding_matches_a_raw_suite_environment():
    env = from_dm_control(_cartpole, num_envs=2)
    ts = env.reset(seed=7)
    for i in range(2):
        raw = suite.load("cartpole", "balance", task_kwargs={"random": 7 + i})
        raw_ts = raw.reset()
        np.testing.assert_allclose(
            ts.observation["proprio/position"][i], raw_ts.observation["position"], rtol=1e-6
        )
        raw_ts = raw.step(np.array([0.3]))
        if i == 0:
            first_reward = raw_ts.reward
    ts2 = env.step(np.full((2, 1), 0.3))
    np.testing.assert_allclose(ts2.reward[0], first_reward, rtol=1e-6)
    again = env.reset(seed=7)
    np.testing.assert_array_equal(
        again.observation["proprio/position"], ts.observation["proprio/position"]
    )
    other = env.reset(seed=8)
    assert not np.array_equal(
        other.observation["proprio/position"], ts.observation["proprio/position"]
    )


def test_termination_discount_and_discrete_actions():
    env = from_dm_control(lambda: Terminating(2), num_envs=2, key_map={"goal": "task/goal"})
    assert env.action_spec() == DiscreteSpec(3, "action")
    assert env.observation_spec()["proprio/x"].shape == (1,)  # scalars become (1,)
    ts = env.reset()
    ts = env.step(np.array([1, 2]))
    assert (ts.step_type == StepType.MID).all()
    ts = env.step(np.array([2, 0]))
    np.testing.assert_array_equal(ts.step_type, [StepType.LAST, StepType.LAST])
    np.testing.assert_array_equal(ts.discount, [0.0, 0.0])
    np.testing.assert_array_equal(ts.reward, [2.0, 0.0])
    assert ts.terminated().all()
    np.testing.assert_array_equal(ts.observation["proprio/x"], [[2.0], [2.0]])
    ts = env.step(np.array([1, 1]))
    assert (ts.step_type == StepType.FIRST).all() and env.envs[0].steps == 2
    np.testing.assert_array_equal(ts.observation["task/goal"], np.ones((2, 2)))
    with pytest.raises(ValueError, match="cannot re-seed"):
        env.reset(seed=0)


def test_locomotion_ant_go_to_target():
    env = make("dmc-ant-gtt", num_envs=2, seed=0, time_limit=0.5)
    assert isinstance(env, FromDmControl)
    spec = env.observation_spec()
    assert spec["task/target"].shape == (3,)
    assert not any("target" in k for k in spec if k.startswith("proprio/"))
    assert spec["proprio/walker/joints_pos"].shape == (8,)
    assert "proprio/walker/sensors_force" not in spec  # empty entries are dropped
    assert env.action_spec().shape == (8,)
    ts = env.reset(0)
    targets = ts.observation["task/target"].copy()
    assert not np.allclose(targets[0], targets[1])  # copies seeded differently
    rng = np.random.default_rng(0)
    n = 0
    while True:
        ts = env.step(rng.uniform(-1, 1, (2, 8)))
        n += 1
        if ts.last().any():
            break
    assert n == 20  # 0.5 s at the task's 0.025 s control step
    assert ts.last().all() and (ts.discount == 1.0).all()
    for v in ts.observation.values():
        assert np.isfinite(v).all()
    ts = env.step(np.zeros((2, 8)))
    assert (ts.step_type == StepType.FIRST).all()
    np.testing.assert_array_equal(env.reset(0).observation["task/target"], targets)


def test_bad_key_map_and_actions():
    with pytest.raises(ValueError, match="did you mean position"):
        from_dm_control(_cartpole, key_map={"positon": "proprio/p"})
    with pytest.raises(ValueError, match="must be a string starting with"):
        from_dm_control(_cartpole, key_map={"position": "pos"})
    with pytest.raises(ValueError, match="both map to"):
        from_dm_control(_cartpole, key_map={"position": "proprio/x", "velocity": "proprio/x"})
    env = from_dm_control(_cartpole, key_map={"velocity": None})
    assert list(env.observation_spec()) == ["proprio/position"]
    with pytest.raises(ValueError, match="no observation left"):
        from_dm_control(_cartpole, key_map={"velocity": None, "position": None})
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros((1, 1)))
    env.reset(0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([[np.nan]]))


def test_missing_dm_control_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dm_control", None)  # makes `import dm_control` fail
    with pytest.raises(ImportError, match=r"behavior-priors\[dmc\]"):
        require_dm_control()
    with pytest.raises(ImportError, match="dmc"):
        from_dm_control(_cartpole)
