"""Acting: batched action selection returning what the replay needs.

Pure functions of (policy, observations, actor state, key). The actor state carries, per env
copy, the current latent z and a step counter; both restart at the first step of an episode.

Latent holding (``latent_hold_steps = k > 1``) applies to the prior acting alone
(:func:`select_prior_action`: ``eval --prior``, ``video --prior``), where it turns each of the
prior's latents into a k-step option. The policy (:func:`select_action`, for training and
evaluation) resamples z at every step, whatever k: that is the policy the learner's critic,
Retrace ratios and per-step KL are derived for. Training on held latents would need the hold
phase as part of the state (a critic Q(x, z, phase, a), a KL charged only at resampling steps);
until the agent has that, holding there would make the critic estimate neither policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from behavior_priors.agents.svg0.config import SVG0Config
from behavior_priors.agents.svg0.networks import SVG0Networks, prior_low_level
from behavior_priors.agents.types import ActorExtras
from behavior_priors.networks.policies import Policy

Array = jax.Array


class ActorState(NamedTuple):
    """Per-copy memory of the actor: ``latent [B, Dz]``, ``steps_held [B]`` int32."""

    latent: Array
    steps_held: Array


def initial_actor_state(config: SVG0Config, num_envs: int) -> ActorState:
    return ActorState(
        jnp.zeros((num_envs, config.latent_size), jnp.float32), jnp.zeros((num_envs,), jnp.int32)
    )


def _latent_schedule(
    first: Array, state: ActorState, hold_steps: int
) -> tuple[Array, Array, Array]:
    """``(z_{t-1} [B, Dz], steps held [B], resample now [B] bool)``: the latent restarts at the
    first step of an episode and is resampled every ``hold_steps`` steps."""
    prev = jnp.where(first[:, None], 0.0, state.latent)
    held = jnp.where(first, 0, state.steps_held)
    return prev, held, (held % hold_steps) == 0


def select_action(
    policy: Policy,
    obs: Mapping[str, Array],
    first: Array,
    state: ActorState,
    key: Array,
    config: SVG0Config,
    evaluation: bool = False,
) -> tuple[Array, ActorExtras, ActorState]:
    """Choose actions for B copies.

    Args:
      policy: the policy network.
      obs: ``{key: [B, *shape]}``.
      first: ``[B]`` bool, the copy starts a new episode at this step.
      state: :class:`ActorState` from the previous step.
      key: PRNG key.
      config: the agent config.
      evaluation: act with the means (z = mean of pi^H, a = mean of pi^L) instead of sampling.

    Returns:
      ``(action [B, Da] in the normalised box (unclipped), or [B] integers when discrete,
      extras, new state)``; ``extras``
      hold the behaviour log-probability of what was sampled, z, z_{t-1} and whether z was
      resampled at this step.
    """
    first = jnp.asarray(first, bool)
    k_z, k_a = jax.random.split(key)
    if policy.latent_size == 0:  # flat (or Distral)
        pi = policy(obs)
        a = pi.mode() if evaluation else pi.sample(k_a)
        B = a.shape[0]
        empty = jnp.zeros((B, 0), jnp.float32)
        extras = ActorExtras(pi.log_prob(a), empty, empty, jnp.ones((B,), jnp.float32))
        return a, extras, state

    # z is resampled at every step (see the module docstring on holding).
    prev, held, _ = _latent_schedule(first, state, 1)
    high = policy.top(obs, prev)  # reads z_{t-1} only when pi^H is autoregressive
    z = high.mode() if evaluation else high.sample(k_z)
    low = policy.low(obs, z)
    a = low.mode() if evaluation else low.sample(k_a)
    log_prob = low.log_prob(a) + high.log_prob(z)
    extras = ActorExtras(log_prob, z, prev, jnp.ones_like(log_prob))
    return a, extras, ActorState(z, held + 1)


def select_prior_action(
    networks: SVG0Networks,
    obs: Mapping[str, Array],
    first: Array,
    state: ActorState,
    key: Array,
    config: SVG0Config,
    evaluation: bool = False,
) -> tuple[Array, ActorState]:
    """Act with the behaviour prior alone: ``a ~ pi0(.|x^D)`` for a flat prior; for a
    hierarchical one ``z ~ pi0^H(.|x^D, z_{t-1})`` (held ``latent_hold_steps`` steps) and
    ``a ~ pi0^L(.|z, x)``, the policy's low level when it is shared. Shows what behaviour the
    prior has distilled (it cannot see the task). Returns ``(action [B, Da], new state)``."""
    prior = networks.prior
    if prior is None and hasattr(networks.policy, "prior"):  # Distral's distilled pi0
        prior = networks.policy.prior
    if prior is None:
        raise ValueError("this agent has no prior (prior='none') to act with")
    first = jnp.asarray(first, bool)
    k_z, k_a = jax.random.split(key)
    if not hasattr(prior, "high"):  # flat prior
        pi0 = prior(obs)
        return (pi0.mode() if evaluation else pi0.sample(k_a)), state
    prev, held, resample = _latent_schedule(first, state, config.latent_hold_steps)
    high = prior.high(obs, prev, first)
    z_new = high.mode() if evaluation else high.sample(k_z)
    z = jnp.where(resample[:, None], z_new, prev)
    low = prior_low_level(networks)(obs, z)
    a = low.mode() if evaluation else low.sample(k_a)
    return a, ActorState(z, held + 1)


def to_env_action(
    action: np.ndarray | Array, minimum: np.ndarray | None, maximum: np.ndarray | None
) -> np.ndarray:
    """Clip normalised actions to [-1, 1] and rescale to the environment's box ``[B, Da]``;
    discrete actions (``minimum is None``) pass through as integers ``[B]``."""
    if minimum is None:
        return np.asarray(action, np.int32)
    a = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
    lo, hi = np.asarray(minimum, np.float32), np.asarray(maximum, np.float32)
    return lo + (a + 1.0) * 0.5 * (hi - lo)
