"""Protocol, determinism, step semantics, bad input and instability recovery of the MuJoCo suite."""

import numpy as np
import pytest

from behavior_priors.envs import Env, StepType
from behavior_priors.envs.mujoco import make_task_env
from behavior_priors.envs.registry import list_envs, make

MUJOCO_NAMES = [e.name for e in list_envs() if e.factory.startswith("behavior_priors.envs.mujoco")]


def _random_actions(env, rng):
    spec = env.action_spec()
    return rng.uniform(spec.minimum, spec.maximum, (env.num_envs, *spec.shape)).astype(np.float32)


def _check_timestep(env, ts):
    b = env.num_envs
    spec = env.observation_spec()
    assert set(ts.observation) == set(spec)
    for key, value in ts.observation.items():
        assert value.dtype == np.float32, key
        spec[key].validate(value, batch=b)
        assert np.isfinite(value).all(), key
    assert ts.step_type.shape == (b,) and ts.step_type.dtype == np.int8
    assert ts.reward.shape == (b,) and ts.reward.dtype == np.float32
    assert ts.discount.shape == (b,) and ts.discount.dtype == np.float32
    assert ts.task_id.shape == (b,) and ts.task_id.dtype == np.int32
    assert set(ts.info) == {"success", "unstable", "unstable_resets"}


def test_every_body_and_task_is_registered():
    bodies = {"pointmass", "ball", "ant", "quadruped"}
    families = {"gtt3", "movebox", "moveheavybox", "gather", "movebox-then-gtt"}
    assert set(MUJOCO_NAMES) == {f"{b}-{f}" for b in bodies for f in families}


@pytest.mark.parametrize("name", MUJOCO_NAMES)
def test_every_body_with_every_task_resets_and_steps(name):
    env = make(name, num_envs=3, seed=0)
    assert isinstance(env, Env)
    rng = np.random.default_rng(0)
    ts = env.reset(0)
    _check_timestep(env, ts)
    assert (ts.step_type == StepType.FIRST).all()
    n_tasks = len(env.tasks)
    for _ in range(5):
        ts = env.step(_random_actions(env, rng))
        _check_timestep(env, ts)
        assert (ts.step_type == StepType.MID).all()
        assert ((ts.task_id >= 0) & (ts.task_id < n_tasks)).all()
    if n_tasks > 1:
        onehot = ts.observation["task/id_onehot"]
        np.testing.assert_array_equal(onehot.argmax(axis=1), ts.task_id)
    env.close()


def _rollout(env, seed, steps=30):
    rng = np.random.default_rng(123)
    out = [env.reset(seed)]
    for _ in range(steps):
        out.append(env.step(_random_actions(env, rng)))
    return out


def _same(a, b):
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.step_type, y.step_type)
        np.testing.assert_array_equal(x.reward, y.reward)
        np.testing.assert_array_equal(x.task_id, y.task_id)
        for k in x.observation:
            np.testing.assert_array_equal(x.observation[k], y.observation[k])


@pytest.mark.parametrize("body", ["pointmass", "ant"])
def test_same_seed_same_numbers_and_different_seed_different(body):
    kwargs = {"body": body, "tasks": ["move_box:0:0", "move_box:0:1"], "episode_seconds": 0.5}
    a, b = make_task_env(4, **kwargs), make_task_env(4, **kwargs)
    run_a = _rollout(a, seed=7)
    _same(run_a, _rollout(b, seed=7))
    _same(run_a, _rollout(a, seed=7))  # reset(seed) on a used env starts over exactly
    other = _rollout(b, seed=8)
    assert not np.array_equal(
        run_a[0].observation["task/targets"], other[0].observation["task/targets"]
    )


def test_truncation_is_last_with_discount_one_then_next_step_resets():
    env = make_task_env(2, seed=0, body="pointmass", tasks=["go_to_target:0"], episode_seconds=0.5)
    assert env.episode_steps == 10
    ts = env.reset(0)
    for t in range(1, 11):
        before = ts.observation["task/targets"]
        ts = env.step(np.zeros((2, 2), np.float32))
        # Zero action, no drift: the targets in the body frame stay put, including in the
        # final observation (the true last state, not a freshly reset one).
        np.testing.assert_allclose(ts.observation["task/targets"], before, atol=1e-5)
        expected = StepType.LAST if t == 10 else StepType.MID
        assert (ts.step_type == expected).all(), t
    assert ts.truncated().all() and not ts.terminated().any()
    assert (ts.discount == 1.0).all()
    ts = env.step(np.zeros((2, 2), np.float32))
    assert ts.first().all() and (ts.reward == 0).all() and (ts.discount == 1).all()
    assert not np.allclose(ts.observation["task/targets"], before)  # a new layout
    for _ in range(9):
        ts = env.step(np.zeros((2, 2), np.float32))
        assert (ts.step_type == StepType.MID).all()
    assert env.step(np.zeros((2, 2), np.float32)).last().all()


def test_the_action_on_the_reset_step_is_ignored():
    results = []
    for action in (0.0, 1.0):
        env = make_task_env(2, seed=3, body="ball", tasks=["go_to_target:0"], episode_seconds=0.1)
        env.reset(3)
        env.step(np.zeros((2, 2), np.float32))
        assert env.step(np.zeros((2, 2), np.float32)).last().all()
        results.append(env.step(np.full((2, 2), action, np.float32)))
    assert results[0].first().all()
    for k in results[0].observation:
        np.testing.assert_array_equal(results[0].observation[k], results[1].observation[k])


def test_actions_outside_the_box_are_clipped():
    outs = []
    for scale in (1.0, 5.0):
        env = make_task_env(2, seed=0, body="pointmass", tasks=["go_to_target:0"])
        env.reset(0)
        outs.append(env.step(np.full((2, 2), scale, np.float32)).observation["proprio/velocity"])
    np.testing.assert_array_equal(outs[0], outs[1])


def test_multitask_samples_every_task_with_stable_ids():
    env = make("pointmass-gtt3", num_envs=64, seed=0)
    assert env.task_names == ["go_to_target:0", "go_to_target:1", "go_to_target:2"]
    ts = env.reset(0)
    assert set(ts.task_id.tolist()) == {0, 1, 2}
    np.testing.assert_array_equal(ts.observation["task/id_onehot"].argmax(1), ts.task_id)


def test_bad_inputs_give_clear_errors():
    env = make_task_env(2, body="pointmass", tasks=["go_to_target:0"])
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros((2, 2), np.float32))
    env.reset(0)
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        env.step(np.zeros((2, 3), np.float32))
    bad = np.zeros((2, 2), np.float32)
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf \(copies \[1\]\)"):
        env.step(bad)
    with pytest.raises(KeyError, match="did you mean 'quadruped'"):
        make_task_env(1, body="quadroped")
    with pytest.raises(ValueError, match="did you mean 'move_box'"):
        make_task_env(1, tasks=["move_bx:0:0"])
    with pytest.raises(ValueError, match="expected 'move_box:m:k'"):
        make_task_env(1, tasks=["move_box:0"])
    with pytest.raises(TypeError, match="did you mean 'episode_seconds'"):
        make_task_env(1, episode_second=3.0)
    with pytest.raises(ValueError, match="need 3 targets"):
        make_task_env(1, tasks=["go_to_target:2"], num_targets=2)
    with pytest.raises(ValueError, match="whole multiple"):
        make_task_env(1, control_dt=0.05, physics_dt=0.003)
    with pytest.raises(KeyError, match="did you mean"):
        make("ant-gtt", num_envs=1)


@pytest.mark.parametrize(
    ("fault", "value"), [("nan_qvel", np.nan), ("huge_qvel", 1e6), ("nan_qpos", np.nan)]
)
def test_unstable_copy_is_reset_and_counted_while_others_continue(
    fault, value, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # MuJoCo's default warning handler would write a log here
    kwargs = {"body": "ant", "tasks": ["go_to_target:0"]}
    env, ref = make_task_env(4, seed=5, **kwargs), make_task_env(4, seed=5, **kwargs)
    rng = np.random.default_rng(0)
    for _ in range(3):
        a = _random_actions(env, rng)
        env.step(a)
        ref.step(a)
    data = env.data(1)
    if fault == "nan_qpos":
        data.qpos[8] = value
    else:
        data.qvel[:3] = value
    a = _random_actions(env, rng)
    ts, ts_ref = env.step(a), ref.step(a)
    _check_timestep(env, ts)
    np.testing.assert_array_equal(ts.info["unstable"], [False, True, False, False])
    np.testing.assert_array_equal(ts.info["unstable_resets"], [0, 1, 0, 0])
    np.testing.assert_array_equal(ts.step_type, [1, 2, 1, 1])
    assert ts.reward[1] == 0.0 and ts.discount[1] == 1.0
    for k in ts.observation:  # the other copies never noticed
        np.testing.assert_array_equal(
            ts.observation[k][[0, 2, 3]], ts_ref.observation[k][[0, 2, 3]]
        )
    ts = env.step(_random_actions(env, rng))
    assert ts.step_type[1] == StepType.FIRST and not ts.info["unstable"].any()
    assert ts.info["unstable_resets"][1] == 1
    for _ in range(5):
        ts = env.step(_random_actions(env, rng))
        _check_timestep(env, ts)
        assert (ts.step_type == StepType.MID).all()
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
    assert env.reset(1).info["unstable_resets"].sum() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shaped": "banana"}, "shaped must be True or False"),
        ({"terminate_on_success": 1}, "terminate_on_success must be True or False"),
        ({"episode_seconds": -1}, "episode_seconds must be a finite number > 0"),
        ({"episode_seconds": 0.01}, "at least one control step"),
        ({"shaping_weight": float("nan")}, "shaping_weight must be a finite number >= 0"),
        ({"reward_scale": "10"}, "reward_scale must be a number"),
        ({"physics_dt": 0.1}, "physics_dt must not exceed control_dt"),
        ({"num_targets": -1}, "num_targets must be None or an integer >= 0"),
        ({"tasks": ["go_to_target:0", "go_to_targt:1"]}, "unknown task kind"),
        ({"tasks": []}, "non-empty"),
    ],
)
def test_bad_options_are_refused_when_the_env_is_made(kwargs, message):
    """These came in through `--env-kwargs` and trained (or crashed mid-run) before."""
    with pytest.raises(ValueError, match=message):
        make("pointmass-gtt3", **kwargs)


def test_tasks_given_as_one_string_are_a_comma_separated_list():
    env = make("pointmass-gtt3", tasks="go_to_target:1")  # was split into characters
    assert "task/id_onehot" not in env.observation_spec()  # one task
    env = make("pointmass-gtt3", tasks="go_to_target:0,go_to_target:2")
    assert env.observation_spec()["task/id_onehot"].shape == (2,)
