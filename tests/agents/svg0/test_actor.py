"""Actor: extras for replay, latent holding, deterministic evaluation, action scaling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from behavior_priors.agents.svg0 import (
    init,
    initial_actor_state,
    select_action,
    to_env_action,
)

from .helpers import ACTION_SIZE, SHAPES, small_config

B = 6


def _obs(seed=0):
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(rng.normal(size=(B, *s)), jnp.float32) for k, s in SHAPES.items()}


def test_flat_actor_log_prob_matches_policy():
    config = small_config(policy="flat", prior="flat")
    policy = init(config, SHAPES, ACTION_SIZE, jax.random.PRNGKey(0)).networks.policy
    obs = _obs()
    state = initial_actor_state(config, B)
    a, extras, _ = select_action(
        policy, obs, jnp.ones(B, bool), state, jax.random.PRNGKey(1), config
    )
    assert a.shape == (B, ACTION_SIZE) and extras.latent.shape == (B, 0)
    np.testing.assert_allclose(extras.behaviour_log_prob, policy(obs).log_prob(a), rtol=1e-6)
    a_eval, _, _ = select_action(
        policy, obs, jnp.ones(B, bool), state, jax.random.PRNGKey(2), config, evaluation=True
    )
    np.testing.assert_allclose(a_eval, policy(obs).loc, rtol=1e-6)


def test_hierarchical_actor_holds_latent_for_k_steps_and_resets_at_episode_start():
    k = 3
    config = small_config(latent_hold_steps=k)
    policy = init(config, SHAPES, ACTION_SIZE, jax.random.PRNGKey(0)).networks.policy
    state = initial_actor_state(config, B)
    step = jax.jit(lambda o, f, s, key: select_action(policy, o, f, s, key, config))
    latents, sampled, prevs = [], [], []
    first = np.zeros((7, B), bool)
    first[0] = True
    first[4, :2] = True  # copies 0 and 1 start a new episode at step 4
    for t in range(7):
        obs = _obs(t)
        a, extras, state = step(obs, jnp.asarray(first[t]), state, jax.random.PRNGKey(t))
        latents.append(np.asarray(extras.latent))
        sampled.append(np.asarray(extras.latent_sampled))
        prevs.append(np.asarray(extras.prev_latent))
        # The behaviour log-prob is the joint on resampling steps, the low level alone otherwise.
        low = policy.low(obs, extras.latent).log_prob(a)
        high = policy.high(obs).log_prob(extras.latent)
        np.testing.assert_allclose(
            extras.behaviour_log_prob, low + extras.latent_sampled * high, rtol=1e-5
        )
    sampled = np.array(sampled)
    np.testing.assert_array_equal(sampled[:, 2:], [[1], [0], [0], [1], [0], [0], [1]] * np.ones(4))
    np.testing.assert_array_equal(sampled[:, :2], [[1], [0], [0], [1], [1], [0], [0]] * np.ones(2))
    np.testing.assert_array_equal(latents[1], latents[0])  # held
    np.testing.assert_array_equal(prevs[1], latents[0])
    np.testing.assert_array_equal(prevs[0], 0.0)  # no previous latent at an episode start
    np.testing.assert_array_equal(prevs[4][:2], 0.0)
    assert not np.allclose(latents[3], latents[2])


def test_evaluation_mode_is_deterministic():
    config = small_config()
    policy = init(config, SHAPES, ACTION_SIZE, jax.random.PRNGKey(0)).networks.policy
    state = initial_actor_state(config, B)
    obs, first = _obs(), jnp.ones(B, bool)
    a1, _, _ = select_action(policy, obs, first, state, jax.random.PRNGKey(1), config, True)
    a2, _, _ = select_action(policy, obs, first, state, jax.random.PRNGKey(2), config, True)
    np.testing.assert_array_equal(a1, a2)
    s1, _, _ = select_action(policy, obs, first, state, jax.random.PRNGKey(1), config)
    assert not np.allclose(s1, a1)


def test_to_env_action_clips_and_rescales():
    a = np.array([[-2.0, 0.0], [0.5, 3.0]])
    out = to_env_action(a, np.array([0.0, -2.0]), np.array([1.0, 2.0]))
    np.testing.assert_allclose(out, [[0.0, 0.0], [0.75, 2.0]])


def test_prior_acts_with_its_high_level_and_the_shared_low_level():
    from behavior_priors.agents.svg0 import select_prior_action
    from behavior_priors.agents.svg0.networks import make_networks

    config = small_config()
    nets = make_networks(config, SHAPES, ACTION_SIZE, jax.random.PRNGKey(0))
    obs = {
        k: jnp.asarray(np.random.default_rng(1).normal(size=(4, *s)), jnp.float32)
        for k, s in SHAPES.items()
    }
    first = jnp.array([True, False, True, False])
    state = initial_actor_state(config, 4)
    a, new = select_prior_action(nets, obs, first, state, jax.random.PRNGKey(1), config, True)
    # Deterministic: z is the mean of pi0^H(z | x^D), a the mean of the shared pi^L(a | z, x).
    z = nets.prior.high(obs, state.latent, first).loc
    np.testing.assert_allclose(new.latent, z, atol=1e-6)
    np.testing.assert_allclose(a, nets.policy.low(obs, z).mode(), atol=1e-6)
    # The prior does not see the task: changing task inputs leaves its z unchanged.
    other = {**obs, "task/target": obs["task/target"] + 5.0}
    _, new2 = select_prior_action(nets, other, first, state, jax.random.PRNGKey(1), config, True)
    np.testing.assert_allclose(new2.latent, new.latent, atol=1e-6)


def test_acting_with_no_prior_is_a_clear_error():
    from behavior_priors.agents.svg0 import select_prior_action
    from behavior_priors.agents.svg0.networks import make_networks

    config = small_config(policy="flat", prior="none")
    nets = make_networks(config, SHAPES, ACTION_SIZE, jax.random.PRNGKey(0))
    obs = {k: jnp.zeros((2, *s)) for k, s in SHAPES.items()}
    with pytest.raises(ValueError, match="no prior"):
        select_prior_action(
            nets,
            obs,
            jnp.ones(2, bool),
            initial_actor_state(config, 2),
            jax.random.PRNGKey(0),
            config,
        )
