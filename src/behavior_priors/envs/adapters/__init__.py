"""Adapters between our batched protocol and Gymnasium and dm_control.

* :func:`to_gymnasium` / :func:`to_gymnasium_vector`: our environments for peer libraries.
* :func:`from_gymnasium`: any Gymnasium environment, with a mapping of observations to keys.
* :func:`from_dm_control`: dm_control suite and composer environments (optional ``dmc`` extra,
  imported only when used); :func:`ant_go_to_target` builds the locomotion reference task.
"""

from behavior_priors.envs.adapters.from_dm_control import (
    FromDmControl,
    ant_go_to_target,
    from_dm_control,
)
from behavior_priors.envs.adapters.from_gymnasium import FromGymnasium, from_gymnasium
from behavior_priors.envs.adapters.to_gymnasium import (
    GymnasiumEnv,
    GymnasiumVectorEnv,
    to_gymnasium,
    to_gymnasium_vector,
)

__all__ = [
    "FromDmControl",
    "FromGymnasium",
    "GymnasiumEnv",
    "GymnasiumVectorEnv",
    "ant_go_to_target",
    "from_dm_control",
    "from_gymnasium",
    "to_gymnasium",
    "to_gymnasium_vector",
]
