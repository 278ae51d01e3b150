"""The demo update with JAX's own CPU lowering of the random-number hash against ours.

``behavior_priors.ops`` registers a lowering of threefry-2x32 for the CPU (``ops/threefry.py``)
that unrolls the hash of a draw and keeps a rolled loop for a key split; JAX 0.10 lowers every
call as a rolled loop, a ``while`` thunk each. Compared here: ``jax`` (JAX's own rule, put
back), ``unrolled`` (every call straight-line) and ``ours``. Each runs in a fresh process (a
lowering applies to what a process compiles next, and compile time is only comparable from a
cold start), alternating ``--rounds`` times. A process builds the ``demo`` preset's trainer,
acts through warm-up, then measures on a batch from its replay: the compile seconds of the
update the loop calls (buffer donation), the ``while`` loops in it, ms per update (``--reps``
rounds of ``--updates`` updates), and ms per batched step of the loop itself (``Trainer.step``,
acting overlapped with learning, the same number of steps). It checks that every lowering
leaves the same learner state, to the last bit.

    .venv/bin/python benchmarks/rng_lowering.py [--rounds 2] [--reps 3] [--updates 500]
    # raw figures go to the untracked scratch folder benchmarks/out/
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

LOWERINGS = ("jax", "unrolled", "ours")
LABELS = {
    "jax": "JAX's (a rolled loop per call)",
    "unrolled": "every call unrolled",
    "ours": "ours (draws unrolled, key splits rolled)",
}


def child(lowering: str, reps: int, updates: int) -> dict:
    """One fresh process's figures (called through ``--child``)."""
    import jax
    import numpy as np
    from jax.extend.random import threefry2x32_p
    from jax.interpreters import mlir

    from behavior_priors.ops import threefry
    from behavior_priors.training.loop import Trainer
    from behavior_priors.training.presets import get_preset

    if lowering == "jax":  # put back JAX's own CPU rule, which ops registered over
        try:
            from jax._src.random.threefry2x32 import _threefry2x32_cpu_lowering_rule as rule
        except ImportError as e:  # a private name: other JAX versions keep it elsewhere
            raise SystemExit(f"this JAX ({jax.__version__}) has no rolled CPU rule: {e}") from e
        mlir.register_lowering(threefry2x32_p, rule, platform="cpu")
    elif lowering == "unrolled":
        rule = mlir.lower_fun(threefry.threefry2x32, multiple_results=True)
        mlir.register_lowering(threefry2x32_p, rule, platform="cpu")

    config = get_preset("demo").replace(seed=0, eval_every=0, tensorboard=False)
    trainer = Trainer(config)
    # Acting only: updates start with the step that ends warm-up (loop.learning_due).
    trainer.run(total_env_steps=config.warmup_steps - config.num_envs)
    batch = trainer.replay.sample(config.batch_size)
    t = time.perf_counter()  # the update's first compilation in this process
    compiled = trainer.learner.lower(batch).compile()
    compile_s = time.perf_counter() - t
    loops = compiled.as_text().count(" while(")
    trainer.run(total_env_steps=config.warmup_steps + 50 * config.num_envs)

    def timed(fn, n: int) -> float:
        t = time.perf_counter()
        fn(n)
        jax.block_until_ready(trainer.state)
        return (time.perf_counter() - t) / n * 1e3

    def updates_on_batch(n: int) -> None:
        for _ in range(n):
            trainer.learner.update(batch)

    def loop_steps(n: int) -> None:
        for _ in range(n):
            trainer.step()

    update_ms, step_ms = [], []
    for _ in range(reps):
        update_ms.append(timed(updates_on_batch, updates))
        step_ms.append(timed(loop_steps, updates))
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(trainer.state):
        if isinstance(leaf, jax.Array):
            digest.update(np.asarray(leaf).tobytes())
    return {
        "compile_s": compile_s,
        "while_loops": loops,
        "update_ms": update_ms,
        "step_ms": step_ms,
        "state": digest.hexdigest(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2, help="fresh processes per lowering")
    p.add_argument("--reps", type=int, default=3, help="timed rounds per process")
    p.add_argument("--updates", type=int, default=500, help="updates (and steps) per round")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "rng_lowering.json")
    p.add_argument("--child", choices=LOWERINGS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        json.dump(child(args.child, args.reps, args.updates), sys.stdout)
        return

    runs: dict[str, list[dict]] = {name: [] for name in LOWERINGS}
    for _ in range(args.rounds):
        for name in LOWERINGS:
            cmd = [sys.executable, __file__, "--child", name, "--reps", str(args.reps)]
            out = subprocess.run(
                [*cmd, "--updates", str(args.updates)], capture_output=True, text=True
            )
            if out.returncode:
                raise SystemExit(out.stderr[-2000:])
            runs[name].append(json.loads(out.stdout))

    print(
        "| threefry's CPU lowering | `while` loops | compile s (median) "
        "| ms/update (best, median) | ms/batched step (best, median) |"
    )
    print("| --- | --: | --: | --- | --- |")
    for name, rs in runs.items():
        up = [m for r in rs for m in r["update_ms"]]
        st = [m for r in rs for m in r["step_ms"]]
        compile_s = statistics.median(r["compile_s"] for r in rs)
        print(
            f"| {LABELS[name]} | {rs[0]['while_loops']} | {compile_s:.2f} "
            f"| {min(up):.2f}, {statistics.median(up):.2f} "
            f"| {min(st):.2f}, {statistics.median(st):.2f} |"
        )
    same = len({r["state"] for rs in runs.values() for r in rs}) == 1
    print("learner states at the end bit-identical across lowerings and rounds:", same)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(runs, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
