"""Environment throughput: native MuJoCo suite steps/s against raw ``mj_step`` and dm_control.

For every body and task family, on one core with uniform random actions:

* ``env``: control steps per second of the batched env (``num_envs`` copies; each copy-step
  counts once), auto-resets, observations and rewards included.
* ``raw``: the physical limit: ``mujoco.mj_step(model, data, nstep=substeps)`` on the *same*
  compiled model, for ``num_envs`` ``MjData`` copied from the env's initial states, with the
  same actions, in a bare Python loop (ctrl write + one call per copy).
* ``ratio`` = env / raw (the target is >= 0.7).

When dm_control is importable, also its locomotion go-to-target task with the Ant (physics
0.005 s, control 0.05 s, random actions), its own raw ``mj_step`` rate, and our Ant
go-to-target over dm_control's (the target is >= 5).

    .venv/bin/python benchmarks/env_throughput.py [--num-envs 32] [--seconds 2] [--out FILE]
"""

from __future__ import annotations

import os

# One core: no BLAS thread pools (set before numpy is imported), then pin the process.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from behavior_priors.envs.registry import make  # noqa: E402

BODIES = ("pointmass", "ball", "ant", "quadruped")
FAMILIES = ("gtt3", "movebox", "moveheavybox", "gather", "movebox-then-gtt")


# Timer of every measurement: wall clock by default; ``--clock cpu`` uses this thread's CPU
# time, which other processes on a shared machine do not inflate (the benchmark is single
# threaded: the process is pinned to one core and BLAS threads are off).
_CLOCK = {"wall": time.perf_counter, "cpu": time.thread_time}
clock = _CLOCK["wall"]


def _interleaved(fns: dict, seconds: float, repeats: int) -> dict:
    """Best rate of each ``fn() -> units done``, alternating them so noise hits all alike."""
    best = dict.fromkeys(fns, 0.0)
    for _ in range(repeats):
        for key, fn in fns.items():
            done, start = 0, clock()
            while (elapsed := clock() - start) < seconds:
                done += fn()
            best[key] = max(best[key], done / elapsed)
    return best


def bench_native(name: str, num_envs: int, seconds: float, repeats: int) -> dict:
    env = make(name, num_envs=num_envs, seed=0)
    spec = env.action_spec()
    rng = np.random.default_rng(0)
    actions = rng.uniform(spec.minimum, spec.maximum, (64, num_envs, *spec.shape)).astype(
        np.float32
    )
    model, nsub = env.model, env.n_substeps
    datas = [mujoco.MjData(model) for _ in range(num_envs)]
    actions64 = actions.astype(np.float64)

    def env_chunk() -> int:
        for a in actions:
            env.step(a)
        return len(actions) * num_envs

    def raw_chunk() -> int:
        # Start from the env's current states so that both see the same contact situations.
        for i, d in enumerate(datas):
            mujoco.mj_copyData(d, model, env.data(i))
        step = mujoco.mj_step
        for a in actions64:
            for i, d in enumerate(datas):
                d.ctrl[:] = a[i]
                step(model, d, nsub)
        return len(actions) * num_envs

    rates = _interleaved({"env": env_chunk, "raw": raw_chunk}, seconds, repeats)
    env_sps, raw_sps = rates["env"], rates["raw"]
    env.close()
    return {
        "env": name,
        "body": env.body.name,
        "tasks": env.task_names,
        "num_envs": num_envs,
        "substeps": nsub,
        "nq": int(model.nq),
        "nu": int(model.nu),
        "env_steps_per_s": env_sps,
        "raw_mj_step_per_s": raw_sps,
        "ratio_env_over_raw": env_sps / raw_sps,
    }


def bench_dm_control(ours: str, num_envs: int, seconds: float, repeats: int) -> dict:
    """dm_control's locomotion go-to-target with the Ant, interleaved with our env ``ours``."""
    try:
        from dm_control import composer
        from dm_control.locomotion.arenas import floors
        from dm_control.locomotion.tasks import go_to_target
        from dm_control.locomotion.walkers import ant
    except ImportError as err:
        return {"skipped": f"dm_control not importable: {err}"}
    task = go_to_target.GoToTarget(
        walker=ant.Ant(),
        arena=floors.Floor(),
        physics_timestep=0.005,
        control_timestep=0.05,
    )
    env = composer.Environment(task, time_limit=20.0, random_state=0)
    spec = env.action_spec()
    rng = np.random.default_rng(0)
    actions = rng.uniform(spec.minimum, spec.maximum, (64, *spec.shape))
    env.reset()

    def dmc_chunk() -> int:
        for a in actions:
            if env.step(a).last():
                env.reset()
        return len(actions)

    model, data = env.physics.model.ptr, env.physics.data.ptr
    nsub = round(0.05 / 0.005)

    def dmc_raw_chunk() -> int:
        for a in actions:
            data.ctrl[:] = a
            mujoco.mj_step(model, data, nsub)
        return len(actions)

    native = make(ours, num_envs=num_envs, seed=0)
    nspec = native.action_spec()
    native_actions = rng.uniform(nspec.minimum, nspec.maximum, (64, num_envs, *nspec.shape))

    def native_chunk() -> int:
        for a in native_actions:
            native.step(a)
        return len(native_actions) * num_envs

    rates = _interleaved(
        {"dmc": dmc_chunk, "dmc_raw": dmc_raw_chunk, "ours": native_chunk}, seconds, repeats
    )
    return {
        "env": "dm_control locomotion GoToTarget(Ant), floors.Floor()",
        "env_steps_per_s": rates["dmc"],
        "raw_mj_step_per_s": rates["dmc_raw"],
        "ratio_env_over_raw": rates["dmc"] / rates["dmc_raw"],
        "ours": ours,
        "ours_env_steps_per_s": rates["ours"],
        "ours_over_dm_control": rates["ours"] / rates["dmc"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many")
    parser.add_argument("--bodies", nargs="*", default=list(BODIES))
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    parser.add_argument("--no-dmc", action="store_true", help="skip the dm_control comparison")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/env_throughput.json"))
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="cpu: immune to other jobs"
    )
    args = parser.parse_args()
    global clock
    clock = _CLOCK[args.clock]
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    rows = []
    print(
        f"{'env':30s} {'nq':>3s} {'nu':>3s} {'env steps/s':>12s} {'raw steps/s':>12s} {'ratio':>6s}"
    )
    for body in args.bodies:
        for family in args.families:
            row = bench_native(f"{body}-{family}", args.num_envs, args.seconds, args.repeats)
            rows.append(row)
            print(
                f"{row['env']:30s} {row['nq']:3d} {row['nu']:3d} {row['env_steps_per_s']:12.0f} "
                f"{row['raw_mj_step_per_s']:12.0f} {row['ratio_env_over_raw']:6.2f}"
            )
    result = {
        "benchmark": "env_throughput",
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
        "mujoco": mujoco.__version__,
        "num_envs": args.num_envs,
        "single_core": True,
        "rows": rows,
        "min_ratio_env_over_raw": min(r["ratio_env_over_raw"] for r in rows),
    }
    if not args.no_dmc:
        dmc = bench_dm_control("ant-gtt3", args.num_envs, args.seconds, args.repeats)
        result["dm_control"] = dmc
        if "skipped" in dmc:
            print(dmc["skipped"])
        else:
            print(
                f"{'dm_control Ant go-to-target':30s} {'':3s} {'':3s} "
                f"{dmc['env_steps_per_s']:12.0f} {dmc['raw_mj_step_per_s']:12.0f} "
                f"{dmc['ratio_env_over_raw']:6.2f}"
            )
            print(
                f"ant-gtt3 / dm_control Ant go-to-target (measured alternately): "
                f"{dmc['ours_over_dm_control']:.1f}x"
            )
    print(f"min ratio env/raw: {result['min_ratio_env_over_raw']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
