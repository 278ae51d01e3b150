"""A vectorised multi-task grid world (two rooms, four rooms, or any ASCII map).

One task per goal cell; the task id is the goal's index in the row-major order of free cells.
See :class:`GridWorld` for actions, rewards and observations, and :mod:`.tabular` for exact
solutions (breadth-first distances, value iteration) built from the same dynamics.
"""

from behavior_priors.envs.gridworld.env import GridWorld, make_gridworld
from behavior_priors.envs.gridworld.layouts import (
    ACTION_NAMES,
    DEFAULT_GOALS,
    LAYOUTS,
    Layout,
    get_layout,
    parse_layout,
)
from behavior_priors.envs.gridworld.tabular import shortest_path_lengths, value_iteration

__all__ = [
    "ACTION_NAMES",
    "DEFAULT_GOALS",
    "LAYOUTS",
    "GridWorld",
    "Layout",
    "get_layout",
    "make_gridworld",
    "parse_layout",
    "shortest_path_lengths",
    "value_iteration",
]
