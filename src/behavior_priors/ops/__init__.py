"""Pure math on arrays: distributions, KL (analytic, hierarchical bound, Monte Carlo),
Retrace targets and returns; and the CPU lowering of JAX's random-number hash.

Functions here take and return arrays (or small ``NamedTuple`` pytrees of arrays), have no
state, work under ``jit``, and treat one sequence at a time where time matters: batch them
with ``jax.vmap``. Nothing here imports from the rest of the package.
"""

from behavior_priors.ops.distributions import (
    Categorical,
    DiagGaussian,
    categorical_kl,
    gaussian_kl,
    standard_normal_like,
)
from behavior_priors.ops.kl import (
    HierarchicalKL,
    hierarchical_kl_bound,
    latent_mixture_log_prob,
    marginal_kl_mc,
)
from behavior_priors.ops.retrace import retrace_targets, retrace_targets_discrete
from behavior_priors.ops.returns import discounted_returns, episode_return
from behavior_priors.ops.threefry import threefry2x32, use_fast_threefry_on_cpu

# Every agent imports this package: register the CPU lowering of the random-number hash before
# anything of ours is compiled (same numbers, no ``while`` loop per draw; threefry.py).
use_fast_threefry_on_cpu()

__all__ = [
    "Categorical",
    "DiagGaussian",
    "HierarchicalKL",
    "categorical_kl",
    "discounted_returns",
    "episode_return",
    "gaussian_kl",
    "hierarchical_kl_bound",
    "latent_mixture_log_prob",
    "marginal_kl_mc",
    "retrace_targets",
    "retrace_targets_discrete",
    "standard_normal_like",
    "threefry2x32",
    "use_fast_threefry_on_cpu",
]
