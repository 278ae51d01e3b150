"""Learner throughput: SVG(0) updates/s and samples/s, and achieved FLOP/s against a matmul peak.

Both are measured in one run on the same machine, so the ratio (achieved / peak) is meaningful
even on a shared, noisy machine. FLOPs per update come from XLA's cost analysis of the compiled
update.

    .venv/bin/python benchmarks/learner_throughput.py [--batch-sizes 16 64 256] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from behavior_priors.agents.svg0 import SVG0Config, init, make_update_fn
from behavior_priors.agents.types import SequenceBatch
from behavior_priors.training.presets import get_preset

# Observation layout of the point-mass go-to-one-of-3-targets task.
OBS_SHAPES = {
    "proprio/velocity": (3,),
    "proprio/gyro": (3,),
    "task/targets": (3, 2),
    "task/id_onehot": (3,),
}
ACTION_SIZE = 2


def synthetic_batch(config: SVG0Config, batch_size: int, T: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    dz = config.latent_size

    def f(*shape):
        return jnp.asarray(rng.normal(size=shape), jnp.float32)

    return SequenceBatch(
        observation={k: f(batch_size, T + 1, *s) for k, s in OBS_SHAPES.items()},
        step_type=jnp.ones((batch_size, T + 1), jnp.int32),
        action=jnp.clip(f(batch_size, T + 1, ACTION_SIZE), -1, 1),
        reward=f(batch_size, T + 1),
        discount=jnp.ones((batch_size, T + 1)),
        behaviour_log_prob=f(batch_size, T + 1),
        latent=f(batch_size, T + 1, dz),
        prev_latent=f(batch_size, T + 1, dz),
        latent_sampled=jnp.ones((batch_size, T + 1)),
        task_id=jnp.zeros((batch_size, T + 1), jnp.int32),
    )


def best_seconds(fn, *args, repeats: int = 10) -> float:
    """The fastest of ``repeats`` calls of the jitted ``fn(*args)``, each waited for, after one
    call that compiles it."""
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return best


def alternating_blocks(runs: dict, rounds: int, updates: int) -> dict[str, list[float]]:
    """Milliseconds per update of each ``{name: (learner, batch)}`` in ``rounds`` blocks of
    ``updates`` updates, the learners taking turns (the order reversed every other round:
    whichever runs second was measured ~1% slower in a comparison of one commit against
    itself), so that a change in a shared machine's load hits all of them."""
    names = list(runs)
    ms: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            learner, batch = runs[name]
            start = time.perf_counter()
            for _ in range(updates):
                metrics = learner.update(batch)
            jax.block_until_ready(metrics)
            ms[name].append((time.perf_counter() - start) * 1e3 / updates)
    return ms


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a float32 n x n matmul, the practical peak of this machine for dense work."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    return 2 * n**3 / best_seconds(jax.jit(lambda x, y: x @ y), a, a, repeats=repeats)


def update_flops(config: SVG0Config, state, batch) -> float | None:
    """FLOPs of one compiled update by XLA's cost analysis (a ``while`` body counts once);
    ``None`` where the XLA version does not say."""
    try:
        lowered = jax.jit(lambda s, b: make_update_fn(config)(s, b)).lower(state, batch)
        cost = lowered.compile().cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        return float(cost.get("flops", 0.0)) or None
    except Exception:  # cost analysis is best effort across XLA versions
        return None


def measure(config: SVG0Config, batch_size: int, T: int, seconds: float) -> dict:
    state = init(config, OBS_SHAPES, ACTION_SIZE, jax.random.PRNGKey(0))
    batch = synthetic_batch(config, batch_size, T)
    update = make_update_fn(config)
    t0 = time.perf_counter()
    state, m = update(state, batch)
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t0
    flops = update_flops(config, state, batch)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        state, m = update(state, batch)
        n += 1
    jax.block_until_ready(m)
    elapsed = time.perf_counter() - t0
    ups = n / elapsed
    return {
        "batch_size": batch_size,
        "sequence_length": T,
        "updates_per_s": ups,
        "samples_per_s": ups * batch_size * (T + 1),
        "compile_s": compile_s,
        "flops_per_update": flops,
        "achieved_flops_per_s": flops * ups if flops else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--sequence-length", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", default="benchmarks/out/learner_throughput.json")
    args = parser.parse_args()

    # The peak is re-measured before every configuration and the best kept, so a burst of
    # load from other jobs during one measurement cannot make the ratio look better than it is.
    peak = matmul_peak()
    demo = get_preset("demo").agent
    variants = {
        "hierarchical-shared (paper sizes)": SVG0Config(),
        "flat-prior (paper sizes)": SVG0Config(policy="flat", prior="flat"),
        "demo preset (hierarchical, small)": demo,
    }
    rows = []
    for name, config in variants.items():
        for bs in args.batch_sizes:
            peak = max(peak, matmul_peak())
            r = measure(config, bs, args.sequence_length, args.seconds)
            r["variant"] = name
            rows.append(r)
            frac = r["achieved_flops_per_s"] / peak if r["achieved_flops_per_s"] else 0.0
            print(
                f"{name:36s} B={bs:4d} {r['updates_per_s']:8.1f} upd/s "
                f"{r['samples_per_s']:10.0f} samples/s "
                f"{(r['flops_per_update'] or 0) / 1e9:7.3f} GFLOP/upd "
                f"{frac * 100:5.1f}% of matmul peak",
                flush=True,
            )
    for r in rows:
        flops = r["achieved_flops_per_s"]
        r["fraction_of_matmul_peak"] = flops / peak if flops else None
    result = {
        "benchmark": "learner_throughput",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "jax": jax.__version__,
            "backend": jax.default_backend(),
        },
        "matmul_peak_flops_per_s": peak,
        "results": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"matmul peak {peak / 1e9:.1f} GFLOP/s; wrote {out}")


if __name__ == "__main__":
    main()
