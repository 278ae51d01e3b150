"""The three losses of the learner (docs/paper.md section 3), as plain functions.

Each takes the module it trains as its first argument (so ``eqx.filter_value_and_grad``
differentiates only that module), a :class:`~behavior_priors.agents.types.SequenceBatch` of
shape ``[B, T+1, ...]``, a PRNG key and the config, and returns ``(loss, metrics)``.

* :func:`critic_loss`: 0.5 (Q_ret - Q)^2 towards Retrace targets built from target networks,
  with the regularised bootstrap value ``V(x) = E_{a~pi'}[Q'(x,a)] - alpha KL(pi'||pi0')``
  from S action samples, plus ``alpha_H H(pi')`` when ``config.soft_value`` (Distral, or
  ``entropy_in_value=True``).
* :func:`policy_loss`: SVG(0): ``-Q(x, a_theta(x, eps)) + alpha KL(pi_theta || pi0') -
  alpha_H H(pi_theta)`` through the reparameterised sample, plus ``saturation_cost`` times
  the hinge that keeps the action head's pre-activations where tanh still passes gradient
  (:func:`behavior_priors.networks.heads.saturation`). For a hierarchical policy H is
  E_z H(pi^L(.|z, x)), a lower bound on H(a|x) (the differential entropy of z is unbounded and
  changes no behaviour).
* :func:`prior_loss`: distillation ``KL(pi || pi0_phi)`` with the policy held fixed.

With discrete actions (categorical policies, a critic with one output per action) every
expectation over actions is exact (:func:`expected_q`): the policy loss is ``-sum_a pi(a|x)
Q(x, a) + alpha KL - alpha_H H``, an expected policy gradient, and the bootstrap value sums over
actions instead of sampling them (z is still sampled for hierarchical policies). Distral
(:class:`~behavior_priors.networks.DistralPolicy`) has no separate prior: its KL is to its own
distilled pi0, so the policy loss trains the task columns and pi0 together, which is Distral's
joint objective (the gradient into pi0 through the KL term is its distillation).

The KL of a hierarchical policy is the upper bound of :func:`behavior_priors.ops.kl.
hierarchical_kl_bound`; with a shared low level it is the KL over z alone. For flat policies the
action-level KL is reported as ``kl/low`` (and ``kl/high`` is 0).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from behavior_priors.agents.svg0.config import SVG0Config
from behavior_priors.agents.svg0.networks import SVG0Networks
from behavior_priors.agents.types import FIRST, LAST, SequenceBatch
from behavior_priors.networks import Critic, DiscreteCritic, DistralPolicy, FlatPolicy
from behavior_priors.networks.heads import saturated_fraction, saturation
from behavior_priors.networks.observations import with_sample_copies
from behavior_priors.networks.policies import Policy, PolicySample, sample_entropy
from behavior_priors.networks.priors import Prior
from behavior_priors.ops.distributions import Categorical, DiagGaussian
from behavior_priors.ops.kl import HierarchicalKL, hierarchical_kl_bound
from behavior_priors.ops.retrace import retrace_targets

Array = jax.Array
Metrics = dict[str, Array]


def policy_prior_kl(
    policy: Policy,
    prior: Prior | None,
    obs: Mapping[str, Array],
    prev_latent: Array,
    first: Array,
    key: Array,
    num_samples: int,
    top: DiagGaussian | Categorical | None = None,
) -> HierarchicalKL:
    """``KL(pi || pi0)`` at states ``[...]`` (the bound for hierarchical policies).

    Args:
      policy, prior: the networks (``prior=None`` gives zeros).
      obs: ``{key: [..., *shape]}``.
      prev_latent: ``[..., Dz]`` z_{t-1} for autoregressive high-level priors.
      first: ``[...]`` bool, first step of an episode.
      key: PRNG key for the z samples of the low-level term (separate low level only).
      num_samples: number of z samples for that term.
      top: ``policy.top(obs, prev_latent)`` (pi, or pi^H) when the caller has it already.

    Returns:
      ``HierarchicalKL(high, low, total)``, each ``[...]``.
    """
    top = policy.top(obs, prev_latent) if top is None else top
    if isinstance(policy, DistralPolicy):  # pi0 is part of the policy: KL(pi_i || pi0)
        kl = top.kl(policy.prior(obs))
        return HierarchicalKL(jnp.zeros_like(kl), kl, kl)
    if isinstance(policy, FlatPolicy):
        if prior is None:
            zero = jnp.zeros(top[0].shape[:-1])  # loc or logits: [..., event]
            return HierarchicalKL(zero, zero, zero)
        kl = top.kl(prior(obs))
        return HierarchicalKL(jnp.zeros_like(kl), kl, kl)
    high = top
    if prior is None:
        zero = jnp.zeros(high.loc.shape[:-1])
        return HierarchicalKL(zero, zero, zero)
    high0 = prior.high(obs, prev_latent, first)
    if prior.low is None:  # shared low level: the low-level term is exactly zero
        return hierarchical_kl_bound(high, high0)
    z = high.sample(key, (num_samples,))
    return hierarchical_kl_bound(high, high0, policy.low(obs, z), prior.low(obs, z))


def expected_q(critic: Critic | DiscreteCritic, obs: Mapping[str, Array], sample) -> Array:
    """Estimates ``[S', ...]`` whose mean over the first axis is ``E_{a~pi} Q(x, a)``.

    Continuous actions: ``Q(x, a_s)`` at the S reparameterised actions of ``sample`` (a
    :class:`~behavior_priors.networks.PolicySample`), so gradients reach the policy through the
    actions (SVG(0)). Discrete actions: ``sum_a pi(a|x[, z_s]) Q(x, a)``, exact over actions, so
    gradients reach the policy through the probabilities; one entry per latent sample, or a
    single one for flat policies.
    """
    latent = sample.latent if critic.latent_size else None
    if isinstance(critic, DiscreteCritic):
        q = critic.expected(obs, sample.low.probs, latent)
        return q if sample.high is not None else q[None]
    return critic(obs, sample.action, latent)


def _target_q(
    critic: Critic | DiscreteCritic,
    obs_next: Mapping[str, Array],
    sample: PolicySample,
    obs_now: Mapping[str, Array],
    action: Array,
    latent: Array,
) -> tuple[Array, Array]:
    """``(expected_q(critic, obs_next, sample) [S', B, T], critic(obs_now, action[, latent])
    [B, T])``: the target critic at the bootstrap samples and at the actions taken.

    For a continuous critic both are one pass over ``S + 1`` stacked inputs (the S samples at
    the next states, then the actions taken at the current ones): one set of products of
    ``(S + 1) B T`` rows instead of two (docs/benchmarks.md, "One pass instead of two").
    """
    latent = latent if critic.latent_size else None
    if isinstance(critic, DiscreteCritic):
        return expected_q(critic, obs_next, sample), critic(obs_now, action, latent)
    S = sample.action.shape[0]
    obs = with_sample_copies(obs_next, S, obs_now, critic.keys)
    q = critic(
        obs,
        jnp.concatenate([sample.action, action[None]]),
        None if latent is None else jnp.concatenate([sample.latent, latent[None]]),
    )
    return q[:S], q[S]


def _steps(tree, steps: slice):
    """The time steps ``steps`` of every ``[B, T+1, ...]`` array in ``tree`` (observations,
    distributions)."""
    return jax.tree.map(lambda x: x[:, steps], tree)


def _masked_mean(x: Array, mask: Array) -> Array:
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def _batch_views(batch: SequenceBatch) -> tuple[Array, Array]:
    first = batch.step_type == FIRST
    last = batch.step_type == LAST
    return first, last


def critic_loss(
    critic: Critic,
    target: SVG0Networks,
    batch: SequenceBatch,
    key: Array,
    config: SVG0Config,
    entropy_cost: Array | float | None = None,
) -> tuple[Array, Metrics]:
    """Retrace critic loss on B windows of T+1 steps; trains ``critic`` only.

    ``target`` holds the target networks pi', pi0', Q'. Transitions at LAST indices (padding
    under next-step auto-reset) are masked out, and traces are cut before them while still
    bootstrapping from the LAST observation (the true final observation). ``entropy_cost`` is
    alpha_H (default ``config.entropy_cost``; the learned one with ``config.target_entropy``).
    """
    obs, T = batch.observation, batch.reward.shape[1] - 1
    first, last = _batch_views(batch)
    k_v, k_kl = jax.random.split(key)
    policy_t, prior_t, critic_t = target.policy, target.prior, target.critic
    S = config.num_action_samples

    # Every network runs on the steps it is needed at, no more: V at t >= 1 (V(x_0) is never
    # used), Q and the log-ratios at t < T (the last step only bootstraps). The target policy's
    # observation-only part (pi', or pi'^H) is computed once over the window and shared; so is
    # the target prior's, with the policy loss (the KL below).
    obs_next, obs_now = _steps(obs, slice(1, None)), _steps(obs, slice(None, T))
    top = policy_t.top(obs, batch.prev_latent)  # [B, T+1]

    # Regularised value of the states the targets bootstrap from, from the target networks.
    top_next = _steps(top, slice(1, None))
    action, latent = batch.action[:, :T], batch.latent[:, :T]
    # pi' at both: S samples at the next states, the taken actions' log-probability at these.
    sample, log_pi = policy_t.sample_and_log_prob(
        obs_next,
        k_v,
        S,
        top_next,
        obs_now,
        action,
        latent,
        batch.latent_sampled[:, :T],
        _steps(top, slice(None, T)),
    )
    q_samples, q_target = _target_q(critic_t, obs_next, sample, obs_now, action, latent)
    # The KL over the whole window, then its steps t >= 1: the policy loss computes the target
    # prior on the same window, and XLA's common-subexpression pass then runs it once for both.
    kl = policy_prior_kl(
        policy_t, prior_t, obs, batch.prev_latent, first, k_kl, config.num_kl_samples, top=top
    )
    kl = _steps(kl, slice(1, None))
    value = jnp.mean(q_samples, axis=0) - config.kl_cost * kl.total  # [B, T]
    if config.entropy_cost and config.soft_value:
        alpha_h = config.entropy_cost if entropy_cost is None else entropy_cost
        value = value + alpha_h * sample_entropy(sample)

    log_rhos = log_pi - batch.behaviour_log_prob[:, :T]

    discount = config.discount * batch.discount[:, :T]
    trace_mask = 1.0 - last[:, 1:].astype(jnp.float32)  # never carry a trace into a LAST index
    retrace = jax.vmap(retrace_targets, in_axes=(0, 0, 0, 0, 0, None, 0))
    targets = retrace(
        q_target,
        value,
        batch.reward[:, :T],
        discount,
        log_rhos,
        config.retrace_lambda,
        trace_mask,
    )

    q = critic(obs_now, action, latent if critic.latent_size else None)
    valid = 1.0 - last[:, :T].astype(jnp.float32)
    td = targets - q
    loss = 0.5 * _masked_mean(jnp.square(td), valid)
    metrics = {
        "losses/critic": loss,
        "critic/q_mean": _masked_mean(q, valid),
        "critic/target_mean": _masked_mean(targets, valid),
        "critic/abs_td": _masked_mean(jnp.abs(td), valid),
        "critic/importance_ratio": _masked_mean(jnp.minimum(jnp.exp(log_rhos), 10.0), valid),
    }
    return loss, metrics


def policy_loss(
    policy: Policy,
    critic: Critic,
    prior: Prior | None,
    batch: SequenceBatch,
    key: Array,
    config: SVG0Config,
    entropy_cost: Array | float | None = None,
) -> tuple[Array, Metrics]:
    """SVG(0) policy loss on every state of the window; trains ``policy`` only.

    ``critic`` is the online critic and ``prior`` the target prior pi0'; neither receives
    gradients (they are constants of this function's differentiation). ``entropy_cost`` is
    alpha_H (default ``config.entropy_cost``; the learned one with ``config.target_entropy``).
    """
    obs = batch.observation
    first, _ = _batch_views(batch)
    k_a, k_kl = jax.random.split(key)
    critic = jax.lax.stop_gradient(critic)
    prior = jax.lax.stop_gradient(prior)

    sample = policy.sample(
        obs,
        k_a,
        config.num_policy_samples,
        stop_latent_gradient=config.stop_q_grad_into_latent,
        prev_latent=batch.prev_latent,
    )
    q = jnp.mean(expected_q(critic, obs, sample), axis=0)  # [B, T+1]
    kl = policy_prior_kl(
        policy,
        prior,
        obs,
        batch.prev_latent,
        first,
        k_kl,
        config.num_kl_samples,
        top=sample.low if sample.high is None else sample.high,  # pi or pi^H, already computed
    )
    entropy = sample_entropy(sample)  # E_z H(pi^L(.|z)) for a hierarchical policy
    alpha_h = config.entropy_cost if entropy_cost is None else jax.lax.stop_gradient(entropy_cost)
    loss = jnp.mean(-q + config.kl_cost * kl.total - alpha_h * entropy)
    metrics = {}
    if sample.low_preactivations is not None:  # a bounded Gaussian action head
        loss = loss + config.saturation_cost * jnp.mean(saturation(sample.low_preactivations))
        metrics["policy/saturated_fraction"] = saturated_fraction(sample.low_preactivations)
    metrics |= {
        "losses/policy": loss,
        "policy/q": jnp.mean(q),
        "policy/entropy": jnp.mean(entropy),
        "kl/total": jnp.mean(kl.total),
        "kl/high": jnp.mean(kl.high),
        "kl/low": jnp.mean(kl.low),
    }
    if sample.high is not None:
        metrics["policy/latent_scale"] = jnp.mean(sample.high.scale)
    if isinstance(sample.low, DiagGaussian):
        metrics["policy/action_scale"] = jnp.mean(sample.low.scale)
    return loss, metrics


def prior_loss(
    prior: Prior | None, policy: Policy, batch: SequenceBatch, key: Array, config: SVG0Config
) -> tuple[Array, Metrics]:
    """Distillation ``E_x KL(pi(.|x) || pi0(.|x^D))`` with the policy fixed; trains ``prior``.

    For a hierarchical prior this is the bound's terms; with a shared low level only the
    high-level term depends on the prior's own parameters.
    """
    if prior is None:  # no prior, or Distral's pi0 (trained in the policy loss; its KL is kl/*)
        return jnp.zeros(()), {"losses/prior": jnp.zeros(())}
    first, _ = _batch_views(batch)
    policy = jax.lax.stop_gradient(policy)
    kl = policy_prior_kl(
        policy, prior, batch.observation, batch.prev_latent, first, key, config.num_kl_samples
    )
    loss = jnp.mean(kl.total)
    return loss, {"losses/prior": loss}
