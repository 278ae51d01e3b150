"""Random batches and small configs for the SVG(0) tests."""

import jax.numpy as jnp
import numpy as np

from behavior_priors.agents.svg0 import SVG0Config
from behavior_priors.agents.types import SequenceBatch

SHAPES = {"proprio/pos": (3,), "proprio/vel": (2,), "task/target": (2,)}
ACTION_SIZE = 2
SMALL = dict(policy_hidden=(32, 32), prior_hidden=(32, 32), critic_hidden=(32, 32))

VARIANTS = {
    "no-prior-flat": dict(policy="flat", prior="none"),
    "flat-prior": dict(policy="flat", prior="flat"),
    "no-prior-hier": dict(prior="none"),
    "hier-shared": dict(),
    "hier-separate": dict(low_level="separate"),
    "hier-normal": dict(high_prior="normal"),
    "hier-ar1": dict(high_prior="ar1"),
    "hier-learned-ar": dict(high_prior="learned_ar", critic_uses_latent=True),
    "hier-stop-grad": dict(
        stop_q_grad_into_latent=True, critic_uses_latent=True, latent_hold_steps=3
    ),
}


def small_config(**overrides) -> SVG0Config:
    return SVG0Config(**{**SMALL, "latent_dim": 3, **overrides})


def random_batch(config: SVG0Config, B=4, T=5, seed=0) -> SequenceBatch:
    rng = np.random.default_rng(seed)
    dz = config.latent_size
    step_type = rng.choice([0, 1, 1, 1, 2], size=(B, T + 1))

    def f(*shape):
        return jnp.asarray(rng.normal(size=shape), jnp.float32)

    return SequenceBatch(
        observation={k: f(B, T + 1, *s) for k, s in SHAPES.items()},
        step_type=jnp.asarray(step_type, jnp.int32),
        action=jnp.clip(f(B, T + 1, ACTION_SIZE), -1, 1),
        reward=f(B, T + 1),
        discount=jnp.asarray(rng.random((B, T + 1)) > 0.1, jnp.float32),
        behaviour_log_prob=f(B, T + 1) - 2.0,
        latent=f(B, T + 1, dz),
        prev_latent=f(B, T + 1, dz),
        latent_sampled=jnp.asarray(rng.random((B, T + 1)) > 0.3, jnp.float32),
        task_id=jnp.zeros((B, T + 1), jnp.int32),
    )
