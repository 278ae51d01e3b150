"""Many seeds on one machine: S seeds of a preset against one seed, in one run.

Each way trains in its own fresh process (so XLA's flags and the peak memory are its own), the
preset's full run (evaluations, log lines and checkpoints included) for ``--steps`` env steps
per seed:

1. **one seed**: ``train`` of seed 0, as ``behavior-priors train --preset P`` runs it;
2. **batched**: the S seeds in one process, seed-batched (:mod:`behavior_priors.training.multiseed`:
   one environment of S x copies, one replay sampling, one actor call and one vmapped update
   per step), the seeds split over one XLA host device per core (``reproduce --workers 1``);
3. **batched in W processes** (``--ways ... processes``): W processes of S / W batched seeds,
   one XLA thread each (``reproduce --workers W``, the default W = 2);
4. **one seed batched** (``--ways ... one-batched``): seed 0 alone through the seed-batched
   loop (S = 1), against 1: what the batched loop costs a single run.

The ratio ``batched / one seed`` is what S seeds cost in units of one seed's wall-clock
(sequential would be S). ``--profile`` adds the time of each part of a lockstep iteration
(actor, replay sampling, update, replay writing, environment), timed one after another, for
one seed and for S.

    .venv/bin/python benchmarks/many_seeds.py [--preset demo] [--seeds 16] [--steps 300000]
        [--ways one batched processes] [--workers 2] [--profile] [--out F]

Prints a JSON summary; ``docs/benchmarks.md`` ("Many seeds") records the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WAYS = ("one", "batched", "processes", "one-batched")


def _child(way: str, preset: str, seeds: int, steps: int, workers: int, out: Path) -> dict:
    """Run in a fresh process: train ``way`` and return its wall time and peak memory."""
    if way == "batched":  # the seeds split over one XLA device per core
        from behavior_priors.training.devices import use_host_devices

        use_host_devices()
    seed_list = list(range(seeds)) if way != "one-batched" else [0]
    if way.startswith("part-"):  # one of W processes, as reproduce's workers run
        k, w = (int(x) for x in way.split("-")[1:])
        seed_list = seed_list[k::w]
        os.environ["XLA_FLAGS"] = (
            "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )
    import jax

    from behavior_priors.training.multiseed import train_seeds
    from behavior_priors.training.presets import get_preset
    from behavior_priors.training.run import train

    config = get_preset(preset).replace(total_env_steps=steps, tensorboard=False)
    t0 = time.perf_counter()
    if way == "one":
        result = train(config.replace(seed=0), out / "seed0")
        finals = [result.final_eval]
    else:
        results = train_seeds(config, seed_list, [out / f"seed{s}" for s in seed_list])
        finals = [r.final_eval for r in results]
        if any(r.error for r in results):
            raise RuntimeError([r.error for r in results if r.error])
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "devices": len(jax.devices()),
        "final_success": [round(f.get("eval/success_rate", float("nan")), 3) for f in finals],
    }


def _replay_bytes(preset: str, seeds: int, steps: int) -> dict[str, float]:
    """The replay's storage for ``seeds`` seeds: what ``steps`` env steps fill, and its full
    capacity (allocated lazily: only the filled rows take memory)."""
    from behavior_priors.training.multiseed import MultiSeedTrainer
    from behavior_priors.training.presets import get_preset

    config = get_preset(preset)
    m = MultiSeedTrainer(config.replace(total_env_steps=steps), [0])
    per_row = m.replay.nbytes / (m.replay.capacity * m.replay.num_envs)
    filled = min(steps, config.replay_capacity)
    return {
        "replay_gib_filled": seeds * filled * per_row / 2**30,
        "replay_gib_capacity": seeds * config.replay_capacity * per_row / 2**30,
    }


def profile(preset: str, seeds: int, iterations: int = 150) -> dict[str, float]:
    """Milliseconds per lockstep iteration in each part, timed one after another (so they do
    not overlap as in the loop), after 4000 env steps, and the loop's own time per iteration."""
    import jax
    import numpy as np

    from behavior_priors.training.multiseed import MultiSeedTrainer
    from behavior_priors.training.presets import get_preset

    c = get_preset(preset).replace(total_env_steps=10**9, eval_every=0, tensorboard=False)
    m = MultiSeedTrainer(c, list(range(seeds)))
    while m.env_steps < 4000:
        m.step()
    S, B = seeds, c.num_envs
    parts = dict.fromkeys(("act", "sample", "update", "replay_add", "env"), 0.0)

    def flat(x):
        x = np.asarray(x)
        return x.reshape(S * B, *x.shape[2:])

    for _ in range(iterations):
        t0 = time.perf_counter()
        obs = {k: v.reshape(S, B, *v.shape[1:]) for k, v in m.ts.observation.items()}
        action, extras, m.actor_state, m.act_keys = m._act(
            m.stacked[: m._num_policy], obs, m.ts.first().reshape(S, B), m.actor_state, m.act_keys
        )
        action, extras = flat(action), jax.tree.map(flat, extras)
        t1 = time.perf_counter()
        batch = m._place(m.replay.sample_groups(c.batch_size))
        t2 = time.perf_counter()
        m.stacked, _ = m._update(m.stacked, batch)
        jax.block_until_ready(m.stacked)
        t3 = time.perf_counter()
        m.replay.add(m.ts, action, extras)
        t4 = time.perf_counter()
        m.ts = m.env.step(m.actions.to_env(action))
        m.tracker.observe(m.ts)
        t5 = time.perf_counter()
        for k, a, b in zip(parts, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5), strict=True):
            parts[k] += b - a
    out = {k: round(v / iterations * 1e3, 2) for k, v in parts.items()}
    out["sum"] = round(sum(out.values()), 2)
    t0 = time.perf_counter()
    for _ in range(iterations):
        m.step()
    jax.block_until_ready(m.stacked)
    out["loop"] = round((time.perf_counter() - t0) / iterations * 1e3, 2)
    return out


def _profile_child(preset: str, seeds: int) -> dict:
    if seeds > 1:
        from behavior_priors.training.devices import use_host_devices

        use_host_devices()
    return profile(preset, seeds)


def _spawn(args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"{args}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _spawn_all(arg_lists: list[list[str]]) -> list[dict]:
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, *a],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for a in arg_lists
    ]
    out = []
    for a, proc in zip(arg_lists, procs, strict=True):
        stdout, stderr = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"{a}: exit {proc.returncode}\n{stderr[-3000:]}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="demo")
    p.add_argument("--seeds", type=int, default=16)
    p.add_argument("--steps", type=int, default=300_000)
    p.add_argument("--ways", nargs="+", choices=WAYS, default=["one", "batched"])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--out", type=Path)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        if args.child.startswith("profile-"):
            result = _profile_child(args.preset, int(args.child.split("-")[1]))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                result = _child(
                    args.child, args.preset, args.seeds, args.steps, args.workers, Path(tmp)
                )
        print(json.dumps(result))
        return
    if args.seeds % args.workers and "processes" in args.ways:
        p.error("--seeds must be a multiple of --workers")
    common = ["--preset", args.preset, "--seeds", str(args.seeds), "--steps", str(args.steps)]
    result: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "preset": args.preset,
        "seeds": args.seeds,
        "env_steps_per_seed": args.steps,
        **{k: round(v, 3) for k, v in _replay_bytes(args.preset, args.seeds, args.steps).items()},
    }
    for way in args.ways:
        if way == "processes":
            t0 = time.perf_counter()
            parts = _spawn_all(
                [[*common, "--child", f"part-{k}-{args.workers}"] for k in range(args.workers)]
            )
            r = {
                "seconds": time.perf_counter() - t0,
                "peak_rss_gib_per_process": max(x["peak_rss_gib"] for x in parts),
                "final_success": [x for part in parts for x in part["final_success"]],
            }
        else:
            r = _spawn([*common, "--child", way])
        result[way] = {k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()}
        print(way, json.dumps(result[way]), file=sys.stderr, flush=True)
    if "one" in result:
        one = result["one"]["seconds"]
        for way in ("batched", "processes", "one-batched"):
            if way in result:
                result[f"{way}_over_one_seed"] = round(result[way]["seconds"] / one, 2)
    if args.profile:
        result["profile_ms_per_iteration"] = {
            f"{s} seeds": _spawn(["--preset", args.preset, "--child", f"profile-{s}"])
            for s in (1, args.seeds)
        }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
