"""SVG(0) losses: gradient flow, KL values, variants under jit, distillation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from behavior_priors.agents.svg0 import (
    check_finite,
    critic_loss,
    init,
    make_update_fn,
    policy_loss,
    prior_loss,
    prior_low_level,
)
from behavior_priors.agents.svg0.learner import MODULES, InPlaceLearner
from behavior_priors.ops import gaussian_kl, hierarchical_kl_bound

from .helpers import ACTION_SIZE, SHAPES, VARIANTS, random_batch, small_config

KEY = jax.random.PRNGKey(0)


def _state(config, seed=0):
    return init(config, SHAPES, ACTION_SIZE, jax.random.PRNGKey(seed))


def _nonzero(tree) -> bool:
    return any(bool(jnp.any(g != 0)) for g in jax.tree.leaves(eqx.filter(tree, eqx.is_array)))


def _spread_policy(nets, scale=1.0):
    """Replace the policy's mean-head weights by large random ones so it differs from the prior."""

    def bigger(m):
        return scale * jax.random.normal(jax.random.PRNGKey(42), m.shape)

    where = (
        (lambda n: n.policy.net.head.loc.weight)
        if hasattr(nets.policy, "net")
        else (lambda n: n.policy.high.head.loc.weight)
    )
    return eqx.tree_at(where, nets, replace_fn=bigger)


@pytest.mark.parametrize(
    "variant", ["flat-prior", "hier-shared", "hier-separate", "hier-learned-ar"]
)
def test_prior_loss_changes_only_prior_parameters(variant):
    config = small_config(**VARIANTS[variant])
    nets = _spread_policy(_state(config).networks)
    batch = random_batch(config)
    grads = eqx.filter_grad(lambda n: prior_loss(n.prior, n.policy, batch, KEY, config)[0])(nets)
    assert _nonzero(grads.prior)
    assert not _nonzero(grads.policy) and not _nonzero(grads.critic)


@pytest.mark.parametrize("variant", ["flat-prior", "hier-shared", "hier-separate"])
def test_policy_loss_never_changes_prior_or_critic_parameters(variant):
    config = small_config(**VARIANTS[variant])
    nets = _state(config).networks
    batch = random_batch(config)
    grads = eqx.filter_grad(
        lambda n: policy_loss(n.policy, n.critic, n.prior, batch, KEY, config)[0]
    )(nets)
    assert _nonzero(grads.policy)
    assert not _nonzero(grads.prior) and not _nonzero(grads.critic)


def test_critic_loss_changes_only_the_critic():
    config = small_config()
    state = _state(config)
    batch = random_batch(config)
    grads = eqx.filter_grad(lambda n: critic_loss(n.critic, n, batch, KEY, config)[0])(
        state.networks
    )
    # `n` is passed as the target too; the Retrace targets are gradient-stopped, so only the
    # online critic's Q(x_t, a_t) carries a gradient.
    assert _nonzero(grads.critic)
    assert not _nonzero(grads.policy) and not _nonzero(grads.prior)


def _ignore_action(critic):
    """The critic with the first-layer weights of the action inputs zeroed: Q(x, a) = Q(x)."""
    w = critic.torso.layers[0].weight  # [out, in]; the action is the last input block
    return eqx.tree_at(lambda c: c.torso.layers[0].weight, critic, w.at[:, -ACTION_SIZE:].set(0.0))


def _action_blind_online_and_target(config):
    """Online and target networks (the target's policy spread away from its prior) whose
    critics ignore the action, so E_a Q'(x, a) = Q'(x) exactly whatever the samples."""
    nets = _state(config).networks
    nets = eqx.tree_at(lambda n: n.critic, nets, _ignore_action(nets.critic))
    target = _spread_policy(_state(config, seed=1).networks, scale=0.5)
    target = eqx.tree_at(lambda n: n.critic, target, _ignore_action(target.critic))
    return nets, target


def _assembled_critic_loss(q_target, value, q_online, log_rhos, batch, config) -> float:
    """The critic loss rebuilt per window from ``ops.retrace_targets``: ``q_target [B, T+1]``
    (Q' at x_t), ``value [B, T]`` (V at x_{t+1}), ``q_online [B, T+1]``, ``log_rhos [B, T+1]``;
    LAST indices masked and traces cut before them."""
    from behavior_priors.ops import retrace_targets

    B, T = value.shape
    last = np.asarray(batch.step_type) == 2
    total, count = 0.0, 0
    for b in range(B):
        targets = retrace_targets(
            q_target[b, :T],
            value[b],
            batch.reward[b, :T],
            config.discount * batch.discount[b, :T],
            log_rhos[b, :T],
            config.retrace_lambda,
            jnp.asarray(1.0 - last[b, 1:], jnp.float32),
        )
        for t in range(T):
            if not last[b, t]:
                total += 0.5 * float(targets[t] - q_online[b, t]) ** 2
                count += 1
    assert count > 0
    return total / count


def test_critic_loss_equals_the_assembled_reference():
    """With a critic that ignores the action, E_a Q'(x, a) is exact whatever the samples, so the
    loss of a flat-prior agent is deterministic: rebuild it from its parts (V(x_{t+1}) =
    Q'(x_{t+1}) - alpha KL + alpha_H H at t+1, the importance ratios, the masks at LAST steps)
    and the ops' Retrace (tested against brute force in tests/ops)."""

    config = small_config(
        policy="flat", prior="flat", kl_cost=0.3, entropy_cost=0.2, entropy_in_value=True
    )
    nets, target = _action_blind_online_and_target(config)
    B, T = 3, 6
    batch = random_batch(config, B=B, T=T, seed=3)
    loss, _ = critic_loss(nets.critic, target, batch, KEY, config)

    obs = batch.observation
    pi, pi0 = target.policy(obs), target.prior(obs)
    zero_action = jnp.zeros((B, T + 1, ACTION_SIZE))
    q_next = target.critic(obs, zero_action)
    value = q_next - 0.3 * gaussian_kl(pi, pi0) + 0.2 * pi.entropy()  # [B, T+1]
    log_rhos = pi.log_prob(batch.action) - batch.behaviour_log_prob
    q_online = nets.critic(obs, zero_action)
    want = _assembled_critic_loss(q_next, value[:, 1:], q_online, log_rhos, batch, config)
    np.testing.assert_allclose(float(loss), want, rtol=1e-5)


@pytest.mark.parametrize("entropy_in_value", [True, False])
def test_hierarchical_critic_loss_equals_the_assembled_reference(entropy_in_value):
    """The hierarchical case of the reference above, with a separate low-level prior (so V's KL
    has both terms of the bound, its low term from sampled z), a mixed ``latent_sampled`` (the
    log-ratio of a held z is the low level's alone) and the entropy E_z H(pi'^L(.|z)) in V or
    not. Everything is rebuilt from the distributions, ``ops.gaussian_kl`` and
    ``ops.retrace_targets``, drawing z with the keys the loss uses."""

    config = small_config(
        low_level="separate",
        kl_cost=0.3,
        entropy_cost=0.2,
        num_kl_samples=3,
        num_action_samples=5,
        entropy_in_value=entropy_in_value,
    )
    nets, target = _action_blind_online_and_target(config)
    # The policy's low level spread away from the prior's too, so that the KL's low term (and
    # so which z the loss draws for it) shows in the loss.
    target = eqx.tree_at(
        lambda n: n.policy.low.head.loc.weight,
        target,
        replace_fn=lambda w: 2.0 * jax.random.normal(jax.random.PRNGKey(7), w.shape),
    )
    B, T = 3, 6
    batch = random_batch(config, B=B, T=T, seed=5)
    assert 0 < float(jnp.mean(batch.latent_sampled)) < 1
    loss, _ = critic_loss(nets.critic, target, batch, KEY, config)

    k_v, k_kl = jax.random.split(KEY)
    obs = batch.observation
    obs_next = jax.tree.map(lambda x: x[:, 1:], obs)
    pol, pri = target.policy, target.prior
    high_next, high0_next = pol.high(obs_next), pri.high(obs_next)
    # The loss takes the KL over the whole window and keeps t >= 1: z is drawn for T+1 steps.
    z_kl = pol.high(obs).sample(k_kl, (3,))[:, :, 1:]  # [3, B, T, Dz]
    kl_low = jnp.mean(gaussian_kl(pol.low(obs_next, z_kl), pri.low(obs_next, z_kl)), axis=0)
    kl = gaussian_kl(high_next, high0_next) + kl_low
    zero_action = jnp.zeros((B, T + 1, ACTION_SIZE))
    q_t = target.critic(obs, zero_action)  # Q'(x) for every action
    value = q_t[:, 1:] - 0.3 * kl
    if entropy_in_value:
        z_v = high_next.sample(jax.random.split(k_v)[0], (5,))  # the sample's z
        value = value + 0.2 * jnp.mean(pol.low(obs_next, z_v).entropy(), axis=0)
    log_pi = pol.low(obs, batch.latent).log_prob(batch.action) + batch.latent_sampled * pol.high(
        obs
    ).log_prob(batch.latent)
    log_rhos = log_pi - batch.behaviour_log_prob
    q_online = nets.critic(obs, zero_action)
    want = _assembled_critic_loss(q_t, value, q_online, log_rhos, batch, config)
    np.testing.assert_allclose(float(loss), want, rtol=1e-5)


@pytest.mark.parametrize("variant", ["flat-prior", "hier-shared"])
def test_critic_loss_ignores_what_only_the_last_step_could_add(variant):
    """The last step of a window only bootstraps (through V(x_T), from the target policy): its
    action, latent and behaviour log-probability enter no target and no Q, so the loss and the
    critic's gradient are the same whatever they are. The learner relies on this to run the
    critics and the log-ratios on the first T steps only."""
    config = small_config(**VARIANTS[variant], critic_uses_latent=variant.startswith("hier"))
    state = _state(config)
    batch = random_batch(config, seed=4)
    changed = batch._replace(
        action=jnp.asarray(batch.action).at[:, -1].add(0.7),
        latent=jnp.asarray(batch.latent).at[:, -1].add(1.3),
        behaviour_log_prob=jnp.asarray(batch.behaviour_log_prob).at[:, -1].add(-2.0),
    )

    def loss_and_grad(b):
        return eqx.filter_value_and_grad(
            lambda c: critic_loss(c, state.networks, b, KEY, config)[0]
        )(state.networks.critic)

    (l0, g0), (l1, g1) = loss_and_grad(batch), loss_and_grad(changed)
    np.testing.assert_allclose(float(l0), float(l1), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # ... while the step before the last does matter (the test can fail).
    earlier = batch._replace(action=jnp.asarray(batch.action).at[:, -2].add(0.7))
    assert abs(float(loss_and_grad(earlier)[0]) - float(l0)) > 1e-6


def test_shared_low_level_is_one_set_of_parameters():
    config = small_config()
    state = _state(config)
    assert state.networks.prior.low is None
    assert prior_low_level(state.networks) is state.networks.policy.low
    separate = _state(small_config(low_level="separate")).networks
    assert prior_low_level(separate) is separate.prior.low
    # The low-level term of the bound is exactly zero under sharing.
    _, metrics = policy_loss(
        state.networks.policy,
        state.networks.critic,
        state.networks.prior,
        random_batch(config),
        KEY,
        config,
    )
    assert float(metrics["kl/low"]) == 0.0


def _blind_to_latent(critic, latent_size):
    """The critic with the first-layer weights of the z inputs zeroed: Q(x, z, a) = Q(x, a).
    Its inputs are [x, z, a]."""
    w = critic.torso.layers[0].weight
    cols = slice(w.shape[1] - ACTION_SIZE - latent_size, w.shape[1] - ACTION_SIZE)
    return eqx.tree_at(lambda c: c.torso.layers[0].weight, critic, w.at[:, cols].set(0.0))


def test_stopping_q_gradient_into_the_latent_keeps_the_critics_path_into_the_high_level():
    """``stop_q_grad_into_latent`` gives the low level a gradient-stopped z; the critic Q(x, z, a)
    still sees the live z, so pi^H (the only level that sees the task) keeps learning through
    dQ/dz. Checked three ways with KL and entropy off (the policy loss is the Q term alone):
    pi^H gets a gradient; it gets none once the critic ignores z (the path through the action is
    really cut), while without the option it still does (through the action); and pi^L's
    gradient is the same with and without the option (it acts on the same z values)."""
    kwargs = dict(critic_uses_latent=True, kl_cost=0.0, entropy_cost=0.0)
    stop, live = small_config(stop_q_grad_into_latent=True, **kwargs), small_config(**kwargs)
    nets = _state(stop).networks
    batch = random_batch(stop)

    def grads(config, critic):
        return eqx.filter_grad(lambda p: policy_loss(p, critic, nets.prior, batch, KEY, config)[0])(
            nets.policy
        )

    g_stop, g_live = grads(stop, nets.critic), grads(live, nets.critic)
    assert _nonzero(g_stop.high) and _nonzero(g_stop.low)
    for a, b in zip(_leaves(g_stop.low), _leaves(g_live.low), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8)
    blind = _blind_to_latent(nets.critic, stop.latent_dim)
    assert not _nonzero(grads(stop, blind).high)
    assert _nonzero(grads(live, blind).high)


def test_stopping_q_gradient_needs_a_critic_that_sees_the_latent():
    with pytest.raises(ValueError, match="critic_uses_latent"):
        small_config(stop_q_grad_into_latent=True)


def test_logged_kl_equals_the_ops_value():
    batch = random_batch(small_config())
    obs = batch.observation
    k_kl = jax.random.split(KEY, 3)[1]  # the key policy_loss uses for the KL samples

    flat = small_config(policy="flat", prior="flat")
    nets = _spread_policy(_state(flat).networks)
    _, m = policy_loss(nets.policy, nets.critic, nets.prior, batch, KEY, flat)
    want = jnp.mean(gaussian_kl(nets.policy(obs), nets.prior(obs)))
    np.testing.assert_allclose(m["kl/total"], want, rtol=1e-5)
    assert float(want) > 0.01

    shared = small_config()
    nets = _spread_policy(_state(shared).networks)
    _, m = policy_loss(nets.policy, nets.critic, nets.prior, batch, KEY, shared)
    want = jnp.mean(gaussian_kl(nets.policy.high(obs), nets.prior.high(obs)))
    np.testing.assert_allclose(m["kl/high"], want, rtol=1e-5)
    np.testing.assert_allclose(m["kl/total"], want, rtol=1e-5)

    sep = small_config(low_level="separate", num_kl_samples=4)
    nets = _spread_policy(_state(sep).networks)
    _, m = policy_loss(nets.policy, nets.critic, nets.prior, batch, KEY, sep)
    high = nets.policy.high(obs)
    z = high.sample(k_kl, (4,))
    bound = hierarchical_kl_bound(
        high, nets.prior.high(obs), nets.policy.low(obs, z), nets.prior.low(obs, z)
    )
    for name in ("high", "low", "total"):
        np.testing.assert_allclose(m[f"kl/{name}"], jnp.mean(getattr(bound, name)), rtol=1e-5)


@pytest.mark.parametrize("variant", ["flat-prior", "hier-shared"])
def test_distillation_drives_kl_to_zero(variant):
    # The prior sees everything the policy sees, so it can match it exactly; learning only the
    # prior (policy and critic learning rates 0) must drive the KL towards 0.
    keys = ("proprio/", "task/")
    config = small_config(
        **VARIANTS[variant],
        prior_keys=keys,
        policy_learning_rate=0.0,
        critic_learning_rate=0.0,
        prior_learning_rate=3e-3,
    )
    state = _state(config)
    state = state._replace(networks=_spread_policy(state.networks))
    batch = random_batch(config, B=8, T=4)
    update = make_update_fn(config)
    kls = []
    for _ in range(300):
        state, metrics = update(state, batch)
        kls.append(float(metrics["losses/prior"]))
    assert kls[0] > 0.1
    assert kls[-1] < 0.05 * kls[0], (kls[0], kls[-1])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_updates_without_nan_in_float32(variant):
    config = small_config(**VARIANTS[variant], target_update_period=2)
    state = _state(config)
    update = make_update_fn(config)
    batch = random_batch(config)
    before = state.networks
    for i in range(3):
        state, metrics = update(state, batch)
        check_finite(metrics, i)
    leaves = jax.tree.leaves(eqx.filter(state, eqx.is_inexact_array))
    assert all(x.dtype == jnp.float32 for x in leaves)
    assert int(state.step) == 3
    # Online networks moved; the target was copied at step 2 and differs from the online ones.
    assert _nonzero(
        jax.tree.map(
            lambda a, b: a - b,
            eqx.filter(state.networks, eqx.is_array),
            eqx.filter(before, eqx.is_array),
        )
    )
    for name in ("losses/critic", "losses/policy", "losses/prior", "kl/high", "kl/low"):
        assert name in metrics


def test_hard_target_update_period():
    config = small_config(target_update_period=3, critic_learning_rate=1e-2)
    state = _state(config)
    update = make_update_fn(config)
    batch = random_batch(config)
    initial = state.target.critic.out.weight
    for step in range(1, 7):
        state, _ = update(state, batch)
        same_as_online = np.array_equal(
            state.target.critic.out.weight, state.networks.critic.out.weight
        )
        assert same_as_online == (step % 3 == 0), step
        if step < 3:
            np.testing.assert_array_equal(state.target.critic.out.weight, initial)


def test_soft_target_update_follows_the_polyak_recurrence():
    """target_k = target_{k-1} + tau (online_k - target_{k-1}), replayed in float64 numpy from
    the online weights after each step; a frozen module's target never moves."""
    tau = 0.3
    config = small_config(target_update_rate=tau, critic_learning_rate=1e-2, frozen=("prior",))
    state = _state(config)
    update = make_update_fn(config)
    batch = random_batch(config)
    expected = np.asarray(state.target.critic.out.weight, np.float64)
    prior_before = eqx.filter(state.target.prior, eqx.is_array)
    for _ in range(5):
        state, _ = update(state, batch)
        expected = expected + tau * (np.asarray(state.networks.critic.out.weight) - expected)
        np.testing.assert_allclose(state.target.critic.out.weight, expected, rtol=1e-5, atol=1e-7)
    assert not np.allclose(state.target.critic.out.weight, state.networks.critic.out.weight)
    for a, b in zip(
        jax.tree.leaves(prior_before),
        jax.tree.leaves(eqx.filter(state.target.prior, eqx.is_array)),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("tau", [0.0, -0.1, 1.5, True, "0.1"])
def test_target_update_rate_must_be_in_the_unit_interval(tau):
    with pytest.raises(ValueError, match="target_update_rate"):
        small_config(target_update_rate=tau)


def test_check_finite_names_the_bad_metric():
    with pytest.raises(FloatingPointError, match="losses/critic"):
        check_finite({"losses/critic": float("nan"), "kl/high": 0.0}, 7)


def test_update_vmaps_over_seeds():
    config = small_config()
    states = eqx.filter_vmap(lambda k: init(config, SHAPES, ACTION_SIZE, k))(
        jax.random.split(KEY, 3)
    )
    batch = random_batch(config)
    update = eqx.filter_jit(eqx.filter_vmap(lambda s: make_update_fn(config)(s, batch)))
    states, metrics = update(states)
    assert metrics["losses/critic"].shape == (3,)
    assert len(set(np.asarray(metrics["losses/critic"]).round(6).tolist())) == 3


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_array))]


@pytest.mark.parametrize(
    ("variant", "frozen"),
    [
        ("hier-shared", ("prior.high", "policy.low")),
        ("hier-separate", ("prior",)),
        ("hier-separate", ("prior.low", "policy.high")),
        ("flat-prior", ("prior",)),
        ("flat-prior", ("policy", "critic")),
    ],
)
def test_frozen_modules_stay_bit_identical_and_the_others_learn(variant, frozen):
    config = small_config(**VARIANTS[variant], frozen=frozen, target_update_period=2)
    state = _state(config)
    state = state._replace(networks=_spread_policy(state.networks))
    before = state.networks
    step = make_update_fn(config)
    for i in range(3):
        state, _ = step(state, random_batch(config, seed=i))
    getters = MODULES
    for name in frozen:
        for a, b in zip(
            _leaves(getters[name](before)), _leaves(getters[name](state.networks)), strict=True
        ):
            np.testing.assert_array_equal(a, b, err_msg=name)
    # Every module neither frozen nor inside a frozen one changed.
    hier = variant.startswith("hier")
    trained = ["critic", "policy.high", "policy.low", "prior.high"] if hier else ["critic"]
    trained += ["prior.low"] if variant == "hier-separate" else []
    trained += [] if hier else ["policy", "prior"]
    for name in trained:
        if any(name == f or name.startswith(f + ".") for f in frozen):
            continue
        old, new = _leaves(getters[name](before)), _leaves(getters[name](state.networks))
        assert any(not np.array_equal(a, b) for a, b in zip(old, new, strict=True)), name


@pytest.mark.parametrize(
    ("variant", "frozen", "skips"),
    [
        ("hier-shared", ("prior.high",), True),
        ("hier-separate", ("prior.high",), False),
        ("hier-separate", ("prior.high", "prior.low"), True),
        ("flat-prior", ("prior",), True),
        ("flat-prior", ("critic",), False),
    ],
)
def test_a_fully_frozen_prior_skips_its_gradient_and_changes_nothing_else(variant, frozen, skips):
    from behavior_priors.agents.svg0.learner import prior_frozen

    config = small_config(**VARIANTS[variant], frozen=frozen)
    assert prior_frozen(config) == skips
    if not skips:
        return
    free = small_config(**VARIANTS[variant])
    state = _state(config)
    batch = random_batch(config, seed=3)
    new_frozen, m_frozen = make_update_fn(config)(state, batch)
    new_free, m_free = make_update_fn(free)(state, batch)
    # Policy and critic updates do not depend on the prior's gradient: equal to the free run's.
    for name in ("critic", "policy"):
        for a, b in zip(
            _leaves(MODULES[name](new_frozen.networks)),
            _leaves(MODULES[name](new_free.networks)),
            strict=True,
        ):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=name)
    # The prior's loss is still logged; its optimiser state is left alone.
    np.testing.assert_allclose(m_frozen["losses/prior"], m_free["losses/prior"], rtol=1e-6)
    assert float(m_frozen["grads/prior_norm"]) == 0.0 < float(m_free["grads/prior_norm"])
    for a, b in zip(_leaves(state.prior_opt), _leaves(new_frozen.prior_opt), strict=True):
        np.testing.assert_array_equal(a, b)


class _QuadraticCritic(eqx.Module):
    """Q(x, a) = -sum_i w_i (a_i - c_i)^2: E_{a~N(mu, diag s^2)} Q = -sum_i w_i ((mu_i - c_i)^2
    + s_i^2) in closed form."""

    c: jax.Array
    w: jax.Array
    latent_size: int = eqx.field(static=True, default=0)

    def __call__(self, obs, action, latent=None):
        return -jnp.sum(self.w * jnp.square(action - self.c), axis=-1)

    def expected(self, low):
        """E_{a~low} Q, ``[...]``, for a Gaussian ``low`` ``[..., Da]``."""
        return -jnp.sum(self.w * (jnp.square(low.loc - self.c) + jnp.square(low.scale)), axis=-1)


@pytest.mark.parametrize("hierarchical", [False, True])
def test_the_saturation_term_pulls_a_saturated_action_head_back(hierarchical):
    """A policy whose action means sit deep in tanh's flat tail (pre-activation 10, which
    Adam reached in training, docs/agent.md) gets no gradient from a critic that rises towards
    the box edge: tanh'(10) = 8e-9. The hinge term gives the hand-derived pull back, (10 - 3)
    per dimension on the head's bias, and adds 0.5 * 7^2 per dimension to the loss."""
    kwargs = dict(kl_cost=0.0, entropy_cost=0.0, latent_dim=2)
    config = small_config(policy="hierarchical" if hierarchical else "flat", prior="none", **kwargs)
    policy = _state(config).networks.policy
    head = (lambda p: p.low.head) if hierarchical else (lambda p: p.net.head)
    # Pre-activations exactly 10 (mean) and 0 (scale) at every state.
    policy = eqx.tree_at(
        lambda p: (head(p).loc.weight, head(p).loc.bias, head(p).scale.weight, head(p).scale.bias),
        policy,
        (
            jnp.zeros_like(head(policy).loc.weight),
            jnp.full_like(head(policy).loc.bias, 10.0),
            jnp.zeros_like(head(policy).scale.weight),
            jnp.zeros_like(head(policy).scale.bias),
        ),
    )
    critic = _QuadraticCritic(jnp.asarray([5.0, 5.0]), jnp.asarray([1.0, 1.0]))  # rises to a = 5
    batch = random_batch(config, B=3, T=2, seed=1)

    def loss(p, cost):
        return policy_loss(p, critic, None, batch, KEY, config.replace(saturation_cost=cost))

    (l0, _), g0 = eqx.filter_value_and_grad(loss, has_aux=True)(policy, 0.0)
    (l1, m1), g1 = eqx.filter_value_and_grad(loss, has_aux=True)(policy, 1.0)
    assert np.max(np.abs(head(g0).loc.bias)) < 1e-5  # the dead gradient of the defect
    np.testing.assert_allclose(head(g1).loc.bias, [7.0, 7.0], rtol=1e-4)
    np.testing.assert_allclose(l1 - l0, 2 * 0.5 * 49.0, rtol=1e-5)
    assert float(m1["policy/saturated_fraction"]) == 0.5  # the means, not the scales


def _relative_error(a, b) -> float:
    fa = jnp.concatenate([x.ravel() for x in jax.tree.leaves(eqx.filter(a, eqx.is_array))])
    fb = jnp.concatenate([x.ravel() for x in jax.tree.leaves(eqx.filter(b, eqx.is_array))])
    return float(jnp.linalg.norm(fa - fb) / jnp.linalg.norm(fb))


@pytest.mark.parametrize("hierarchical", [False, True])
def test_svg0_policy_gradient_matches_the_closed_form_for_a_quadratic_critic(hierarchical):
    """The SVG(0) gradient (reparameterised samples through Q) is an unbiased estimate of the
    gradient of E_pi Q. For a quadratic critic and a Gaussian policy, E_a Q is closed-form in the
    policy's mean and scale, so its exact gradient (plain autodiff through mu(x), s(x)) is the
    reference. For the hierarchical policy the outer expectation over z (2 dimensions) is taken
    by 24 x 24-point Gauss-Hermite quadrature through z = m + s * node. With KL and entropy off,
    the loss is -E Q; 20k samples per state keep the Monte Carlo error near 1% (measured 0.8%
    for both; the variants that would fail are 14% and more away)."""
    kwargs = dict(kl_cost=0.0, entropy_cost=0.0, num_policy_samples=20_000, latent_dim=2)
    config = small_config(policy="hierarchical" if hierarchical else "flat", prior="none", **kwargs)
    policy = _spread_policy(_state(config).networks, scale=0.3).policy
    critic = _QuadraticCritic(jnp.asarray([0.5, -0.3]), jnp.asarray([1.0, 2.0]))
    batch = random_batch(config, B=2, T=3, seed=6)
    obs = batch.observation

    def reference(p):
        if not hierarchical:
            return -jnp.mean(critic.expected(p(obs)))
        nodes, weights = np.polynomial.hermite.hermgauss(24)
        zz = np.stack(np.meshgrid(nodes, nodes, indexing="ij"), -1).reshape(-1, 2)  # [K, 2]
        ww = np.prod(np.stack(np.meshgrid(weights, weights, indexing="ij"), -1), -1).ravel()
        high = p.high(obs)  # [B, T+1, 2]
        z = high.loc + high.scale * jnp.sqrt(2.0) * jnp.asarray(zz, jnp.float32)[:, None, None]
        inner = critic.expected(p.low(obs, z))  # [K, B, T+1]
        outer = jnp.tensordot(jnp.asarray(ww / np.pi, jnp.float32), inner, axes=1)
        return -jnp.mean(outer)

    g_ref = eqx.filter_grad(reference)(policy)
    g_svg = eqx.filter_grad(lambda p: policy_loss(p, critic, None, batch, KEY, config)[0])(policy)
    assert _relative_error(g_svg, g_ref) < 0.03, _relative_error(g_svg, g_ref)
    # The test can fail: dropping the scale's contribution (a deterministic policy gradient at
    # the mean) is far from the reference.
    if not hierarchical:

        def mean_only(p):
            d = p(obs)
            return -jnp.mean(critic.expected(d._replace(scale=jnp.zeros_like(d.scale))))

        assert _relative_error(eqx.filter_grad(mean_only)(policy), g_ref) > 0.08
    else:
        g_high_only = eqx.tree_at(lambda p: p.low, g_ref, jax.tree.map(jnp.zeros_like, g_ref.low))
        assert _relative_error(g_high_only, g_ref) > 0.2


def _ar_trained_policy(coefficient: float, steps: int = 250):
    """A policy trained by the learner against the fixed AR(1) prior N(a z_{t-1}, (1-a^2) I) with
    nothing else to follow: a critic that is constant (zero output layer, never trained), no
    entropy, random states and z_{t-1} ~ N(0, I) as the replayed previous latents."""
    config = small_config(
        high_prior="ar1",
        ar1_coefficient=coefficient,
        kl_cost=1.0,
        entropy_cost=0.0,
        critic_learning_rate=0.0,
        policy_learning_rate=3e-3,
        latent_dim=2,
    )
    assert config.autoregressive_high_level
    state = _state(config)
    nets = eqx.tree_at(
        lambda n: (n.critic.out.weight, n.critic.out.bias),
        state.networks,
        replace_fn=jnp.zeros_like,
    )
    state = state._replace(networks=nets, target=nets)
    update = make_update_fn(config)
    for i in range(steps):
        batch = random_batch(config, B=8, T=4, seed=100 + i)
        batch = batch._replace(step_type=jnp.ones_like(batch.step_type))  # no episode starts
        state, _ = update(state, batch)
    return state.networks.policy


def _lag1_autocorrelation(policy, steps: int = 3000, seed: int = 0) -> float:
    """Roll z_t ~ pi^H(.|x_t, z_{t-1}) forward over random states; the lag-1 autocorrelation of
    z, averaged over its dimensions."""
    rng = np.random.default_rng(seed)
    obs = {k: jnp.asarray(rng.normal(size=(steps, *s)), jnp.float32) for k, s in SHAPES.items()}
    keys = jax.random.split(jax.random.PRNGKey(seed), steps)

    def step(z_prev, inputs):
        o, k = inputs
        z = policy.top(o, z_prev).sample(k)
        return z, z

    _, zs = jax.lax.scan(step, jnp.zeros(policy.latent_size), (obs, keys))
    zs = np.asarray(zs)[100:]  # after a burn-in
    return float(np.mean([np.corrcoef(zs[:-1, d], zs[1:, d])[0, 1] for d in range(zs.shape[1])]))


def test_ar1_prior_shapes_the_temporal_correlation_of_the_latent():
    """Under an AR(1) high-level prior the policy's high level reads z_{t-1}, so the KL can teach
    it the prior's temporal structure: the lag-1 autocorrelation of z under the trained policy
    rises with the AR coefficient and lands near it (the prior's own is the coefficient). A high
    level blind to z_{t-1} would give about 0 for every coefficient."""
    corr = {a: _lag1_autocorrelation(_ar_trained_policy(a)) for a in (0.0, 0.5, 0.9)}
    assert corr[0.0] < corr[0.5] < corr[0.9], corr
    for a, c in corr.items():
        assert abs(c - a) < 0.15, corr


def test_the_donating_update_matches_the_plain_one_and_lowers_without_running():
    config = small_config()
    state = _state(config)
    batch = random_batch(config)
    expected, _ = make_update_fn(config)(state, batch)  # does not donate: state stays valid
    donating = make_update_fn(config, donate=True)
    # lower() compiles what a call runs, without running it or taking the state's buffers.
    assert "ENTRY" in donating.lower(state, batch).compile().as_text()
    new, _ = donating(state, batch)
    for a, b in zip(
        jax.tree.leaves(eqx.filter(new, eqx.is_array)),
        jax.tree.leaves(eqx.filter(expected, eqx.is_array)),
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def _arrays(state):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(state, eqx.is_array))]


def test_the_donating_update_reuses_the_state_it_returned_and_nothing_else():
    """The donating update keeps the arrays of the state it returned, so that state passed
    straight back is not flattened again; any other state (a modified copy of it) is read
    afresh. Both chains equal the plain update's, step for step."""
    config = small_config()
    batch = random_batch(config)
    plain, donating = make_update_fn(config), make_update_fn(config, donate=True)
    ref = _state(config)
    state = _state(config)
    for _ in range(3):  # the returned state handed back: the kept arrays are used
        ref, _ = plain(ref, batch)
        state, _ = donating(state, batch)
        for a, b in zip(_arrays(state), _arrays(ref), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

    # A new state object with changed parameters, as a resume or a graft makes: its own
    # arrays must be the ones updated, not the kept ones of the state it was made from.
    def bump(s):
        return eqx.tree_at(
            lambda s: s.networks.critic, s, jax.tree.map(lambda x: x + 0.1, s.networks.critic)
        )

    ref, _ = plain(bump(ref), batch)
    state, _ = donating(bump(state), batch)
    for a, b in zip(_arrays(state), _arrays(ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_the_in_place_learner_matches_the_plain_update_and_rebuilds_its_state_when_read():
    """The run loop's learner keeps the state as the donating update's arrays: its updates
    equal the plain update's, step for step; the state is rebuilt on the first read after an
    update and is then the same object; the policy's arrays are the rebuilt policy's; a batch
    that cannot be compiled leaves the state as it was; reset continues from another state."""
    config = small_config()
    batch = random_batch(config)
    plain = make_update_fn(config)
    ref = _state(config)
    learner = InPlaceLearner(config, _state(config))
    for _ in range(3):
        ref, ref_metrics = plain(ref, batch)
        metrics = learner.update(batch)
    state = learner.state
    assert learner.state is state
    for a, b in zip(_arrays(state), _arrays(ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for k, v in ref_metrics.items():
        np.testing.assert_allclose(np.asarray(metrics[k]), np.asarray(v), rtol=1e-5, atol=1e-7)
    policy = jax.tree.leaves(eqx.filter(state.networks.policy, eqx.is_array))
    assert len(policy) == len(learner.policy_arrays())
    assert all(a is b for a, b in zip(policy, learner.policy_arrays(), strict=True))

    before = _arrays(learner.state)
    with pytest.raises(KeyError):  # no observations: fails while tracing, nothing donated
        learner.update(batch._replace(observation={}))
    for a, b in zip(_arrays(learner.state), before, strict=True):
        np.testing.assert_array_equal(a, b)

    fresh = _state(config)
    learner.reset(fresh)
    assert learner.state is fresh
    learner.update(batch)
    expected, _ = plain(_state(config), batch)
    for a, b in zip(_arrays(learner.state), _arrays(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
