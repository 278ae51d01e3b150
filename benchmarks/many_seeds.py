"""Many seeds on one machine: which way finishes S seeds of a run soonest?

Measured in one run, on the same machine:

1. **sequential**: one process trains the seeds one after another (``--workers 1``), XLA free
   to use every core;
2. **processes**: ``W`` worker processes train seeds at once, one XLA thread each
   (``behavior-priors reproduce --workers W``);
3. **vmapped seeds**: one process trains the S seeds in lockstep, one vmapped actor call and one
   vmapped update for all of them (``behavior-priors reproduce --vmap-seeds``,
   :mod:`behavior_priors.training.multiseed`), XLA free to use every core;
4. **vmapped seeds in processes**: ``W`` processes, each training its share of the seeds
   vmapped, one XLA thread each (``--vmap-seeds --workers W``);
5. **vmapped learner** (learner only): one jitted ``vmap`` of the SVG(0) update over S seeds'
   states and batches, against S separate updates: what batching does to the update alone.

    .venv/bin/python benchmarks/many_seeds.py [--seeds 4] [--steps 40000] [--workers 2] [--out F]

Prints a JSON summary; ``docs/benchmarks.md`` ("Many seeds") records the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

import equinox as eqx
import jax
import jax.numpy as jnp

from behavior_priors.agents.svg0 import init, make_update_fn
from behavior_priors.agents.svg0.learner import update
from behavior_priors.experiments import Experiment, ExperimentTask, run_experiment


def _experiment(steps: int, seeds: int, tasks: int = 1) -> Experiment:
    # Several copies of the task split the seeds into groups that separate processes can take.
    return Experiment(
        name="many-seeds-benchmark",
        description="",
        claim="",
        methods=("hier",),
        tasks=tuple(ExperimentTask(f"gtt{i}", "gtt", "pointmass") for i in range(tasks)),
        total_env_steps=steps,
        seeds=seeds,
        train_overrides={"eval_every": 0, "checkpoint_every": 0, "tensorboard": False},
    )


def time_runs(steps: int, seeds: int, workers: int, vmap: bool = False) -> float:
    """Seconds to train ``seeds`` seeds of the demo preset for ``steps`` env steps each."""
    # vmapped in W processes: W groups (task copies) of seeds / W seeds each.
    groups = workers if vmap and workers > 1 else 1
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        outcomes = run_experiment(
            _experiment(steps, seeds // groups, groups),
            Path(tmp),
            workers=workers,
            log=lambda _: None,
            vmap_seeds=vmap,
        )
        seconds = time.perf_counter() - t0
    bad = [o for o in outcomes.values() if not o.startswith("finished")]
    if bad:
        raise RuntimeError(f"runs failed: {bad}")
    return seconds


def time_vmapped_learner(seeds: int, repeats: int = 200) -> dict[str, float]:
    """Updates/s of S separate updates against one vmapped update of S seeds (demo preset)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from behavior_priors.training.presets import get_preset
    from learner_throughput import ACTION_SIZE, OBS_SHAPES, synthetic_batch

    train_config = get_preset("demo")
    config = train_config.agent
    B, T = train_config.batch_size, train_config.sequence_length
    states = [init(config, OBS_SHAPES, ACTION_SIZE, jax.random.PRNGKey(s)) for s in range(seeds)]
    batches = [synthetic_batch(config, B, T, seed=s) for s in range(seeds)]
    single = make_update_fn(config)

    def run_single():
        out = None
        for s in range(seeds):
            states[s], out = single(states[s], batches[s])
        return out

    arrays = [eqx.partition(s, eqx.is_array) for s in states]
    static = arrays[0][1]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *[a for a, _ in arrays])
    batch = jax.tree.map(lambda *xs: jnp.stack(xs), *batches)

    @jax.jit
    def vmapped(params, batch):
        def one(p, b):
            new, metrics = update(config, eqx.combine(p, static), b)
            return eqx.filter(new, eqx.is_array), metrics

        return jax.vmap(one)(params, batch)

    def run_vmapped():
        nonlocal stacked
        stacked, out = vmapped(stacked, batch)
        return out

    rates = {}
    for name, fn in (("separate", run_single), ("vmapped", run_vmapped)):
        jax.block_until_ready(fn())  # compile
        t0 = time.perf_counter()
        for _ in range(repeats):
            out = fn()
        jax.block_until_ready(out)
        rates[name] = seeds * repeats / (time.perf_counter() - t0)  # seed-updates per second
    return rates


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, default=40_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    learner = time_vmapped_learner(args.seeds)
    if args.seeds % args.workers:
        p.error("--seeds must be a multiple of --workers")
    sequential = time_runs(args.steps, args.seeds, 1)
    parallel = time_runs(args.steps, args.seeds, args.workers)
    vmapped = time_runs(args.steps, args.seeds, 1, vmap=True)
    vmapped_parallel = time_runs(args.steps, args.seeds, args.workers, vmap=True)
    w = args.workers
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "seeds": args.seeds,
        "env_steps_per_seed": args.steps,
        "sequential_s": round(sequential, 1),
        f"processes_{w}_s": round(parallel, 1),
        "vmapped_s": round(vmapped, 1),
        f"vmapped_processes_{w}_s": round(vmapped_parallel, 1),
        "processes_speedup": round(sequential / parallel, 2),
        "vmapped_speedup": round(sequential / vmapped, 2),
        "vmapped_processes_speedup": round(sequential / vmapped_parallel, 2),
        "learner_seed_updates_per_s_separate": round(learner["separate"], 1),
        "learner_seed_updates_per_s_vmapped": round(learner["vmapped"], 1),
        "learner_vmap_speedup": round(learner["vmapped"] / learner["separate"], 2),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
