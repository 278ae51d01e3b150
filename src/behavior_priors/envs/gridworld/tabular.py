"""Exact tabular solutions of grid-world tasks: breadth-first distances and value iteration.

These are references for tests and for tabular baselines (Distral's grid world): they use the
environment's own dynamics (:meth:`GridWorld.transition_matrix`, :attr:`GridWorld.next_state`).
"""

from __future__ import annotations

from collections import deque

import numpy as np


def shortest_path_lengths(next_state: np.ndarray, goal: int) -> np.ndarray:
    """Fewest moves from every state to ``goal`` under deterministic moves.

    Args:
      next_state: ``[S, A]`` int, the state each action leads to.
      goal: the goal state index.

    Returns:
      ``[S]`` float64 distances; ``inf`` where the goal cannot be reached, 0 at the goal.
    """
    s = next_state.shape[0]
    predecessors: list[set[int]] = [set() for _ in range(s)]
    for src, dsts in enumerate(next_state):
        for dst in dsts:
            if dst != src:
                predecessors[int(dst)].add(src)
    dist = np.full(s, np.inf)
    dist[goal] = 0.0
    queue = deque([goal])
    while queue:
        node = queue.popleft()
        for prev in predecessors[node]:
            if np.isinf(dist[prev]):
                dist[prev] = dist[node] + 1.0
                queue.append(prev)
    return dist


def value_iteration(
    transitions: np.ndarray,
    goal: int,
    gamma: float = 0.99,
    goal_reward: float = 1.0,
    step_reward: float = 0.0,
    tol: float = 1e-10,
    max_iters: int = 100_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Optimal action values of the task "enter ``goal``", which is terminal.

    The reward of a transition is ``goal_reward`` when it enters ``goal`` and ``step_reward``
    otherwise; nothing is earned after the goal (no time limit: the infinite-horizon optimum).

    Args:
      transitions: ``[S, A, S]`` transition probabilities ``P[s, a, s']``.
      goal: the goal state index.
      gamma: discount in ``[0, 1)``.

    Returns:
      ``(q, v)``: ``[S, A]`` and ``[S]`` float64; ``v[goal]`` is 0 (the episode is over there).
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must lie in [0, 1), got {gamma}")
    s = transitions.shape[0]
    reward_next = np.full(s, step_reward, np.float64)
    reward_next[goal] = goal_reward
    alive = np.ones(s)
    alive[goal] = 0.0  # no bootstrapping past the terminal state
    v = np.zeros(s)
    for _ in range(max_iters):
        q = transitions @ (reward_next + gamma * alive * v)  # [S, A]
        v_new = q.max(axis=1)
        v_new[goal] = 0.0
        if np.max(np.abs(v_new - v)) < tol:
            v = v_new
            break
        v = v_new
    else:
        raise RuntimeError(f"value iteration did not converge in {max_iters} iterations")
    return transitions @ (reward_next + gamma * alive * v), v
