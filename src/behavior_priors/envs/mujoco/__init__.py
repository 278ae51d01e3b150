"""The native MuJoCo task suite: bodies, a walled arena with targets and boxes, sparse tasks.

Quick start::

    from behavior_priors.envs import make
    env = make("pointmass-gtt3", num_envs=8, seed=0)
    ts = env.step(np.zeros((8, 2), np.float32))

or directly::

    from behavior_priors.envs.mujoco import make_task_env
    env = make_task_env(8, seed=0, body="ant", tasks=["move_box:0:0", "move_box:0:1"])

See ``docs/envs.md`` for bodies, tasks, observation keys and step semantics.
"""

from behavior_priors.envs.mujoco.arena import ArenaLayout, build_arena
from behavior_priors.envs.mujoco.bodies import (
    BODIES,
    Ant,
    Ball,
    Body,
    PointMass,
    Quadruped,
    get_body,
)
from behavior_priors.envs.mujoco.env import MujocoTaskEnv, TaskEnvConfig, make_task_env
from behavior_priors.envs.mujoco.rendering import RenderingUnavailableError
from behavior_priors.envs.mujoco.tasks import (
    Kind,
    Task,
    gather,
    go_to_target,
    move_box,
    move_box_then_go,
    parse_task,
)

__all__ = [
    "BODIES",
    "Ant",
    "ArenaLayout",
    "Ball",
    "Body",
    "Kind",
    "MujocoTaskEnv",
    "PointMass",
    "Quadruped",
    "RenderingUnavailableError",
    "Task",
    "TaskEnvConfig",
    "build_arena",
    "gather",
    "get_body",
    "go_to_target",
    "make_task_env",
    "move_box",
    "move_box_then_go",
    "parse_task",
]
