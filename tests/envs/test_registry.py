"""One string names an environment in every process: registered names, ``gymnasium:<id>``,
``dm_control:<domain>-<task>``, ``<module>:<callable>`` and ``behavior_priors.envs`` plugins."""

import importlib
import sys
import textwrap
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from behavior_priors.envs import Env
from behavior_priors.envs.adapters import FromDmControl, FromGymnasium
from behavior_priors.envs.registry import ENTRY_POINT_GROUP, list_envs, make, register

USER_MODULE = textwrap.dedent(
    '''
    """A researcher's own environments, outside the project."""
    import gymnasium as gym
    import numpy as np

    from behavior_priors.envs.adapters import from_gymnasium


    def pendulum(max_episode_steps=200):
        """Single-copy: returns one gymnasium.Env per copy."""
        return gym.make("Pendulum-v1", max_episode_steps=max_episode_steps)


    def batched_pendulum(num_envs, max_episode_steps=200, seed=None):
        """Batched: takes num_envs and returns our Env."""
        return from_gymnasium(
            lambda: gym.make("Pendulum-v1", max_episode_steps=max_episode_steps),
            num_envs,
            seed=seed,
        )


    def cartpole():
        """Single-copy dm_control."""
        from dm_control import suite

        return suite.load("cartpole", "balance", task_kwargs={"time_limit": 0.2})


    def not_an_env():
        return 42


    def batched_not_an_env(num_envs):
        return gym.make("Pendulum-v1")
    '''
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A module ``bp_user_envs`` importable by name (as it would be in every process)."""
    (tmp_path / "bp_user_envs.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield "bp_user_envs"
    sys.modules.pop("bp_user_envs", None)


def test_gymnasium_ids_are_adapted_with_kwargs_split_between_adapter_and_make():
    env = make("gymnasium:Pendulum-v1", num_envs=3, seed=0, max_episode_steps=5, success=None)
    assert isinstance(env, FromGymnasium) and env.num_envs == 3
    assert {k: v.shape for k, v in env.observation_spec().items()} == {"proprio/state": (3,)}
    assert env.action_spec().shape == (1,)
    for _ in range(4):
        ts = env.step(np.zeros((3, 1), np.float32))
        assert not ts.last().any()
    ts = env.step(np.zeros((3, 1), np.float32))
    assert ts.truncated().all()  # max_episode_steps went to gymnasium.make
    assert ts.info == {}  # success=None went to the adapter


def test_gymnasium_obs_keys_from_strings_route_task_inputs():
    # What `--env-kwargs 'obs_keys={...}'` gives: plain strings and lists, no slices.
    env = make(
        "gymnasium:Pendulum-v1",
        obs_keys={"proprio/angle": "0:2", "task/velocity": [2]},
    )
    assert {k: v.shape for k, v in env.observation_spec().items()} == {
        "proprio/angle": (2,),
        "task/velocity": (1,),
    }


def test_unknown_names_raise_key_errors_with_suggestions():
    with pytest.raises(KeyError, match="did you mean gymnasium:Pendulum-v1"):
        make("gymnasium:Pendulm-v1")
    with pytest.raises(KeyError, match="did you mean pointmass-gtt3"):
        make("pointmass-gt3")
    with pytest.raises(KeyError, match="no module named 'no_such_module_bp'"):
        make("no_such_module_bp:factory")
    with pytest.raises(KeyError, match="has no 'mak'; did you mean make"):
        make("behavior_priors.envs.registry:mak")
    with pytest.raises(ValueError, match="must not contain ':'"):
        register("mine:x", "behavior_priors.envs.gridworld.env:make_gridworld")


def test_user_factories_batched_and_single_copy(user_module):
    env = make(f"{user_module}:batched_pendulum", num_envs=2, max_episode_steps=7)
    assert isinstance(env, FromGymnasium) and env.num_envs == 2
    env = make(f"{user_module}:pendulum", num_envs=3, seed=1, max_episode_steps=7)
    assert isinstance(env, FromGymnasium) and env.num_envs == 3
    assert len({id(e) for e in env.envs}) == 3  # one gymnasium env per copy
    with pytest.raises(TypeError, match="returned int"):
        make(f"{user_module}:not_an_env")
    with pytest.raises(TypeError, match="must return a behavior_priors Env"):
        make(f"{user_module}:batched_not_an_env")


def test_user_factory_returning_dm_control(user_module):
    pytest.importorskip("dm_control")
    env = make(f"{user_module}:cartpole", num_envs=2, seed=0, key_map={"velocity": None})
    assert isinstance(env, FromDmControl)
    assert list(env.observation_spec()) == ["proprio/position"]


def test_dm_control_suite_names():
    pytest.importorskip("dm_control")
    env = make("dm_control:cartpole-swingup", num_envs=2, seed=0, time_limit=0.05)
    assert isinstance(env, FromDmControl)
    ts = None
    for _ in range(5):
        ts = env.step(np.zeros((2, 1)))
    assert ts.truncated().all()  # time_limit went to the suite task (5 steps of 0.01 s)
    with pytest.raises(KeyError, match="did you mean dm_control:cartpole-swingup"):
        make("dm_control:cartpole-swingp")


def test_plugins_from_installed_packages_are_found(tmp_path, user_module):
    """A package that declares ``[project.entry-points."behavior_priors.envs"]`` (here, its
    installed metadata written by hand) provides names every process can make."""
    dist = tmp_path / "bp_plugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bp-plugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nplugin-pendulum = {user_module}:pendulum\n"
    )
    importlib.invalidate_caches()
    assert "plugin-pendulum" in [e.name for e in list_envs()]
    env = make("plugin-pendulum", num_envs=2, max_episode_steps=3)
    assert isinstance(env, FromGymnasium)
    with pytest.raises(KeyError, match="did you mean plugin-pendulum"):
        make("plugin-pendulm")


def test_spawn_builds_the_same_kind_and_objects_without_spawn_are_refused():
    from behavior_priors.envs.base import spawn_like

    env = make("gymnasium:Pendulum-v1", num_envs=2, max_episode_steps=9)
    other = spawn_like(env, 3)
    assert isinstance(other, FromGymnasium) and other.num_envs == 3
    assert other.envs[0] is not env.envs[0]
    assert other.envs[0].spec.max_episode_steps == 9
    with pytest.raises(ValueError, match=r"name the environment by a string in config\.env"):
        spawn_like(make("gridworld-tworooms"), 2)


def test_our_environments_are_gymnasium_ids_that_pass_the_env_checker():
    import behavior_priors.envs  # noqa: F401  (registers the ids)

    for env_id, kwargs in (
        ("behavior_priors/pointmass-gtt3", {"flatten": True}),
        ("behavior_priors/gridworld-tworooms", {}),
    ):
        env = gym.make(env_id, **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unbounded Box observations are ours on purpose
            check_env(env.unwrapped)
        obs, info = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        assert "task_id" in info
    # The module prefix imports us first, as Gymnasium does for any package.
    env = gym.make("behavior_priors.envs:behavior_priors/gridworld-fourrooms")
    assert isinstance(env.unwrapped, gym.Env)


def test_every_form_is_an_env():
    assert isinstance(make("gymnasium:CartPole-v1"), Env)


@pytest.mark.parametrize("name", ["os:system", "subprocess:run", "builtins:exec", "os.path:join"])
def test_a_standard_library_callable_is_not_an_environment(name, tmp_path):
    """A run.json is user data: one naming `os:system` as its environment must not run a
    command when the run is evaluated or resumed."""
    marker = tmp_path / "ran"
    with pytest.raises(KeyError, match="standard-library"):
        make(name, command=f"touch {marker}")
    assert not marker.exists()
