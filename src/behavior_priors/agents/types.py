"""The data that flows from actors through replay to learners.

A learner batch holds B windows of T+1 consecutive environment steps, indexed ``[B, T+1, ...]``.
Index t of a window holds the state x_t, what the actor did there, and what came back:

  observation[t]   x_t (dict of float32 arrays ``[B, T+1, *shape]``)
  step_type[t]     ``StepType`` of x_t (FIRST=0, MID=1, LAST=2)
  action[t]        a_t taken at x_t                                  ``[B, T+1, *action_shape]``
  reward[t]        reward of the transition x_t -> x_{t+1}           ``[B, T+1]``
  discount[t]      continuation of that transition (0 if x_{t+1} is terminal, 1 otherwise;
                   the learner multiplies by gamma)                  ``[B, T+1]``
  behaviour_log_prob[t]  log mu of what the actor sampled at x_t: log mu(a_t|x_t) for a flat
                   policy, log mu(z_t, a_t|x_t) for a hierarchical one (log mu(a_t|z_t, x_t)
                   alone on steps where z was held rather than resampled)     ``[B, T+1]``
  latent[t]        z_t used at x_t (zeros, width 0 allowed, for flat policies) ``[B, T+1, Dz]``
  prev_latent[t]   z_{t-1}, the input of autoregressive high-level priors   ``[B, T+1, Dz]``
  latent_sampled[t] 1 where z_t was freshly sampled at x_t, 0 where it was held ``[B, T+1]``
  task_id[t]       stable integer of the task                              ``[B, T+1]``

With the environments' next-step auto-reset, a LAST step is an episode's final observation and
the actor's action there is ignored: ``action``, ``reward`` and ``discount`` at a LAST index are
padding. The learner masks them (no critic loss at LAST indices; the trace is cut before a LAST
index) but uses the LAST observation to bootstrap the step before it, which is exactly the
time-limit truncation rule. The replay writes the reward and discount of timestep t+1 into
index t.
"""

from __future__ import annotations

from typing import NamedTuple

import jax

Array = jax.Array

# Step types, the values of ``dm_env.StepType`` and ``behavior_priors.envs.StepType`` (agents sit
# above envs in the layering, so they name the values instead of importing the enum).
FIRST, MID, LAST = 0, 1, 2


class SequenceBatch(NamedTuple):
    """B windows of T+1 steps; see the module docstring for the index convention."""

    observation: dict[str, Array]
    step_type: Array
    action: Array
    reward: Array
    discount: Array
    behaviour_log_prob: Array
    latent: Array
    prev_latent: Array
    latent_sampled: Array
    task_id: Array


class ActorExtras(NamedTuple):
    """What ``select_action`` returns besides the action, per env copy (``[B, ...]``)."""

    behaviour_log_prob: Array
    latent: Array
    prev_latent: Array
    latent_sampled: Array
