"""The processes of a distributed run, as plain classes (the driver wraps them in ``ray.remote``
so that they are usable, and testable, without Ray):

* :class:`ActorWorker`: steps its own batched environments with a recent copy of the policy and
  returns chunks of steps;
* :class:`Learner`: the replay (:class:`ShardedReplay`, one shard per actor) and the learner
  state; the same jitted, donating update as the single-process loop; checkpoints;
* :class:`Evaluator`: episodes of the deterministic policy, off the learner's critical path.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np

from behavior_priors import __version__
from behavior_priors.agents import svg0
from behavior_priors.agents.arrays import ArrayLayout
from behavior_priors.envs.registry import make
from behavior_priors.training.acting import make_array_actor
from behavior_priors.training.actions import ActionLayout
from behavior_priors.training.checkpoint import Checkpointer
from behavior_priors.training.config import TrainConfig
from behavior_priors.training.distributed.replay_service import ShardedReplay
from behavior_priors.training.episodes import EpisodeTracker, task_names_of
from behavior_priors.training.evaluation import run_episodes
from behavior_priors.training.loop import learner_state_from_arrays, learner_state_from_specs


def env_specs(config: TrainConfig) -> tuple[dict[str, Any], Any]:
    """``(observation spec, action spec)`` of the run's environment."""
    env = make(config.env, num_envs=1, **config.env_kwargs)
    try:
        return env.observation_spec(), env.action_spec()
    finally:
        if hasattr(env, "close"):
            env.close()


def _fresh_state(config: TrainConfig, obs_spec: dict[str, Any], action_spec: Any):
    shapes = {k: tuple(v.shape) for k, v in obs_spec.items()}
    actions = ActionLayout.from_spec(action_spec)
    return learner_state_from_specs(config.agent, shapes, actions, jax.random.PRNGKey(config.seed))


def policy_arrays(state: svg0.TrainState) -> list[np.ndarray]:
    """The policy's arrays as a flat list of numpy arrays, in :class:`ArrayLayout` order (what
    is broadcast to actors and the evaluator; flat, because the static parts of an Equinox
    module, such as activation functions, do not compare equal across processes: each process
    puts the policy back together with the layout of its own template)."""
    return [np.asarray(x) for x in ArrayLayout.split(state.networks.policy)[0]]


def _policy_layout(config: TrainConfig, obs_spec: dict[str, Any], action_spec: Any):
    """The :class:`ArrayLayout` of the run's policy, from a fresh state of this process."""
    return ArrayLayout.split(_fresh_state(config, obs_spec, action_spec).networks.policy)[1]


class ActorWorker:
    """One actor: ``num_envs`` copies of the run's environment and the policy's actor step.

    ``seed`` seeds its environments and action sampling; a restarted actor (``restarts > 0``)
    draws new seeds, so that it does not replay the episodes of its first life.
    """

    def __init__(
        self, config: TrainConfig, index: int, num_envs: int, seed: int, restarts: int = 0
    ):
        self.config, self.index = config, index
        self.env = make(config.env, num_envs=num_envs, **config.env_kwargs)
        self.num_envs = num_envs
        self.action_spec = self.env.action_spec()
        layout = _policy_layout(config, self.env.observation_spec(), self.action_spec)
        self._act = make_array_actor(config.agent, layout)  # the loop's actor, on the arrays
        if restarts:
            seed = int(np.random.default_rng([seed, restarts, os.getpid()]).integers(2**31))
        self.key = jax.random.PRNGKey(seed)
        self.ts = self.env.reset(seed)
        self.actor_state = svg0.initial_actor_state(config.agent, num_envs)
        self.tracker = EpisodeTracker(num_envs)
        self.tracker.observe(self.ts)
        self.fresh = True  # the learner cuts this actor's replay streams before its first chunk
        self.fail_after: int | None = None  # tests: raise in the environment after N steps
        self.step_delay = 0.0  # tests: seconds to sleep per step (a slow environment)

    def collect(self, params: Any, version: int, num_steps: int) -> tuple[dict, list]:
        """``num_steps`` batched steps with the policy ``params`` (``version``: the learner
        update they come from). Returns ``(stats, steps)``: ``stats`` is small (episode returns,
        successes and task ids, whether the environment reports success, counts, the version,
        whether this is the first chunk of this process),
        ``steps`` is ``[(timestep, action [B, Da], extras), ...]`` for the replay."""
        policy = jax.device_put(list(params))  # on the device once per chunk, not per step
        steps, returns, successes, task_ids = [], [], [], []
        actions = ActionLayout.from_spec(self.action_spec)
        for _ in range(num_steps):
            if self.fail_after is not None:
                self.fail_after -= 1
                if self.fail_after < 0:
                    raise RuntimeError(f"environment of actor {self.index} failed (test hook)")
            if self.step_delay:
                time.sleep(self.step_delay)
            action, extras, self.actor_state, self.key = self._act(
                policy, self.ts.observation, self.ts.first(), self.actor_state, self.key
            )
            action = np.asarray(action)
            steps.append((self.ts, action, jax.tree.map(np.asarray, extras)))
            self.ts = self.env.step(actions.to_env(action))
            ended = self.tracker.observe(self.ts)
            returns += list(map(float, ended.returns))
            successes += list(map(float, ended.successes))
            task_ids += ended.task_ids
        stats = {
            "actor": self.index,
            "env_steps": num_steps * self.num_envs,
            "returns": returns,
            "successes": successes,
            "task_ids": task_ids,
            "reports_success": self.tracker.reports_success,
            "version": version,
            "fresh": self.fresh,
            "pid": os.getpid(),
        }
        self.fresh = False
        return stats, steps

    def set_fail_after(self, steps: int | None) -> None:
        """Test hook: the environment raises after ``steps`` more steps."""
        self.fail_after = steps

    def set_step_delay(self, seconds: float) -> None:
        """Test hook: sleep ``seconds`` before every step, as a slow environment would."""
        self.step_delay = float(seconds)

    def pid(self) -> int:
        return os.getpid()


class Learner:
    """The replay and the learner state of a distributed run, and its checkpoints.

    Checkpoints hold what ``behavior_priors.training.load`` reads (``learner``), the replay's
    shards and the counters; a resumed run continues from them with fresh actor episodes.
    """

    def __init__(self, config: TrainConfig, num_actors: int, envs_per_actor: int):
        self.config = config
        obs_spec, self.action_spec = env_specs(config)
        self.obs_shapes = {k: tuple(v.shape) for k, v in obs_spec.items()}
        # The state stays as the donating update's arrays (as in the single-process loop).
        self.learner = svg0.InPlaceLearner(
            config.agent, _fresh_state(config, obs_spec, self.action_spec)
        )
        actions = ActionLayout.from_spec(self.action_spec)
        self.replay = ShardedReplay(
            config.replay_capacity,
            num_actors,
            envs_per_actor,
            config.sequence_length,
            obs_spec,
            actions.replay_shape,
            config.agent.latent_size,
            seed=config.seed,
            action_dtype=actions.replay_dtype,
        )
        self.env_steps = 0  # steps stored in replay
        self.updates = 0
        self.wall_time = 0.0  # the driver's training seconds, kept across resumes
        self._checkpointer: Checkpointer | None = None

    def add(self, shard: int, steps: list, cut: bool) -> int:
        """Store an actor's chunk; returns the env steps stored so far."""
        self.replay.add_chunk(shard, steps, cut)
        self.env_steps += len(steps) * self.replay.shards[shard].num_envs
        return self.env_steps

    def update(self, n: int) -> tuple[int, dict[str, float] | None]:
        """``n`` updates (fewer if replay holds no window yet); returns ``(updates so far,
        metrics of the last update)``."""
        metrics = None
        for _ in range(n):
            if self.replay.num_sampleable() == 0:
                break
            batch = self.replay.sample(self.config.batch_size)
            metrics = self.learner.update(batch)
            self.updates += 1
        if metrics is not None:
            metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
            svg0.check_finite(metrics, self.updates)
        return self.updates, metrics

    @property
    def state(self) -> svg0.TrainState:
        """The learner state. An update deletes the arrays of the one before it."""
        return self.learner.state

    @state.setter
    def state(self, state: svg0.TrainState) -> None:
        self.learner.reset(state)

    def policy_params(self) -> list[np.ndarray]:
        """:func:`policy_arrays` of the current state, without rebuilding it."""
        return [np.asarray(x) for x in self.learner.policy_arrays()]

    def specs(self) -> dict[str, Any]:
        """The ``env_specs`` entry of ``run.json``, as the single-process loop writes it."""
        from behavior_priors.training.run import env_specs as run_env_specs

        return run_env_specs(self)

    def counters(self) -> tuple[int, int]:
        return self.env_steps, self.updates

    def get_state(self) -> svg0.TrainState:
        return self.state

    def state_dict(self) -> dict[str, Any]:
        params, _ = eqx.partition(self.state, eqx.is_array)
        return {
            "learner": [np.asarray(x) for x in jax.tree.leaves(params)],
            "replay": self.replay.state_dict(),
            "counters": {
                "env_steps": np.int64(self.env_steps),
                "updates": np.int64(self.updates),
                "wall_time": np.float64(self.wall_time),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = learner_state_from_arrays(self.state, state["learner"])
        self.replay.load_state_dict(state["replay"])
        c = state["counters"]
        self.env_steps, self.updates = int(c["env_steps"]), int(c["updates"])
        self.wall_time = float(c.get("wall_time", 0.0))

    def _checkpoints(self, checkpoint_dir: str) -> Checkpointer:
        # One Checkpointer for the run: it knows which checkpoints it wrote itself (any other
        # at the same step is from before a resume and gets replaced).
        if self._checkpointer is None or str(self._checkpointer.directory) != checkpoint_dir:
            self._checkpointer = Checkpointer(Path(checkpoint_dir))
        return self._checkpointer

    def save(self, checkpoint_dir: str, extra_meta: dict[str, Any], wall_time: float) -> int:
        """Checkpoint into ``checkpoint_dir`` at the stored env steps; returns that step."""
        self.wall_time = wall_time
        meta = {"version": __version__, "config": self.config.to_dict(), **extra_meta}
        self._checkpoints(checkpoint_dir).save(self.env_steps, self.state_dict(), meta)
        return self.env_steps

    def restore(self, checkpoint_dir: str, step: int | None = None) -> tuple[int, int, float]:
        """Continue from checkpoint ``step`` (default: the latest); ``(env_steps, updates,
        wall_time)``. A run that stopped before its first checkpoint starts again at 0."""
        checkpoints = self._checkpoints(checkpoint_dir)
        if step is None and not checkpoints.steps():
            return 0, 0, 0.0
        state, _ = checkpoints.restore(step)
        self.load_state_dict(state)
        return self.env_steps, self.updates, self.wall_time

    def pid(self) -> int:
        return os.getpid()


class Evaluator:
    """Evaluation episodes of the deterministic policy in their own process."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.env = make(config.env, num_envs=min(config.eval_episodes, 8), **config.env_kwargs)
        self._layout = _policy_layout(config, self.env.observation_spec(), self.env.action_spec())

    def evaluate(self, params: Any, env_steps: int) -> dict[str, float]:
        c = self.config
        policy = self._layout.merge(list(params))
        stats = run_episodes(
            policy, self.env, c.agent, c.eval_episodes, seed=c.seed + 10_007 + env_steps
        )
        return stats.metrics("eval", self.task_names())

    def task_names(self) -> list[str] | None:
        """The environment's task names (the labels of per-task metrics), or ``None``."""
        return task_names_of(self.env)
