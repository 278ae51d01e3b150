"""Exact tabular dynamics: value iteration agrees with breadth-first search, and the greedy
policy it gives reaches every goal from every start in the shortest number of steps."""

import numpy as np
import pytest

from behavior_priors.envs import StepType
from behavior_priors.envs.gridworld import GridWorld, shortest_path_lengths, value_iteration


def test_transition_matrix_is_stochastic_and_matches_moves():
    env = GridWorld("fourrooms", slip=0.2, allow_stay=True)
    p = env.transition_matrix()
    s, a = env.num_tasks, env.num_actions
    assert p.shape == (s, a, s)
    np.testing.assert_allclose(p.sum(-1), 1.0)
    det = GridWorld("fourrooms", slip=0.0, allow_stay=True).transition_matrix()
    np.testing.assert_array_equal(det.argmax(-1), env.next_state)
    np.testing.assert_array_equal(det.max(-1), 1.0)


def test_shortest_paths_by_hand():
    env = GridWorld("tworooms")
    goal = env.state_of((3, 7))
    d = shortest_path_lengths(env.next_state, goal)
    assert d[goal] == 0
    assert d[env.state_of((3, 5))] == 2  # the door, two cells left of the goal
    assert d[env.state_of((1, 1))] == 2 + 4 + 2  # to the door row, to the door, through
    assert np.isfinite(d).all()


@pytest.mark.parametrize("layout", ["tworooms", "fourrooms"])
def test_value_iteration_policy_takes_shortest_paths_to_every_goal(layout):
    gamma = 0.9
    env = GridWorld(layout, goals="all", num_envs=4000, max_steps=200, seed=0)
    s = env.num_tasks
    p = env.transition_matrix()
    dist = np.stack([shortest_path_lengths(env.next_state, g) for g in range(s)])  # [G, S]
    q = np.stack([value_iteration(p, g, gamma)[0] for g in range(s)])  # [G, S, A]
    # Reference by a second route: with reward 1 on entering the goal, V*(s) = gamma^(d(s)-1).
    v = q.max(-1)
    off_goal = ~np.eye(s, dtype=bool)
    np.testing.assert_allclose(v[off_goal], (gamma ** (dist - 1))[off_goal], rtol=1e-8)

    ts = env.reset(0)
    start_dist = dist[ts.task_id, ts.info["state"]]
    steps = np.zeros(env.num_envs, int)
    done = np.zeros(env.num_envs, bool)
    while not done.all():
        ts = env.step(q[ts.task_id, ts.info["state"]].argmax(-1).astype(np.int32))
        steps += ~done
        newly = ts.step_type == StepType.LAST
        assert ts.terminated()[newly & ~done].all()
        done |= newly
    np.testing.assert_array_equal(steps, start_dist)
    # Every goal was tried from several starts.
    assert len(np.unique(env.reset(0).task_id)) == s


def test_value_iteration_with_slip_is_a_fixed_point():
    env = GridWorld("tworooms", slip=0.3, allow_stay=True)
    p = env.transition_matrix()
    g, gamma = env.state_of((5, 9)), 0.95
    q, v = value_iteration(p, g, gamma, step_reward=-0.01)
    reward = np.full(env.num_tasks, -0.01)
    reward[g] = 1.0
    alive = np.ones(env.num_tasks)
    alive[g] = 0.0
    backup = p @ (reward + gamma * alive * v)
    np.testing.assert_allclose(q, backup, atol=1e-8)
    np.testing.assert_allclose(np.delete(v, g), np.delete(q.max(-1), g), atol=1e-8)
    with pytest.raises(ValueError, match="gamma"):
        value_iteration(p, g, 1.0)
