"""Build the policy, prior and critic an :class:`SVG0Config` asks for."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import equinox as eqx
import jax

from behavior_priors.agents.svg0.config import SVG0Config
from behavior_priors.networks import (
    AR1HighPrior,
    Critic,
    DiscreteCritic,
    DistralPolicy,
    FlatPolicy,
    FlatPrior,
    HierarchicalPolicy,
    HierarchicalPrior,
    LearnedARHighPrior,
    LearnedHighPrior,
    NormalHighPrior,
)
from behavior_priors.networks.policies import Policy, action_net
from behavior_priors.networks.priors import Prior

Array = jax.Array


class SVG0Networks(eqx.Module):
    """The three trained parts. ``prior`` is ``None`` for plain (entropy-regularised) RL."""

    policy: Policy | DistralPolicy
    prior: Prior | None
    critic: Critic | DiscreteCritic


def distral_coefficients(config: SVG0Config) -> tuple[float, float]:
    """Distral's ``(alpha, beta) = (c_KL / (c_KL + c_Ent), 1 / (c_KL + c_Ent))``."""
    total = config.kl_cost + config.entropy_cost
    if total <= 0:
        raise ValueError("Distral needs kl_cost + entropy_cost > 0 (alpha and beta divide by it)")
    return config.kl_cost / total, 1.0 / total


def make_networks(
    config: SVG0Config,
    obs_shapes: Mapping[str, tuple[int, ...]],
    action_size: int,
    key: Array,
    discrete: bool = False,
) -> SVG0Networks:
    """Initialise networks for observations ``{key: shape}`` and ``action_size`` action
    dimensions, or ``action_size`` discrete actions when ``discrete``.

    Raises ``ValueError`` if a configured observation key does not exist, or Distral is asked
    for with continuous actions. The prefix ``"task/"`` is dropped from every key list when
    the environment has no ``task/`` input (a single-task environment), with a warning when a
    prior therefore sees everything the policy sees.
    """
    kp, kq, kc = jax.random.split(key, 3)
    c = without_absent_task_inputs(config, obs_shapes)
    if c.policy == "distral":
        if not discrete:
            raise ValueError("Distral (policy='distral') needs a discrete action space")
        alpha, beta = distral_coefficients(c)
        policy = DistralPolicy(
            c.prior_keys,
            c.distral_task_key,
            obs_shapes,
            action_size,
            c.policy_hidden,
            kp,
            two_column=c.distral_columns == "2col",
            alpha=alpha,
            beta=beta,
        )
    elif c.policy == "flat":
        policy = FlatPolicy(
            c.policy_keys, obs_shapes, action_size, c.policy_hidden, kp, c.min_scale, discrete
        )
    else:
        policy = HierarchicalPolicy(
            c.high_keys,
            c.low_keys,
            obs_shapes,
            action_size,
            c.latent_dim,
            c.policy_hidden,
            kp,
            c.min_scale,
            discrete,
            autoregressive=c.autoregressive_high_level,
        )

    prior: Prior | None
    if c.prior in ("none", "distilled"):
        prior = None
    elif c.prior == "flat":
        prior = FlatPrior(
            c.prior_keys, obs_shapes, action_size, c.prior_hidden, kq, c.min_scale, discrete
        )
    else:
        kh, kl = jax.random.split(kq)
        if c.high_prior == "learned":
            high = LearnedHighPrior(
                c.prior_keys, obs_shapes, c.latent_dim, c.prior_hidden, kh, c.min_scale
            )
        elif c.high_prior == "normal":
            high = NormalHighPrior(c.latent_dim)
        elif c.high_prior == "ar1":
            high = AR1HighPrior(c.latent_dim, c.ar1_coefficient)
        else:
            high = LearnedARHighPrior(c.latent_dim, c.prior_hidden, kh, c.min_scale)
        low = None
        if c.low_level == "separate":
            low = action_net(
                c.low_keys,
                obs_shapes,
                action_size,
                c.prior_hidden,
                kl,
                c.min_scale,
                discrete,
                c.latent_dim,
            )
        prior = HierarchicalPrior(high, low)

    critic = (DiscreteCritic if discrete else Critic)(
        c.critic_keys,
        obs_shapes,
        action_size,
        c.critic_hidden,
        kc,
        latent_size=c.latent_size if c.critic_uses_latent else 0,
    )
    return SVG0Networks(policy, prior, critic)


_KEY_FIELDS = ("policy_keys", "high_keys", "low_keys", "prior_keys", "critic_keys")


def without_absent_task_inputs(
    config: SVG0Config, obs_shapes: Mapping[str, tuple[int, ...]]
) -> SVG0Config:
    """``config`` with the prefix ``"task/"`` removed from its key lists when no observation
    is under ``task/`` (a single-task environment has no task inputs, and a prefix means "all
    of them, if any"); exact keys such as ``"task/target"`` are kept, so a missing one is
    still an error. Warns once when a prior is trained, because it then sees all the
    policy sees."""
    if any(k.startswith("task/") for k in obs_shapes):
        return config
    changes = {}
    for name in _KEY_FIELDS:
        keys = getattr(config, name)
        kept = tuple(k for k in keys if k != "task/")
        if kept != keys and kept:
            changes[name] = kept
    if not changes:
        return config
    if config.prior not in ("none", "distilled"):
        warnings.warn(
            "the environment has no task/ observation, so the prior sees everything the policy "
            "sees (no information asymmetry); route task inputs to task/ with the adapter's "
            "key_map (docs/envs.md) if the task has any",
            stacklevel=3,
        )
    return config.replace(**changes)


def prior_low_level(networks: SVG0Networks):
    """The prior's low level pi0^L: its own, or the policy's when the low level is shared."""
    prior = networks.prior
    if prior is None or not hasattr(prior, "high"):
        raise ValueError("only a hierarchical prior has a low level")
    return networks.policy.low if prior.low is None else prior.low
