"""ArrayLayout: a pytree taken apart into its arrays and the rest, and put back together."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from behavior_priors.agents.arrays import ArrayLayout


class _Net(eqx.Module):
    weight: jax.Array
    activation: object  # a non-array leaf: stays in the layout
    layers: tuple
    size: int = eqx.field(static=True)


def _net(scale: float) -> _Net:
    return _Net(
        weight=jnp.full((2, 3), scale),
        activation=jax.nn.elu,
        layers=(jnp.arange(4.0) * scale, "name", jnp.ones((1,)) * scale),
        size=3,
    )


def test_split_then_merge_gives_the_tree_back_with_its_other_leaves():
    net = _net(2.0)
    arrays, layout = ArrayLayout.split(net)
    assert [a.shape for a in arrays] == [(2, 3), (4,), (1,)]
    assert layout.is_array == (True, False, True, False, True)
    assert layout.num_arrays == 3
    again = layout.merge(arrays)
    assert again.activation is jax.nn.elu and again.layers[1] == "name" and again.size == 3
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(net), strict=True):
        if eqx.is_array(a):
            np.testing.assert_array_equal(a, b)
    # New arrays go where the old ones were, in flattening order.
    swapped = layout.merge([a * 0 - 1 for a in arrays])
    assert float(swapped.weight[0, 0]) == -1.0 and float(swapped.layers[2][0]) == -1.0


def test_trees_of_one_structure_share_a_layout_and_others_do_not():
    _, a = ArrayLayout.split(_net(1.0))
    _, b = ArrayLayout.split(_net(5.0))
    assert a == b and hash(a) == hash(b)  # keys one compiled function
    other = _net(1.0)
    other = eqx.tree_at(lambda n: n.activation, other, jax.nn.relu)
    _, c = ArrayLayout.split(other)
    assert c != a


def test_merge_refuses_the_wrong_number_of_arrays():
    arrays, layout = ArrayLayout.split(_net(1.0))
    with pytest.raises(ValueError, match="takes 3 arrays, got 2"):
        layout.merge(arrays[:2])


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"policy": "flat", "prior": "flat"},
        {"low_level": "separate"},
        {"prior": "none", "policy": "flat"},
    ],
)
def test_learner_arrays_are_in_the_order_older_checkpoints_saved_them(variant):
    """Checkpoints store the learner state's arrays as a list. Runs saved before the loop used
    ``ArrayLayout`` listed them as ``eqx.partition(state, eqx.is_array)`` flattened: the same
    arrays in the same order, so those runs still load."""
    from behavior_priors.agents import svg0

    config = svg0.SVG0Config(policy_hidden=(8,), prior_hidden=(8,), critic_hidden=(8,), **variant)
    state = svg0.init(config, {"proprio/x": (3,), "task/y": (2,)}, 2, jax.random.PRNGKey(0))
    arrays, _ = ArrayLayout.split(state)
    old = jax.tree.leaves(eqx.partition(state, eqx.is_array)[0])
    assert len(arrays) == len(old) > 10
    for a, b in zip(arrays, old, strict=True):
        assert a is b
