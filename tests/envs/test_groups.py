"""Seed groups: copies of one batched environment that run as separately seeded environments."""

import numpy as np
import pytest

from behavior_priors.envs.groups import StackedEnv, make_seed_groups
from behavior_priors.envs.registry import make
from behavior_priors.training.actions import ActionLayout

SEEDS = (3, 5, 9)


def _equal(a, b, part):
    for x, y, name in zip(a, b, a._fields, strict=True):
        if isinstance(x, dict):
            for k in y:
                np.testing.assert_array_equal(x[k][part], y[k], err_msg=f"{name}/{k}")
        else:
            np.testing.assert_array_equal(x[part], y, err_msg=name)


@pytest.mark.parametrize(
    "name,kwargs,native",
    [
        ("pointmass-gtt3", {"episode_seconds": 1.0}, True),  # episodes end every 20 steps
        ("gridworld-tworooms", {}, False),
    ],
)
def test_each_group_runs_as_its_own_environment(name, kwargs, native):
    """Group g of a 3-group environment of 6 copies gives, step for step and across episode
    ends, exactly what an environment of 2 copies reset with seed g gives; its group state is
    that environment's state, and restores it."""
    grouped = make_seed_groups(name, SEEDS, 2, **kwargs)
    assert grouped.num_envs == 6 and isinstance(grouped, StackedEnv) != native
    alone = [make(name, num_envs=2, **kwargs) for _ in SEEDS]
    rng = np.random.default_rng(0)
    actions = ActionLayout.from_spec(grouped.action_spec())
    ts = grouped.reset_groups(SEEDS)
    for g, (env, s) in enumerate(zip(alone, SEEDS, strict=True)):
        _equal(ts, env.reset(s), slice(2 * g, 2 * g + 2))
    for t in range(45):
        a = actions.random(rng, 6)
        ts = grouped.step(a)
        for g, env in enumerate(alone):
            _equal(ts, env.step(a[2 * g : 2 * g + 2]), slice(2 * g, 2 * g + 2))
        if t == 30:
            saved = grouped.get_group_state(1)
            expected = alone[1].get_state()
            for k in expected:
                np.testing.assert_array_equal(saved[k], expected[k], err_msg=k)
    # The saved group continues as that environment would from the same state.
    fresh = make(name, num_envs=2, **kwargs)
    fresh.reset(0)
    fresh.set_state(saved)
    grouped.set_group_state(0, saved)
    alone[1].set_state(saved)
    a = actions.random(rng, 6)
    ts = grouped.step(a)
    _equal(ts, fresh.step(a[:2]), slice(0, 2))
    _equal(ts, alone[1].step(a[:2]), slice(0, 2))


def test_groups_that_do_not_divide_the_copies_are_refused():
    env = make("pointmass-gtt3", num_envs=5)
    with pytest.raises(ValueError, match="do not split into 2"):
        env.reset_groups([1, 2])
    env.reset_groups([1])
    grouped = make_seed_groups("pointmass-gtt3", [1, 2], 2)
    grouped.reset_groups([1, 2])
    with pytest.raises(ValueError, match="2 seed groups; use get_group_state"):
        grouped.get_state()
    with pytest.raises(IndexError, match="out of range"):
        grouped.get_group_state(2)
