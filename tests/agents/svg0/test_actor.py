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


def _first_schedule():
    first = np.zeros((7, B), bool)
    first[0] = True
    first[4, :2] = True  # copies 0 and 1 start a new episode at step 4
    return first


def test_the_policy_resamples_its_latent_every_step_whatever_the_hold():
    """The learner's critic, traces and KL assume z ~ pi^H at every step, so the training actor
    resamples every step even with ``latent_hold_steps = 3``: every step's behaviour
    log-probability is the joint log pi^H(z|x) + log pi^L(a|z,x), and z_{t-1} is the previous
    step's z (0 at an episode start)."""
    config = small_config(latent_hold_steps=3)
    policy = init(config, SHAPES, ACTION_SIZE, jax.random.PRNGKey(0)).networks.policy
    state = initial_actor_state(config, B)
    step = jax.jit(lambda o, f, s, key: select_action(policy, o, f, s, key, config))
    first = _first_schedule()
    latents, prevs = [], []
    for t in range(7):
        obs = _obs(t)
        a, extras, state = step(obs, jnp.asarray(first[t]), state, jax.random.PRNGKey(t))
        latents.append(np.asarray(extras.latent))
        prevs.append(np.asarray(extras.prev_latent))
        joint = policy.low(obs, extras.latent).log_prob(a) + policy.high(obs).log_prob(
            extras.latent
        )
        np.testing.assert_allclose(extras.behaviour_log_prob, joint, rtol=1e-5)
        np.testing.assert_array_equal(extras.latent_sampled, 1.0)
        if t:
            assert not np.any(np.isclose(latents[t], latents[t - 1]).all(axis=-1))
    np.testing.assert_array_equal(prevs[0], 0.0)
    np.testing.assert_array_equal(prevs[4][:2], 0.0)  # new episodes
    np.testing.assert_array_equal(prevs[4][2:], latents[3][2:])
    np.testing.assert_array_equal(prevs[1], latents[0])


def test_the_prior_acting_alone_holds_its_latent_for_k_steps_and_restarts_at_episode_start():
    """The hand-built schedule of ``latent_hold_steps = 3`` with copies 0 and 1 restarting at
    step 4: z is drawn at steps 0, 3, 6 (copies 2-5) and 0, 3, 4 (copies 0-1), held between."""
    from behavior_priors.agents.svg0 import select_prior_action
    from behavior_priors.agents.svg0.networks import make_networks

    config = small_config(latent_hold_steps=3, high_prior="normal")
    nets = make_networks(config, SHAPES, ACTION_SIZE, jax.random.PRNGKey(0))
    state = initial_actor_state(config, B)
    step = jax.jit(lambda o, f, s, key: select_prior_action(nets, o, f, s, key, config))
    first = _first_schedule()
    latents = []
    for t in range(7):
        _, state = step(_obs(t), jnp.asarray(first[t]), state, jax.random.PRNGKey(t))
        latents.append(np.asarray(state.latent))
    new = np.array(
        [
            [not np.array_equal(latents[t][b], latents[t - 1][b]) for b in range(B)]
            for t in range(1, 7)
        ]
    )
    want = np.array([[0], [0], [1], [0], [0], [1]]) * np.ones((6, B), bool)
    want[3, :2] = True  # restart at step 4 ...
    want[2, :2] = True  # ... after the resample at step 3
    want[5, :2] = False  # held from 4: next draw at 7
    np.testing.assert_array_equal(new, want)


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
