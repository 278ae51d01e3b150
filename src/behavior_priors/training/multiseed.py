"""Several seeds of one config in one process, in lockstep: one vmapped actor call and one
vmapped learner update serve every seed.

Small networks leave a CPU mostly idle between the many small kernels of an update; stacking S
seeds' parameters and batches along a new leading axis makes each kernel S times larger for
about the same overhead. On the 2-core development machine one vmapped update of 4 seeds of
the demo agent does 2.1x the seed-updates per second of 4 separate updates, and 4 seeds train
1.33x sooner than one after another (1.48x as 2 processes of 2 vmapped seeds; 1.19x as 2
processes of one seed each): ``benchmarks/many_seeds.py``, ``docs/benchmarks.md``, "Many seeds".

Each seed keeps its own :class:`~behavior_priors.training.loop.Trainer` (environments, replay,
episode bookkeeping, evaluation, random streams): a seed's run is the run ``train`` would make
with that seed, except that vmapped float arithmetic may round differently in the last bits, so
trajectories agree closely at first and drift apart later, as two machines' would.
:func:`train_seeds` writes one ordinary run directory per seed (``run.json``, ``metrics.jsonl``,
checkpoints, ``final_eval.json``): ``load``, ``eval``, ``video``, ``plot``, the experiment
reports and ``train --resume`` work on them as on any run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from behavior_priors.agents import svg0
from behavior_priors.agents.arrays import ArrayLayout
from behavior_priors.training.acting import make_vmapped_actor
from behavior_priors.training.config import TrainConfig
from behavior_priors.training.loop import RunResult, Trainer, learning_due
from behavior_priors.training.run import env_specs, restore_trainer
from behavior_priors.training.session import (
    RUN_FILE,
    Cadence,
    Interrupted,
    RunSession,
    StopFlag,
)


def _stack(trees: Sequence[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _np_stack(trees: Sequence[Any]) -> Any:
    # Host arrays (observations, replay batches) stack in numpy: one transfer per leaf later,
    # instead of a device dispatch per seed and leaf.
    return jax.tree.map(lambda *xs: np.stack(xs), *trees)


def _index(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda x: x[i], tree)


class MultiSeedTrainer:
    """S :class:`Trainer` s of one config (seeds ``seeds``) advanced together.

    The learner states live stacked in :attr:`stacked`: the arrays of one seed's state in
    :class:`~behavior_priors.agents.arrays.ArrayLayout` order (the policy's first), each with a
    leading ``[S]`` axis, which the vmapped update and actor take and return as they are, as
    :class:`~behavior_priors.agents.svg0.InPlaceLearner` does for one seed. :meth:`sync` copies
    each seed's slice (and actor memory and counters) back into its trainer, which is what
    evaluation, logging and checkpoints read.
    """

    def __init__(self, config: TrainConfig, seeds: Sequence[int]):
        seeds = [int(s) for s in seeds]
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct and non-empty, got {seeds}")
        self.config = config
        self.seeds = seeds
        self.trainers = [Trainer(config.replace(seed=s)) for s in seeds]
        self._layout: ArrayLayout | None = None
        self.load_from_trainers()

    # -- stacking ----------------------------------------------------------------------------
    def load_from_trainers(self) -> None:
        """Stack the trainers' learner states and actor memories (after init or a restore)."""
        t = self.trainers
        counters = {(x.env_steps, x.updates, x.update_debt) for x in t}
        if len(counters) != 1:
            raise ValueError(
                "seeds trained together must be at the same point (env steps, updates); got "
                + ", ".join(f"seed {s}: {x.env_steps}" for s, x in zip(self.seeds, t, strict=True))
            )
        splits = [ArrayLayout.split(x.state) for x in t]
        layout = splits[0][1]
        if any(other != layout for _, other in splits[1:]):
            raise ValueError("seeds trained together must have learner states of one layout")
        if layout != self._layout:  # first load, or a restored state of another structure
            self._num_policy, policy_layout = svg0.policy_prefix(t[0].state)
            self._act = make_vmapped_actor(self.config.agent, policy_layout)
            self._update = _vmapped_update(self.config.agent, layout)
            self._layout = layout
        self.stacked = [jnp.stack(xs) for xs in zip(*(a for a, _ in splits), strict=True)]
        self.actor_state = _stack([x.actor_state for x in t])
        pending = [x.pending_metrics for x in t]
        self.pending_metrics = None if pending[0] is None else _np_stack(pending)

    def sync(self) -> None:
        """Write each seed's learner state, actor memory and latest metrics back into its
        trainer."""
        metrics = None
        if self.pending_metrics is not None:
            metrics = jax.device_get(self.pending_metrics)
            self.pending_metrics = None
        for i, t in enumerate(self.trainers):
            t.state = self._layout.merge([a[i] for a in self.stacked])
            t.actor_state = _index(self.actor_state, i)
            if metrics is not None:
                t.pending_metrics = _index(metrics, i)

    @property
    def env_steps(self) -> int:
        return self.trainers[0].env_steps

    # -- one lockstep iteration --------------------------------------------------------------
    def step(self) -> None:
        """One iteration for every seed, in :meth:`Trainer.step`'s order: dispatch the actor,
        dispatch the owed updates, then wait for the actions and step the environments."""
        # Each seed's key is split inside the vmapped actor, as Trainer's actor does: one
        # dispatch for all seeds instead of a split per seed and a stack.
        keys = np.stack([np.asarray(t.act_key) for t in self.trainers])
        policy = self.stacked[: self._num_policy]
        obs = _np_stack([t.ts.observation for t in self.trainers])
        first = np.stack([t.ts.first() for t in self.trainers])
        action, extras, self.actor_state, keys = self._act(
            policy, obs, first, self.actor_state, keys
        )
        self.learn()
        action, extras, keys = (
            np.asarray(action),
            jax.tree.map(np.asarray, extras),
            np.asarray(keys),
        )
        for i, t in enumerate(self.trainers):
            t.act_key = keys[i]
            ended = t.take_action(action[i], _index(extras, i))
            t.recent_window.extend(zip(ended.returns, ended.successes, strict=True))

    def learn(self) -> None:
        c, lead = self.config, self.trainers[0]
        if not learning_due(c, lead.env_steps) or any(
            t.replay.num_sampleable() == 0 for t in self.trainers
        ):
            return
        debt = lead.update_debt + c.num_envs * c.updates_per_env_step
        metrics = None
        while debt >= 1.0:
            batch = _np_stack([t.replay.sample(c.batch_size) for t in self.trainers])
            self.stacked, metrics = self._update(self.stacked, batch)
            debt -= 1.0
            for t in self.trainers:
                t.updates += 1
        for t in self.trainers:
            t.update_debt = debt
        if metrics is not None:
            self.pending_metrics = metrics  # stacked; split per seed at the next log

    def run(
        self,
        on_log: Callable[[int, dict[str, float]], None] | None = None,
        after_log: Callable[[MultiSeedTrainer], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[dict[str, float]]:
        """Train every seed to ``config.total_env_steps``; returns each seed's last evaluation.

        ``on_log(i, line)`` gets seed i's log lines (the same lines :meth:`Trainer.run` makes);
        ``after_log(self)`` runs after each round of them (checkpoints go there);
        ``should_stop()`` ends the run early, as in :meth:`Trainer.run`.
        """
        c = self.config
        ts = self.trainers
        logs = Cadence.after(self.env_steps, c.log_every)
        evals = Cadence.after(self.env_steps, c.eval_every)
        t_last, steps_last, updates_last = time.perf_counter(), self.env_steps, ts[0].updates
        t_wall = t_last
        while self.env_steps < c.total_env_steps:
            if should_stop is not None and should_stop():
                self.sync()
                return [t.last_eval for t in ts]
            self.step()
            if logs.due(self.env_steps) or self.env_steps >= c.total_env_steps:
                self.sync()
                now = time.perf_counter()
                evaluate = evals.due(self.env_steps)
                for i, t in enumerate(ts):
                    # Wall time and speed are the whole process's, shared by its seeds.
                    t.wall_time += now - t_wall
                    line = t.log_line(now - t_last, steps_last, updates_last)
                    if evaluate:
                        t.last_eval = t.evaluate()
                        line.update(t.last_eval)
                    t.history.append(line)
                    if on_log is not None:
                        on_log(i, line)
                t_wall = now
                if after_log is not None:
                    after_log(self)
                t_last, steps_last, updates_last = (
                    time.perf_counter(),
                    self.env_steps,
                    ts[0].updates,
                )
        self.sync()
        for i, t in enumerate(ts):
            if not t.history or "eval/episode_return" not in t.history[-1]:
                t.last_eval = t.evaluate()
                line = {"env_steps": t.env_steps, **t.last_eval}
                t.history.append(line)
                if on_log is not None:
                    on_log(i, line)
        return [t.last_eval for t in ts]


def _vmapped_update(agent: svg0.SVG0Config, layout: ArrayLayout):
    """``update(stacked arrays, stacked batch) -> (stacked arrays, stacked metrics)``: one
    seed's :func:`svg0.update` on its state's arrays (``layout``), vmapped over seeds."""

    def one(arrays, batch):
        new, metrics = svg0.update(agent, layout.merge(arrays), batch)
        return ArrayLayout.split(new)[0], metrics

    # The stacked state is owned by the trainer and replaced every step: donate its buffers.
    return jax.jit(jax.vmap(one), donate_argnums=0)


def train_seeds(
    config: TrainConfig,
    seeds: Sequence[int],
    run_dirs: Sequence[str | Path],
    *,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
    init_states: Sequence[Callable[[svg0.TrainState], tuple[svg0.TrainState, dict[str, Any]]]]
    | None = None,
) -> list[RunResult]:
    """Train ``config`` for every seed together (:class:`MultiSeedTrainer`), one run directory
    per seed, laid out as :func:`~behavior_priors.training.run.train` lays it out.

    Run directories that hold a run already are continued from their latest checkpoints, which
    must all be at the same env step (a run started by ``train_seeds`` checkpoints every seed at
    the same steps). SIGINT/SIGTERM save every seed's checkpoint and raise
    :class:`~behavior_priors.training.run.Interrupted`.

    ``init_states``: one per seed, as ``train``'s ``init_state`` (e.g. each seed transfers from
    its own source run); new runs only.
    """

    run_dirs = [Path(d) for d in run_dirs]
    if len(run_dirs) != len(seeds):
        raise ValueError(f"{len(seeds)} seeds but {len(run_dirs)} run directories")
    if init_states is not None and len(init_states) != len(seeds):
        raise ValueError(f"{len(seeds)} seeds but {len(init_states)} init_states")
    existing = [(d / RUN_FILE).exists() for d in run_dirs]
    if any(existing) and not all(existing):
        raise ValueError("either every run directory holds a run (resume) or none does")
    resume = all(existing)
    if resume and init_states is not None:
        raise ValueError("resumed runs continue from their checkpoints; drop init_states")
    # Every session opened (and locked) is closed on every path, an error included.
    with contextlib.ExitStack() as stack:
        sessions = []
        for d, s in zip(run_dirs, seeds, strict=True):
            # The caller's config, never the folder's, names the environment: no consent needed.
            session = stack.enter_context(RunSession(d, config.replace(seed=int(s)), resume=resume))
            if session.config != config.replace(seed=int(s)):
                raise ValueError(f"{d} holds a run of another config; choose other directories")
            sessions.append(session)
        multi = MultiSeedTrainer(config, seeds)
        extra_info: list[dict[str, Any]] = [{} for _ in seeds]
        if init_states is not None:  # before anything is written: an error leaves no trace
            for i, (t, init) in enumerate(zip(multi.trainers, init_states, strict=True)):
                t.state, extra_info[i] = init(t.state)
        if resume:
            for session, t in zip(sessions, multi.trainers, strict=True):
                restore_trainer(session, t)
        multi.load_from_trainers()
        for session, t, extra in zip(sessions, multi.trainers, extra_info, strict=True):
            session.start(
                t.env_steps, env_specs=env_specs(t), trained_with_seeds=list(seeds), **extra
            )
            t.history = list(session.history)
            t.last_eval = session.last_eval()
        checkpoints = Cadence.after(multi.env_steps, config.checkpoint_every)

        def save(m: MultiSeedTrainer) -> None:
            for session, t in zip(sessions, m.trainers, strict=True):
                session.save(t.env_steps, t.state_dict())

        def after_log(m: MultiSeedTrainer) -> None:
            if checkpoints.due(m.env_steps):
                save(m)

        def log(i: int, line: dict[str, float]) -> None:
            sessions[i].log(line)
            if on_log is not None:
                on_log(i, line)

        try:
            finished = [
                s.finished_eval(t.env_steps) for s, t in zip(sessions, multi.trainers, strict=True)
            ]
            if all(f is not None for f in finished):
                finals = finished
            else:
                with StopFlag() as stop:
                    finals = multi.run(on_log=log, after_log=after_log, should_stop=stop)
                    if stop.signum is not None:
                        save(multi)
                        raise Interrupted(run_dirs[0], multi.env_steps, stop.signum)
                save(multi)
                for session, t, final in zip(sessions, multi.trainers, finals, strict=True):
                    session.finish(t.env_steps, final)
        finally:
            for session in sessions:
                session.close()
        return [
            RunResult(d, t.env_steps, t.updates, final, t.state, t.history)
            for d, t, final in zip(run_dirs, multi.trainers, finals, strict=True)
        ]
