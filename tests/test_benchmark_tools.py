"""The analysis helpers of ``benchmarks/`` that produce documented figures, checked against
hand-derived values and XLA's own cost analysis."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from update_profile import dot_flops_by_thunk


def test_dot_flops_per_thunk_match_hand_counts_and_xla():
    def f(x, w1, w2, w3):
        h = jnp.tanh(x @ w1)  # [8, 4] x [4, 3]: 2 * 8 * 3 * 4 = 192
        y = h @ w2  # [8, 3] x [3, 5]: 2 * 8 * 5 * 3 = 240
        z = jnp.einsum("bij,bjk->bik", y.reshape(2, 4, 5), w3)  # 2 x [4, 5] x [5, 6]: 480
        return z.sum()

    args = (
        jnp.ones((8, 4)),
        jnp.ones((4, 3)),
        jnp.ones((3, 5)),
        jnp.ones((2, 5, 6)),
    )
    compiled = jax.jit(f).lower(*args).compile()
    flops = dot_flops_by_thunk(compiled.as_text())
    assert sorted(flops.values()) == [192.0, 240.0, 480.0]
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    # XLA also counts the tanh and the sum, a few dozen FLOPs.
    assert 912.0 <= cost["flops"] < 912.0 + 100.0


def test_seed_ranges_of_the_learning_seeds_benchmark():
    from learning_seeds import seed_range

    assert seed_range("0-4") == [0, 1, 2, 3, 4]
    assert seed_range("2,5-6") == [2, 5, 6]
    assert seed_range("7") == [7]


def test_variants_of_the_update_benchmark_split_agent_and_train_overrides():
    import pytest

    from update_variants import parse_variant

    name, agent, train = parse_variant(
        ["w32", "agent.policy_hidden=(32, 32)", "train.batch_size=16", "agent.prior=none"]
    )
    assert name == "w32"
    assert agent == {"policy_hidden": (32, 32), "prior": "none"}
    assert train == {"batch_size": 16}
    assert parse_variant(["base"]) == ("base", {}, {})
    with pytest.raises(ValueError, match="starts with its name"):
        parse_variant(["agent.prior=none"])
    with pytest.raises(ValueError, match=r"agent\.KEY=VALUE"):
        parse_variant(["x", "prior=none"])
    with pytest.raises(ValueError, match=r"agent\.KEY=VALUE"):
        parse_variant(["x", "env.seed=1"])
