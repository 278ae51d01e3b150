"""Evaluation episodes with the deterministic policy (means of pi^H and pi^L)."""

from __future__ import annotations

import functools

import jax
import numpy as np

from behavior_priors.agents.svg0 import (
    SVG0Config,
    SVG0Networks,
    initial_actor_state,
    select_action,
    select_prior_action,
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
    prior_of: SVG0Networks | None = None,
) -> EpisodeStats:
    """Run at least ``num_episodes`` complete episodes on ``env`` (its copies in parallel).

    Each copy contributes its first ``ceil(num_episodes / B)`` episodes, so the result does not
    favour short episodes. Returns the stats of exactly ``num_episodes`` episodes.

    ``evaluation`` acts with the means; ``prior_of=networks`` acts with those networks' prior
    instead of ``policy`` (see :func:`~behavior_priors.agents.svg0.select_prior_action`).
    """
    B = env.num_envs
    per_copy = -(-num_episodes // B)
    act = _actor(policy, config, evaluation, prior_of)
    spec = env.action_spec()
    state = initial_actor_state(config, B)
    key = jax.random.PRNGKey(seed)
    ts = env.reset(seed)
    tracker, stats = EpisodeTracker(B), EpisodeStats()
    counts = np.zeros(B, int)
    tracker.observe(ts)
    for _ in range(max_steps):
        key, sub = jax.random.split(key)
        a, state = act(ts.observation, ts.first(), state, sub)
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


def _actor(policy: Policy, config: SVG0Config, evaluation: bool, prior_of: SVG0Networks | None):
    """``act(obs, first, state, key) -> (action, state)`` with the policy or the prior."""
    if prior_of is not None:
        f = _jitted(config, evaluation, True)
        return lambda o, fi, s, k: f(prior_of, o, fi, s, k)
    g = _jitted(config, evaluation, False)
    return lambda o, fi, s, k: g(policy, o, fi, s, k)


@functools.lru_cache(maxsize=32)
def _jitted(config: SVG0Config, evaluation: bool, prior: bool):
    # Cached so that periodic evaluations reuse one compiled function.
    if prior:
        return jax.jit(lambda n, o, f, s, k: select_prior_action(n, o, f, s, k, config, evaluation))
    return jax.jit(lambda p, o, f, s, k: select_action(p, o, f, s, k, config, evaluation)[::2])


def random_action_stats(env: Env, num_episodes: int, rng: np.random.Generator) -> dict[str, float]:
    """Summary of ``num_episodes`` episodes with uniformly random actions (the baseline a
    trained policy must beat)."""
    spec = env.action_spec()
    B = env.num_envs
    per_copy = -(-num_episodes // B)
    ts = env.reset(int(rng.integers(2**31)))
    tracker, stats = EpisodeTracker(B), EpisodeStats()
    tracker.observe(ts)
    counts = np.zeros(B, int)
    while counts.min() < per_copy:
        a = rng.uniform(spec.minimum, spec.maximum, size=(B, *spec.shape)).astype(np.float32)
        ts = env.step(a)
        ended = tracker.observe(ts)
        for j, i in enumerate(np.flatnonzero(ts.last())):
            if counts[i] < per_copy:
                counts[i] += 1
                stats.returns.append(ended.returns[j])
                stats.lengths.append(ended.lengths[j])
                stats.successes.append(ended.successes[j])
                stats.task_ids.append(ended.task_ids[j])
    return EpisodeStats(
        stats.returns[:num_episodes],
        stats.lengths[:num_episodes],
        stats.successes[:num_episodes],
        stats.task_ids[:num_episodes],
    ).summary()
