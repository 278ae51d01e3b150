"""Scripted point-mass controllers solve go-to-target and move-box; rewards fire exactly then."""

import numpy as np
import pytest

from behavior_priors.envs import StepType
from behavior_priors.envs.mujoco import make_task_env

# -- scripted point-mass controllers (egocentric observations in, actions out) --------------


def go_to(ego_point: np.ndarray, gain: float = 3.0) -> np.ndarray:
    """[B, 2] point in the body frame (body scales) -> [B, 2] point-mass force actions."""
    return np.clip(gain * ego_point, -1.0, 1.0).astype(np.float32)


def push_box(box: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Push ``box`` [B, 2] onto ``target`` [B, 2] (both egocentric, body scales).

    Get behind the box (on the far side from the target), going around it if needed, then push
    along the box-to-target line while correcting sideways drift.
    """
    to_target = target - box
    u = to_target / np.maximum(np.linalg.norm(to_target, axis=1, keepdims=True), 1e-6)
    n = np.stack([-u[:, 1], u[:, 0]], axis=1)
    body = -box  # the body relative to the box
    along = np.sum(body * u, axis=1)
    side = np.sum(body * n, axis=1)
    waypoint = np.empty_like(box)  # in (along, side) coordinates around the box
    push = np.zeros(len(box), bool)
    for i in range(len(box)):
        sgn = 1.0 if side[i] >= 0 else -1.0
        if abs(side[i]) < 0.3 and along[i] < -0.7:
            push[i] = True  # behind the box and lined up: push
        elif along[i] > -0.95:
            # Beside or in front of the box: step out sideways, then back past it.
            waypoint[i] = (along[i], 1.1 * sgn) if abs(side[i]) < 1.0 else (-1.3, 1.1 * sgn)
        else:
            waypoint[i] = (-1.25, 0.0)  # behind it: line up
    target_point = box + waypoint[:, :1] * u + waypoint[:, 1:] * n
    actions = go_to(target_point)
    # Pushing: drive along the box-target line, steering back onto it.
    pushing = np.clip(u - 2.0 * side[:, None] * n, -1.0, 1.0)
    return np.where(push[:, None], pushing, actions).astype(np.float32)


# -- tests ----------------------------------------------------------------------------------


def _inside(env, i: int, body_name: str, target: int) -> bool:
    """Ground truth from MuJoCo's own body positions, not from the env's sensors."""
    data = env.data(i)
    xy = data.body(body_name).xpos[:2]
    goal = data.mocap_pos[env.model.body(f"target_{target}").mocapid[0]][:2]
    return bool(np.linalg.norm(xy - goal) < env.layout.target_radius)


def test_go_to_target_reward_fires_on_arrival_and_not_before():
    env = make_task_env(8, seed=0, body="pointmass", tasks=["go_to_target:0"])
    ts = env.reset(0)
    seen = np.zeros(8, bool)
    for _ in range(env.episode_steps - 1):
        ts = env.step(go_to(ts.observation["task/targets"][:, 0]))
        assert (ts.step_type == StepType.MID).all()
        for i in range(8):
            inside = _inside(env, i, "torso", 0)
            expected = 0.0 if not inside else (10.0 if seen[i] else 15.0)  # scale 10, bonus 5
            assert ts.reward[i] == pytest.approx(expected), (i, ts.reward[i], inside)
            seen[i] |= inside
            assert ts.info["success"][i] == seen[i]
    assert seen.all(), "the scripted controller should reach every target within 10 s"


def test_go_to_target_terminates_on_success_when_asked():
    env = make_task_env(
        4, seed=1, body="pointmass", tasks=["go_to_target:0"], terminate_on_success=True
    )
    ts = env.reset(1)
    ended = np.zeros(4, bool)
    for _ in range(100):
        prev_last = ts.last()
        ts = env.step(go_to(ts.observation["task/targets"][:, 0]))
        assert (ts.first() == prev_last).all()  # next-step auto-reset, nothing else
        for i in np.flatnonzero(ts.last()):
            assert ts.discount[i] == 0.0 and ts.reward[i] == pytest.approx(15.0)
            assert ts.info["success"][i] and _inside(env, i, "torso", 0)
            ended[i] = True
        mid = ts.step_type == StepType.MID
        assert (ts.discount[mid] == 1.0).all() and (ts.reward[mid] == 0.0).all()
    assert ended.all()


def test_move_box_reward_fires_when_the_box_reaches_the_target():
    env = make_task_env(16, seed=4, body="pointmass", tasks=["move_box:0:0"], episode_seconds=20.0)
    ts = env.reset(4)
    seen = np.zeros(16, bool)
    for _ in range(env.episode_steps - 1):
        ts = env.step(
            push_box(ts.observation["task/boxes"][:, 0], ts.observation["task/targets"][:, 0])
        )
        for i in range(16):
            inside = _inside(env, i, "box_0", 0)
            expected = 0.0 if not inside else (10.0 if seen[i] else 15.0)
            assert ts.reward[i] == pytest.approx(expected), (i, ts.reward[i], inside)
            seen[i] |= inside
    assert seen.all(), seen


def test_move_box_then_go_needs_the_box_first():
    env = make_task_env(
        4, seed=2, body="pointmass", tasks=["move_box_then_go:0:0:1"], episode_seconds=40.0
    )
    ts = env.reset(2)
    # Go straight to the second target first: no reward, phase stays 0.
    for _ in range(60):
        ts = env.step(go_to(ts.observation["task/targets"][:, 1]))
        assert (ts.reward == 0).all() and (ts.observation["task/phase"] == 0).all()
    assert all(_inside(env, i, "torso", 1) for i in range(4))
    got_subgoal = np.zeros(4, bool)
    done = np.zeros(4, bool)
    for _ in range(env.episode_steps - 61):
        obs = ts.observation
        phase = obs["task/phase"][:, 0] > 0
        act = np.where(
            phase[:, None],
            go_to(obs["task/targets"][:, 1]),
            push_box(obs["task/boxes"][:, 0], obs["task/targets"][:, 0]),
        )
        ts = env.step(act)
        new_phase = ts.observation["task/phase"][:, 0] > 0
        sub = new_phase & ~phase
        # Sub-goal bonus (5) on the step the box first reaches target 0.
        assert (ts.reward[sub] >= 5.0).all()
        for i in np.flatnonzero(sub):
            assert _inside(env, i, "box_0", 0)
        got_subgoal |= sub
        finished = ts.reward >= 10.0
        assert new_phase[finished].all()
        done |= finished
    assert got_subgoal.sum() >= 2 and done.sum() >= 2, (got_subgoal, done)


def test_gather_fires_when_the_boxes_touch_and_not_when_apart():
    env = make_task_env(2, seed=0, body="pointmass", tasks=["gather:0:1"])
    env.reset(0)
    half = env.layout.box_half
    for i, gap in ((0, 0.0), (1, 0.05)):  # copy 0: faces touching; copy 1: 5 cm apart
        data = env.data(i)
        adr = [env.model.joint(f"box_{m}").qposadr[0] for m in (0, 1)]
        data.qpos[adr[0] : adr[0] + 7] = (0.0, 0.0, half, 1, 0, 0, 0)
        data.qpos[adr[1] : adr[1] + 7] = (2 * half + gap, 0.0, half, 1, 0, 0, 0)
        data.qpos[:2] = (0.0, -0.5)  # the body out of the way
        data.qvel[:] = 0
    ts = env.step(np.zeros((2, 2), np.float32))
    assert ts.reward[0] == pytest.approx(15.0) and ts.info["success"][0]
    assert ts.reward[1] == 0.0 and not ts.info["success"][1]


def test_shaped_reward_is_dense_and_grows_closer_to_the_target():
    kwargs = {"body": "pointmass", "tasks": ["go_to_target:0"], "shaped": True}
    env = make_task_env(4, seed=0, **kwargs)
    ts = env.reset(0)
    dist = [np.linalg.norm(ts.observation["task/targets"][:, 0], axis=1)]
    rewards = []
    for _ in range(5):
        ts = env.step(go_to(ts.observation["task/targets"][:, 0]))
        rewards.append(ts.reward)
        dist.append(np.linalg.norm(ts.observation["task/targets"][:, 0], axis=1))
    rewards = np.array(rewards)
    # Not at the target yet: only the dense term, in (0, reward_scale * shaping_weight].
    assert (np.array(dist[1:]) > 0.5).all()
    assert ((rewards > 0) & (rewards <= 1.0)).all()
    assert (np.diff(rewards, axis=0) > 0).all()  # moving straight at it
