"""What the adapters add to third-party environments: routing, success, task ids, seeding."""

import warnings

import gymnasium as gym
import numpy as np
import pytest

from behavior_priors.envs import StepType
from behavior_priors.envs.adapters import from_dm_control, from_gymnasium


class GoalEnv(gym.Env):
    """A Dict-observation task: move a 1-D point to a goal; success and the goal index in info.

    The goal index (0 or 1) is drawn at reset from the env's own generator; reaching within
    0.1 of the goal terminates with reward 1 and ``info["is_success"] = True``.
    """

    GOALS = np.array([-0.5, 0.5], np.float32)

    def __init__(self, horizon: int = 20):
        self.observation_space = gym.spaces.Dict(
            {
                "position": gym.spaces.Box(-1.0, 1.0, (1,), np.float32),
                "goal": gym.spaces.Box(-1.0, 1.0, (1,), np.float32),
                "goal_index": gym.spaces.Discrete(2),
            }
        )
        self.action_space = gym.spaces.Box(-0.2, 0.2, (1,), np.float32)
        self.horizon = horizon

    def _obs(self):
        return {
            "position": np.array([self.x], np.float32),
            "goal": self.GOALS[self.g : self.g + 1],
            "goal_index": self.g,
        }

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.g = int(self.np_random.integers(2))
        self.x = float(self.np_random.uniform(-0.1, 0.1))
        self.t = 0
        return self._obs(), {"task": self.g}

    def step(self, action):
        self.x = float(np.clip(self.x + float(action[0]), -1.0, 1.0))
        self.t += 1
        hit = abs(self.x - self.GOALS[self.g]) < 0.1
        info = {"task": self.g, "is_success": hit}
        return self._obs(), float(hit), hit, self.t >= self.horizon and not hit, info


def _episode_to_goal(env, seed):
    """Drive every copy toward its goal (read from the observation) until each ended once."""
    ts = env.reset(seed)
    seen = [ts]
    for _ in range(30):
        goal = ts.observation["task/goal"][:, 0]
        pos = ts.observation["proprio/position"][:, 0]
        ts = env.step(np.clip(goal - pos, -0.2, 0.2)[:, None].astype(np.float32))
        seen.append(ts)
        if all(any(s.last()[i] for s in seen) for i in range(env.num_envs)):
            break
    return seen


def test_gymnasium_key_map_routes_task_inputs_and_success_and_task_id_come_from_info():
    env = from_gymnasium(
        GoalEnv,
        num_envs=4,
        key_map={"goal": "task/goal", "goal_index": None},
        task_id="info:task",
        success="info:is_success",
    )
    assert sorted(env.observation_spec()) == ["proprio/position", "task/goal"]
    steps = _episode_to_goal(env, seed=3)
    first = steps[0]
    goal_index = (first.observation["task/goal"][:, 0] > 0).astype(np.int32)
    np.testing.assert_array_equal(first.task_id, goal_index)
    assert not first.info["success"].any()
    # Each copy reaches its goal: the LAST step reports success, terminated (discount 0).
    for i in range(4):
        last = next(s for s in steps if s.last()[i])
        assert last.info["success"][i] and last.discount[i] == 0.0
        assert last.task_id[i] == goal_index[i]


def test_gymnasium_auto_success_reads_is_success():
    env = from_gymnasium(GoalEnv, num_envs=2, key_map={"goal": "task/goal"})
    steps = _episode_to_goal(env, seed=0)
    assert any(s.info["success"].any() for s in steps)


def test_task_like_inputs_left_under_proprio_warn():
    with pytest.warns(UserWarning, match=r"'goal'.*look like task inputs.*key_map"):
        from_gymnasium(GoalEnv, num_envs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # (the position, left under proprio/, is named by a warning of its own)
        key_map = {"goal": "task/goal", "position": "extero/position"}
        from_gymnasium(GoalEnv, num_envs=1, key_map=key_map)


def test_a_position_left_under_proprio_is_named():
    with pytest.warns(UserWarning, match=r"'position' look like absolute positions"):
        from_gymnasium(GoalEnv, num_envs=1, key_map={"goal": "task/goal"})


def test_success_rule_forms_and_bad_rules():
    from behavior_priors.envs.adapters.rules import success_fn

    assert success_fn("reward>=1")(None, 1.0, False, {})
    assert not success_fn("reward>1")(None, 1.0, False, {})
    assert success_fn("terminated_positive")(None, 0.5, True, {})
    assert not success_fn("terminated_positive")(None, 0.5, False, {})
    assert success_fn("info:done_it")(None, 0.0, False, {"done_it": 1})
    assert success_fn(None) is None
    for bad in ("reward>=x", "sometimes", "info:", 3):
        with pytest.raises(ValueError, match="success rule"):
            success_fn(bad)


def test_task_id_rule_forms_and_bad_rules():
    from behavior_priors.envs.adapters.rules import TaskIds

    assert TaskIds([2, 5], 2).static.tolist() == [2, 5]
    assert TaskIds([2, 5], 3).static.tolist() == [2, 5, 2]  # an eval env with more copies
    assert TaskIds("obs:onehot", 1).read(0, None, {"onehot": np.array([0, 0, 1.0])}, None) == 2
    assert TaskIds(lambda env: env["k"], 1).read(0, {"k": 4}, None, None) == 4
    with pytest.raises(ValueError, match="one per copy"):
        TaskIds([1.5, 2], 2)
    with pytest.raises(ValueError, match="'obs:<name>'"):
        TaskIds("info:x", 2)  # dm_control has no info
    with pytest.raises(KeyError, match="has no 'missing'"):
        TaskIds("obs:missing", 1).read(0, None, {"x": 1}, None)


def test_a_task_id_that_is_not_one_hot_or_whole_is_refused_and_an_element_can_be_named():
    """Before: the argmax of any vector was taken as the id, so dm_control's ``predicate_0``
    ``[0, 0, 1, idx, 1]`` gave task 2 (or 3) whatever idx was, without an error."""
    from behavior_priors.envs.adapters.rules import TaskIds

    obs = {"predicate_0": np.array([0, 0, 1, 4, 1.0]), "scalar": np.array(2.5)}
    with pytest.raises(ValueError, match=r"not one-hot.*'obs:predicate_0\[k\]'"):
        TaskIds("obs:predicate_0", 1).read(0, None, obs, None)
    assert TaskIds("obs:predicate_0[3]", 1).read(0, None, obs, None) == 4
    with pytest.raises(ValueError, match="has 5 elements"):
        TaskIds("obs:predicate_0[7]", 1).read(0, None, obs, None)
    with pytest.raises(ValueError, match=r"2\.5 is not a task id"):
        TaskIds("obs:scalar", 1).read(0, None, obs, None)
    assert TaskIds("obs:onehot", 1).read(0, None, {"onehot": np.array([0, 1.0, 0])}, None) == 1


def test_gymnasium_reset_seed_repeats_episodes_exactly():
    env = from_gymnasium(lambda: gym.make("Pendulum-v1"), num_envs=2)
    actions = np.random.default_rng(0).uniform(-2, 2, (250, 2, 1)).astype(np.float32)

    def rollout(seed):
        ts = env.reset(seed)
        out = [ts.observation["proprio/state"]]
        for a in actions:  # past the 200-step time limit: automatic resets included
            ts = env.step(a)
            out.append(ts.observation["proprio/state"])
        return np.stack(out)

    a = rollout(4)
    rollout(5)
    np.testing.assert_array_equal(rollout(4), a)
    assert not np.array_equal(rollout(5), a)


dm = pytest.importorskip("dm_control", reason="the dmc extra is not installed")


def _cartpole_swingup():
    from dm_control import suite

    return suite.load("cartpole", "swingup", task_kwargs={"time_limit": 0.5})


def test_dm_control_reset_seed_repeats_episodes_exactly():
    """Suite (task.random) and composer (random_state) environments: two ``reset(seed)`` with
    the same actions give the same numbers, also across the automatic resets of later
    episodes, whatever ran in between."""
    from behavior_priors.envs.adapters import ant_go_to_target

    for env in (
        from_dm_control(_cartpole_swingup, num_envs=2),
        ant_go_to_target(num_envs=1, time_limit=0.3),
    ):
        shape = (env.num_envs, *env.action_spec().shape)
        actions = np.random.default_rng(1).uniform(-1, 1, (40, *shape))

        def rollout(seed, env=env, actions=actions):
            ts = env.reset(seed)
            out = [ts]
            for a in actions:
                out.append(env.step(a))
            obs = np.concatenate(
                [
                    np.stack([t.observation[k] for t in out]).reshape(len(out), -1)
                    for k in ts.observation
                ],
                axis=1,
            )
            return np.concatenate([obs, np.stack([t.reward for t in out])], axis=1)

        a = rollout(0)
        b = rollout(1)
        np.testing.assert_array_equal(rollout(0), a)
        assert not np.array_equal(a, b)


def test_dm_control_reports_success_and_task_ids():
    """Before: ``info`` was empty (eval success rate always 0) and every copy said task 0."""
    from dm_control import suite

    env = from_dm_control(
        lambda: suite.load("cartpole", "balance"),
        num_envs=3,
        task_id=[0, 1, 2],
        success="reward>0.5",
        seed=0,
    )
    ts = env.reset(0)
    np.testing.assert_array_equal(ts.task_id, [0, 1, 2])
    assert not ts.info["success"].any()
    successes = []
    for _ in range(100):  # pushing one way: upright (reward above 0.5) at first, then it falls
        ts = env.step(np.ones((3, 1)))
        assert ts.step_type[0] == StepType.MID
        np.testing.assert_array_equal(ts.info["success"], ts.reward > 0.5)
        np.testing.assert_array_equal(ts.task_id, [0, 1, 2])
        successes.append(ts.info["success"])
    assert np.any(successes) and not np.all(successes)
    # A task id read from an observation that holds none is refused, not guessed; the
    # position routed to proprio/ is named once.
    with pytest.warns(UserWarning, match="'position' look like absolute positions"):
        env = from_dm_control(_cartpole_swingup, num_envs=2, task_id="obs:position")
    with pytest.raises(ValueError, match="not one-hot"):
        env.reset(0)


def test_dm_control_locomotion_reference_task_reports_success_at_the_target():
    from behavior_priors.envs.adapters import ant_go_to_target

    env = ant_go_to_target(num_envs=1, time_limit=0.2, seed=0)
    ts = env.step(np.zeros((1, *env.action_spec().shape)))
    assert "success" in ts.info
    assert ts.info["success"][0] == (ts.reward[0] >= 1.0)
