"""Does the demo solve its task on every seed? The demo preset over several seeds, at once.

Issue 18's target for ``make demo`` is at least 90% final success over 100 episodes on at least
4 of 5 seeds. This trains the ``demo`` preset (or it with ``--agent`` / ``--train`` overrides)
for ``--seeds`` seeds (from ``--first-seed``) together in one process (vmapped,
``MultiSeedTrainer``: each seed computes what its separate run would, in less time; the vmapped
products round differently, so over a long run a seed's curve is another sample of the same
learning, not its separate run's numbers), then evaluates each seed's final policy on
``--final-episodes`` deterministic episodes exactly as ``make demo`` does (``demo.json``: 8
copies, seed 4), and, on another ``--final-episodes`` episodes, sorts each into what happened:

* ``success``: the body reached its target;
* ``stopped short``: it never reached its target but ended nearer to it than to the others
  (the failure of the old preset: a critic whose values hardly depended on the action near
  the target);
* ``elsewhere``: it never reached its target and ended nearer to another one.

Prints one row per seed (16-episode evaluation curve and its first evaluation at 0.8 or more,
final success with its Wilson interval, the episode outcomes) and writes
``benchmarks/out/demo_seeds.json``. Per-seed wall time is not measured here (the seeds share
the process); ``make demo`` reports one seed's.

    .venv/bin/python benchmarks/demo_seeds.py --seeds 5 --steps 200000
    .venv/bin/python benchmarks/demo_seeds.py --seeds 2 --steps 150000 --agent discount=0.99
    .venv/bin/python benchmarks/demo_seeds.py --first-seed 5 --seeds 5 --steps 140000 \
        --train eval_every=10000 --final-episodes 16   # env steps to 0.8, seeds 5-9
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

from behavior_priors.agents import svg0
from behavior_priors.envs.registry import make
from behavior_priors.training.acting import make_actor
from behavior_priors.training.actions import ActionLayout
from behavior_priors.training.config import parse_key_values
from behavior_priors.training.episodes import wilson_interval
from behavior_priors.training.evaluation import run_episodes
from behavior_priors.training.multiseed import MultiSeedTrainer
from behavior_priors.training.presets import get_preset

OUTCOMES = ("success", "stopped short", "elsewhere")
SOLVED = 0.8  # the success rate benchmarks/time_to_solve.py calls solved


def episode_outcomes(policy, config, num_episodes: int, seed: int) -> dict[str, int]:
    """Deterministic episodes of ``policy`` on the demo task, each sorted into ``OUTCOMES``.

    Reads the egocentric target positions ``task/targets`` [K, 2] and the task's one-hot
    ``task/id_onehot`` [K]; the env reports success (any step within the target radius).
    """
    n = 10
    env = make(config.env, num_envs=n, seed=seed, **config.env_kwargs)
    act = make_actor(config.agent, deterministic=True)
    layout = ActionLayout.from_spec(env.action_spec())
    counts = dict.fromkeys(OUTCOMES, 0)
    key = jax.random.PRNGKey(seed)
    for _ in range(-(-num_episodes // n)):
        state = svg0.initial_actor_state(config.agent, n)
        ts = env.reset()
        task = np.asarray(ts.observation["task/id_onehot"]).argmax(-1)
        success = np.zeros(n, bool)
        for _ in range(env.episode_steps):
            action, _, state, key = act(policy, ts.observation, ts.first(), state, key)
            ts = env.step(layout.to_env(action))
            success |= np.asarray(ts.info["success"], bool)
        assert ts.last().all(), "every copy's episode ends after episode_steps steps"
        nearest = np.linalg.norm(np.asarray(ts.observation["task/targets"]), axis=-1).argmin(-1)
        counts["success"] += int(success.sum())
        counts["stopped short"] += int((~success & (nearest == task)).sum())
        counts["elsewhere"] += int((~success & (nearest != task)).sum())
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=5, help="how many seeds")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="env steps (default: the preset's)")
    p.add_argument("--final-episodes", type=int, default=100)
    p.add_argument("--agent", nargs="+", default=[], metavar="KEY=VALUE", help="SVG0Config")
    p.add_argument("--train", nargs="+", default=[], metavar="KEY=VALUE", help="TrainConfig")
    args = p.parse_args()
    config = get_preset("demo")
    config = config.replace(
        agent=config.agent.replace(**parse_key_values(args.agent)), **parse_key_values(args.train)
    )
    if args.steps:
        config = config.replace(total_env_steps=args.steps)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    t0 = time.perf_counter()
    multi = MultiSeedTrainer(config, seeds)
    multi.run()
    train_s = time.perf_counter() - t0
    rows = []
    for i, (seed, run) in enumerate(zip(seeds, multi.runs, strict=True)):
        policy = multi.state(i).networks.policy
        curve = [
            (int(ln["env_steps"]), round(ln["eval/success_rate"], 3))
            for ln in run.history
            if "eval/success_rate" in ln
        ]
        first = next((steps for steps, rate in curve if rate >= SOLVED), None)
        env = make(config.env, num_envs=8, seed=4, **config.env_kwargs)  # as run_demo
        final = run_episodes(policy, env, config.agent, args.final_episodes, seed=4)
        rate = final.summary()["success_rate"]
        low, high = wilson_interval(sum(final.successes), len(final))
        counts = episode_outcomes(policy, config, args.final_episodes, seed=1000 + seed)
        rows.append(
            {
                "seed": seed,
                "curve": curve,
                "first_eval_at_0.8": first,
                "final_success_rate": rate,
                "final_success_rate_95ci": [low, high],
                "outcomes": counts,
            }
        )
        print(
            f"seed {seed}: final {rate:.2f} [{low:.2f}, {high:.2f}] over {len(final)} "
            f"episodes; outcomes of {sum(counts.values())} more: {counts}; first evaluation "
            f">= {SOLVED}: {first} env steps; curve {curve}",
            flush=True,
        )
    solved = sum(r["final_success_rate"] >= 0.9 for r in rows)
    firsts = [r["first_eval_at_0.8"] for r in rows]
    print(f"first evaluation >= {SOLVED} (env steps, by seed): {firsts}")
    print(f"{solved} of {len(rows)} seeds at >= 0.90; {train_s:.0f} s for all seeds together")
    out = Path(__file__).parent / "out" / "demo_seeds.json"
    out.parent.mkdir(exist_ok=True)
    summary = {
        "config": config.to_dict(),
        "seeds": rows,
        "seeds_at_0.9": solved,
        "train_seconds_all_seeds": train_s,
    }
    out.write_text(json.dumps(summary, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
