"""The single-process run loop: B batched environments, the actor, replay and the learner.

Read top to bottom, one iteration of :meth:`Trainer.run` is:

1. the actor picks actions for all B copies (the policy sees ``ts.observation``);
2. the replay stores x_t, a_t and the actor's extras; the environment steps;
3. the learner performs as many updates as the update-to-data ratio owes, each on a batch of
   windows sampled uniformly from replay;
4. every ``log_every`` / ``eval_every`` / ``checkpoint_every`` environment steps: log, evaluate
   the deterministic policy, checkpoint.

Synchronous and deterministic: the same config and seed give the same numbers.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
from behavior_priors.replay import SequenceReplay

from behavior_priors.agents import svg0
from behavior_priors.envs.base import Env
from behavior_priors.envs.registry import make
from behavior_priors.training.config import TrainConfig
from behavior_priors.training.episodes import EpisodeStats, EpisodeTracker
from behavior_priors.training.evaluation import run_episodes


@dataclass
class RunResult:
    """What :func:`train` returns."""

    run_dir: Path | None
    env_steps: int
    updates: int
    final_eval: dict[str, float]
    state: svg0.TrainState = field(repr=False)
    history: list[dict[str, float]] = field(default_factory=list, repr=False)


class Trainer:
    """Owns everything a run needs; :meth:`run` advances it. Checkpointable as a whole."""

    def __init__(self, config: TrainConfig, env: Env | None = None, eval_env: Env | None = None):
        self.config = config
        c = config
        self.env = env if env is not None else make(c.env, num_envs=c.num_envs, **c.env_kwargs)
        if self.env.num_envs != c.num_envs:
            raise ValueError(
                f"env has {self.env.num_envs} copies but config.num_envs is {c.num_envs}"
            )
        self.eval_env = (
            eval_env
            if eval_env is not None
            else make(c.env, num_envs=min(c.eval_episodes, 8), **c.env_kwargs)
        )
        obs_spec = self.env.observation_spec()
        self.obs_shapes = {k: tuple(v.shape) for k, v in obs_spec.items()}
        self.action_spec = self.env.action_spec()
        if not hasattr(self.action_spec, "minimum"):
            raise ValueError("the SVG(0) agent needs a continuous (bounded) action space")
        action_size = int(np.prod(self.action_spec.shape))

        key = jax.random.PRNGKey(c.seed)
        k_init, self.act_key = jax.random.split(key)
        self.state = svg0.init(c.agent, self.obs_shapes, action_size, k_init)
        self.update_fn = svg0.make_update_fn(c.agent)
        agent = c.agent
        self._act = jax.jit(lambda p, o, f, s, k: svg0.select_action(p, o, f, s, k, agent))
        self.replay = SequenceReplay(
            capacity_steps=c.replay_capacity,
            num_envs=c.num_envs,
            sequence_length=c.sequence_length,
            observation_spec=obs_spec,
            action_shape=tuple(self.action_spec.shape),
            action_dtype=np.float32,
            latent_dim=agent.latent_size,
            seed=c.seed,
        )
        self.actor_state = svg0.initial_actor_state(agent, c.num_envs)
        self.ts = self.env.reset(c.seed)
        self.tracker = EpisodeTracker(c.num_envs)
        self.tracker.observe(self.ts)
        self.recent_window: deque = deque(maxlen=100)  # (return, success) of recent episodes
        self.env_steps = 0
        self.updates = 0
        self.update_debt = 0.0
        self.last_metrics: dict[str, float] = {}
        self.last_eval: dict[str, float] = {}
        self.history: list[dict[str, float]] = []

    # -- one environment step ------------------------------------------------------------------
    def env_step(self) -> EpisodeStats:
        self.act_key, sub = jax.random.split(self.act_key)
        action, extras, self.actor_state = self._act(
            self.state.networks.policy, self.ts.observation, self.ts.first(), self.actor_state, sub
        )
        action = np.asarray(action)
        self.replay.add(self.ts, action, jax.tree.map(np.asarray, extras))
        self.ts = self.env.step(
            svg0.to_env_action(action, self.action_spec.minimum, self.action_spec.maximum)
        )
        self.env_steps += self.config.num_envs
        return self.tracker.observe(self.ts)

    # -- learner updates owed by the update-to-data ratio ---------------------------------------
    def learn(self) -> None:
        c = self.config
        if self.env_steps < c.warmup_steps or self.replay.num_sampleable() == 0:
            return
        self.update_debt += c.num_envs * c.updates_per_env_step
        metrics = None
        while self.update_debt >= 1.0:
            batch = self.replay.sample(c.batch_size)
            self.state, metrics = self.update_fn(self.state, batch)
            self.updates += 1
            self.update_debt -= 1.0
        if metrics is not None:
            self._pending_metrics = metrics

    def evaluate(self) -> dict[str, float]:
        c = self.config
        stats = run_episodes(
            self.state.networks.policy,
            self.eval_env,
            c.agent,
            c.eval_episodes,
            seed=c.seed + 10_007 + self.env_steps,
        )
        return {f"eval/{k}": v for k, v in stats.summary().items()}

    def run(
        self,
        total_env_steps: int | None = None,
        on_log: Callable[[dict[str, float]], None] | None = None,
    ) -> dict[str, float]:
        """Train until ``total_env_steps`` (default: the config's); returns the last eval."""
        c = self.config
        total = c.total_env_steps if total_env_steps is None else total_env_steps
        self._pending_metrics: Any = None
        next_log = (self.env_steps // c.log_every + 1) * c.log_every
        next_eval = ((self.env_steps // c.eval_every + 1) * c.eval_every) if c.eval_every else None
        t_last, steps_last, updates_last = time.perf_counter(), self.env_steps, self.updates
        while self.env_steps < total:
            ended = self.env_step()
            self.recent_window.extend(zip(ended.returns, ended.successes, strict=True))
            self.learn()
            if self.env_steps >= next_log or self.env_steps >= total:
                next_log += c.log_every
                now = time.perf_counter()
                line = self._log_line(now - t_last, steps_last, updates_last)
                t_last, steps_last, updates_last = now, self.env_steps, self.updates
                if next_eval is not None and self.env_steps >= next_eval:
                    next_eval += c.eval_every
                    self.last_eval = self.evaluate()
                    line.update(self.last_eval)
                self.history.append(line)
                if on_log is not None:
                    on_log(line)
        if not self.history or "eval/episode_return" not in self.history[-1]:
            self.last_eval = self.evaluate()
            line = {"env_steps": self.env_steps, **self.last_eval}
            self.history.append(line)
            if on_log is not None:
                on_log(line)
        return self.last_eval

    def _log_line(self, elapsed: float, steps_before: int, updates_before: int) -> dict:
        line: dict[str, float] = {"env_steps": self.env_steps, "perf/updates": self.updates}
        if self.recent_window:
            returns, successes = zip(*self.recent_window, strict=True)
            line["charts/episode_return"] = float(np.mean(returns))
            line["charts/success_rate"] = float(np.mean(successes))
        elapsed = max(elapsed, 1e-9)
        line["perf/env_steps_per_s"] = (self.env_steps - steps_before) / elapsed
        line["perf/updates_per_s"] = (self.updates - updates_before) / elapsed
        if self._pending_metrics is not None:
            m = jax.device_get(self._pending_metrics)
            svg0.check_finite(m, self.updates)
            line.update({k: float(v) for k, v in m.items()})
            self._pending_metrics = None
        return line


def train(
    config: TrainConfig,
    env: Env | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
) -> RunResult:
    """Train an agent in this process (no run directory; see the CLI for logged runs)."""
    trainer = Trainer(config, env)
    final = trainer.run(on_log=on_log)
    return RunResult(
        None, trainer.env_steps, trainer.updates, final, trainer.state, trainer.history
    )
