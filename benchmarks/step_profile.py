"""Where a training step's time goes: the loop of ``Trainer.run`` taken apart and timed.

Builds the ``--preset`` trainer (default ``demo``), trains past warm-up and compilation, then
runs ``--steps`` batched steps of the loop body by hand, timing each part:

* ``act``: the jitted actor call and the transfer of its actions and extras to the host;
* ``env``: ``env.step`` of the B copies (MuJoCo physics, rewards, observations);
* ``replay_add``: storing x_t, a_t and the extras;
* ``bookkeeping``: episode tracking;
* ``replay_sample``: drawing ``batch_size`` windows;
* ``update``: the jitted learner update, waited for (``block_until_ready``) so that its time
  is counted here and not in the next part that happens to wait for it.

Then it runs as many steps of :meth:`Trainer.step` itself, which overlaps the parts (the update
runs on XLA's threads while the host acts and steps the environments), and reports both speeds
and their ratio: what the overlap saves on this machine. The two measurements alternate
``--rounds`` times, so that a change in the machine's load hits both.

Prints milliseconds per batched step and shares, and writes ``benchmarks/out/step_profile.json``.
Ratios, not absolute times, are what carries over between machines.

    .venv/bin/python benchmarks/step_profile.py [--preset demo] [--steps 2000]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import defaultdict
from pathlib import Path

import jax
import numpy as np

from behavior_priors.training.loop import Trainer
from behavior_priors.training.presets import get_preset


def timed_parts(t: Trainer, steps: int, parts: dict[str, float]) -> float:
    """``steps`` iterations of the loop body, each part waited for and timed into ``parts``
    (seconds, accumulated); returns the total seconds."""
    c = t.config
    clock = time.perf_counter
    start = clock()
    for _ in range(steps):
        t0 = clock()
        action, extras, t.actor_state, t.act_key = t._act(
            t.learner.policy_arrays(), t.ts.observation, t.ts.first(), t.actor_state, t.act_key
        )
        action, extras = np.asarray(action), jax.tree.map(np.asarray, extras)
        t1 = clock()
        t.replay.add(t.ts, action, extras)
        t2 = clock()
        t.ts = t.env.step(t.actions.to_env(action))
        t.env_steps += c.num_envs
        t3 = clock()
        ended = t.tracker.observe(t.ts)
        t.recent_window.extend(ended.outcomes())
        t4 = clock()
        parts["act"] += t1 - t0
        parts["replay_add"] += t2 - t1
        parts["env"] += t3 - t2
        parts["bookkeeping"] += t4 - t3
        t.update_debt += c.num_envs * c.updates_per_env_step
        while t.update_debt >= 1.0:
            t5 = clock()
            batch = t.replay.sample(c.batch_size)
            t6 = clock()
            metrics = t.learner.update(batch)
            jax.block_until_ready(metrics)
            t7 = clock()
            parts["replay_sample"] += t6 - t5
            parts["update"] += t7 - t6
            t.updates += 1
            t.update_debt -= 1.0
    return clock() - start


def timed_loop(t: Trainer, steps: int) -> float:
    """``steps`` iterations of :meth:`Trainer.step` as :meth:`Trainer.run` makes them; returns
    the seconds, the last update waited for."""
    start = time.perf_counter()
    for _ in range(steps):
        ended = t.step()
        t.recent_window.extend(ended.outcomes())
    jax.block_until_ready(t.state)
    return time.perf_counter() - start


def profile(preset: str, steps: int, seed: int, rounds: int) -> dict:
    config = get_preset(preset).replace(seed=seed, eval_every=0, tensorboard=False)
    t = Trainer(config)
    # Past warm-up, and a few hundred updates so every function is compiled.
    t.run(total_env_steps=config.warmup_steps + 400 * config.num_envs)
    parts: dict[str, float] = defaultdict(float)
    total = overlapped = 0.0
    per_round = max(steps // rounds, 1)
    for _ in range(rounds):
        total += timed_parts(t, per_round, parts)
        overlapped += timed_loop(t, per_round)
    steps = per_round * rounds
    parts["other"] = total - sum(parts.values())
    ms = {k: 1e3 * v / steps for k, v in parts.items()}
    c = config
    return {
        "preset": preset,
        "num_envs": c.num_envs,
        "updates_per_batched_step": c.num_envs * c.updates_per_env_step,
        "batched_steps": steps,
        "env_steps_per_s": steps * c.num_envs / total,
        "ms_per_batched_step": ms,
        "share": {k: v / (1e3 * total / steps) for k, v in ms.items()},
        "overlapped_env_steps_per_s": steps * c.num_envs / overlapped,
        "overlapped_ms_per_batched_step": 1e3 * overlapped / steps,
        "speedup_of_overlap": total / overlapped,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="demo")
    p.add_argument("--steps", type=int, default=2000, help="batched steps timed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=4, help="alternations of the two timings")
    args = p.parse_args()
    result = profile(args.preset, args.steps, args.seed, args.rounds)
    result["machine"] = {"platform": platform.platform(), "jax": jax.__version__}
    speed = result["env_steps_per_s"]
    print(f"{result['preset']}, parts one after another: {speed:,.0f} env steps/s")
    for k, v in sorted(result["ms_per_batched_step"].items(), key=lambda kv: -kv[1]):
        print(f"  {k:14s} {v:7.3f} ms  {result['share'][k]:6.1%}")
    print(
        f"Trainer.step (overlapped): {result['overlapped_env_steps_per_s']:,.0f} env steps/s, "
        f"{result['overlapped_ms_per_batched_step']:.3f} ms per batched step, "
        f"{result['speedup_of_overlap']:.2f}x"
    )
    out = Path(__file__).parent / "out" / "step_profile.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
