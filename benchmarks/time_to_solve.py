"""Time to a solved task: our agents against sbx SAC and SB3 SAC, to a threshold, same machine.

What a user feels is how long until the task is solved, not steps per second. Every method
trains on the same task with the same environment settings, in one process, one after another
(seed by seed, methods in turn, so that load on a shared machine hits all alike), and is
evaluated every ``eval_every`` env steps with the same deterministic-episode protocol. The
evaluation time is excluded from the wall-clock figures.

Tasks (``--tasks``):

* ``pendulum``: Gymnasium ``Pendulum-v1`` (ours through ``gymnasium:Pendulum-v1``, the peers
  on the Gymnasium env itself); solved at a mean evaluation return >= -200 (8 episodes).
* ``demo``: the demo task, ``pointmass-gtt3`` with the ``demo`` preset's environment options
  (the peers through ``to_gymnasium(flatten=True)``); solved at an evaluation success rate >=
  0.8 (16 episodes).

Methods (``--methods``):

* ``ours``: the task's preset (pendulum: flat policy, no prior, [256, 256], learning rate
  3e-4, one update per env step, batch 32 windows of 8 steps; demo: the ``demo`` preset);
* ``sbx`` / ``sb3``: SAC with the library's defaults (one env, [256, 256], batch 256,
  learning rate 3e-4, one gradient step per env step);
* ``sbx-matched`` / ``sb3-matched``: SAC with our settings where SAC has them: our number of
  env copies (a ``DummyVecEnv``), our update-to-data ratio (gradient steps per vector step),
  our network sizes, learning rate, discount, and transitions per update (windows x steps).

Reported per method and task over ``--seeds`` seeds from ``--first-seed`` (default 0): env
steps and wall seconds (evaluation excluded) to the threshold, and the evaluation score
reached within ``--budget-s`` seconds of training. Writes ``benchmarks/out/time_to_solve.json``
and prints a table.

``--ours-agent`` and ``--ours-train`` (``KEY=VALUE``) change our agent's and (demo task) our
training settings; the matched peers follow the training settings they have (copies, update
ratio, batch).

    .venv/bin/python benchmarks/time_to_solve.py --tasks pendulum --seeds 3
    # needs the bench extra (make bench installs it, with torch's CPU wheel first)
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Task:
    name: str
    metric: str  # "return" or "success"
    threshold: float
    eval_every: int
    eval_episodes: int
    max_env_steps: int


TASKS = {
    "pendulum": Task("pendulum", "return", -200.0, 1_000, 8, 30_000),
    "demo": Task("demo", "success", 0.8, 10_000, 16, 300_000),
}


# Our flat agent's settings for Pendulum (--pendulum-* options change them).
PENDULUM: dict[str, Any] = {"num_envs": 8, "hidden": (64, 64), "lr": 1e-3}
# Agent overrides for our method on every task (--ours-agent KEY=VALUE ...).
OURS_AGENT: dict[str, Any] = {}
# Training overrides for our method on the demo task (--ours-train KEY=VALUE ...); the matched
# peers follow them.
OURS_TRAIN: dict[str, Any] = {}


def _demo_config():
    from behavior_priors.training.presets import get_preset

    return get_preset("demo")


def ours_config(task: Task, seed: int):
    """Our preset for the task (see the module docstring)."""
    from behavior_priors.agents.svg0 import SVG0Config
    from behavior_priors.training.config import TrainConfig

    if task.name == "demo":
        base = _demo_config()
        return base.replace(seed=seed, agent=base.agent.replace(**OURS_AGENT), **OURS_TRAIN)
    return TrainConfig(
        env="gymnasium:Pendulum-v1",
        num_envs=PENDULUM["num_envs"],
        seed=seed,
        total_env_steps=task.max_env_steps,
        sequence_length=8,
        batch_size=32,
        warmup_steps=1_000,
        updates_per_env_step=1.0,
        tensorboard=False,
        agent=SVG0Config(
            policy="flat",
            prior="none",
            policy_hidden=PENDULUM["hidden"],
            critic_hidden=PENDULUM["hidden"],
            prior_hidden=PENDULUM["hidden"],
            policy_learning_rate=PENDULUM["lr"],
            critic_learning_rate=PENDULUM["lr"],
            num_action_samples=1,
        ).replace(**OURS_AGENT),
    )


# -- one method, trained in chunks with evaluations between them --------------------------------


@dataclass
class Learner:
    advance: Callable[[int], None]  # train until this many env steps in total
    env_steps: Callable[[], int]
    evaluate: Callable[[], float]  # the task's metric, deterministic episodes
    eval_s: Callable[[], float] = lambda: 0.0  # evaluation seconds spent inside advance


def ours_learner(task: Task, seed: int) -> Learner:
    from behavior_priors.training.loop import Trainer

    config = ours_config(task, seed).replace(
        eval_every=0, eval_episodes=task.eval_episodes, checkpoint_every=0, tensorboard=False
    )
    trainer = Trainer(config)
    key = "eval/success_rate" if task.metric == "success" else "eval/episode_return"
    # Trainer.run ends every chunk with an evaluation: that is the score; its time is excluded.
    evaluate, spent, last = trainer.evaluate, [0.0], [float("nan")]

    def timed_evaluate() -> dict[str, float]:
        t = time.perf_counter()
        out = evaluate()
        spent[0] += time.perf_counter() - t
        last[0] = out[key]
        return out

    trainer.evaluate = timed_evaluate
    return Learner(
        advance=lambda n: trainer.run(total_env_steps=n) and None,
        env_steps=lambda: trainer.env_steps,
        evaluate=lambda: last[0],
        eval_s=lambda: spent[0],
    )


def _gym_env(task: Task, seed: int):
    import gymnasium as gym

    from behavior_priors.envs.adapters.to_gymnasium import to_gymnasium

    if task.name == "pendulum":
        env = gym.make("Pendulum-v1")
        env.reset(seed=seed)
        return env
    return to_gymnasium("pointmass-gtt3", flatten=True, seed=seed, **_demo_config().env_kwargs)


def _peer_evaluate(model, task: Task, seed: int) -> Callable[[], float]:
    env = _gym_env(task, seed + 10_007)
    calls = [0]

    def evaluate() -> float:
        calls[0] += 1
        scores = []
        for episode in range(task.eval_episodes):
            obs, _ = env.reset(seed=seed + 10_007 + 1000 * calls[0] + episode)
            total, success, done = 0.0, False, False
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                obs, reward, terminated, truncated, info = env.step(action)
                total += float(reward)
                success = success or bool(info.get("success", False))
                done = terminated or truncated
            scores.append(float(success) if task.metric == "success" else total)
        return float(np.mean(scores))

    return evaluate


def peer_learner(task: Task, seed: int, lib: str, matched: bool, torch_threads: int) -> Learner:
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.vec_env import DummyVecEnv

    if lib == "sbx":
        from sbx import SAC
    else:
        import torch
        from stable_baselines3 import SAC

        torch.set_num_threads(torch_threads)
    kwargs: dict[str, Any] = {"seed": seed, "verbose": 0}
    if lib == "sb3":
        kwargs["device"] = "cpu"
    n_envs = 1
    if matched:
        ours = ours_config(task, seed)
        n_envs = ours.num_envs
        a = ours.agent
        kwargs.update(
            batch_size=ours.batch_size * ours.sequence_length,
            learning_rate=a.policy_learning_rate,
            gamma=a.discount,
            learning_starts=ours.warmup_steps,  # SB3 counts env steps over all copies
            # Gradient steps per vector step, or one every few vector steps when that is
            # under one (SB3 counts train_freq in vector steps).
            train_freq=max(1, round(1 / (ours.updates_per_env_step * n_envs))),
            gradient_steps=max(1, round(ours.updates_per_env_step * n_envs)),
            policy_kwargs={"net_arch": list(a.policy_hidden)},
        )
    env = DummyVecEnv([(lambda i=i: _gym_env(task, seed * 100 + i)) for i in range(n_envs)])
    model = SAC("MlpPolicy", env, **kwargs)
    model.set_logger(Logger(folder=None, output_formats=[]))
    first = [True]

    def advance(n: int) -> None:
        model.learn(n - model.num_timesteps, reset_num_timesteps=first[0])
        first[0] = False

    return Learner(advance, lambda: model.num_timesteps, _peer_evaluate(model, task, seed))


def make_learner(method: str, task: Task, seed: int, args) -> Learner:
    if method == "ours":
        return ours_learner(task, seed)
    lib, _, variant = method.partition("-")
    return peer_learner(task, seed, lib, variant == "matched", args.torch_threads)


def time_to_threshold(method: str, task: Task, seed: int, args) -> dict:
    learner = make_learner(method, task, seed, args)
    train_s, curve, reached = 0.0, [], None
    while learner.env_steps() < task.max_env_steps and train_s < args.max_s:
        t, e = time.perf_counter(), learner.eval_s()
        learner.advance(learner.env_steps() + task.eval_every)
        train_s += time.perf_counter() - t - (learner.eval_s() - e)
        score = learner.evaluate()  # not timed
        curve.append({"env_steps": learner.env_steps(), "train_s": train_s, "score": score})
        print(
            f"    {method:12s} seed {seed}  {learner.env_steps():7d} steps  "
            f"{train_s:6.1f} s  {task.metric} {score:.3f}",
            flush=True,
        )
        if reached is None and score >= task.threshold:
            reached = curve[-1]
            if not args.keep_going:
                break
    within = [p["score"] for p in curve if p["train_s"] <= args.budget_s]
    return {
        "method": method,
        "task": task.name,
        "seed": seed,
        "reached": reached is not None,
        "env_steps_to_threshold": reached["env_steps"] if reached else None,
        "train_s_to_threshold": reached["train_s"] if reached else None,
        "score_within_budget": max(within) if within else None,
        "curve": curve,
    }


def summarise(results: list[dict], tasks: list[str], methods: list[str], budget_s: float) -> str:
    lines = [
        "| task | method | solved | env steps to threshold (median) | train s to threshold "
        f"(median) | best eval within {budget_s:.0f} s, runs stop when solved (mean) |",
        "| --- | --- | --: | --: | --: | --: |",
    ]
    for t in tasks:
        for m in methods:
            rs = [r for r in results if r["task"] == t and r["method"] == m]
            if not rs:
                continue
            ok = [r for r in rs if r["reached"]]
            steps = np.median([r["env_steps_to_threshold"] for r in ok]) if ok else float("nan")
            secs = np.median([r["train_s_to_threshold"] for r in ok]) if ok else float("nan")
            within = [r["score_within_budget"] for r in rs if r["score_within_budget"] is not None]
            lines.append(
                f"| {t} | {m} | {len(ok)}/{len(rs)} | {steps:,.0f} | {secs:.0f} | "
                f"{np.mean(within) if within else float('nan'):.3f} |"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=["pendulum"], choices=sorted(TASKS))
    p.add_argument(
        "--methods",
        nargs="+",
        default=["ours", "sbx", "sbx-matched", "sb3", "sb3-matched"],
        choices=["ours", "sbx", "sbx-matched", "sb3", "sb3-matched"],
    )
    p.add_argument("--seeds", type=int, default=3, help="how many seeds")
    p.add_argument("--first-seed", type=int, default=0, help="the first seed's number")
    p.add_argument("--budget-s", type=float, default=60.0, help="wall-clock budget for the score")
    p.add_argument("--max-s", type=float, default=600.0, help="give up after this much training")
    p.add_argument("--keep-going", action="store_true", help="train to the cap after solving")
    p.add_argument("--torch-threads", type=int, default=1)
    p.add_argument("--pendulum-envs", type=int, default=PENDULUM["num_envs"])
    p.add_argument("--pendulum-hidden", type=int, nargs="+", default=list(PENDULUM["hidden"]))
    p.add_argument("--pendulum-lr", type=float, default=PENDULUM["lr"])
    p.add_argument(
        "--ours-agent",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="SVG0Config overrides for ours, e.g. policy=flat prior=none entropy_cost=0.05",
    )
    p.add_argument(
        "--ours-train",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="TrainConfig overrides for ours on the demo task (the matched peers follow them), "
        "e.g. batch_size=64 updates_per_env_step=0.0625",
    )
    args = p.parse_args()
    from behavior_priors.training.config import parse_key_values

    OURS_AGENT.update(parse_key_values(args.ours_agent))
    OURS_TRAIN.update(parse_key_values(args.ours_train))
    PENDULUM.update(
        num_envs=args.pendulum_envs, hidden=tuple(args.pendulum_hidden), lr=args.pendulum_lr
    )
    results = []
    for task_name in args.tasks:
        task = TASKS[task_name]
        print(f"{task_name}: {task.metric} >= {task.threshold}", flush=True)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for method in args.methods:
                results.append(time_to_threshold(method, task, seed, args))
    table = summarise(results, args.tasks, args.methods, args.budget_s)
    print(table)
    versions = {}
    for mod in ("jax", "sbx", "stable_baselines3", "torch", "gymnasium"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # not installed
            versions[mod] = None
    out = Path(__file__).parent / "out" / "time_to_solve.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "args": vars(args),
                "machine": platform.platform(),
                "versions": versions,
                "results": results,
                "table": table,
            },
            indent=2,
        )
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
