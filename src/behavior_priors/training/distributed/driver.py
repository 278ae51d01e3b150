"""The driver of a distributed run: Ray actors feed one learner through the replay.

Processes (each a Ray actor; see :mod:`.workers`)::

    ActorWorker x N --chunks (object store)--> Learner (replay shards + jitted update)
          ^                                        |
          +------ policy parameters (ray.put) -----+----> Evaluator

The driver (this process) schedules: it keeps one ``collect`` task in flight per actor, forwards
each chunk's object reference to the learner (the data goes from the actor's node to the
learner's without passing through the driver), asks the learner for as many updates as the
update-to-data ratio owes, broadcasts the policy every ``broadcast_every`` updates, runs
evaluations on the evaluator while training continues, logs, and checkpoints through the
learner.

Backpressure: with E environment steps received and ``r = updates_per_env_step``, the learner
owes ``r * (E - warmup)`` updates. An actor whose chunk arrives while the learner is behind by
more than ``utd_tolerance`` of that (plus one chunk of every actor, the work in flight) is
parked until the learner catches up; a learner that owes less than one update waits for data.
The achieved ratio, the time actors spent parked and the time the learner waited are logged
(``dist/*``).

Faults: an actor that dies, or whose environment raises, is restarted by Ray (the task error
kills it first) with new seeds, and its next chunk cuts its replay streams. The driver counts a
restart when the actor's task fails (for a killed process Ray reports ``ActorUnavailableError``
until the new one is up: only the first of these counts), or, failing that, when a chunk of a new
process arrives; each goes to ``events.jsonl``, stderr and the ``dist/actor_restarts`` metric.
What the actor sent before is in the replay, which lives with the learner. Losing the learner
stops the run: resume from the latest checkpoint with ``behavior-priors train --resume RUN_DIR``.

Not bit-reproducible: actors race, so the order in which chunks arrive varies. A resumed run
continues the learner and replay exactly and starts fresh actor episodes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from behavior_priors.training.config import TrainConfig
from behavior_priors.training.distributed.config import DistConfig
from behavior_priors.training.distributed.workers import ActorWorker, Evaluator, Learner
from behavior_priors.training.loop import RunResult
from behavior_priors.training.session import (
    Cadence,
    Interrupted,
    Progress,
    RunSession,
    StopFlag,
    log_line,
)

EVENTS_FILE = "events.jsonl"
# Actors and the evaluator run tiny networks: one XLA thread each leaves the cores to the
# environments and the learner; they never take a GPU.
_WORKER_ENV = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "JAX_PLATFORMS": "cpu",
}


class LearnerLost(RuntimeError):
    """The learner process died; the run stops (resume from its latest checkpoint)."""


def import_ray():
    """``ray``, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(
            "distributed training needs Ray: pip install 'behavior-priors[dist]'"
        ) from e
    return ray


def utd_target(env_steps: int, config: TrainConfig) -> float:
    """Updates owed after ``env_steps`` environment steps: ``r * (E - warmup)``, at least 0."""
    return config.updates_per_env_step * max(0, env_steps - config.warmup_steps)


def actors_may_continue(
    env_steps: int, updates: int, config: TrainConfig, dist: DistConfig, envs_per_actor: int
) -> bool:
    """Backpressure: may actors send more data, or is the learner too far behind?"""
    target = utd_target(env_steps, config)
    in_flight = config.updates_per_env_step * dist.num_actors * dist.chunk_steps * envs_per_actor
    return target - updates <= dist.utd_tolerance * target + in_flight


def _remote_actor_class(ray, dist: DistConfig):
    """:class:`ActorWorker` as a restartable Ray actor that draws new seeds when restarted."""

    class _Actor(ActorWorker):
        def __init__(self, config, index, num_envs, seed):
            restarted = ray.get_runtime_context().was_current_actor_reconstructed
            super().__init__(config, index, num_envs, seed, restarts=int(restarted))

    return ray.remote(
        num_cpus=dist.actor_cpus,
        max_restarts=dist.max_actor_restarts,
        max_task_retries=0,
        runtime_env={"env_vars": _WORKER_ENV},
    )(_Actor)


def train_distributed(
    config: TrainConfig | None,
    run_dir: str | Path,
    dist: DistConfig | None = None,
    *,
    resume: bool = False,
    checkpoint_step: int | None = None,
    progress: bool = False,
    on_log: Callable[[dict[str, float]], None] | None = None,
    on_start: Callable[[dict[str, Any]], None] | None = None,
    trust_code: bool = False,
) -> RunResult:
    """Train ``config`` with ``dist.num_actors`` Ray actors and one learner.

    The run directory is laid out as :func:`~behavior_priors.training.train` lays it out
    (``run.json`` also records ``distributed``), plus ``events.jsonl`` (actor restarts), so
    ``load``, ``eval``, ``video``, ``plot`` work on it. Connects to ``dist.ray_address`` or,
    without one, starts a local Ray instance for the run (shut down at the end).

    Args:
      config: the run's config (``None`` with ``resume``).
      dist: the distributed settings (with ``resume``: ``None`` or the run's own).
      resume: continue ``run_dir`` from its latest (or ``checkpoint_step``) checkpoint.
      on_log: receives every log line.
      on_start: receives ``{"actors": [...], "learner": ..., "ray": ray}`` once the processes
        run (tests use it to kill an actor).
      trust_code: with ``resume``, consent to an environment in ``run.json`` named as
        ``module:callable`` (see :class:`~behavior_priors.training.session.RunSession`).
    """
    ray = import_ray()
    session = RunSession(
        run_dir, config, resume=resume, checkpoint_step=checkpoint_step, trust_code=trust_code
    )
    with session:  # the writer's lock is released on every path
        return _train_in_session(ray, session, dist, progress, on_log, on_start)


def _train_in_session(ray, session: RunSession, dist, progress, on_log, on_start) -> RunResult:
    run_dir, resume = session.run_dir, session.resume
    if resume:
        info = session.info
        if "distributed" not in info:
            raise ValueError(f"{run_dir} is a single-process run; resume it without --distributed")
        saved_dist = DistConfig(**info["distributed"])
        if dist is not None and dist != saved_dist:
            raise ValueError(
                f"--resume continues {run_dir} with its own distributed settings "
                f"({saved_dist}); drop the new ones"
            )
        dist = saved_dist
    dist = dist or DistConfig()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if dist.ray_address is None:
            # A local instance: room for every process, whatever the core count.
            kwargs["num_cpus"] = max(
                os.cpu_count() or 1, math.ceil(dist.num_actors * dist.actor_cpus) + 2
            )
        # "local": a new instance even when a cluster runs on this machine (ray.init(None) would
        # join that one).
        ray.init(address=dist.ray_address or "local", **kwargs)
        started = True
    try:
        driver = _Driver(ray, session, dist)
        return driver.run(progress, on_log, on_start)
    finally:
        if started:
            ray.shutdown()


class _Driver:
    def __init__(self, ray, session: RunSession, dist: DistConfig):
        config, run_dir = session.config, session.run_dir
        self.ray, self.session, self.dist = ray, session, dist
        self.config, self.run_dir = config, run_dir
        self.B = dist.envs_per_actor or config.num_envs
        self.ckpt_dir = str((run_dir / "checkpoints").resolve())
        learner_cls = ray.remote(num_cpus=1, num_gpus=dist.learner_gpus, max_restarts=0)(Learner)
        self.learner = learner_cls.remote(config, dist.num_actors, self.B)
        self.env_steps, self.updates, self.wall_time = 0, 0, 0.0
        if session.resume:
            self.env_steps, self.updates, self.wall_time = self._learner_call(
                self.learner.restore.remote(self.ckpt_dir, session.checkpoint_step)
            )
            session.start(self.env_steps)
        else:
            specs = ray.get(self.learner.specs.remote())
            session.start(0, env_specs=specs, distributed=dataclasses.asdict(dist))
        actor_cls = _remote_actor_class(ray, dist)
        self.actors = [
            actor_cls.remote(config, i, self.B, config.seed * 1_000 + 7 * i + self.env_steps)
            for i in range(dist.num_actors)
        ]
        self.evaluator = ray.remote(num_cpus=0, runtime_env={"env_vars": _WORKER_ENV})(
            Evaluator
        ).remote(config)
        self.params_ref = self.learner.policy_params.remote()
        self.version = self.updates
        self.restarts = [0] * dist.num_actors
        self.seen = [False] * dist.num_actors  # a chunk arrived from this actor
        self.rejoining = [False] * dist.num_actors  # failed; its next chunk starts a new life
        self.history: list[dict[str, float]] = list(session.history)
        self.recent: deque = deque(maxlen=100)  # (return, success, task id) of episodes
        self.reports_success = True  # the actors' environment's, from their chunks
        # The environment's task names (per-task metrics' labels), asked of the evaluator,
        # which has built the environment; fetched at the first log line, not waited for here.
        self._task_names_ref: Any = self.evaluator.task_names.remote()
        self._task_names: list[str] | None = None
        self.last_eval: dict[str, float] = session.last_eval()

    # -- events ----------------------------------------------------------------------------------
    def _event(self, kind: str, message: str, **fields: Any) -> None:
        """Append ``kind`` and ``fields`` to ``events.jsonl``; ``message`` goes to stderr."""
        record = {"time": time.time(), "env_steps": self.env_steps, "event": kind, **fields}
        data = (json.dumps(record) + "\n").encode()
        # One write(2) on an O_APPEND descriptor: a killed driver leaves the line whole or
        # absent (a buffered file may flush a long line in pieces).
        fd = os.open(self.run_dir / EVENTS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        print(f"[distributed] {message}", file=sys.stderr, flush=True)

    def _lost(self, error: Exception) -> LearnerLost:
        return LearnerLost(
            f"the learner died ({type(error).__name__}); resume from the latest checkpoint "
            f"with: behavior-priors train --resume {self.run_dir}"
        )

    def _learner_call(self, ref):
        """``ray.get`` of a learner task; a dead learner becomes :class:`LearnerLost`."""
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayActorError as e:
            raise self._lost(e) from e

    def _save(self) -> None:
        self._learner_call(
            self.learner.save.remote(self.ckpt_dir, {"distributed": True}, self.wall_time)
        )

    # -- the loop --------------------------------------------------------------------------------
    def run(self, progress: bool, on_log, on_start) -> RunResult:
        ray, c, d = self.ray, self.config, self.dist
        final = self.session.finished_eval(self.env_steps)
        if final is not None:  # resumed after it finished: nothing to do, nothing to add
            self.session.close()
            state = self._learner_call(self.learner.get_state.remote())
            return RunResult(self.run_dir, self.env_steps, self.updates, final, state, self.history)
        chunk = d.chunk_steps
        inflight: dict[Any, tuple[int, Any]] = {}  # stats ref -> (actor, chunk ref)
        parked: dict[int, float] = {}  # actor -> time parked
        retry: dict[int, float] = {}  # restarting actor -> when to send it a task again
        update_ref = eval_ref = None
        pending_metrics: dict[str, float] | None = None
        pending_eval: dict[str, float] | None = None
        paused_s = idle_s = 0.0
        lags: list[int] = []
        idle_since: float | None = time.perf_counter()

        def submit(i: int) -> None:
            stats_ref, chunk_ref = (
                self.actors[i]
                .collect.options(num_returns=2)
                .remote(self.params_ref, self.version, chunk)
            )
            inflight[stats_ref] = (i, chunk_ref)

        def may_act() -> bool:
            return actors_may_continue(self.env_steps, self.updates, c, d, self.B)

        for i in range(d.num_actors):
            submit(i)
        if on_start is not None:
            on_start({"actors": self.actors, "learner": self.learner, "ray": ray})
        logs = Cadence.after(self.env_steps, c.log_every)
        evals = Cadence.after(self.env_steps, c.eval_every)
        checkpoints = Cadence.after(self.env_steps, c.checkpoint_every)
        t_last, steps_last, updates_last = time.perf_counter(), self.env_steps, self.updates
        t_wall = t_last
        display = Progress(c.total_env_steps, self.env_steps) if progress else None
        if display is not None:
            display.start()
        try:
            with StopFlag() as stop:
                while self.env_steps < c.total_env_steps and stop.signum is None:
                    # The learner: as many updates as the ratio owes, a few per call.
                    if update_ref is None and self.env_steps >= c.warmup_steps:
                        owed = math.floor(utd_target(self.env_steps, c)) - self.updates
                        if owed >= 1:
                            update_ref = self.learner.update.remote(min(owed, d.broadcast_every))
                            if idle_since is not None:
                                idle_s += time.perf_counter() - idle_since
                                idle_since = None
                    for i in [i for i in parked if may_act()]:
                        paused_s += time.perf_counter() - parked.pop(i)
                        submit(i)
                    for i in [i for i, t in retry.items() if time.perf_counter() >= t]:
                        del retry[i]
                        submit(i)
                    waiting = [*inflight, *(r for r in (update_ref, eval_ref) if r is not None)]
                    if not waiting:  # every actor parked or restarting, the learner idle
                        time.sleep(0.05)
                        continue
                    ready, _ = ray.wait(waiting, num_returns=1, timeout=0.5)
                    for ref in ready:
                        if ref is update_ref:
                            update_ref = None
                            idle_since = time.perf_counter()
                            self.updates, metrics = self._learner_call(ref)
                            pending_metrics = metrics or pending_metrics
                            if self.updates - self.version >= d.broadcast_every:
                                self.params_ref = self.learner.policy_params.remote()
                                self.version = self.updates
                        elif ref is eval_ref:
                            eval_ref = None
                            self.last_eval = pending_eval = ray.get(ref)
                        else:
                            i, chunk_ref = inflight.pop(ref)
                            try:
                                stats = ray.get(ref)
                            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as e:
                                # A killed process is the first ActorUnavailableError; every task
                                # sent while Ray restarts it fails so too, and is the same
                                # restart.
                                unavailable = isinstance(e, ray.exceptions.ActorUnavailableError)
                                if not (unavailable and self.rejoining[i]):
                                    self._restart(i, e)
                                retry[i] = time.perf_counter() + 0.5  # ask again
                                continue
                            if stats["fresh"] and (self.seen[i] or self.rejoining[i]):
                                if not self.rejoining[i]:  # a new process without a task error
                                    self._restart(i, None)
                                self._event(
                                    "actor_rejoined",
                                    f"actor {i} rejoined (pid {stats['pid']})",
                                    actor=i,
                                    pid=stats["pid"],
                                )
                            self.seen[i], self.rejoining[i] = True, False
                            self.learner.add.remote(i, chunk_ref, stats["fresh"])
                            self.env_steps += stats["env_steps"]
                            self.recent.extend(
                                zip(
                                    stats["returns"],
                                    stats["successes"],
                                    stats["task_ids"],
                                    strict=True,
                                )
                            )
                            self.reports_success = stats["reports_success"]
                            lags.append(self.updates - stats["version"])
                            if may_act():
                                submit(i)
                            else:
                                parked[i] = time.perf_counter()
                    if eval_ref is None and evals.due(self.env_steps):
                        eval_ref = self.evaluator.evaluate.remote(self.params_ref, self.env_steps)
                    if logs.due(self.env_steps) or self.env_steps >= c.total_env_steps:
                        now = time.perf_counter()
                        self.wall_time, t_wall = self.wall_time + now - t_wall, now
                        if idle_since is not None:
                            idle_s += now - idle_since
                            idle_since = now
                        paused_s += sum(now - t for t in parked.values())
                        parked = dict.fromkeys(parked, now)
                        elapsed = max(now - t_last, 1e-9)
                        line = self._line(elapsed, steps_last, updates_last)
                        # Clamped: the clocks are read at slightly different moments.
                        line["dist/actor_paused_frac"] = min(
                            1.0, paused_s / (elapsed * d.num_actors)
                        )
                        line["dist/learner_idle_frac"] = min(1.0, idle_s / elapsed)
                        line["dist/policy_lag_updates"] = float(np.mean(lags)) if lags else 0.0
                        line.update(pending_metrics or {})
                        line.update(pending_eval or {})
                        pending_metrics = pending_eval = None
                        paused_s = idle_s = 0.0
                        lags.clear()
                        self._log(line, on_log, display)
                        t_last, steps_last, updates_last = now, self.env_steps, self.updates
                    if checkpoints.due(self.env_steps):
                        self._save()
                if stop.signum is not None:
                    if update_ref is not None:
                        self._learner_call(update_ref)
                    self._save()
                    raise Interrupted(self.run_dir, self.env_steps, stop.signum)
            # Finish: the updates still owed (as the single-process loop does them), a
            # checkpoint, and a final evaluation of the final policy.
            if update_ref is not None:
                self.updates, _ = self._learner_call(update_ref)
            owed = math.floor(utd_target(self.env_steps, c)) - self.updates
            if owed >= 1:
                self.updates, _ = self._learner_call(self.learner.update.remote(owed))
            self._save()
            self.env_steps, self.updates = ray.get(self.learner.counters.remote())
            final = ray.get(
                self.evaluator.evaluate.remote(self.learner.policy_params.remote(), self.env_steps)
            )
            self.last_eval = final
            line = {"env_steps": self.env_steps, **final}
            self._log(line, on_log, None)
            self.session.finish(self.env_steps, final)
            state = ray.get(self.learner.get_state.remote())
        finally:
            if display is not None:
                display.stop()
            self.session.close()
        return RunResult(self.run_dir, self.env_steps, self.updates, final, state, self.history)

    def _restart(self, i: int, error: Exception | None) -> None:
        """Actor ``i`` failed (``error``: its task's; ``None``: a chunk came from a new process):
        record the restart, kill the actor if it still lives (its environment raised), and let
        Ray restart it."""
        self.restarts[i] += 1
        self.rejoining[i] = True
        if error is None:
            reason = short = "its process was restarted (it died between tasks)"
        else:
            lines = [ln for ln in str(error).strip().splitlines() if ln.strip()]
            reason = f"{type(error).__name__}: {lines[-1][:300] if lines else ''}"
            short = reason[:100]
            if isinstance(error, self.ray.exceptions.RayActorError):
                short = f"its process was lost ({type(error).__name__})"
        self._event(
            "actor_restarted",
            f"actor {i} restarted ({self.restarts[i]} so far): {short}",
            actor=i,
            restarts=self.restarts[i],
            reason=reason,
        )
        if self.restarts[i] > self.dist.max_actor_restarts:
            raise RuntimeError(
                f"actor {i} failed {self.restarts[i]} times (max_actor_restarts="
                f"{self.dist.max_actor_restarts}); last error: {reason}"
            )
        # A task also fails when its input, the parameters from the learner, is lost.
        self._learner_call(self.learner.pid.remote())
        if isinstance(error, self.ray.exceptions.RayTaskError):
            self.ray.kill(self.actors[i], no_restart=False)

    def _line(self, elapsed: float, steps_before: int, updates_before: int) -> dict[str, float]:
        c = self.config
        if self._task_names_ref is not None:
            self._task_names, self._task_names_ref = self.ray.get(self._task_names_ref), None
        line = log_line(
            self.env_steps,
            self.updates,
            self.recent,
            elapsed,
            steps_before,
            updates_before,
            self.wall_time,
            self._task_names,
            self.reports_success,
        )
        learned_from = max(1, self.env_steps - c.warmup_steps)
        line["dist/utd_ratio"] = self.updates / learned_from
        line["dist/utd_target"] = c.updates_per_env_step
        line["dist/actor_restarts"] = float(sum(self.restarts))
        return line

    def _log(self, line: dict[str, float], on_log, display) -> None:
        self.history.append(line)
        self.session.log(line)
        if display is not None:
            display.update(line)
        if on_log is not None:
            on_log(line)
