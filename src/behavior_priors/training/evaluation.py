"""Evaluation episodes with the deterministic policy (means of pi^H and pi^L)."""

from __future__ import annotations

import jax
import numpy as np

from behavior_priors.agents.svg0 import (
    SVG0Config,
    initial_actor_state,
    select_action,
    to_env_action,
)
from behavior_priors.envs.base import Env
from behavior_priors.networks.policies import Policy
from behavior_priors.training.episodes import EpisodeStats, EpisodeTracker


def run_episodes(
    policy: Policy,
    env: Env,
    config: SVG0Config,
    num_episodes: int,
    seed: int,
    evaluation: bool = True,
    max_steps: int = 100_000,
) -> EpisodeStats:
    """Run at least ``num_episodes`` complete episodes on ``env`` (its copies in parallel).

    Each copy contributes its first ``ceil(num_episodes / B)`` episodes, so the result does not
    favour short episodes. Returns the stats of exactly ``num_episodes`` episodes.
    """
    B = env.num_envs
    per_copy = -(-num_episodes // B)
    act = jax.jit(lambda p, o, f, s, k: select_action(p, o, f, s, k, config, evaluation))
    spec = env.action_spec()
    state = initial_actor_state(config, B)
    key = jax.random.PRNGKey(seed)
    ts = env.reset(seed)
    tracker, stats = EpisodeTracker(B), EpisodeStats()
    counts = np.zeros(B, int)
    tracker.observe(ts)
    for _ in range(max_steps):
        key, sub = jax.random.split(key)
        a, _, state = act(policy, ts.observation, ts.first(), state, sub)
        ts = env.step(to_env_action(a, spec.minimum, spec.maximum))
        ended = tracker.observe(ts)
        for i, r, n, s, t in zip(
            np.flatnonzero(ts.last()),
            ended.returns,
            ended.lengths,
            ended.successes,
            ended.task_ids,
            strict=True,
        ):
            if counts[i] < per_copy:
                counts[i] += 1
                stats.returns.append(r)
                stats.lengths.append(n)
                stats.successes.append(s)
                stats.task_ids.append(t)
        if counts.min() >= per_copy:
            break
    else:
        raise RuntimeError(
            f"evaluation did not finish {num_episodes} episodes in {max_steps} "
            "steps; does the environment have a time limit?"
        )
    keep = slice(0, num_episodes)
    return EpisodeStats(
        stats.returns[keep], stats.lengths[keep], stats.successes[keep], stats.task_ids[keep]
    )
