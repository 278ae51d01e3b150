"""The one actor factory: a compiled ``act`` for the policy or the prior, sampling or
deterministic, for one run or for S vmapped seeds, taking the policy as a module or as its
arrays.

Every place that acts (the training loops, Ray actors, evaluation, videos, a loaded policy)
gets its function here, so they all pick actions the same way from the same random stream::

    act = make_actor(agent)                          # sampling, the policy
    action, extras, actor_state, key = act(policy, obs, first, actor_state, key)

The key is split inside (``key, sub = split(key)``; the action samples with ``sub``): a
separate ``jax.random.split`` per step costs a dispatch of its own, about 0.1 ms on the CPU, as
long as the policy's forward pass. Compiled functions are cached per configuration, so trainers,
evaluations and seeds in one process share them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax

from behavior_priors.agents import svg0
from behavior_priors.agents.arrays import ArrayLayout

Act = Callable[..., tuple[Any, Any, svg0.ActorState, jax.Array]]


def _step(agent: svg0.SVG0Config, deterministic: bool, use_prior: bool):
    """``act(module, obs, first, state, key) -> (action, extras, state, key)`` (not compiled);
    ``module`` is the policy, or the whole networks with ``use_prior`` (extras are then ``{}``).
    """

    def act(module, obs, first, state, key):
        key, sub = jax.random.split(key)
        if use_prior:
            action, state = svg0.select_prior_action(
                module, obs, first, state, sub, agent, deterministic
            )
            return action, {}, state, key
        action, extras, state = svg0.select_action(
            module, obs, first, state, sub, agent, deterministic
        )
        return action, extras, state, key

    return act


@functools.lru_cache(maxsize=64)
def make_actor(
    agent: svg0.SVG0Config, *, deterministic: bool = False, use_prior: bool = False
) -> Act:
    """The compiled ``act(module, obs, first, actor_state, key) -> (action [B, ...], extras,
    actor_state, key)`` for B copies.

    Args:
      agent: the agent's config (network layout, latent holding).
      deterministic: act with the means (evaluation) instead of sampling.
      use_prior: act with the prior alone; ``module`` is then the whole ``SVG0Networks``,
        otherwise the policy.
    """
    return jax.jit(_step(agent, deterministic, use_prior))


@functools.lru_cache(maxsize=64)
def make_array_actor(
    agent: svg0.SVG0Config, policy_layout: ArrayLayout, *, deterministic: bool = False
) -> Act:
    """:func:`make_actor` (sampling with the policy) for a loop that holds the policy as its
    arrays: ``act(policy_arrays, obs, first, actor_state, key)``, where ``policy_arrays`` is
    the list :class:`~behavior_priors.agents.svg0.InPlaceLearner` gives and ``policy_layout``
    (its ``policy_layout``) puts the policy back together inside the compiled function. The
    same actions as :func:`make_actor` on the policy, without flattening its modules in Python
    on every call."""
    step = _step(agent, deterministic, False)

    def act(policy_arrays, obs, first, state, key):
        return step(policy_layout.merge(policy_arrays), obs, first, state, key)

    return jax.jit(act)


def make_vmapped_actor(
    agent: svg0.SVG0Config, policy_layout: ArrayLayout, *, deterministic: bool = False
) -> Act:
    """:func:`make_array_actor` for S seeds at once: every argument carries a leading ``[S]``
    axis, the policy's arrays (in ``policy_layout`` order) included."""
    step = _step(agent, deterministic, False)

    def act(policy_arrays, obs, first, state, key):
        return step(policy_layout.merge(policy_arrays), obs, first, state, key)

    return jax.jit(jax.vmap(act))
