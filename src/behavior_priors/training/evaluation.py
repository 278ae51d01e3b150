"""Evaluation episodes with the deterministic policy (means of pi^H and pi^L)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import numpy as np

from behavior_priors.agents.svg0 import SVG0Config, SVG0Networks, initial_actor_state
from behavior_priors.envs.base import Env, TimeStep
from behavior_priors.networks.policies import Policy
from behavior_priors.training.acting import make_actor
from behavior_priors.training.actions import ActionLayout
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
    act = make_actor(config, deterministic=evaluation, use_prior=prior_of is not None)
    module = prior_of if prior_of is not None else policy
    actions = ActionLayout.from_spec(env.action_spec())
    carry = {"state": initial_actor_state(config, env.num_envs), "key": jax.random.PRNGKey(seed)}

    def choose(ts: TimeStep) -> np.ndarray:
        a, _, carry["state"], carry["key"] = act(
            module, ts.observation, ts.first(), carry["state"], carry["key"]
        )
        return actions.to_env(a)

    return collect_episodes(env, num_episodes, seed, choose, max_steps)


def collect_episodes(
    env: Env,
    num_episodes: int,
    seed: int,
    choose: Callable[[TimeStep], np.ndarray],
    max_steps: int = 100_000,
) -> EpisodeStats:
    """Reset ``env`` with ``seed`` and step it with ``choose(timestep) -> actions [B, ...]``
    until each copy has finished ``ceil(num_episodes / B)`` episodes (so short episodes are not
    favoured); returns the stats of exactly ``num_episodes`` of them."""
    stats = _collect(env, env.reset(seed), -(-num_episodes // env.num_envs), choose, max_steps)
    return _first(stats, num_episodes)


def collect_group_episodes(
    env: Env,
    num_episodes: int,
    seeds: Sequence[int],
    choose: Callable[[TimeStep], np.ndarray],
    max_steps: int = 100_000,
) -> list[EpisodeStats]:
    """:func:`collect_episodes` for every seed group of ``env`` at once
    (:mod:`behavior_priors.envs.groups`): group g is reset with ``seeds[g]``, and its stats are
    exactly those :func:`collect_episodes` gives on an environment of the group's copies with
    ``seeds[g]`` and the same choices."""
    n = env.num_envs // len(seeds)
    stats = _collect(env, env.reset_groups(seeds), -(-num_episodes // n), choose, max_steps)
    out = []
    for g in range(len(seeds)):
        part = stats.select(j for j, c in enumerate(stats.copies) if g * n <= c < (g + 1) * n)
        part.copies = [c - g * n for c in part.copies]
        out.append(_first(part, num_episodes))
    return out


def _collect(
    env: Env,
    ts: TimeStep,
    per_copy: int,
    choose: Callable[[TimeStep], np.ndarray],
    max_steps: int,
) -> EpisodeStats:
    """Step ``env`` from its reset timestep ``ts`` until every copy has finished ``per_copy``
    episodes; returns those episodes, in the order they ended (then by copy)."""
    B = env.num_envs
    tracker, stats = EpisodeTracker(B), EpisodeStats()
    counts = np.zeros(B, int)
    tracker.observe(ts)
    for _ in range(max_steps):
        ts = env.step(choose(ts))
        ended = tracker.observe(ts)
        keep = []
        for j, i in enumerate(ended.copies):  # a copy ends at most one episode per step
            if counts[i] < per_copy:
                counts[i] += 1
                keep.append(j)
        stats.extend(ended.select(keep))
        if counts.min() >= per_copy:
            return stats
    raise RuntimeError(
        f"evaluation did not finish {per_copy} episodes per copy in {max_steps} "
        "steps; does the environment have a time limit?"
    )


def _first(stats: EpisodeStats, n: int) -> EpisodeStats:
    return stats.select(range(min(n, len(stats))))


def random_action_stats(env: Env, num_episodes: int, rng: np.random.Generator) -> dict[str, float]:
    """Summary of ``num_episodes`` episodes with uniformly random actions (the baseline a
    trained policy must beat)."""
    actions = ActionLayout.from_spec(env.action_spec())
    seed = int(rng.integers(2**31))
    return collect_episodes(
        env, num_episodes, seed, lambda _ts: actions.random(rng, env.num_envs)
    ).summary()
