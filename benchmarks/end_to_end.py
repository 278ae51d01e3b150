"""End-to-end training throughput: our full loop against Stable-Baselines3 SAC and sbx SAC.

All three train on the same task (``pointmass-gtt3``; the peers through the Gymnasium adapter
with the observation flattened) at equal settings, in one process, measured alternately:

* networks: ``[256, 256]`` for every actor / prior / critic MLP (ours: ``policy_hidden``,
  ``prior_hidden``, ``critic_hidden``; SAC: ``net_arch=[256, 256]`` for actor and critics);
* transitions per update: SAC ``batch_size=256``; ours 32 windows of T+1 = 9 steps, i.e.
  32 x T = 256 transitions (``--windows``, ``--sequence-length``);
* update-to-data ratio 1: SAC ``train_freq=1, gradient_steps=1``; ours
  ``updates_per_env_step=1.0`` with ``num_envs=1`` (one update per env step) and, our natural
  setting, ``num_envs=8`` (eight updates per batched step of 8 copies: the same ratio);
* warm-up excluded: ``--learning-starts`` env steps before the first update, then
  ``--compile-steps`` steps with updates (jit compilation, caches) that are not timed either;
* timed: ``--repeats`` chunks of ``--steps`` env steps per library, the libraries taking turns
  chunk by chunk, so load on a shared machine hits all alike. Best and mean chunk rates are
  reported; ratios use the best.

``ours-flat`` is our loop and learner with the agent configured like SAC (flat policy, no
prior, ``num_action_samples=1``; our LayerNorm torso and single critic stay): the like-for-like
comparison of the training system. ``ours`` is the demo's hierarchical agent, whose update does
more work at the same network sizes (S = 10 action samples for the bootstrap value, two policy
levels, a learned prior). The work per update is reported from XLA's cost analysis of the compiled
update (GFLOP, transcendentals, bytes accessed), for ours and for sbx's jitted SAC step.

SB3 runs with ``torch.set_num_threads(--torch-threads)`` (1: with 2 threads on a loaded 2-core
machine its OpenMP workers spin and it collapses below 10 steps/s). ``--xla-single-thread``
makes XLA single-threaded for ours and sbx alike.

Our loop is :meth:`behavior_priors.training.loop.Trainer.run` itself (acting, env step, replay
add, replay sample, learner update, logging every ``log_every`` steps); only evaluation is
switched off inside timed chunks. The peers' loops are their own ``learn`` (``verbose=0``).

``--time-to-threshold`` adds the demo run: the ``--tt-preset`` training preset (default ``demo``:
hierarchical policy and prior with a shared low level, point mass, go to one of 3 targets, the
settings ``make demo`` trains with), evaluated every ``--tt-eval-every`` env steps with
``--tt-eval-episodes`` deterministic episodes, until the evaluation success rate reaches
``--tt-success`` or ``--tt-max-steps`` env steps.

    .venv/bin/python benchmarks/end_to_end.py [--steps 300] [--repeats 5] [--time-to-threshold]
    # -> benchmarks/out/end_to_end.json, and a table on stdout
"""

from __future__ import annotations

import os
import sys

# XLA reads its flags when the backend starts, so this must precede any JAX work.
if "--xla-single-thread" in sys.argv:
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    )

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from behavior_priors.agents.svg0 import SVG0Config
from behavior_priors.training.config import TrainConfig

ENV = "pointmass-gtt3"
LIBS = ("ours", "ours-b8", "ours-flat", "sbx", "sb3")


class Runner:
    """One library's training run, advanced chunk by chunk.

    ``advance(n)`` trains ``n`` more env steps; ``counters()`` returns ``(env_steps, updates)``.
    """

    name: str
    advance: Callable[[int], None]
    counters: Callable[[], tuple[int, int]]
    settings: dict
    update_cost: Callable[[], dict] | None = None  # ours: XLA's cost analysis of one update


def ours_runner(args, num_envs: int, flat: bool = False) -> Runner:
    """Our Trainer; ``flat``: the diagnostic SAC-shaped agent (flat policy, no prior, S=1)."""
    from behavior_priors.training.loop import Trainer

    h = tuple(args.hidden)
    agent = SVG0Config(policy_hidden=h, prior_hidden=h, critic_hidden=h)
    if flat:
        agent = agent.replace(policy="flat", prior="none", num_action_samples=1)
    config = TrainConfig(
        env=ENV,
        num_envs=num_envs,
        seed=args.seed,
        sequence_length=args.sequence_length,
        batch_size=args.windows,
        warmup_steps=args.learning_starts,
        updates_per_env_step=1.0,
        eval_every=0,
        log_every=2_000,
        checkpoint_every=0,
        tensorboard=False,
        agent=agent,
    )
    trainer = Trainer(config)
    trainer.evaluate = dict  # no evaluation inside timed chunks (run() evaluates at its end)
    r = Runner()
    r.name = "ours-flat" if flat else ("ours" if num_envs == 1 else f"ours-b{num_envs}")
    r.advance = lambda n: trainer.run(trainer.env_steps + n)
    r.counters = lambda: (trainer.env_steps, trainer.updates)
    r.update_cost = lambda: update_cost(trainer)
    r.settings = {
        "num_envs": num_envs,
        "hidden": list(h),
        "windows": args.windows,
        "sequence_length": args.sequence_length,
        "transitions_per_update": args.windows * args.sequence_length,
        "updates_per_env_step": 1.0,
        "agent": (
            "flat policy, no prior, num_action_samples=1 (diagnostic, SAC-shaped)"
            if flat
            else "SVG0Config defaults (hierarchical policy and prior, shared low level)"
        ),
    }
    return r


def update_cost(trainer) -> dict:
    """XLA's cost analysis of one learner update of ``trainer`` on a batch from its replay: the
    work per update, independent of the machine's speed and load."""
    import equinox as eqx

    from behavior_priors.agents import svg0

    agent = trainer.config.agent
    batch = trainer.replay.sample(trainer.config.batch_size)
    arrays, static = eqx.partition(trainer.state, eqx.is_array)

    def step(arrays, batch):
        state, metrics = svg0.update(agent, eqx.combine(arrays, static), batch)
        return eqx.filter(state, eqx.is_array), metrics

    cost = jax.jit(step).lower(arrays, batch).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return {
        "gflop": cost["flops"] / 1e9,
        "transcendentals_m": cost.get("transcendentals", 0.0) / 1e6,
        "bytes_accessed_mb": cost.get("bytes accessed", 0.0) / 1e6,
    }


def sbx_update_cost(model) -> dict:
    """XLA's cost analysis of one sbx SAC update (its jitted ``_train`` with one gradient step)
    on a batch from its replay buffer. Reads sbx internals: empty if they have changed."""
    try:
        from sbx.common.type_aliases import ReplayBufferSamplesNp

        d = model.replay_buffer.sample(model.batch_size, env=model._vec_normalize_env)
        data = ReplayBufferSamplesNp(
            d.observations.numpy(),
            d.actions.numpy(),
            d.next_observations.numpy(),
            d.dones.numpy().flatten(),
            d.rewards.numpy().flatten(),
            np.full((model.batch_size,), model.gamma, np.float32),
        )
        train = type(model).__dict__["_train"].__func__  # the jitted function under classmethod
        lowered = train.lower(
            type(model),
            model.tau,
            model.target_entropy,
            1,
            data,
            model.policy_delay,
            0,
            model.policy.qf_state,
            model.policy.actor_state,
            model.ent_coef_state,
            model.key,
        )
        cost = lowered.compile().cost_analysis()
    except Exception as e:  # another sbx version
        print(f"sbx: no cost analysis ({type(e).__name__}: {e})")
        return {}
    cost = cost[0] if isinstance(cost, list) else cost
    return {
        "gflop": cost["flops"] / 1e9,
        "transcendentals_m": cost.get("transcendentals", 0.0) / 1e6,
        "bytes_accessed_mb": cost.get("bytes accessed", 0.0) / 1e6,
    }


def sac_runner(args, lib: str) -> Runner:
    from behavior_priors.envs.adapters.to_gymnasium import to_gymnasium

    if lib == "sbx":
        from sbx import SAC
    else:
        import torch
        from stable_baselines3 import SAC

        torch.set_num_threads(args.torch_threads)
    env = to_gymnasium(ENV, flatten=True, seed=args.seed)
    model = SAC(
        "MlpPolicy",
        env,
        batch_size=args.windows * args.sequence_length,
        learning_starts=args.learning_starts,
        train_freq=1,
        gradient_steps=1,
        policy_kwargs={"net_arch": list(args.hidden)},
        seed=args.seed,
        verbose=0,
        device="cpu",
    )
    # A logger of our own: SB3 would otherwise create a fresh /tmp/SB3-<date> folder per learn().
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(folder=None, output_formats=[]))
    first = [True]

    def advance(n: int) -> None:
        model.learn(n, reset_num_timesteps=first[0])
        first[0] = False

    r = Runner()
    r.name = lib
    if lib == "sbx":
        r.update_cost = lambda: sbx_update_cost(model)
    r.advance = advance
    r.counters = lambda: (model.num_timesteps, model._n_updates)
    r.settings = {
        "net_arch": list(args.hidden),
        "batch_size": model.batch_size,
        "train_freq": 1,
        "gradient_steps": 1,
        "learning_starts": args.learning_starts,
        "n_critics": int(getattr(model.policy, "n_critics", 2)),
    }
    return r


def measure(args) -> dict:
    makers = {
        "ours": lambda: ours_runner(args, 1),
        "ours-b8": lambda: ours_runner(args, 8),
        "ours-flat": lambda: ours_runner(args, 1, flat=True),
        "sbx": lambda: sac_runner(args, "sbx"),
        "sb3": lambda: sac_runner(args, "sb3"),
    }
    runners = {}
    for lib in args.libs:
        t0 = time.perf_counter()
        r = makers[lib]()
        r.advance(args.learning_starts + args.compile_steps)
        runners[lib] = r
        print(f"{lib}: warm-up {time.perf_counter() - t0:.1f} s (excluded)", flush=True)

    chunks: dict[str, list[dict]] = {lib: [] for lib in runners}
    for rep in range(args.repeats):
        for lib, r in runners.items():
            s0, u0 = r.counters()
            t0 = time.perf_counter()
            r.advance(args.steps)
            elapsed = time.perf_counter() - t0
            s1, u1 = r.counters()
            chunks[lib].append(
                {
                    "env_steps": s1 - s0,
                    "updates": u1 - u0,
                    "seconds": elapsed,
                    "env_steps_per_s": (s1 - s0) / elapsed,
                    "updates_per_s": (u1 - u0) / elapsed,
                }
            )
            print(
                f"  repeat {rep}: {lib:8s} {(s1 - s0) / elapsed:7.1f} env steps/s "
                f"{(u1 - u0) / elapsed:7.1f} updates/s",
                flush=True,
            )

    rows = {}
    for lib, cs in chunks.items():
        best = max(cs, key=lambda c: c["env_steps_per_s"])
        steps, updates = sum(c["env_steps"] for c in cs), sum(c["updates"] for c in cs)
        seconds = sum(c["seconds"] for c in cs)
        rows[lib] = {
            "settings": runners[lib].settings,
            "env_steps_per_s": best["env_steps_per_s"],
            "updates_per_s": best["updates_per_s"],
            "mean_env_steps_per_s": steps / seconds,
            "mean_updates_per_s": updates / seconds,
            "chunks": cs,
        }
        if runners[lib].update_cost is not None:
            rows[lib]["update_cost"] = runners[lib].update_cost()
    return rows


def time_to_threshold(args) -> dict:
    """A preset (the demo's) until the eval success rate reaches the threshold."""
    from behavior_priors.training.loop import Trainer
    from behavior_priors.training.presets import get_preset

    preset = get_preset(args.tt_preset)
    config = preset.replace(
        env_kwargs={**preset.env_kwargs, **args.tt_env_kwargs},
        seed=args.seed,
        eval_every=args.tt_eval_every,
        eval_episodes=args.tt_eval_episodes,
        checkpoint_every=0,
        tensorboard=False,
    )
    t_start = time.perf_counter()
    trainer = Trainer(config)
    eval_seconds = [0.0]
    evaluate = trainer.evaluate

    def timed_evaluate():
        t = time.perf_counter()
        out = evaluate()
        eval_seconds[0] += time.perf_counter() - t
        return out

    trainer.evaluate = timed_evaluate
    curve, reached = [], None
    while trainer.env_steps < args.tt_max_steps:
        trainer.run(trainer.env_steps + config.eval_every)  # ends with one evaluation
        ev = trainer.last_eval
        point = {
            "env_steps": trainer.env_steps,
            "updates": trainer.updates,
            "wall_s": time.perf_counter() - t_start,
            "eval_success_rate": ev.get("eval/success_rate", float("nan")),
            "eval_episode_return": ev.get("eval/episode_return", float("nan")),
        }
        curve.append(point)
        print(
            f"  {point['env_steps']:8d} env steps {point['wall_s']:7.1f} s "
            f"success {point['eval_success_rate']:.2f} return {point['eval_episode_return']:.1f}",
            flush=True,
        )
        if point["eval_success_rate"] >= args.tt_success:
            reached = point
            break
    return {
        "config": config.to_dict(),
        "success_threshold": args.tt_success,
        "max_env_steps": args.tt_max_steps,
        "reached": reached is not None,
        "env_steps_to_threshold": reached["env_steps"] if reached else None,
        "wall_s_to_threshold": reached["wall_s"] if reached else None,
        "wall_s_excluding_eval": (reached["wall_s"] - eval_seconds[0]) if reached else None,
        "eval_seconds": eval_seconds[0],
        "best_eval_success_rate": max((p["eval_success_rate"] for p in curve), default=None),
        "curve": curve,
    }


def _versions() -> dict:
    out = {"jax": jax.__version__, "numpy": np.__version__}
    for mod in ("torch", "stable_baselines3", "sbx", "flax", "gymnasium", "mujoco"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # a peer library may be missing
            out[mod] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed env steps per chunk")
    parser.add_argument("--repeats", type=int, default=5, help="chunks per library, alternated")
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--compile-steps", type=int, default=200, help="untimed, with updates")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--windows", type=int, default=32, help="ours: windows per update")
    parser.add_argument("--sequence-length", type=int, default=8, help="ours: T")
    parser.add_argument("--libs", nargs="+", default=list(LIBS), choices=LIBS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="SB3's torch threads (2 threads collapse to <10 steps/s on a loaded 2-core machine)",
    )
    parser.add_argument(
        "--xla-single-thread",
        action="store_true",
        help="XLA CPU single-threaded, for ours and sbx alike (better on a loaded machine)",
    )
    parser.add_argument("--time-to-threshold", action="store_true")
    parser.add_argument("--tt-preset", default="demo", help="training preset to time")
    parser.add_argument("--tt-success", type=float, default=0.8)
    parser.add_argument("--tt-max-steps", type=int, default=300_000)
    parser.add_argument("--tt-eval-every", type=int, default=10_000)
    parser.add_argument("--tt-eval-episodes", type=int, default=16)
    parser.add_argument(
        "--tt-env-kwargs", type=json.loads, default={}, help="JSON, e.g. '{\"shaped\": true}'"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/end_to_end.json"))
    args = parser.parse_args()

    result = {
        "benchmark": "end_to_end",
        "env": ENV,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
        },
        "versions": _versions(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    rows = measure(args)
    result["rows"] = rows
    print(f"\n{'library':10s} {'env steps/s':>12s} {'updates/s':>10s} {'mean steps/s':>13s}")
    for lib, row in rows.items():
        print(
            f"{lib:10s} {row['env_steps_per_s']:12.1f} {row['updates_per_s']:10.1f} "
            f"{row['mean_env_steps_per_s']:13.1f}"
        )
    for lib, row in rows.items():
        if row.get("update_cost"):
            cost = row["update_cost"]
            print(
                f"{lib:10s} {cost['gflop']:.3f} GFLOP, {cost['transcendentals_m']:.2f} M "
                f"transcendentals, {cost['bytes_accessed_mb']:.0f} MB accessed per update (XLA)"
            )
    ratios, mean_ratios = {}, {}
    for ours in ("ours", "ours-b8", "ours-flat"):
        for peer in ("sbx", "sb3"):
            if ours in rows and peer in rows:
                key = f"{ours}/{peer}"
                ratios[key] = rows[ours]["env_steps_per_s"] / rows[peer]["env_steps_per_s"]
                mean_ratios[key] = (
                    rows[ours]["mean_env_steps_per_s"] / rows[peer]["mean_env_steps_per_s"]
                )
                print(
                    f"{key:14s} {ratios[key]:5.2f}x env steps/s (best chunks), "
                    f"{mean_ratios[key]:5.2f}x (means)"
                )
    result["ratios_env_steps_per_s"] = ratios
    result["ratios_mean_env_steps_per_s"] = mean_ratios
    if args.time_to_threshold:
        print(
            f"time to eval success rate >= {args.tt_success} "
            f"(preset {args.tt_preset} {args.tt_env_kwargs or ''}):"
        )
        tt = time_to_threshold(args)
        result["time_to_threshold"] = tt
        if tt["reached"]:
            print(
                f"reached at {tt['env_steps_to_threshold']} env steps, "
                f"{tt['wall_s_to_threshold']:.0f} s ({tt['wall_s_excluding_eval']:.0f} s "
                "without evaluation)"
            )
        else:
            print(
                f"not reached within {args.tt_max_steps} env steps "
                f"(best eval success rate {tt['best_eval_success_rate']:.2f})"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
