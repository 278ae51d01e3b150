"""Equinox modules: observation selection by key (information asymmetry), torsos, Gaussian
and categorical heads, flat and hierarchical policies (continuous or discrete actions), Distral's
per-task and distilled policies, priors (flat; hierarchical with a shared or separate low
level; learned, N(0, I), AR(1) or learned-AR high level) and critics.

Every module works on arrays with any leading batch dimensions, so the learner applies it to
``[B, T+1, ...]`` windows and ``[S, B, T+1, ...]`` samples without ``vmap``.
"""

from behavior_priors.networks.categorical_net import CategoricalNet
from behavior_priors.networks.critics import Critic, DiscreteCritic
from behavior_priors.networks.distral import DistralPolicy
from behavior_priors.networks.gaussian_net import GaussianNet
from behavior_priors.networks.observations import concat_observations, resolve_keys
from behavior_priors.networks.policies import FlatPolicy, HierarchicalPolicy, PolicySample
from behavior_priors.networks.priors import (
    AR1HighPrior,
    FlatPrior,
    HierarchicalPrior,
    LearnedARHighPrior,
    LearnedHighPrior,
    NormalHighPrior,
)

__all__ = [
    "AR1HighPrior",
    "CategoricalNet",
    "Critic",
    "DiscreteCritic",
    "DistralPolicy",
    "FlatPolicy",
    "FlatPrior",
    "GaussianNet",
    "HierarchicalPolicy",
    "HierarchicalPrior",
    "LearnedARHighPrior",
    "LearnedHighPrior",
    "NormalHighPrior",
    "PolicySample",
    "concat_observations",
    "resolve_keys",
]
