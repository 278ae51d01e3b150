"""The run loop's step order: the actor is dispatched with the parameters after the previous
update, the owed updates next, and the host steps the environments while XLA runs them
(``Trainer.step``). What it computes is checked against the same calls made one at a time."""

import equinox as eqx
import jax
import numpy as np

from behavior_priors.agents.svg0.learner import copy_arrays
from behavior_priors.training.acting import make_actor
from behavior_priors.training.loop import Trainer, learning_due
from behavior_priors.training.presets import get_preset

from .test_run import TINY


def _arrays(state) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(state, eqx.is_array))]


def test_a_step_acts_with_the_parameters_before_its_updates():
    t = Trainer(TINY)
    t.run(total_env_steps=TINY.warmup_steps + 8 * TINY.num_envs)  # past warm-up
    policy = copy_arrays(t.state.networks.policy)
    obs = {k: v.copy() for k, v in t.ts.observation.items()}
    first, actor_state, key = t.ts.first().copy(), t.actor_state, t.act_key
    params_before, updates_before = _arrays(t.state), t.updates
    taken = {}
    take_action = t.take_action

    def spy(action, extras):
        taken["action"] = action
        return take_action(action, extras)

    t.take_action = spy
    t.step()
    owed = int(TINY.num_envs * TINY.updates_per_env_step)
    assert t.updates == updates_before + owed
    after = _arrays(t.state)
    assert any(not np.array_equal(a, b) for a, b in zip(params_before, after, strict=True))
    # The same actor call, made by hand with the parameters from before the step's updates,
    # through the actor that takes the policy as a module (the loop's takes its arrays).
    expected, *_ = make_actor(TINY.agent)(policy, obs, first, actor_state, key)
    np.testing.assert_array_equal(taken["action"], np.asarray(expected))


def test_learning_starts_with_the_step_that_ends_warm_up():
    c = TINY.replace(num_envs=4, warmup_steps=40)
    assert not learning_due(c, 35)  # that step brings the count to 39
    assert learning_due(c, 36)  # ... and this one to 40
    assert learning_due(c, 1000)
    assert learning_due(c.replace(warmup_steps=0), 0)


def test_overlapped_acting_and_learning_compute_what_waiting_computes():
    """The actor reads the buffers the next update is handed (donated) while it runs: acting
    then learning one after the other, waiting for each, must give bit-identical results. The
    demo's networks make the update long enough for the two to run at the same time."""
    config = get_preset("demo").replace(
        total_env_steps=2_400, warmup_steps=800, eval_every=0, tensorboard=False
    )

    def run(wait: bool) -> tuple[list[np.ndarray], int]:
        t = Trainer(config)
        if wait:
            act = t.act
            t.act = lambda: jax.block_until_ready(act())
        t.run()
        return _arrays(t.state), t.updates

    overlapped, n = run(wait=False)
    waited, m = run(wait=True)
    assert config.num_envs * config.updates_per_env_step == 1.0  # one update per batched step
    assert n == m == (2_400 - 800) // config.num_envs + 1
    for a, b in zip(overlapped, waited, strict=True):
        np.testing.assert_array_equal(a, b)
