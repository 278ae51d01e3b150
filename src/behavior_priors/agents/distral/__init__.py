"""Distral (Teh et al. 2017; docs/paper.md section 6): per-task policies pi_i regularised towards a
shared distilled policy pi0, for discrete actions.

* :mod:`.core`: the pieces as pure functions (alpha and beta from the KL and entropy costs,
  the regularised reward, the soft value under pi0, the 2-column policy, the distillation
  target) with hand-checkable values.
* :mod:`.tabular`: exact Distral on a known tabular MDP (soft value iteration for every task
  given pi0, then pi0 as the visitation-weighted average of the pi_i, alternated), the
  reference the learned agents are compared with; and a model-free tabular learner (soft
  Q-learning, 1-column or 2-column) that trains from the grid world's transitions.

Not here yet: the neural-network Distral agent (function approximation, multi-step returns) and
the grid-world comparison with the project's own priors (issue 8).
"""

from behavior_priors.agents.distral.core import (
    DistralCosts,
    distill_policy,
    regularised_reward,
    soft_value,
    task_policy,
    two_column_policy,
)
from behavior_priors.agents.distral.tabular import (
    DistralSolution,
    TabularDistral,
    discounted_visitation,
    soft_value_iteration,
    solve_distral,
)

__all__ = [
    "DistralCosts",
    "DistralSolution",
    "TabularDistral",
    "discounted_visitation",
    "distill_policy",
    "regularised_reward",
    "soft_value",
    "soft_value_iteration",
    "solve_distral",
    "task_policy",
    "two_column_policy",
]
