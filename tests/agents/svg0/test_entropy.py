"""The learned entropy cost (``SVG0Config.target_entropy``): SAC's automatic temperature."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from behavior_priors.agents.svg0 import init, make_update_fn, policy_loss
from behavior_priors.agents.svg0.learner import entropy_cost

from .helpers import ACTION_SIZE, SHAPES, VARIANTS, random_batch, small_config

KEY = jax.random.PRNGKey(0)
LR = 0.01


def _state(config):
    return init(config, SHAPES, ACTION_SIZE, jax.random.PRNGKey(0))


@pytest.mark.parametrize("variant", ["no-prior-flat", "hier-shared"])
@pytest.mark.parametrize("target, direction", [(50.0, 1.0), (-50.0, -1.0)])
def test_alpha_rises_below_the_target_and_falls_above_it(variant, target, direction):
    """Adam's first steps move log alpha by the learning rate against the sign of the gradient
    H - target (Adam normalises the step; eps is 1e-8): a target far above any reachable
    entropy raises alpha_H by a factor exp(lr) per step, one far below lowers it."""
    config = small_config(
        **VARIANTS[variant], entropy_cost=0.1, target_entropy=target, entropy_learning_rate=LR
    )
    state = _state(config)
    np.testing.assert_allclose(entropy_cost(config, state), 0.1, rtol=1e-6)
    update = make_update_fn(config)
    batch = random_batch(config)
    for k in range(1, 4):
        state, metrics = update(state, batch)
        # The cost used in step k is the one before it; the state holds the next one.
        np.testing.assert_allclose(
            metrics["policy/entropy_cost"], 0.1 * np.exp(direction * LR * (k - 1)), rtol=1e-4
        )
        np.testing.assert_allclose(
            entropy_cost(config, state), 0.1 * np.exp(direction * LR * k), rtol=1e-4
        )


def test_the_policy_loss_uses_the_learned_cost():
    """With alpha_H passed in, the policy loss equals the loss of a config whose fixed
    entropy_cost is that value; without it, the config's own cost."""
    config = small_config(entropy_cost=0.1, target_entropy=-2.0)
    nets = _state(config).networks
    batch = random_batch(config)

    def loss(cfg, alpha=None):
        return policy_loss(nets.policy, nets.critic, nets.prior, batch, KEY, cfg, alpha)[0]

    fixed = config.replace(entropy_cost=0.7, target_entropy=None)
    np.testing.assert_allclose(loss(config, jnp.float32(0.7)), loss(fixed), rtol=1e-6)
    np.testing.assert_allclose(loss(config), loss(config.replace(target_entropy=None)), rtol=1e-6)
    assert not np.isclose(loss(config, jnp.float32(0.7)), loss(config))


def test_a_fixed_cost_adds_no_state():
    """Fixed-alpha learner states have exactly the leaves they had before the option existed,
    so their checkpoints keep the same layout."""
    fixed = _state(small_config())
    auto = _state(small_config(entropy_cost=0.1, target_entropy=-2.0))
    assert fixed.entropy is None
    n_fixed = len(jax.tree.leaves(eqx.filter(fixed, eqx.is_array)))
    n_auto = len(jax.tree.leaves(eqx.filter(auto, eqx.is_array)))
    assert n_auto > n_fixed  # log alpha and its Adam moments


def test_learned_cost_vmaps_over_seeds():
    config = small_config(entropy_cost=0.1, target_entropy=50.0, entropy_learning_rate=LR)
    states = eqx.filter_vmap(lambda k: init(config, SHAPES, ACTION_SIZE, k))(
        jax.random.split(KEY, 3)
    )
    batch = random_batch(config)
    update = eqx.filter_jit(eqx.filter_vmap(lambda s: make_update_fn(config)(s, batch)))
    states, _ = update(states)
    np.testing.assert_allclose(jnp.exp(states.entropy.log_alpha), 0.1 * np.exp(LR), rtol=1e-4)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(target_entropy=-2.0, entropy_cost=0.0), "entropy_cost > 0"),
        (dict(target_entropy=float("nan"), entropy_cost=0.1), "finite"),
        (dict(entropy_learning_rate=0.0), "entropy_learning_rate"),
        (
            dict(policy="distral", prior="distilled", target_entropy=1.0, entropy_cost=0.1),
            "Distral",
        ),
    ],
)
def test_bad_entropy_options_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        small_config(**overrides)
