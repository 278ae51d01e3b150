"""The grid world: protocol semantics, dynamics, slip statistics, tasks, and bad input."""

import numpy as np
import pytest

from behavior_priors.envs import Env, StepType
from behavior_priors.envs.gridworld import GridWorld, get_layout, make_gridworld
from behavior_priors.envs.registry import make

UP, DOWN, LEFT, RIGHT, STAY = 0, 1, 2, 3, 4


def _random_rollout(env: GridWorld, seed: int, steps: int):
    rng = np.random.default_rng(1234)
    out = [env.reset(seed)]
    for _ in range(steps):
        out.append(env.step(rng.integers(0, env.num_actions, env.num_envs)))
    return out


def test_protocol_and_specs():
    env = GridWorld("tworooms", num_envs=3, seed=0)
    assert isinstance(env, Env)
    s = get_layout("tworooms").num_cells
    assert s == 41
    spec = env.observation_spec()
    assert {k: v.shape for k, v in spec.items()} == {
        "proprio/position": (s,),
        "task/goal": (s,),
        "task/id_onehot": (s,),
        "task/goal_index": (4,),
    }
    assert env.action_spec().num_values == 4
    assert GridWorld("tworooms", allow_stay=True).action_spec().num_values == 5
    ts = env.reset(0)
    for key, value in ts.observation.items():
        spec[key].validate(value, batch=3)
        assert value.dtype == np.float32
    assert ts.step_type.dtype == np.int8 and (ts.step_type == StepType.FIRST).all()
    np.testing.assert_array_equal(ts.reward, 0.0)
    np.testing.assert_array_equal(ts.discount, 1.0)
    assert ts.task_id.dtype == np.int32


def test_determinism_per_seed():
    a = _random_rollout(GridWorld("fourrooms", num_envs=8, slip=0.2, max_steps=10), 7, 60)
    b = _random_rollout(GridWorld("fourrooms", num_envs=8, slip=0.2, max_steps=10), 7, 60)
    c = _random_rollout(GridWorld("fourrooms", num_envs=8, slip=0.2, max_steps=10), 8, 60)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.step_type, y.step_type)
        np.testing.assert_array_equal(x.reward, y.reward)
        np.testing.assert_array_equal(x.task_id, y.task_id)
        for k in x.observation:
            np.testing.assert_array_equal(x.observation[k], y.observation[k])
    states_a = np.stack([t.info["state"] for t in a])
    states_c = np.stack([t.info["state"] for t in c])
    assert not np.array_equal(states_a, states_c)


def test_walls_block_and_moves():
    # (1, 1) is the top-left corner of the left room: up and left hit walls.
    env = GridWorld("tworooms", goals=[(5, 9)], start=(1, 1), num_envs=4, seed=0)
    ts = env.step(np.array([UP, LEFT, RIGHT, DOWN]))
    cells = env.layout.cells[ts.info["state"]]
    np.testing.assert_array_equal(cells, [[1, 1], [1, 1], [1, 2], [2, 1]])
    # (2, 4) is next to the dividing wall (column 5) away from the door: right is blocked.
    env = GridWorld("tworooms", goals=[(5, 9)], start=(2, 4), num_envs=1, seed=0)
    ts = env.step(np.array([RIGHT]))
    assert tuple(env.layout.cells[ts.info["state"][0]]) == (2, 4)
    # Through the door at (3, 5): three moves right from (3, 4) reach (3, 7).
    env = GridWorld("tworooms", goals=[(5, 9)], start=(3, 4), num_envs=1, seed=0)
    for _ in range(3):
        ts = env.step(np.array([RIGHT]))
    assert tuple(env.layout.cells[ts.info["state"][0]]) == (3, 7)


def test_next_state_table_never_enters_walls():
    layout = get_layout("fourrooms")
    table = layout.next_state_table(5)
    moved = layout.cells[table] - layout.cells[:, None, :]  # [S, A, 2]
    # Each move is the action's displacement or nothing (blocked), never anything else.
    disp = np.array([[-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]])
    ok = (moved == disp[None]).all(-1) | (moved == 0).all(-1)
    assert ok.all()
    # Blocked exactly when the target cell is a wall.
    target = layout.cells[:, None, :] + disp[None]
    is_wall = layout.walls[target[..., 0], target[..., 1]]
    np.testing.assert_array_equal((moved == 0).all(-1)[:, :4], is_wall[:, :4])


@pytest.mark.parametrize(("slip", "allow_stay"), [(0.3, False), (0.5, True)])
def test_slip_statistics(slip, allow_stay):
    # From (3, 3) in two rooms all four neighbours are free, so every action moves distinctly.
    n = 40_000
    env = GridWorld(
        "tworooms",
        goals=[(5, 9)],
        start=(3, 3),
        num_envs=n,
        slip=slip,
        allow_stay=allow_stay,
        seed=3,
    )
    ts = env.step(np.full(n, RIGHT))
    delta = env.layout.cells[ts.info["state"]] - np.array([3, 3])
    disp = np.array([[-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]])[: env.num_actions]
    counts = np.array([(delta == d).all(1).sum() for d in disp])
    assert counts.sum() == n
    a = env.num_actions
    expected = np.full(a, slip / a)
    expected[RIGHT] += 1.0 - slip
    sigma = np.sqrt(expected * (1 - expected) / n)
    np.testing.assert_array_less(np.abs(counts / n - expected), 5 * sigma)
    # The tabular model says the same.
    np.testing.assert_allclose(
        env.transition_matrix()[env.state_of((3, 3)), RIGHT][
            env.next_state[env.state_of((3, 3))]
        ].reshape(-1),
        expected,
    )


def test_goal_terminates_with_reward_then_next_step_resets():
    env = GridWorld("tworooms", goals=[(1, 2)], start=(1, 1), num_envs=2, seed=0)
    ts = env.step(np.array([RIGHT, DOWN]))
    np.testing.assert_array_equal(ts.step_type, [StepType.LAST, StepType.MID])
    np.testing.assert_array_equal(ts.reward, [1.0, 0.0])
    np.testing.assert_array_equal(ts.discount, [0.0, 1.0])
    np.testing.assert_array_equal(ts.terminated(), [True, False])
    np.testing.assert_array_equal(ts.info["success"], [True, False])
    # The final observation is the goal cell itself.
    np.testing.assert_array_equal(
        ts.observation["proprio/position"][0], ts.observation["task/goal"][0]
    )
    # Next step: copy 0 ignores its action and starts over; copy 1 moves on.
    ts = env.step(np.array([RIGHT, UP]))
    np.testing.assert_array_equal(ts.step_type, [StepType.FIRST, StepType.MID])
    np.testing.assert_array_equal(ts.reward, [0.0, 0.0])
    np.testing.assert_array_equal(ts.discount, [1.0, 1.0])
    np.testing.assert_array_equal(ts.info["state"], [env.state_of((1, 1))] * 2)
    ts = env.step(np.array([RIGHT, RIGHT]))
    np.testing.assert_array_equal(ts.step_type, [StepType.LAST, StepType.LAST])
    np.testing.assert_array_equal(ts.reward, [1.0, 1.0])


def test_time_limit_truncates_with_discount_one():
    env = GridWorld(
        "tworooms", goals=[(5, 9)], start=(1, 1), num_envs=1, max_steps=3, step_reward=-0.1, seed=0
    )
    types, rewards = [], []
    for action in (RIGHT, RIGHT, DOWN):
        ts = env.step(np.array([action]))
        types.append(int(ts.step_type[0]))
        rewards.append(float(ts.reward[0]))
    assert types == [StepType.MID, StepType.MID, StepType.LAST]
    np.testing.assert_allclose(rewards, [-0.1] * 3)
    assert ts.discount[0] == 1.0 and ts.truncated()[0] and not ts.terminated()[0]
    # The true final observation, (2, 3), is kept on the LAST step.
    assert tuple(env.layout.cells[ts.info["state"][0]]) == (2, 3)
    assert ts.observation["proprio/position"][0, env.state_of((2, 3))] == 1.0
    ts = env.step(np.array([RIGHT]))
    assert ts.step_type[0] == StepType.FIRST and ts.reward[0] == 0.0


def test_goal_on_the_last_allowed_step_is_a_termination():
    env = GridWorld("tworooms", goals=[(1, 3)], start=(1, 1), num_envs=1, max_steps=2, seed=0)
    env.step(np.array([RIGHT]))
    ts = env.step(np.array([RIGHT]))
    assert ts.step_type[0] == StepType.LAST and ts.discount[0] == 0.0 and ts.reward[0] == 1.0


def test_tasks_are_sampled_from_the_goal_set_and_ids_are_goal_cells():
    goals = [(1, 1), (5, 9), (3, 5)]
    env = GridWorld("tworooms", goals=goals, num_envs=6000, seed=1)
    ts = env.reset(1)
    ids = [env.state_of(g) for g in goals]
    assert env.goal_ids == tuple(ids)
    counts = np.array([(ts.task_id == i).sum() for i in ids])
    assert counts.sum() == 6000
    np.testing.assert_array_less(np.abs(counts / 6000 - 1 / 3), 0.03)
    # id one-hot and goal encoding agree with the task id; the start is never the goal.
    np.testing.assert_array_equal(ts.observation["task/id_onehot"].argmax(1), ts.task_id)
    np.testing.assert_array_equal(ts.observation["task/goal"].argmax(1), ts.task_id)
    goal_ids = np.asarray(env.goal_ids)
    np.testing.assert_array_equal(goal_ids[ts.observation["task/goal_index"].argmax(1)], ts.task_id)
    assert (ts.info["state"] != ts.task_id).all()
    # Starts cover every other free cell.
    assert len(np.unique(ts.info["state"])) == env.num_tasks
    # Task ids do not depend on the goal set.
    assert GridWorld("tworooms", goals=[(3, 5)]).state_of((3, 5)) == ids[2]
    assert GridWorld("tworooms", goals="all").goal_ids == tuple(range(41))


def test_prior_keys_do_not_see_the_goal():
    # Same start, different goals: every proprio/ entry is identical, task/ entries differ.
    a = GridWorld("fourrooms", goals=[(1, 1)], start=(3, 3), seed=0).reset(0)
    b = GridWorld("fourrooms", goals=[(11, 11)], start=(3, 3), seed=0).reset(0)
    for key in a.observation:
        same = np.array_equal(a.observation[key], b.observation[key])
        # (Each world has one goal, so its index in the world's own goal list is the same.)
        assert same == (key.startswith("proprio/") or key == "task/goal_index"), key


def test_xy_encoding():
    env = GridWorld("fourrooms", goals=[(11, 11)], start=(1, 1), position_encoding="xy", seed=0)
    ts = env.reset(0)
    assert env.observation_spec()["proprio/position"].shape == (2,)
    np.testing.assert_allclose(ts.observation["proprio/position"][0], [1 / 12, 1 / 12])
    np.testing.assert_allclose(ts.observation["task/goal"][0], [11 / 12, 11 / 12])
    ts = env.step(np.array([RIGHT]))
    np.testing.assert_allclose(ts.observation["proprio/position"][0], [2 / 12, 1 / 12])


def test_custom_layout_and_render():
    env = GridWorld("#####\n#...#\n#.#.#\n#####", goals=[(2, 3)], start=(1, 1), seed=0)
    assert env.num_tasks == 5 and env.layout.name == "custom"
    text = env.render()
    assert text.splitlines()[1][1] == "A" and text.count("G") == 1
    with pytest.raises(ValueError, match="no default goals"):
        GridWorld("#####\n#...#\n#####")


def test_registry_entries():
    for name, layout in (("gridworld-tworooms", "tworooms"), ("gridworld-fourrooms", "fourrooms")):
        env = make(name, num_envs=4, seed=0, slip=0.1)
        assert isinstance(env, GridWorld) and env.layout.name == layout
        assert env.num_envs == 4 and env.slip == 0.1
        env.step(np.zeros(4, np.int32))
    assert make_gridworld(2, seed=0, layout="tworooms").num_envs == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layout": "fourroom"}, "did you mean fourrooms"),
        ({"goals": [(0, 0)]}, "is a wall"),
        ({"goals": [(40, 2)]}, "outside"),
        ({"goals": [(1, 1), (1, 1)]}, "duplicate"),
        ({"goals": []}, "empty"),
        ({"goals": "some"}, "goals must be"),
        ({"goals": [(1,)]}, r"\(row, col\)"),
        ({"slip": 1.5}, "slip"),
        ({"max_steps": 0}, "max_steps"),
        ({"num_envs": 0}, "num_envs"),
        ({"position_encoding": "onehott"}, "did you mean 'onehot'"),
        ({"start": (1, 1)}, "also a goal"),
        ({"start": "corner"}, "start must be"),
        ({"layout": "#####\n#..#\n#####"}, "different lengths"),
        ({"layout": "####\n#..x\n####"}, "only contain"),
        ({"layout": "####\n...#\n####"}, "border"),
    ],
)
def test_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GridWorld(**{"layout": "fourrooms", **kwargs})


def test_bad_actions():
    env = GridWorld("tworooms", num_envs=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2, np.int32))
    env.reset(0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, np.int32))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        env.step(np.array([0, 4]))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        env.step(np.array([-1, 0]))
    with pytest.raises(ValueError, match="integers"):
        env.step(np.array([0.0, 1.0]))


def test_get_and_set_state_continue_identically():
    env = GridWorld("fourrooms", num_envs=4, slip=0.3, max_steps=7, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(10):
        env.step(rng.integers(4, size=4))
    saved = env.get_state()
    actions = rng.integers(4, size=(30, 4))
    first = [env.step(a) for a in actions]
    other = GridWorld("fourrooms", num_envs=4, slip=0.3, max_steps=7, seed=5)
    other.set_state(saved)
    for a, ts in zip(actions, first, strict=True):
        ts2 = other.step(a)
        np.testing.assert_array_equal(ts2.step_type, ts.step_type)
        np.testing.assert_array_equal(
            ts2.observation["proprio/position"], ts.observation["proprio/position"]
        )
        np.testing.assert_array_equal(ts2.task_id, ts.task_id)
    with pytest.raises(ValueError, match="another number of copies"):
        GridWorld("fourrooms", num_envs=2).set_state(saved)
