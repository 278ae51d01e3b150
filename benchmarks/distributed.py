"""Distributed training with Ray against the single-process loop, on this machine.

Measured in one run:

1. **single**: :func:`behavior_priors.training.train` (one process, synchronous);
2. **distributed, N actors** for each N in ``--actors``: :func:`train_distributed` with a local Ray
   instance (N actor processes, one learner process, one evaluator, the driver).

Each trains the demo preset (point mass, go to one of 3 targets, hierarchical prior) for
``--steps`` env steps at the same update-to-data ratio. Reported: env steps/s and updates/s over
the run after start-up (from the runs' own ``perf/*`` log lines, so Ray's start-up, compilation and
evaluations are excluded), the update-to-data ratio reached, and the final evaluation (one seed:
a sanity check, not a comparison of learning).

**Overhead per transferred step**: a chunk of ``chunk_steps x envs_per_actor`` steps collected
by a Ray actor and added to the learner's replay through the object store, against the same
collect and add in one process; the difference divided by the steps in the chunk.

    .venv/bin/python benchmarks/distributed.py [--steps 60000] [--actors 1 2 4] [--out F]
        [--eval-every 20000] [--plot curves.png]

Prints a JSON summary; ``docs/benchmarks.md`` ("Distributed") records the results.
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

import numpy as np

from behavior_priors.training.distributed import DistConfig, train_distributed
from behavior_priors.training.distributed.workers import ActorWorker, Learner, policy_arrays
from behavior_priors.training.presets import get_preset
from behavior_priors.training.run import train


def _config(steps: int, eval_every: int = 0):
    return get_preset("demo").replace(
        total_env_steps=steps,
        eval_every=eval_every,
        checkpoint_every=0,
        log_every=max(1_000, steps // 20),
        tensorboard=False,
    )


def _speed(history: list[dict]) -> dict[str, float]:
    """Env steps/s and updates/s from log lines after the first (start-up and compilation
    excluded): total steps over the summed per-interval times."""
    lines = [ln for ln in history if "perf/env_steps_per_s" in ln][1:]
    steps = np.diff([ln["env_steps"] for ln in lines])
    updates = np.diff([ln["perf/updates"] for ln in lines])
    rates = np.array([ln["perf/env_steps_per_s"] for ln in lines[1:]])
    seconds = float(np.sum(steps / rates))
    return {
        "env_steps_per_s": float(steps.sum() / seconds),
        "updates_per_s": float(updates.sum() / seconds),
    }


def run_single(steps: int, out: Path, eval_every: int) -> dict:
    t0 = time.perf_counter()
    result = train(_config(steps, eval_every), out / "single")
    return {
        "way": "single",
        "wall_s": time.perf_counter() - t0,
        **_speed(result.history),
        "updates": result.updates,
        "final_success": result.final_eval.get("eval/success_rate"),
    }


def run_distributed(steps: int, actors: int, out: Path, eval_every: int) -> dict:
    config = _config(steps, eval_every)
    t0 = time.perf_counter()
    result = train_distributed(config, out / f"dist{actors}", DistConfig(num_actors=actors))
    learned = max(1, result.env_steps - config.warmup_steps)
    return {
        "way": f"distributed, {actors} actors",
        "wall_s": time.perf_counter() - t0,
        **_speed(result.history),
        "updates": result.updates,
        "utd_ratio": result.updates / learned,
        "utd_target": config.updates_per_env_step,
        "final_success": result.final_eval.get("eval/success_rate"),
    }


def transfer_overhead(repeats: int = 30) -> dict:
    """Seconds per transferred step: a chunk through Ray against the same work in-process."""
    import ray

    config = _config(10_000)
    dist = DistConfig()
    local_actor = ActorWorker(config, 0, config.num_envs, seed=0)
    local_learner = Learner(config, 1, config.num_envs)
    params = policy_arrays(local_learner.state)
    local_actor.collect(params, 0, dist.chunk_steps)  # compile
    t0 = time.perf_counter()
    for _ in range(repeats):
        _, chunk = local_actor.collect(params, 0, dist.chunk_steps)
        local_learner.add(0, chunk, False)
    local = (time.perf_counter() - t0) / repeats

    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    try:
        actor = ray.remote(ActorWorker).remote(config, 0, config.num_envs, 0)
        learner = ray.remote(Learner).remote(config, 1, config.num_envs)
        params_ref = learner.policy_params.remote()
        ray.get(actor.collect.options(num_returns=2).remote(params_ref, 0, dist.chunk_steps)[0])
        t0 = time.perf_counter()
        for _ in range(repeats):
            _, chunk_ref = actor.collect.options(num_returns=2).remote(
                params_ref, 0, dist.chunk_steps
            )
            ray.get(learner.add.remote(0, chunk_ref, False))
        remote = (time.perf_counter() - t0) / repeats
    finally:
        ray.shutdown()
    steps = dist.chunk_steps * config.num_envs
    return {
        "chunk_steps": steps,
        "local_s_per_chunk": local,
        "ray_s_per_chunk": remote,
        "overhead_us_per_step": (remote - local) / steps * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60_000)
    p.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--out", type=Path, help="write the JSON summary here too")
    p.add_argument("--eval-every", type=int, default=20_000, help="evaluations (async if dist)")
    p.add_argument("--plot", type=Path, help="learning curves of every run as a PNG")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(run_single(args.steps, Path(tmp), args.eval_every))
        print(json.dumps(rows[-1]), file=sys.stderr)
        for n in args.actors:
            rows.append(run_distributed(args.steps, n, Path(tmp), args.eval_every))
            print(json.dumps(rows[-1]), file=sys.stderr)
        if args.plot:
            from behavior_priors.training.plotting import plot_runs

            dirs = [Path(tmp) / "single", *(Path(tmp) / f"dist{n}" for n in args.actors)]
            plot_runs(
                dirs,
                args.plot,
                ("charts/episode_return", "eval/success_rate"),
                "demo preset: single process vs Ray actors (one seed each)",
            )
    base = rows[0]["env_steps_per_s"]
    for r in rows:
        r["env_steps_ratio_vs_single"] = r["env_steps_per_s"] / base
    summary = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "steps": args.steps,
        "runs": rows,
        "transfer": transfer_overhead(),
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
