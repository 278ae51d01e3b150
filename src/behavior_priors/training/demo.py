"""The demo: train the default agent on the default task and write what a person looks at.

``behavior-priors demo`` (and ``make demo``) call :func:`run_demo`; Python users and tests can
call it too. It trains the ``demo`` preset into a run directory, then adds:

* ``curves.png``: learning curves (training return, evaluation success, KL);
* ``policy.gif`` and ``prior.gif``: the trained policy, and the prior acting alone;
* ``demo.json``: the final verdict from its own deterministic evaluation of
  ``final_episodes`` episodes (the periodic 16-episode evaluations are a curve, +-0.25 on a
  success rate), with a Wilson 95% interval, against uniformly random actions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from behavior_priors.training.episodes import wilson_interval
from behavior_priors.training.evaluation import random_action_stats, run_episodes
from behavior_priors.training.files import atomic_write_text
from behavior_priors.training.plotting import plot_runs
from behavior_priors.training.presets import DEMO, get_preset
from behavior_priors.training.run import load, make_run_env, train
from behavior_priors.training.video import record, write_video


def run_demo(
    run_dir: str | Path,
    *,
    steps: int | None = None,
    final_episodes: int = 100,
    progress: bool = False,
    on_log: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train the demo preset into ``run_dir`` and write its curves, videos and verdict.

    Args:
      run_dir: a new run directory.
      steps: env steps (default: the preset's).
      final_episodes: deterministic episodes of the final evaluation (and of random actions).
      progress, on_log: as in :func:`~behavior_priors.training.run.train`.

    Returns:
      The summary written to ``demo.json``, plus the paths of what was written
      (``curves``, ``policy_video``, ``prior_video``, ``renderer``).
    """
    if final_episodes < 1:
        raise ValueError(f"--final-episodes must be >= 1, got {final_episodes}")
    config = get_preset("demo")
    if steps:
        config = config.replace(total_env_steps=steps)
    run_dir = Path(run_dir)
    t0 = time.time()
    result = train(config, run_dir, progress=progress, on_log=on_log)
    minutes = (time.time() - t0) / 60
    curves = plot_runs(
        [run_dir],
        run_dir / "curves.png",
        metrics=("charts/episode_return", "eval/success_rate", "kl/total"),
        title=(
            f"demo: {DEMO}, learning rates {config.agent.policy_learning_rate:g}, "
            f"{config.num_envs} environment copies"
        ),
    )
    run = load(run_dir)

    def env(num_envs: int, seed: int):
        return make_run_env(run, num_envs, seed)

    one = env(1, seed=1)
    # The top-down schematic shows every target and the path taken, on any machine.
    frames, used, _ = record(run, one, 2 * one.episode_steps, seed=1, renderer="schematic")
    video = write_video(frames, run_dir / "policy.gif")
    frames, _, _ = record(
        run, env(1, seed=2), one.episode_steps, seed=2, use_prior=True, renderer="schematic"
    )
    prior_video = write_video(frames, run_dir / "prior.gif")
    final = run_episodes(
        run.state.networks.policy, env(8, seed=4), run.config.agent, final_episodes, seed=4
    )
    rand = random_action_stats(env(8, seed=3), final_episodes, np.random.default_rng(3))
    low, high = wilson_interval(sum(final.successes), len(final))
    stats = final.summary()
    summary = {
        "env_steps": result.env_steps,
        "minutes": round(minutes, 1),
        "final_episodes": len(final),
        "final_success_rate": stats["success_rate"],
        "final_success_rate_95ci": [low, high],
        "final_return": stats["episode_return"],
        "last_periodic_eval": result.final_eval,
        "random_success_rate": rand["success_rate"],
        "random_return": rand["episode_return"],
    }
    atomic_write_text(run_dir / "demo.json", json.dumps(summary, indent=2))
    return {
        **summary,
        "curves": str(curves),
        "policy_video": str(video),
        "prior_video": str(prior_video),
        "renderer": used,
    }
