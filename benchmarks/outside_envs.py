"""The ``outside`` preset on environments from outside the native suite: learning curves.

Trains the ``outside`` preset (``behavior_priors.training.presets``, what ``behavior-priors
train --env gymnasium:<id>`` picks) on each task for ``--seeds`` seeds, the seeds batched in one
process (``train_seeds``), and records every evaluation (``eval_episodes`` deterministic
episodes) and a uniformly random policy's mean return over 20 episodes for reference. Tasks:

* ``pendulum``: ``gymnasium:Pendulum-v1``, 20k env steps, evaluated every 2000; solved at a
  mean evaluation return >= -200;
* ``halfcheetah``: ``gymnasium:HalfCheetah-v5``, 100k env steps, evaluated every 10k;
* ``cartpole``: ``dm_control:cartpole-swingup``, 100k env steps, evaluated every 10k.

Writes ``benchmarks/out/outside_envs-<task>.json`` (one file per task, so tasks can run one
at a time); ``--page`` then draws ``docs/outside-envs.png`` from those files and prints the
tables of ``docs/outside-envs.md``::

    .venv/bin/python benchmarks/outside_envs.py --tasks pendulum --seeds 5
    .venv/bin/python benchmarks/outside_envs.py --tasks halfcheetah cartpole --seeds 3
    .venv/bin/python benchmarks/outside_envs.py --page

Needs the test extra's Gymnasium MuJoCo environments and dm_control (``make test`` installs
them).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "out"
PNG = Path(__file__).parents[1] / "docs" / "outside-envs.png"


@dataclass(frozen=True)
class Task:
    env: str
    steps: int
    eval_every: int
    solved_at: float | None = None  # a mean evaluation return that counts as solved


TASKS = {
    "pendulum": Task("gymnasium:Pendulum-v1", 20_000, 2_000, solved_at=-200.0),
    "halfcheetah": Task("gymnasium:HalfCheetah-v5", 100_000, 10_000),
    "cartpole": Task("dm_control:cartpole-swingup", 100_000, 10_000),
}


def random_return(env_name: str, episodes: int = 24, seed: int = 0) -> float:
    """Mean return of uniformly random actions over ``episodes`` episodes (8 copies)."""
    from behavior_priors.envs.registry import make
    from behavior_priors.training.evaluation import random_action_stats

    stats = random_action_stats(make(env_name, num_envs=8), episodes, np.random.default_rng(seed))
    return float(stats["episode_return"])


def run_task(name: str, seeds: list[int]) -> dict:
    """Train the preset on task ``name`` for ``seeds`` together; every evaluation per seed."""
    from behavior_priors.training.devices import use_host_devices

    use_host_devices()
    from behavior_priors.training.multiseed import train_seeds
    from behavior_priors.training.presets import get_preset

    task = TASKS[name]
    config = get_preset("outside").replace(
        env=task.env,
        total_env_steps=task.steps,
        eval_every=task.eval_every,
        checkpoint_every=0,
        tensorboard=False,
    )
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [Path(tmp) / f"seed{s}" for s in seeds]
        t0 = time.perf_counter()
        results = train_seeds(config, seeds, dirs)
        seconds = time.perf_counter() - t0
        errors = [r.error for r in results if r.error]
        if errors:
            raise RuntimeError(errors)
        curves = {}
        for s, d in zip(seeds, dirs, strict=True):
            lines = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
            curves[str(s)] = [
                [line["env_steps"], line["eval/episode_return"]]
                for line in lines
                if "eval/episode_return" in line
            ]
    return {
        "task": name,
        "env": task.env,
        "seeds": seeds,
        "steps": task.steps,
        "solved_at": task.solved_at,
        "eval_episodes": config.eval_episodes,
        "curves": curves,
        "random_return": random_return(task.env),
        "seconds": round(seconds, 1),
        "machine": f"{platform.processor() or platform.machine()}, {len(_cpus())} CPUs",
        "date": time.strftime("%Y-%m-%d"),
    }


def _cpus() -> list[int]:
    import os

    return sorted(os.sched_getaffinity(0))


def first_solved(curve: list[list[float]], threshold: float) -> int | None:
    """The first evaluated env step whose mean return is at least ``threshold``."""
    return next((int(step) for step, ret in curve if ret >= threshold), None)


def page() -> None:
    """Draw ``docs/outside-envs.png`` from the recorded tasks and print the page's tables."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = [
        json.loads((OUT / f"outside_envs-{t}.json").read_text())
        for t in TASKS
        if (OUT / f"outside_envs-{t}.json").exists()
    ]
    if not found:
        sys.exit(f"no results in {OUT}: run the tasks first")
    fig, axes = plt.subplots(1, len(found), figsize=(4.2 * len(found), 3.4), squeeze=False)
    for ax, r in zip(axes[0], found, strict=True):
        for s, curve in r["curves"].items():
            c = np.asarray(curve)
            ax.plot(c[:, 0], c[:, 1], marker="o", ms=3, lw=1, alpha=0.7, label=f"seed {s}")
        ax.axhline(r["random_return"], color="grey", ls=":", label="random actions")
        if r["solved_at"] is not None:
            ax.axhline(r["solved_at"], color="black", ls="--", lw=0.8, label="solved")
        ax.set_title(r["env"], fontsize=9)
        ax.set_xlabel("env steps")
        ax.set_ylabel(f"evaluation return ({r['eval_episodes']} episodes)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(PNG, dpi=100)
    print(f"wrote {PNG}\n")
    print(
        "| environment | seeds | env steps | random actions | final evaluation return per seed "
        "| median | solved at (per seed) | training time, seeds batched |"
    )
    print("| --- | --- | --: | --: | --- | --: | --- | --: |")
    for r in found:
        finals = [curve[-1][1] for curve in r["curves"].values()]
        solved = "-"
        if r["solved_at"] is not None:
            at = [first_solved(c, r["solved_at"]) for c in r["curves"].values()]
            solved = ", ".join(f"{a // 1000}k" if a is not None else "never" for a in at)
        print(
            f"| `{r['env']}` | {', '.join(map(str, r['seeds']))} | {r['steps'] // 1000}k "
            f"| {r['random_return']:.0f} | {', '.join(f'{f:.0f}' for f in finals)} "
            f"| {np.median(finals):.0f} | {solved} | {r['seconds']:.0f} s |"
        )
    print(f"\n{found[0]['machine']}, {', '.join(sorted({r['date'] for r in found}))}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=[])
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    p.add_argument("--page", action="store_true", help="draw the PNG and print the tables")
    args = p.parse_args()
    OUT.mkdir(exist_ok=True)
    for name in args.tasks:
        result = run_task(name, list(range(args.seeds)))
        (OUT / f"outside_envs-{name}.json").write_text(json.dumps(result, indent=1))
        print(json.dumps({k: v for k, v in result.items() if k != "curves"}))
    if args.page:
        page()


if __name__ == "__main__":
    main()
