"""SVG(0) with Retrace and a flat or hierarchical learned behaviour prior (docs/paper.md 1-3).

* :mod:`.config`: :class:`SVG0Config`, every choice of the method.
* :mod:`.networks`: builds policy, prior and critic from a config.
* :mod:`.losses`: critic (Retrace), policy (SVG(0)) and prior (distillation) losses.
* :mod:`.learner`: :class:`TrainState`, the jitted ``update``, and :class:`InPlaceLearner`,
  the run loop's state advanced by the donating update.
* :mod:`.actor`: batched ``select_action`` with the extras replay needs.
"""

from behavior_priors.agents.svg0.actor import (
    ActorState,
    initial_actor_state,
    select_action,
    select_prior_action,
    to_env_action,
)
from behavior_priors.agents.svg0.config import SVG0Config
from behavior_priors.agents.svg0.learner import (
    InPlaceLearner,
    TrainState,
    check_finite,
    init,
    make_update_fn,
    policy_prefix,
    update,
)
from behavior_priors.agents.svg0.losses import (
    critic_loss,
    policy_loss,
    policy_prior_kl,
    prior_loss,
)
from behavior_priors.agents.svg0.networks import SVG0Networks, make_networks, prior_low_level

__all__ = [
    "ActorState",
    "InPlaceLearner",
    "SVG0Config",
    "SVG0Networks",
    "TrainState",
    "check_finite",
    "critic_loss",
    "init",
    "initial_actor_state",
    "make_networks",
    "make_update_fn",
    "policy_loss",
    "policy_prefix",
    "policy_prior_kl",
    "prior_loss",
    "prior_low_level",
    "select_action",
    "select_prior_action",
    "to_env_action",
    "update",
]
