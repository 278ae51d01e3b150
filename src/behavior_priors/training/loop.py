"""The single-process run loop: B batched environments, the actor, replay and the learner.

Read top to bottom, one iteration of :meth:`Trainer.run` (:meth:`Trainer.step`) is:

1. the actor's call for all B copies is dispatched (the policy sees ``ts.observation``, with
   the parameters after the previous update);
2. the learner's updates that the update-to-data ratio owes are dispatched, each on a batch of
   windows sampled uniformly from what replay holds so far;
3. the host waits for the actions only; the replay stores x_t, a_t and the actor's extras and
   the environment steps, while XLA runs the updates on its own threads;
4. every ``log_every`` / ``eval_every`` / ``checkpoint_every`` environment steps: log, evaluate
   the deterministic policy, checkpoint.

Steps 1-3 overlap acting with learning: JAX dispatches compiled calls asynchronously, so the
environments step on one core while the update runs on the other. Acting after the update
instead, as a plain loop would, needs the update's parameters and so waits for it: on 2 cores
the demo ran about 1550 env steps/s that way and about 2000 this way (docs/benchmarks.md, "Where
a demo step's time goes"). The only difference in what is computed is that a step's updates
sample windows from replay before that step's transition is stored.

Deterministic: the same config and seed give the same numbers (the actor's and the update's
inputs are fixed before either runs; the update's donated buffers are released only after the
actor has read them).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from behavior_priors.agents import svg0
from behavior_priors.agents.arrays import ArrayLayout
from behavior_priors.envs.base import Env, TimeStep, spawn_like
from behavior_priors.envs.registry import make
from behavior_priors.replay import SequenceReplay
from behavior_priors.training.acting import make_array_actor
from behavior_priors.training.actions import ActionLayout
from behavior_priors.training.config import TrainConfig
from behavior_priors.training.episodes import (
    EpisodeStats,
    EpisodeTracker,
    recent_from_state,
    recent_state,
    task_names_of,
)
from behavior_priors.training.evaluation import run_episodes
from behavior_priors.training.session import Cadence, log_line


@dataclass
class RunResult:
    """What :func:`train` returns."""

    run_dir: Path | None
    env_steps: int
    updates: int
    final_eval: dict[str, float]
    state: svg0.TrainState = field(repr=False)
    history: list[dict[str, float]] = field(default_factory=list, repr=False)
    # A resumed run that had already finished: nothing was trained or written.
    already_finished: bool = False
    # Why this run stopped without finishing (a seed that diverged in seed-batched training,
    # while the other seeds went on); None for a run that finished.
    error: str | None = None


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
        if eval_env is None:  # evaluate on the training environment's kind, never another
            n = min(c.eval_episodes, 8)
            given = env is not None
            eval_env = spawn_like(env, n) if given else make(c.env, num_envs=n, **c.env_kwargs)
        self.eval_env = eval_env
        obs_spec = self.env.observation_spec()
        self.obs_shapes = {k: tuple(v.shape) for k, v in obs_spec.items()}
        self.action_spec = self.env.action_spec()
        self.actions = ActionLayout.from_spec(self.action_spec)

        key = jax.random.PRNGKey(c.seed)
        k_init, self.act_key = jax.random.split(key)
        # The loop owns the state and never reads an old one: XLA updates it in place, and the
        # actor reads the policy's arrays without a TrainState being rebuilt per update.
        self.learner = svg0.InPlaceLearner(
            c.agent, learner_state_from_specs(c.agent, self.obs_shapes, self.actions, k_init)
        )
        agent = c.agent
        self._act = make_array_actor(agent, self.learner.policy_layout)
        self.replay = SequenceReplay(
            capacity_steps=c.replay_capacity,
            num_envs=c.num_envs,
            sequence_length=c.sequence_length,
            observation_spec=obs_spec,
            action_shape=self.actions.replay_shape,
            action_dtype=self.actions.replay_dtype,
            latent_dim=agent.latent_size,
            seed=c.seed,
        )
        self.actor_state = svg0.initial_actor_state(agent, c.num_envs)
        self.ts = self.env.reset(c.seed)
        self.tracker = EpisodeTracker(c.num_envs)
        self.tracker.observe(self.ts)
        # (return, success, task id) of the recent episodes: the charts/ figures' window
        self.recent_window: deque = deque(maxlen=100)
        self.env_steps = 0
        self.updates = 0
        self.update_debt = 0.0
        self.wall_time = 0.0  # seconds spent in run(), evaluations included, across resumes
        self.last_eval: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        self.pending_metrics: Any = None  # the latest update's metrics, not logged yet

    @property
    def state(self) -> svg0.TrainState:
        """The learner state. An update deletes the arrays of the one before it: copy what you
        keep (``svg0.learner.copy_arrays``)."""
        return self.learner.state

    @state.setter
    def state(self, state: svg0.TrainState) -> None:
        self.learner.reset(state)
        self._act = make_array_actor(self.config.agent, self.learner.policy_layout)

    # -- one batched step ----------------------------------------------------------------------
    def step(self) -> EpisodeStats:
        """One iteration of the loop (module docstring): act, learn, step the environments.
        Returns the episodes that ended."""
        action, extras = self.act()
        self.learn()
        return self.take_action(np.asarray(action), jax.tree.map(np.asarray, extras))

    def act(self) -> tuple[jax.Array, Any]:
        """Dispatch the actor's call on the current observations with the current parameters;
        returns its ``action [B, Da]`` and extras without waiting for them."""
        action, extras, self.actor_state, self.act_key = self._act(
            self.learner.policy_arrays(),
            self.ts.observation,
            self.ts.first(),
            self.actor_state,
            self.act_key,
        )
        return action, extras

    def take_action(self, action: np.ndarray, extras: Any) -> EpisodeStats:
        """Store x_t with the actor's ``action [B, Da]`` and ``extras`` in replay, step the
        environments, and count: the part of :meth:`step` after the policy and the updates (the
        multi-seed trainer picks actions for every seed in one call, then hands each seed its
        own)."""
        if not self.actions.discrete and not np.isfinite(action).all():
            self._diverged()
        self.replay.add(self.ts, action, extras)
        self.ts = self.env.step(self.actions.to_env(action))
        self.env_steps += self.config.num_envs
        return self.tracker.observe(self.ts)

    def _diverged(self) -> None:
        """The policy gave NaN or inf actions: report the learner's divergence (with the
        metrics that went non-finite), not a complaint from the environment."""
        if self.pending_metrics is not None:
            svg0.check_finite(jax.device_get(self.pending_metrics), self.updates)
        raise FloatingPointError(
            f"learner step {self.updates}: the policy's actions are NaN or inf at env step "
            f"{self.env_steps}. The update diverged; lower the learning rates, raise min_scale "
            "or max_grad_norm clipping, and resume from the last checkpoint."
        )

    # -- learner updates owed by the update-to-data ratio ---------------------------------------
    def learn(self) -> None:
        """Dispatch the updates owed for the batched step about to be taken (it counts towards
        warm-up), on windows of what replay holds now; does not wait for them."""
        c = self.config
        if not learning_due(c, self.env_steps) or self.replay.num_sampleable() == 0:
            return
        self.update_debt += c.num_envs * c.updates_per_env_step
        metrics = None
        while self.update_debt >= 1.0:
            batch = self.replay.sample(c.batch_size)
            metrics = self.learner.update(batch)
            self.updates += 1
            self.update_debt -= 1.0
        if metrics is not None:
            self.pending_metrics = metrics

    def evaluate(self) -> dict[str, float]:
        c = self.config
        stats = run_episodes(
            self.state.networks.policy,
            self.eval_env,
            c.agent,
            c.eval_episodes,
            seed=c.seed + 10_007 + self.env_steps,
        )
        return stats.metrics("eval", task_names_of(self.eval_env))

    def run(
        self,
        total_env_steps: int | None = None,
        on_log: Callable[[dict[str, float]], None] | None = None,
        after_log: Callable[[Trainer], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> dict[str, float]:
        """Train until ``total_env_steps`` (default: the config's); returns the last eval.

        ``on_log(line)`` receives every log line; ``after_log(trainer)`` runs right after it
        (checkpoints go there); ``should_stop()`` is polled every step (a signal handler sets
        it) and ends the run early, without the final evaluation.
        """
        c = self.config
        total = c.total_env_steps if total_env_steps is None else total_env_steps
        logs = Cadence.after(self.env_steps, c.log_every)
        evals = Cadence.after(self.env_steps, c.eval_every)
        t_last, steps_last, updates_last = time.perf_counter(), self.env_steps, self.updates
        t_wall = t_last
        while self.env_steps < total:
            if should_stop is not None and should_stop():
                return self.last_eval
            ended = self.step()
            self.recent_window.extend(ended.outcomes())
            if logs.due(self.env_steps) or self.env_steps >= total:
                now = time.perf_counter()
                self.wall_time, t_wall = self.wall_time + now - t_wall, now
                line = self.log_line(now - t_last, steps_last, updates_last)
                if evals.due(self.env_steps):
                    self.last_eval = self.evaluate()
                    line.update(self.last_eval)
                self.history.append(line)
                if on_log is not None:
                    on_log(line)
                if after_log is not None:
                    after_log(self)
                # Evaluations and checkpoints are not training speed: restart the clock after.
                t_last, steps_last, updates_last = time.perf_counter(), self.env_steps, self.updates
        if not self.history or "eval/episode_return" not in self.history[-1]:
            self.last_eval = self.evaluate()
            line = {"env_steps": self.env_steps, **self.last_eval}
            self.history.append(line)
            if on_log is not None:
                on_log(line)
        return self.last_eval

    # -- checkpointing -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly, as a pytree of numpy arrays: learner
        state, replay, environment (when it has ``get_state``), the actor's latent memory, the
        current timestep, RNG keys, episode bookkeeping, counters and unlogged metrics."""
        out = {
            "learner": [np.asarray(x) for x in ArrayLayout.split(self.state)[0]],
            "replay": self.replay.state_dict(),
            "actor": {
                "key": np.asarray(self.act_key),
                "latent": np.asarray(self.actor_state.latent),
                "steps_held": np.asarray(self.actor_state.steps_held),
            },
            "timestep": timestep_to_dict(self.ts),
            "episodes": {
                "returns": self.tracker.returns,
                "lengths": self.tracker.lengths,
                "success": self.tracker.success,
                **recent_state(self.recent_window),
            },
            "counters": {
                "env_steps": np.int64(self.env_steps),
                "updates": np.int64(self.updates),
                "update_debt": np.float64(self.update_debt),
                "wall_time": np.float64(self.wall_time),
            },
            "pending_metrics": {k: np.asarray(v) for k, v in (self.pending_metrics or {}).items()},
        }
        if hasattr(self.env, "get_state"):
            out["env"] = self.env.get_state()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`. Raises ``ValueError`` naming what does not match
        (a checkpoint of another agent variant, network size or environment)."""
        self.state = learner_state_from_arrays(self.state, state["learner"])
        self.replay.load_state_dict(state["replay"])
        a = state["actor"]
        self.act_key = jnp.asarray(a["key"], self.act_key.dtype)
        self.actor_state = svg0.ActorState(
            jnp.asarray(a["latent"], jnp.float32), jnp.asarray(a["steps_held"], jnp.int32)
        )
        self.ts = timestep_from_dict(state["timestep"])
        e = state["episodes"]
        self.tracker.returns[:] = e["returns"]
        self.tracker.lengths[:] = e["lengths"]
        self.tracker.success[:] = e["success"]
        self.recent_window.clear()
        self.recent_window.extend(recent_from_state(e))
        c = state["counters"]
        self.env_steps, self.updates = int(c["env_steps"]), int(c["updates"])
        self.update_debt = float(c["update_debt"])
        self.wall_time = float(c.get("wall_time", 0.0))  # absent in older checkpoints
        pending = state.get("pending_metrics") or {}
        self.pending_metrics = {k: np.asarray(v) for k, v in pending.items()} or None
        if "env" in state and hasattr(self.env, "set_state"):
            self.env.set_state(state["env"])
        else:
            # This environment cannot restore mid-episode: start fresh episodes, and end the
            # replay's streams here so that no window bridges the old episode and the new one.
            self.replay.cut_episodes()
            self.ts = self.env.reset(self.config.seed + self.env_steps)
            self.actor_state = svg0.initial_actor_state(self.config.agent, self.config.num_envs)
            self.tracker = EpisodeTracker(self.config.num_envs)
            self.tracker.observe(self.ts)

    def log_line(self, elapsed: float, steps_before: int, updates_before: int) -> dict:
        """This trainer's log line: :func:`~behavior_priors.training.session.log_line` and the
        learner's metrics since the previous line (checked for NaN and inf)."""
        line = log_line(
            self.env_steps,
            self.updates,
            self.recent_window,
            elapsed,
            steps_before,
            updates_before,
            self.wall_time,
            task_names_of(self.env),
            self.tracker.reports_success,
        )
        if self.pending_metrics is not None:
            m = jax.device_get(self.pending_metrics)
            svg0.check_finite(m, self.updates)
            line.update({k: float(v) for k, v in m.items()})
            self.pending_metrics = None
        return line


def timestep_to_dict(ts: TimeStep, copies: slice = slice(None)) -> dict[str, Any]:
    """The ``copies`` of ``ts`` as the checkpoint's ``"timestep"`` entry (numpy arrays)."""
    return {
        "step_type": ts.step_type[copies],
        "observation": {k: v[copies] for k, v in ts.observation.items()},
        "reward": ts.reward[copies],
        "discount": ts.discount[copies],
        "task_id": ts.task_id[copies],
        "info": {k: np.asarray(v)[copies] for k, v in ts.info.items()},
    }


def timestep_from_dict(t: dict[str, Any]) -> TimeStep:
    """Inverse of :func:`timestep_to_dict`, with the dtypes environments return."""
    return TimeStep(
        np.asarray(t["step_type"], np.int8),
        {k: np.asarray(v, np.float32) for k, v in t["observation"].items()},
        np.asarray(t["reward"], np.float32),
        np.asarray(t["discount"], np.float32),
        np.asarray(t["task_id"], np.int32),
        {k: np.asarray(v) for k, v in (t.get("info") or {}).items()},
    )


def learning_due(config: TrainConfig, env_steps: int) -> bool:
    """Whether the batched step taken at ``env_steps`` (before it) ends warm-up or comes after
    it: updates start with the step that brings the count to ``config.warmup_steps``."""
    return env_steps + config.num_envs >= config.warmup_steps


def learner_state_from_specs(
    agent: svg0.SVG0Config,
    obs_shapes: dict[str, tuple[int, ...]],
    actions: ActionLayout,
    key: jax.Array,
) -> svg0.TrainState:
    """A fresh learner state for observations ``{key: shape}`` (no batch axis) and an action
    layout: what every loop trains and what loading fills with a checkpoint's arrays."""
    return svg0.init(agent, obs_shapes, actions.size, key, actions.discrete)


def learner_state_from_arrays(template: svg0.TrainState, arrays: Any) -> svg0.TrainState:
    """A learner state with ``template``'s structure and the checkpointed ``arrays`` (the list
    :meth:`Trainer.state_dict` saves under ``"learner"``). ``ValueError`` names the first array
    that does not fit (another agent variant, network size or observation keys)."""
    expected, layout = ArrayLayout.split(template)
    arrays = _as_list(arrays)
    if len(arrays) != len(expected):
        raise ValueError(
            f"checkpoint has {len(arrays)} learner arrays, this config builds "
            f"{len(expected)} (another agent variant?)"
        )
    for i, (a, b) in enumerate(zip(arrays, expected, strict=True)):
        if np.shape(a) != b.shape:
            raise ValueError(
                f"learner array {i} has shape {np.shape(a)} in the checkpoint and "
                f"{b.shape} in this config (other network sizes or observation keys?)"
            )
    restored = [jnp.asarray(a, b.dtype) for a, b in zip(arrays, expected, strict=True)]
    return layout.merge(restored)


def _as_list(x: Any) -> list:
    """Orbax restores a saved list as ``{"0": ..., "1": ...}``; give back the list."""
    if isinstance(x, dict):
        return [x[str(i)] for i in range(len(x))]
    return list(x)
