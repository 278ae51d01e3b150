"""Discrete actions in the SVG(0) agent, and neural Distral, against values computed another way:
the discrete Retrace op of :mod:`behavior_priors.ops`, score-function Monte Carlo, the closed
form of the regularised policy that tabular Distral uses, and the 2-column softmax."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from behavior_priors.agents.distral import DistralCosts, task_policy, two_column_policy
from behavior_priors.agents.svg0 import (
    critic_loss,
    init,
    initial_actor_state,
    make_networks,
    policy_loss,
    policy_prior_kl,
    select_action,
)
from behavior_priors.agents.types import SequenceBatch
from behavior_priors.networks import DiscreteCritic, DistralPolicy
from behavior_priors.ops.retrace import retrace_targets_discrete
from tests.agents.svg0.helpers import small_config

A = 4  # actions
K = 3  # tasks
SHAPES = {"proprio/pos": (5,), "task/goal_index": (K,)}
DISCRETE_VARIANTS = {
    "noprior": dict(policy="flat", prior="none"),
    "flat": dict(policy="flat", prior="flat"),
    "hier-shared": dict(),
    "hier-separate": dict(low_level="separate"),
    "distral-2col": dict(policy="distral", prior="distilled"),
    "distral-1col": dict(policy="distral", prior="distilled", distral_columns="1col"),
}


def discrete_batch(config, B=3, T=5, seed=0) -> SequenceBatch:
    rng = np.random.default_rng(seed)
    dz = config.latent_size
    tasks = rng.integers(K, size=(B, T + 1))
    return SequenceBatch(
        observation={
            "proprio/pos": jnp.asarray(rng.normal(size=(B, T + 1, 5)), jnp.float32),
            "task/goal_index": jnp.asarray(np.eye(K)[tasks], jnp.float32),
        },
        step_type=jnp.asarray(rng.choice([0, 1, 1, 1, 2], size=(B, T + 1)), jnp.int32),
        action=jnp.asarray(rng.integers(A, size=(B, T + 1)), jnp.int32),
        reward=jnp.asarray(rng.normal(size=(B, T + 1)), jnp.float32),
        discount=jnp.asarray(rng.random((B, T + 1)) > 0.1, jnp.float32),
        behaviour_log_prob=jnp.asarray(np.log(rng.uniform(0.1, 0.9, size=(B, T + 1))), jnp.float32),
        latent=jnp.asarray(rng.normal(size=(B, T + 1, dz)), jnp.float32),
        prev_latent=jnp.asarray(rng.normal(size=(B, T + 1, dz)), jnp.float32),
        latent_sampled=jnp.asarray(rng.random((B, T + 1)) > 0.3, jnp.float32),
        task_id=jnp.asarray(tasks, jnp.int32),
    )


def test_discrete_critic_gathers_and_takes_exact_expectations():
    critic = DiscreteCritic(("proprio/",), SHAPES, A, (16,), jax.random.PRNGKey(0))
    obs = {"proprio/pos": jnp.ones((2, 5))}
    q = critic.values(obs)  # [2, A]
    actions = jnp.array([[1, 3], [0, 2]])  # [S=2, B=2]: sample axes broadcast
    np.testing.assert_allclose(critic(obs, actions), np.take_along_axis(q, actions.T, 1).T)
    probs = jax.nn.softmax(jnp.arange(2 * A, dtype=jnp.float32).reshape(2, A))
    np.testing.assert_allclose(critic.expected(obs, probs), np.sum(probs * q, -1), rtol=1e-6)


@pytest.mark.parametrize(("lam", "soft"), [(0.0, True), (1.0, True), (1.0, False)])
def test_flat_discrete_critic_loss_equals_the_discrete_retrace_op(lam, soft):
    """The learner's Retrace targets with exact expectations over actions, rebuilt from the
    discrete Retrace op, whose bootstrap value is ``sum_a pi Q - (alpha KL - alpha_H H)`` (the
    entropy only with ``entropy_in_value``)."""
    config = small_config(
        policy="flat",
        prior="flat",
        kl_cost=0.3,
        entropy_cost=0.2,
        retrace_lambda=lam,
        entropy_in_value=soft,
    )
    nets = make_networks(config, SHAPES, A, jax.random.PRNGKey(1), discrete=True)
    batch = discrete_batch(config)
    loss, _ = critic_loss(nets.critic, nets, batch, jax.random.PRNGKey(2), config)

    obs, T = batch.observation, batch.reward.shape[1] - 1
    q = nets.critic.values(obs)  # [B, T+1, A]
    pi, pi0 = nets.policy(obs), nets.prior(obs)
    reg = config.kl_cost * pi.kl(pi0) - soft * config.entropy_cost * pi.entropy()
    last = np.asarray(batch.step_type == 2)
    want, count = 0.0, 0
    for b in range(q.shape[0]):
        targets = retrace_targets_discrete(
            q[b],
            batch.action[b],
            batch.reward[b, :T],
            config.discount * batch.discount[b, :T],
            pi.probs[b],
            batch.behaviour_log_prob[b],
            lam,
            regulariser_t=reg[b],
            trace_mask_t=1.0 - last[b, 1:],
        )
        q_taken = np.take_along_axis(np.asarray(q[b]), np.asarray(batch.action[b])[:, None], 1)
        valid = ~last[b, :T]
        want += np.sum(0.5 * (np.asarray(targets) - q_taken[:T, 0]) ** 2 * valid)
        count += valid.sum()
    np.testing.assert_allclose(float(loss), want / count, rtol=1e-5)


def test_discrete_policy_gradient_matches_score_function_monte_carlo():
    """The exact-expectation loss ``-sum_a pi(a|x) Q(x, a)`` has the gradient of REINFORCE,
    ``-E_{a~pi}[Q(x, a) grad log pi(a|x)]``, estimated here from 40 000 sampled actions."""
    config = small_config(policy="flat", prior="none", kl_cost=0.0, entropy_cost=0.0)
    nets = make_networks(config, SHAPES, A, jax.random.PRNGKey(3), discrete=True)
    # A critic whose values differ a lot between actions, so the gradient is far from zero.
    critic = eqx.tree_at(lambda c: c.out.bias, nets.critic, jnp.array([1.0, -2.0, 0.5, 3.0]))
    batch = discrete_batch(config, B=1, T=1)
    grad_exact = eqx.filter_grad(
        lambda p: policy_loss(p, critic, None, batch, jax.random.PRNGKey(0), config)[0]
    )(nets.policy)

    obs = batch.observation
    n = 40_000
    actions = nets.policy(obs).sample(jax.random.PRNGKey(4), (n,))  # [n, 1, 2]
    q = jax.lax.stop_gradient(critic(obs, actions))

    def surrogate(p):
        return -jnp.mean(q * p(obs).log_prob(actions))

    grad_mc = eqx.filter_grad(surrogate)(nets.policy)
    g1 = jnp.concatenate([x.ravel() for x in jax.tree.leaves(grad_exact)])
    g2 = jnp.concatenate([x.ravel() for x in jax.tree.leaves(grad_mc)])
    assert float(jnp.linalg.norm(g1)) > 1e-3
    assert float(jnp.linalg.norm(g1 - g2)) < 0.05 * float(jnp.linalg.norm(g1))


@pytest.mark.parametrize("c_ent", [0.0, 0.5])
def test_policy_loss_minimiser_is_the_regularised_softmax(c_ent):
    """With a fixed critic and prior, minimising ``-E_pi Q + c_KL KL(pi||pi0) - c_Ent H(pi)`` at
    one state gives ``pi proportional to pi0^alpha exp(beta Q)`` (tabular Distral's
    ``task_policy``)."""
    c_kl = 0.7
    config = small_config(policy="flat", prior="flat", kl_cost=c_kl, entropy_cost=c_ent)
    nets = make_networks(config, SHAPES, A, jax.random.PRNGKey(5), discrete=True)
    critic = eqx.tree_at(lambda c: c.out.bias, nets.critic, jnp.array([1.0, -1.0, 0.5, 0.0]))
    prior = eqx.tree_at(lambda p: p.net.head.bias, nets.prior, jnp.array([0.0, 1.0, -1.0, 0.5]))
    batch = discrete_batch(config, B=1, T=0)
    opt = optax.adam(0.02)
    policy = nets.policy
    state = opt.init(eqx.filter(policy, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(policy, state):
        g = eqx.filter_grad(
            lambda p: policy_loss(p, critic, prior, batch, jax.random.PRNGKey(0), config)[0]
        )(policy)
        updates, state = opt.update(g, state, eqx.filter(policy, eqx.is_inexact_array))
        return eqx.apply_updates(policy, updates), state

    for _ in range(1500):
        policy, state = step(policy, state)
    obs = batch.observation
    q = np.asarray(critic.values(obs))[0, 0]
    log_pi0 = np.asarray(prior(obs).log_probs)[0, 0]
    want = task_policy(q, log_pi0, DistralCosts(c_kl, c_ent))
    np.testing.assert_allclose(np.asarray(policy(obs).probs)[0, 0], want, atol=2e-3)


@pytest.mark.parametrize("two_column", [True, False])
@pytest.mark.parametrize("num_tasks", [3, 20])  # every column on every state; gathered columns
def test_distral_policy_is_the_documented_column_softmax(two_column, num_tasks):
    costs = DistralCosts(c_kl=0.4, c_ent=0.1)
    shapes = {"proprio/pos": (5,), "task/goal_index": (num_tasks,)}
    policy = DistralPolicy(
        ("proprio/",),
        "task/goal_index",
        shapes,
        A,
        (8,),
        jax.random.PRNGKey(6),
        two_column=two_column,
        alpha=costs.alpha,
        beta=costs.beta,
    )
    # Non-trivial columns: the heads start near zero.
    policy = eqx.tree_at(
        lambda p: p.columns.head.weight,
        policy,
        jax.random.normal(jax.random.PRNGKey(7), policy.columns.head.weight.shape),
    )
    rng = np.random.default_rng(0)
    tasks = np.array([0, num_tasks - 1, 1, num_tasks - 1])
    obs = {
        "proprio/pos": jnp.asarray(rng.normal(size=(4, 5)), jnp.float32),
        "task/goal_index": jnp.asarray(np.eye(num_tasks)[tasks], jnp.float32),
    }
    params, static = eqx.partition(policy.columns, eqx.is_array)
    h0 = np.asarray(policy.distilled.logits(obs))
    batched = np.asarray(policy(obs).probs)
    for b, task in enumerate(tasks):
        # The task's own network, run alone.
        column = eqx.combine(jax.tree.map(lambda w, t=task: w[t], params), static)
        f = np.asarray(column.logits({k: v[b] for k, v in obs.items()}))
        if two_column:  # the column outputs beta f_i
            want, pi0 = two_column_policy(h0[b], f / costs.beta, costs)
            np.testing.assert_allclose(np.asarray(policy.prior(obs).probs)[b], pi0, rtol=1e-5)
        else:
            want = np.exp(f - f.max()) / np.exp(f - f.max()).sum()
        np.testing.assert_allclose(batched[b], want, rtol=1e-4, atol=1e-7)


def test_distral_columns_are_separate_networks_and_pi0_learns_through_the_kl():
    config = small_config(policy="distral", prior="distilled", distral_columns="1col", kl_cost=0.5)
    nets = make_networks(config, SHAPES, A, jax.random.PRNGKey(8), discrete=True)
    batch = discrete_batch(config, B=2, T=3)
    only_task0 = batch._replace(
        observation={**batch.observation, "task/goal_index": jnp.zeros((2, 4, K)).at[..., 0].set(1)}
    )
    grads = eqx.filter_grad(
        lambda p: policy_loss(p, nets.critic, None, only_task0, jax.random.PRNGKey(0), config)[0]
    )(nets.policy)
    w = grads.columns.head.weight  # [K, A, H]
    assert float(jnp.abs(w[0]).sum()) > 0
    assert float(jnp.abs(w[1:]).sum()) == 0.0  # other tasks' columns are untouched
    # 1-col: pi0 only appears in the KL term, and still gets a (distillation) gradient.
    assert float(jnp.abs(grads.distilled.head.weight).sum()) > 0
    kl = policy_prior_kl(nets.policy, None, only_task0.observation, None, None, None, 1)
    pi, pi0 = nets.policy(only_task0.observation), nets.policy.prior(only_task0.observation)
    np.testing.assert_allclose(
        kl.total, np.sum(pi.probs * (pi.log_probs - pi0.log_probs), -1), rtol=1e-5, atol=1e-7
    )


def test_hierarchical_discrete_kl_with_separate_low_level_by_hand():
    config = small_config(low_level="separate", num_kl_samples=3)
    nets = make_networks(config, SHAPES, A, jax.random.PRNGKey(9), discrete=True)
    batch = discrete_batch(config, B=2, T=2)
    obs, key = batch.observation, jax.random.PRNGKey(10)
    kl = policy_prior_kl(nets.policy, nets.prior, obs, batch.prev_latent, None, key, 3)
    high, high0 = nets.policy.high(obs), nets.prior.high(obs)
    z = high.sample(key, (3,))
    p, q = nets.policy.low(obs, z).probs, nets.prior.low(obs, z).probs
    low = np.mean(np.sum(p * (np.log(p) - np.log(q)), -1), 0)
    np.testing.assert_allclose(kl.low, low, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(kl.high, high.kl(high0), rtol=1e-6)


@pytest.mark.parametrize("variant", list(DISCRETE_VARIANTS))
def test_every_discrete_variant_acts_and_updates(variant):
    from behavior_priors.agents.svg0 import make_update_fn

    config = small_config(**DISCRETE_VARIANTS[variant], kl_cost=0.1, entropy_cost=0.01)
    state = init(config, SHAPES, A, jax.random.PRNGKey(11), discrete=True)
    obs = jax.tree.map(lambda x: x[:, 0], discrete_batch(config, B=6).observation)
    a, extras, _ = select_action(
        state.networks.policy,
        obs,
        jnp.ones(6, bool),
        initial_actor_state(config, 6),
        jax.random.PRNGKey(12),
        config,
    )
    assert a.shape == (6,) and a.dtype in (jnp.int32, jnp.int64)
    assert np.all((np.asarray(a) >= 0) & (np.asarray(a) < A))
    np.testing.assert_allclose(
        extras.behaviour_log_prob,
        state.networks.policy.log_prob(obs, a, extras.latent, extras.latent_sampled),
        rtol=1e-5,
    )
    greedy, _, _ = select_action(
        state.networks.policy,
        obs,
        jnp.ones(6, bool),
        initial_actor_state(config, 6),
        jax.random.PRNGKey(12),
        config,
        evaluation=True,
    )
    if config.policy != "hierarchical":
        np.testing.assert_array_equal(greedy, np.argmax(state.networks.policy(obs).logits, -1))
    new_state, metrics = make_update_fn(config)(state, discrete_batch(config))
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert int(new_state.step) == 1


def test_distral_configuration_errors_are_clear():
    with pytest.raises(ValueError, match="distilled"):
        small_config(policy="distral", prior="flat")
    with pytest.raises(ValueError, match="distral"):
        small_config(policy="flat", prior="distilled")
    with pytest.raises(ValueError, match="discrete action space"):
        make_networks(
            small_config(policy="distral", prior="distilled"), SHAPES, 2, jax.random.PRNGKey(0)
        )
    with pytest.raises(ValueError, match="one-hot task observation"):
        make_networks(
            small_config(policy="distral", prior="distilled", distral_task_key="task/missing"),
            SHAPES,
            A,
            jax.random.PRNGKey(0),
            discrete=True,
        )
    with pytest.raises(ValueError, match="kl_cost \\+ entropy_cost"):
        make_networks(
            small_config(policy="distral", prior="distilled", kl_cost=0.0, entropy_cost=0.0),
            SHAPES,
            A,
            jax.random.PRNGKey(0),
            discrete=True,
        )
