"""Gymnasium environments under our protocol: key mapping, step types, auto-reset, round trip."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from behavior_priors.envs import BoundedArraySpec, DiscreteSpec, Env, StepType
from behavior_priors.envs.adapters import from_gymnasium, to_gymnasium
from behavior_priors.envs.gridworld import GridWorld


class Countdown(gym.Env):
    """A tiny env whose termination the test controls: it terminates when ``left`` hits 0.

    Observation ``Dict(count=Box(1), flag=Discrete(2))``; action ``Discrete(3, start=-1)``:
    the action is subtracted from the counter. ``steps`` counts calls to ``step``.
    """

    def __init__(self, start: int = 3):
        self.start = start
        self.observation_space = gym.spaces.Dict(
            {"count": gym.spaces.Box(-100, 100, (1,), np.float32), "flag": gym.spaces.Discrete(2)}
        )
        self.action_space = gym.spaces.Discrete(3, start=-1)
        self.steps = 0
        self.resets = 0

    def _obs(self):
        return {"count": np.array([self.left], np.float32), "flag": int(self.left % 2)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.resets += 1
        self.left = self.start
        return self._obs(), {}

    def step(self, action):
        assert action in (-1, 0, 1), action
        self.steps += 1
        self.left -= action
        return self._obs(), 10.0 * action, self.left <= 0, False, {}


def test_custom_env_termination_and_next_step_reset():
    env = from_gymnasium(lambda: Countdown(2), num_envs=2)
    assert isinstance(env, Env)
    spec = env.observation_spec()
    assert {k: v.shape for k, v in spec.items()} == {"proprio/count": (1,), "proprio/flag": (2,)}
    assert env.action_spec() == DiscreteSpec(3, "action")
    ts = env.reset(0)
    np.testing.assert_array_equal(ts.observation["proprio/count"], [[2], [2]])
    np.testing.assert_array_equal(ts.observation["proprio/flag"], [[1, 0], [1, 0]])  # one-hot
    # Our action 2 is Gymnasium's +1 (the space starts at -1).
    ts = env.step(np.array([2, 1]))
    np.testing.assert_array_equal(ts.reward, [10.0, 0.0])
    np.testing.assert_array_equal(ts.step_type, [StepType.MID, StepType.MID])
    ts = env.step(np.array([2, 0]))
    np.testing.assert_array_equal(ts.step_type, [StepType.LAST, StepType.MID])
    np.testing.assert_array_equal(ts.discount, [0.0, 1.0])
    np.testing.assert_array_equal(ts.reward, [10.0, -10.0])
    np.testing.assert_array_equal(ts.observation["proprio/count"], [[0], [3]])  # final obs
    ts = env.step(np.array([2, 2]))
    np.testing.assert_array_equal(ts.step_type, [StepType.FIRST, StepType.MID])
    np.testing.assert_array_equal(ts.reward, [0.0, 10.0])
    np.testing.assert_array_equal(ts.observation["proprio/count"], [[2], [2]])
    # The reset step did not call the copy's step (its action was ignored).
    assert env.envs[0].steps == 2 and env.envs[0].resets == 2
    assert env.envs[1].steps == 3 and env.envs[1].resets == 1


def test_pendulum_truncation_keeps_the_final_observation():
    env = from_gymnasium(
        lambda: gym.make("Pendulum-v1", max_episode_steps=20),
        num_envs=2,
        obs_keys={"proprio/cos_sin": slice(0, 2), "proprio/velocity": [2]},
        seed=4,
    )
    assert isinstance(env.action_spec(), BoundedArraySpec)
    np.testing.assert_array_equal(env.action_spec().maximum, [2.0])
    # A reference Pendulum driven the same way with the same seed as copy 1 (seed + 1).
    ref = gym.make("Pendulum-v1", max_episode_steps=20)
    ref_obs, _ = ref.reset(seed=5)
    ts = env.reset(4)
    np.testing.assert_allclose(ts.observation["proprio/cos_sin"][1], ref_obs[:2], rtol=1e-6)
    actions = np.random.default_rng(0).uniform(-3, 3, (20, 2, 1)).astype(np.float32)
    for t in range(20):
        ts = env.step(actions[t])
        ref_obs, r, terminated, truncated, _ = ref.step(np.clip(actions[t, 1], -2, 2))
        np.testing.assert_allclose(ts.observation["proprio/velocity"][1], ref_obs[2:], rtol=1e-5)
        np.testing.assert_allclose(ts.reward[1], r, rtol=1e-5)
        expected = StepType.LAST if t == 19 else StepType.MID
        assert (ts.step_type == expected).all()
    assert truncated and not terminated
    np.testing.assert_array_equal(ts.discount, [1.0, 1.0])
    assert ts.truncated().all()
    ts = env.step(actions[0])
    assert (ts.step_type == StepType.FIRST).all() and (ts.reward == 0).all()


def test_default_keys_for_box_and_index_selectors():
    env = from_gymnasium(lambda: gym.make("Pendulum-v1"), num_envs=1)
    assert list(env.observation_spec()) == ["proprio/state"]
    env = from_gymnasium(
        lambda: gym.make("Pendulum-v1"), obs_keys={"proprio/a": np.array([2, 0]), "task/b": [-1]}
    )
    ts = env.reset(0)
    assert ts.observation["proprio/a"].shape == (1, 2)
    np.testing.assert_array_equal(ts.observation["task/b"][:, 0], ts.observation["proprio/a"][:, 0])


def test_round_trip_preserves_observations_and_rewards():
    # Our env -> Gymnasium -> our env equals the original, copy by copy (copy i has seed + i),
    # across terminations, truncations and automatic resets.
    kwargs = {"layout": "tworooms", "max_steps": 6, "position_encoding": "xy"}
    b, seed = 3, 11
    trip = from_gymnasium(lambda: to_gymnasium(GridWorld(**kwargs)), num_envs=b, seed=seed)
    direct = [GridWorld(**kwargs, seed=seed + i) for i in range(b)]
    assert trip.observation_spec().keys() == direct[0].observation_spec().keys()
    actions = np.random.default_rng(0).integers(0, 4, (120, b)).astype(np.int32)
    ts = trip.reset(seed)
    refs = [d.reset(seed + i) for i, d in enumerate(direct)]
    n_last = 0
    for t in range(len(actions) + 1):
        for i, ref in enumerate(refs):
            assert ts.step_type[i] == ref.step_type[0]
            assert ts.reward[i] == ref.reward[0]
            assert ts.discount[i] == ref.discount[0]
            for key, value in ref.observation.items():
                np.testing.assert_array_equal(ts.observation[key][i], value[0])
        n_last += int(ts.last().sum())
        if t < len(actions):
            ts = trip.step(actions[t])
            refs = [d.step(actions[t, i : i + 1]) for i, d in enumerate(direct)]
    assert n_last > 10  # the comparison went through many episode ends


def test_bad_input():
    make = lambda: gym.make("Pendulum-v1")  # noqa: E731
    with pytest.raises(ValueError, match="must be a string starting with"):
        from_gymnasium(make, obs_keys={"state": slice(0, 3)})
    with pytest.raises(ValueError, match="not Dict"):
        from_gymnasium(make, obs_keys={"proprio/x": "theta"})
    with pytest.raises(ValueError, match="out of range"):
        from_gymnasium(make, obs_keys={"proprio/x": [3]})
    with pytest.raises(ValueError, match="selects nothing"):
        from_gymnasium(make, obs_keys={"proprio/x": slice(5, 9)})
    with pytest.raises(ValueError, match="did you mean count"):
        from_gymnasium(Countdown, obs_keys={"proprio/x": "counts"})
    with pytest.raises(ValueError, match="num_envs"):
        from_gymnasium(make, num_envs=0)
    multi = Countdown()
    multi.action_space = gym.spaces.MultiDiscrete([2, 2])
    with pytest.raises(TypeError, match="Box and Discrete"):
        from_gymnasium(lambda: multi)
    env = from_gymnasium(make, num_envs=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros((2, 1)))
    env.reset(0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((2,)))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([[0.0], [np.nan]]))


class _Painted(gym.Env):
    """A one-step environment whose frame is a known picture (no GL needed)."""

    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)
    metadata = {"render_modes": ["rgb_array"]}  # noqa: RUF012 (gymnasium's convention)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, True, False, {}

    def render(self):
        frame = np.zeros((6, 4, 3), np.uint8)
        frame[..., 0] = 200
        return frame


def test_render_gives_the_environments_frame_and_a_clear_error_without_rgb_array():
    """`behavior-priors video` of a Gymnasium run records these frames (gymnasium:<id> names
    are made with render_mode='rgb_array')."""
    env = from_gymnasium(lambda: _Painted("rgb_array"), num_envs=2, seed=0)
    frame = env.render(1)
    assert frame.shape == (6, 4, 3) and frame.dtype == np.uint8 and frame[0, 0, 0] == 200
    plain = from_gymnasium(lambda: _Painted(), num_envs=1, seed=0)
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        plain.render(0)


class _NeedsAPackage(_Painted):
    """Renders like a Gymnasium environment whose drawing package is missing."""

    message = 'pygame is not installed, run `pip install "gymnasium[classic-control]"`'

    def render(self):
        raise gym.error.DependencyNotInstalled(self.message)


class _NeedsBox2d(_NeedsAPackage):
    message = "box2d is not installed,\n run `pip install swig` first"


def test_render_without_its_package_is_one_import_error_naming_what_to_install():
    """Before: Gymnasium's DependencyNotInstalled, which names gymnasium's extra, not ours."""
    env = from_gymnasium(lambda: _NeedsAPackage("rgb_array"), num_envs=1, seed=0)
    with pytest.raises(ImportError, match=r"pip install 'behavior-priors\[classic-control\]'$"):
        env.render(0)
    # Another missing package: Gymnasium's own advice, on one line.
    env = from_gymnasium(lambda: _NeedsBox2d("rgb_array"), num_envs=1, seed=0)
    with pytest.raises(ImportError, match=r"cannot render: box2d is not installed, run `pip"):
        env.render(0)


def test_gymnasium_names_are_made_ready_to_render():
    from behavior_priors.envs.registry import make

    env = make("gymnasium:Pendulum-v1", num_envs=1)
    assert env.envs[0].render_mode == "rgb_array"
    env = make("gymnasium:Pendulum-v1", num_envs=1, render_mode=None)  # the user's choice wins
    assert env.envs[0].render_mode is None


def test_a_gymnasium_mujoco_model_writes_no_log_file_into_the_working_directory(tmp_path):
    """Before: making ``gymnasium:HalfCheetah-v5`` appended MuJoCo's load warning ("'settotalmass'
    is deprecated") to ``MUJOCO_LOG.TXT`` in the working directory, outside any run directory.
    A fresh process: MuJoCo's warning handler is process-wide."""
    pytest.importorskip("mujoco")
    code = (
        "import warnings\n"
        "from behavior_priors.envs.registry import make\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    make('gymnasium:HalfCheetah-v5', num_envs=2)\n"
        "print(sum('MuJoCo: ' in str(w.message) for w in caught))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert list(tmp_path.iterdir()) == []
    assert int(done.stdout.split()[-1]) >= 1  # the warning is still shown, as a Python warning
