"""Seed-batched training: S seeds of one config in one process, one batched step for all.

Research results need many seeds, and on a CPU the learner at these sizes is overhead-bound:
small kernels leave the cores idle between them. Here S seeds share everything that can be
batched, so a lockstep iteration costs about what one seed's does with larger arrays:

* **one environment** of ``S * B`` copies in S *seed groups* (:mod:`behavior_priors.envs.groups`:
  the native MuJoCo suite steps them in one call; other environments are stacked), group s
  running exactly as seed s's environment of B copies would;
* **one replay** of ``S * B`` streams (:class:`~behavior_priors.replay.SequenceReplay` with seed
  groups), sampled for every seed by one call, each group by its own sampler;
* **one actor call** and **one learner update**, vmapped over the seeds' stacked parameters;
* **one episode tracker**; finished episodes are filed to their seed by the copy that ran them.

Nothing in the hot loop is per seed in Python except drawing each seed's replay indices (two
small numpy calls per seed and update). A seed's run is the run ``train`` would make with that
seed: its environment, replay sampler and actor keys are seeded as there, and only vmapped float
arithmetic may round differently in the last bits, so trajectories agree closely at first and
drift apart later, as two machines' would.

:func:`train_seeds` writes one ordinary run directory per seed (``run.json``, ``metrics.jsonl``,
checkpoints in the single-seed format, ``final_eval.json``): ``load``, ``eval``, ``video``,
``plot``, the experiment reports and ``train --resume`` read them as any run, and a seed's
checkpoint resumes on its own or batched again. A seed whose update diverges (NaN or inf) is
reported by seed and stops writing; the others go on.

Measured in ``benchmarks/many_seeds.py`` (``docs/benchmarks.md``, "Many seeds").
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from behavior_priors.agents import svg0
from behavior_priors.agents.arrays import ArrayLayout
from behavior_priors.envs.base import TimeStep
from behavior_priors.envs.groups import (
    concat_timesteps,
    group_state_supported,
    make_seed_groups,
)
from behavior_priors.replay import SequenceReplay
from behavior_priors.training.acting import make_vmapped_actor
from behavior_priors.training.actions import ActionLayout
from behavior_priors.training.checkpoint import CheckpointError
from behavior_priors.training.config import TrainConfig
from behavior_priors.training.episodes import (
    EpisodeTracker,
    recent_from_state,
    recent_state,
    task_names_of,
)
from behavior_priors.training.evaluation import collect_group_episodes
from behavior_priors.training.loop import (
    RunResult,
    learner_state_from_arrays,
    learner_state_from_specs,
    learning_due,
    timestep_from_dict,
    timestep_to_dict,
)
from behavior_priors.training.run import env_specs
from behavior_priors.training.session import (
    RUN_FILE,
    Cadence,
    Interrupted,
    RunSession,
    StopFlag,
    log_line,
)


@dataclass
class SeedRun:
    """What belongs to one seed of a batch: its log, its recent episodes, its last
    evaluation, and why it stopped if it diverged. Counters are the batch's
    (:class:`MultiSeedTrainer`), shared by every seed."""

    seed: int
    history: list[dict[str, float]] = field(default_factory=list)
    last_eval: dict[str, float] = field(default_factory=dict)
    recent_window: deque = field(default_factory=lambda: deque(maxlen=100))
    diverged: str | None = None


class MultiSeedTrainer:
    """S seeds of one config (``seeds``) trained in lockstep; see the module docstring.

    State, all batched over seeds: :attr:`stacked` (the learner states' arrays in
    :class:`~behavior_priors.agents.arrays.ArrayLayout` order, the policy's first, each with a
    leading ``[S]`` axis), :attr:`actor_state` and :attr:`act_keys` (``[S, ...]``), the
    environment :attr:`env` and :attr:`replay` (``S * B`` copies in seed groups), :attr:`ts`
    (``[S * B, ...]``). Per seed: :attr:`runs`. Counters (per seed, equal for all):
    :attr:`env_steps`, :attr:`updates`.
    """

    def __init__(self, config: TrainConfig, seeds: Sequence[int]):
        seeds = [int(s) for s in seeds]
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct and non-empty, got {seeds}")
        c = self.config = config
        self.seeds = seeds
        S, B = len(seeds), c.num_envs
        self.env = make_seed_groups(c.env, seeds, B, **c.env_kwargs)
        # One evaluation environment, a seed group each, seeded as each seed's own run's.
        self.eval_env = make_seed_groups(c.env, seeds, min(c.eval_episodes, 8), **c.env_kwargs)
        obs_spec = self.env.observation_spec()
        self.obs_shapes = {k: tuple(v.shape) for k, v in obs_spec.items()}
        self.action_spec = self.env.action_spec()
        self.actions = ActionLayout.from_spec(self.action_spec)

        states, keys = [], []
        for s in seeds:  # each seed's keys as Trainer splits them
            k_init, k_act = jax.random.split(jax.random.PRNGKey(s))
            states.append(learner_state_from_specs(c.agent, self.obs_shapes, self.actions, k_init))
            keys.append(k_act)
        self._layout: ArrayLayout | None = None
        self.sharding = seed_sharding(S)
        self.set_states(states)
        self.act_keys = jnp.stack(keys)
        self.replay = SequenceReplay(
            capacity_steps=c.replay_capacity * S,
            num_envs=S * B,
            sequence_length=c.sequence_length,
            observation_spec=obs_spec,
            action_shape=self.actions.replay_shape,
            action_dtype=self.actions.replay_dtype,
            latent_dim=c.agent.latent_size,
            seed=seeds,
        )
        self.actor_state = _fresh_actor_state(c.agent, S, B)
        self.ts = self.env.reset_groups(seeds)
        self.tracker = EpisodeTracker(S * B)
        self.tracker.observe(self.ts)
        self.runs = [SeedRun(s) for s in seeds]
        self.env_steps = 0  # per seed
        self.updates = 0  # per seed
        self.update_debt = 0.0
        self.wall_time = 0.0
        self.pending_metrics: Any = None  # stacked metrics of the latest update, not logged yet

    @property
    def num_seeds(self) -> int:
        return len(self.seeds)

    # -- the learner states, per seed --------------------------------------------------------
    def states(self) -> list[svg0.TrainState]:
        """Each seed's learner state (new arrays, sliced from the stacked ones)."""
        return [self.state(i) for i in range(self.num_seeds)]

    def state(self, i: int) -> svg0.TrainState:
        """Seed ``i``'s learner state (index in :attr:`seeds`)."""
        return self._layout.merge([a[i] for a in self.stacked])

    def set_states(self, states: Sequence[svg0.TrainState]) -> None:
        """Stack one learner state per seed (after init, a transfer or a restore)."""
        splits = [ArrayLayout.split(x) for x in states]
        layout = splits[0][1]
        if any(other != layout for _, other in splits[1:]):
            raise ValueError("seeds trained together must have learner states of one layout")
        if layout != self._layout:  # first load, or a state of another structure
            self._num_policy, policy_layout = svg0.policy_prefix(states[0])
            self._act = make_vmapped_actor(self.config.agent, policy_layout)
            self._act_eval = make_vmapped_actor(
                self.config.agent, policy_layout, deterministic=True
            )
            self._update = _vmapped_update(self.config.agent, layout)
            self._layout = layout
        columns = zip(*(a for a, _ in splits), strict=True)
        self.stacked = self._place([jnp.stack(xs) for xs in columns])

    def _place(self, tree: Any) -> Any:
        """Put ``tree``'s arrays (leading ``[S]`` axis) where the batch computes them: split
        over the host's XLA devices when there are several (:func:`seed_sharding`)."""
        return tree if self.sharding is None else jax.device_put(tree, self.sharding)

    def live(self) -> list[int]:
        """Indices of the seeds that have not diverged."""
        return [i for i, r in enumerate(self.runs) if r.diverged is None]

    # -- one lockstep iteration --------------------------------------------------------------
    def step(self) -> None:
        """One iteration for every seed, in :meth:`Trainer.step`'s order: dispatch the actor,
        dispatch the owed updates, then wait for the actions and step the environment."""
        S, B = self.num_seeds, self.config.num_envs
        obs = {k: v.reshape(S, B, *v.shape[1:]) for k, v in self.ts.observation.items()}
        action, extras, self.actor_state, self.act_keys = self._act(
            self.stacked[: self._num_policy],
            obs,
            self.ts.first().reshape(S, B),
            self.actor_state,
            self.act_keys,
        )
        self.learn()
        action = np.asarray(action)  # [S, B, ...]
        if not self.actions.discrete:
            bad = ~np.isfinite(action.reshape(S, -1)).all(axis=1)
            if bad.any():
                for i in np.flatnonzero(bad):
                    self._diverge(int(i), "the policy's actions are NaN or inf")
                action = np.where(bad.reshape(S, *[1] * (action.ndim - 1)), 0.0, action)
                action = action.astype(self.actions.replay_dtype)

        def flat(x: Any) -> np.ndarray:
            x = np.asarray(x)
            return x.reshape(S * B, *x.shape[2:])

        action, extras = flat(action), jax.tree.map(flat, extras)
        self.replay.add(self.ts, action, extras)
        self.ts = self.env.step(self.actions.to_env(action))
        self.env_steps += B
        ended = self.tracker.observe(self.ts)
        for copy, outcome in zip(ended.copies, ended.outcomes(), strict=True):
            self.runs[copy // B].recent_window.append(outcome)

    def learn(self) -> None:
        """Dispatch the updates owed for the batched step about to be taken: each is one
        vmapped update of every seed on one sampling of every seed's windows."""
        c = self.config
        if not learning_due(c, self.env_steps) or self.replay.num_sampleable() == 0:
            return
        self.update_debt += c.num_envs * c.updates_per_env_step
        metrics = None
        while self.update_debt >= 1.0:
            batch = self._place(self.replay.sample_groups(c.batch_size))
            self.stacked, metrics = self._update(self.stacked, batch)
            self.updates += 1
            self.update_debt -= 1.0
        if metrics is not None:
            self.pending_metrics = metrics  # stacked; split per seed at the next log

    def _diverge(self, i: int, what: str) -> None:
        run = self.runs[i]
        if run.diverged is not None:
            return
        run.diverged = (
            f"seed {run.seed} diverged at env step {self.env_steps} (learner step "
            f"{self.updates}): {what}. Lower the learning rates, raise min_scale or "
            "max_grad_norm clipping, and resume from its last checkpoint."
        )
        print(run.diverged + " The other seeds go on.", file=sys.stderr)

    # -- logging and evaluation --------------------------------------------------------------
    def evaluate(self) -> list[dict[str, float]]:
        """Every seed's deterministic evaluation, as its single-seed run makes it (its own
        evaluation seed and episodes), in one pass: one environment of every seed's
        evaluation copies, one vmapped actor call per step."""
        c, S = self.config, self.num_seeds
        env = self.eval_env
        n = env.num_envs // S
        seeds = [s + 10_007 + self.env_steps for s in self.seeds]
        carry = {
            "state": _fresh_actor_state(c.agent, S, n),
            "key": jnp.stack([jax.random.PRNGKey(s) for s in seeds]),
        }
        policy = self.stacked[: self._num_policy]

        def choose(ts: TimeStep) -> np.ndarray:
            obs = {k: v.reshape(S, n, *v.shape[1:]) for k, v in ts.observation.items()}
            a, _, carry["state"], carry["key"] = self._act_eval(
                policy, obs, ts.first().reshape(S, n), carry["state"], carry["key"]
            )
            a = np.asarray(a)
            return self.actions.to_env(np.nan_to_num(a.reshape(S * n, *a.shape[2:])))

        stats = collect_group_episodes(env, c.eval_episodes, seeds, choose)
        names = task_names_of(env)
        return [s.metrics("eval", names) for s in stats]

    def log_lines(
        self, elapsed: float, steps_before: int, updates_before: int
    ) -> dict[int, dict[str, float]]:
        """Each live seed's log line (:func:`~behavior_priors.training.session.log_line` and
        its learner metrics since the previous line). A seed whose metrics are NaN or inf
        is marked diverged and gets no line."""
        metrics = None
        if self.pending_metrics is not None:
            metrics = jax.device_get(self.pending_metrics)
            self.pending_metrics = None
        lines = {}
        names = task_names_of(self.env)
        for i in self.live():
            run = self.runs[i]
            line = log_line(
                self.env_steps,
                self.updates,
                run.recent_window,
                elapsed,
                steps_before,
                updates_before,
                self.wall_time,
                names,
                self.tracker.reports_success,
            )
            if metrics is not None:
                mine = {k: float(v[i]) for k, v in metrics.items()}
                bad = sorted(k for k, v in mine.items() if not np.isfinite(v))
                if bad:
                    self._diverge(i, f"non-finite {', '.join(bad)}")
                    continue
                line.update(mine)
            lines[i] = line
        return lines

    def run(
        self,
        on_log: Callable[[int, dict[str, float]], None] | None = None,
        after_log: Callable[[MultiSeedTrainer], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[dict[str, float]]:
        """Train every seed to ``config.total_env_steps``; returns each seed's last evaluation
        (empty for a seed that diverged).

        ``on_log(i, line)`` gets seed i's log lines (the lines a single-seed run makes; the
        wall time and speed are the whole batch's); ``after_log(self)`` runs after each round
        of them (checkpoints go there); ``should_stop()`` is polled every step and ends the
        run early, without the final evaluation.
        """
        c = self.config
        logs = Cadence.after(self.env_steps, c.log_every)
        evals = Cadence.after(self.env_steps, c.eval_every)
        t_last, steps_last, updates_last = time.perf_counter(), self.env_steps, self.updates
        t_wall = t_last
        while self.env_steps < c.total_env_steps and self.live():
            if should_stop is not None and should_stop():
                return [r.last_eval for r in self.runs]
            self.step()
            if logs.due(self.env_steps) or self.env_steps >= c.total_env_steps:
                now = time.perf_counter()
                self.wall_time, t_wall = self.wall_time + now - t_wall, now
                lines = self.log_lines(now - t_last, steps_last, updates_last)
                evaluations = self.evaluate() if evals.due(self.env_steps) else None
                for i, line in lines.items():
                    run = self.runs[i]
                    if evaluations is not None:
                        run.last_eval = evaluations[i]
                        line.update(run.last_eval)
                    run.history.append(line)
                    if on_log is not None:
                        on_log(i, line)
                if after_log is not None:
                    after_log(self)
                # Evaluations and checkpoints are not training speed: restart the clock after.
                t_last, steps_last, updates_last = (
                    time.perf_counter(),
                    self.env_steps,
                    self.updates,
                )
        unevaluated = [
            i
            for i in self.live()
            if "eval/episode_return" not in (self.runs[i].history or [{}])[-1]
        ]
        evaluations = self.evaluate() if unevaluated else []
        for i in unevaluated:
            run = self.runs[i]
            run.last_eval = evaluations[i]
            line = {"env_steps": self.env_steps, **run.last_eval}
            run.history.append(line)
            if on_log is not None:
                on_log(i, line)
        return [r.last_eval if r.diverged is None else {} for r in self.runs]

    # -- checkpoints: one per seed, in the single-seed format ------------------------------
    def seed_state_dict(self, i: int) -> dict[str, Any]:
        """Seed ``i``'s part of the batch as :meth:`Trainer.state_dict` of its single-seed run
        would save it: ``train --resume`` continues it alone, :meth:`load_state_dicts`
        batched."""
        B = self.config.num_envs
        part = slice(i * B, (i + 1) * B)
        ts, run = self.ts, self.runs[i]
        out = {
            "learner": [np.asarray(a[i]) for a in self.stacked],
            "replay": self.replay.state_dict(group=i),
            "actor": {
                "key": np.asarray(self.act_keys[i]),
                "latent": np.asarray(self.actor_state.latent[i]),
                "steps_held": np.asarray(self.actor_state.steps_held[i]),
            },
            "timestep": timestep_to_dict(ts, part),
            "episodes": {
                "returns": self.tracker.returns[part],
                "lengths": self.tracker.lengths[part],
                "success": self.tracker.success[part],
                **recent_state(run.recent_window),
            },
            "counters": {
                "env_steps": np.int64(self.env_steps),
                "updates": np.int64(self.updates),
                "update_debt": np.float64(self.update_debt),
                "wall_time": np.float64(self.wall_time),
            },
            "pending_metrics": {
                k: np.asarray(v[i]) for k, v in (self.pending_metrics or {}).items()
            },
        }
        if group_state_supported(self.env):
            out["env"] = self.env.get_group_state(i)
        return out

    def load_state_dicts(self, states: Sequence[dict[str, Any]]) -> None:
        """Inverse of :meth:`seed_state_dict` for every seed (checkpoints of a batched run, or
        of single-seed runs of these seeds at the same point). ``ValueError`` names what does
        not match."""
        if len(states) != self.num_seeds:
            raise ValueError(f"{self.num_seeds} seeds but {len(states)} states")
        counters = [
            (int(s["counters"]["env_steps"]), int(s["counters"]["updates"])) for s in states
        ]
        if len(set(counters)) != 1:
            raise ValueError(
                "seeds trained together must be at the same point (env steps, updates); got "
                + ", ".join(f"seed {s}: {c}" for s, c in zip(self.seeds, counters, strict=True))
            )
        templates = self.states()
        self.set_states(
            [
                learner_state_from_arrays(t, s["learner"])
                for t, s in zip(templates, states, strict=True)
            ]
        )
        for i, s in enumerate(states):
            self.replay.load_state_dict(s["replay"], group=i)
        self.act_keys = jnp.stack(
            [jnp.asarray(s["actor"]["key"], self.act_keys.dtype) for s in states]
        )
        self.actor_state = svg0.ActorState(
            jnp.stack([jnp.asarray(s["actor"]["latent"], jnp.float32) for s in states]),
            jnp.stack([jnp.asarray(s["actor"]["steps_held"], jnp.int32) for s in states]),
        )
        self.ts = concat_timesteps([timestep_from_dict(s["timestep"]) for s in states])
        for name, arr in [
            ("returns", self.tracker.returns),
            ("lengths", self.tracker.lengths),
            ("success", self.tracker.success),
        ]:
            arr[:] = np.concatenate([np.asarray(s["episodes"][name]) for s in states])
        for run, s in zip(self.runs, states, strict=True):
            run.recent_window.clear()
            run.recent_window.extend(recent_from_state(s["episodes"]))
        c = states[0]["counters"]
        self.env_steps, self.updates = int(c["env_steps"]), int(c["updates"])
        self.update_debt = float(c["update_debt"])
        self.wall_time = float(c.get("wall_time", 0.0))
        pending = [s.get("pending_metrics") or {} for s in states]
        self.pending_metrics = (
            {k: np.stack([np.asarray(p[k]) for p in pending]) for k in pending[0]}
            if pending[0] and all(set(p) == set(pending[0]) for p in pending)
            else None
        )
        if group_state_supported(self.env) and all("env" in s for s in states):
            for i, s in enumerate(states):
                self.env.set_group_state(i, s["env"])
        else:
            # This environment cannot restore mid-episode: as Trainer does, start fresh
            # episodes and end the replay's streams so that no window bridges the two.
            self.replay.cut_episodes()
            self.ts = self.env.reset_groups([s + self.env_steps for s in self.seeds])
            self.actor_state = _fresh_actor_state(
                self.config.agent, self.num_seeds, self.config.num_envs
            )
            self.tracker = EpisodeTracker(self.num_seeds * self.config.num_envs)
            self.tracker.observe(self.ts)


def seed_sharding(seeds: int) -> jax.sharding.Sharding | None:
    """How S seeds' arrays are split over the host's XLA devices: along the seed axis, in
    equal parts, when this process has several devices and S divides among them (see
    :func:`~behavior_priors.training.devices.use_host_devices`); ``None`` (one device) otherwise.

    On a CPU the vmapped update of many seeds is a chain of small kernels that one thread runs
    in turn; split over two host devices, each half runs on its own core (16 seeds of the demo
    agent: 48 ms per update against 96 on one device, 2 cores)."""
    devices = jax.devices()
    if len(devices) < 2 or seeds % len(devices):
        return None
    mesh = jax.sharding.Mesh(np.array(devices), ("seeds",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seeds"))


def _fresh_actor_state(agent: svg0.SVG0Config, seeds: int, copies: int) -> svg0.ActorState:
    one = svg0.initial_actor_state(agent, copies)
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (seeds, *x.shape)), one)


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
    :class:`~behavior_priors.training.run.Interrupted`. A seed that diverges is reported on
    stderr and in its result's ``error``, keeps its last checkpoint and is not finished; the
    other seeds go on.

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
            states = multi.states()
            for i, init in enumerate(init_states):
                states[i], extra_info[i] = init(states[i])
            multi.set_states(states)
        if resume:
            _restore(sessions, multi)
        for session, run, extra in zip(sessions, multi.runs, extra_info, strict=True):
            session.start(
                multi.env_steps, env_specs=env_specs(multi), trained_with_seeds=list(seeds), **extra
            )
            run.history = list(session.history)
            run.last_eval = session.last_eval()
        checkpoints = Cadence.after(multi.env_steps, config.checkpoint_every)

        def save(m: MultiSeedTrainer) -> None:
            for i in m.live():
                sessions[i].save(m.env_steps, m.seed_state_dict(i))

        def after_log(m: MultiSeedTrainer) -> None:
            if checkpoints.due(m.env_steps):
                save(m)

        def log(i: int, line: dict[str, float]) -> None:
            sessions[i].log(line)
            if on_log is not None:
                on_log(i, line)

        try:
            finished = [s.finished_eval(multi.env_steps) for s in sessions]
            if all(f is not None for f in finished):
                finals = finished
            else:
                with StopFlag() as stop:
                    finals = multi.run(on_log=log, after_log=after_log, should_stop=stop)
                    if stop.signum is not None:
                        save(multi)
                        raise Interrupted(run_dirs[0], multi.env_steps, stop.signum)
                save(multi)
                for i in multi.live():
                    sessions[i].finish(multi.env_steps, finals[i])
        finally:
            for session in sessions:
                session.close()
        return [
            RunResult(
                d,
                multi.env_steps,
                multi.updates,
                final,
                multi.state(i),
                run.history,
                error=run.diverged,
            )
            for i, (d, run, final) in enumerate(zip(run_dirs, multi.runs, finals, strict=True))
        ]


def _restore(sessions: Sequence[RunSession], multi: MultiSeedTrainer) -> None:
    """Load every seed's checkpoint (nothing when no seed reached its first checkpoint: they
    start again)."""
    restored = [session.restore() for session in sessions]
    if all(r is None for r in restored):
        return
    missing = [str(s.run_dir) for s, r in zip(sessions, restored, strict=True) if r is None]
    if missing:
        raise CheckpointError(
            f"{', '.join(missing)} stopped before its first checkpoint while the other seeds "
            "have one: resume the seeds one by one (train --resume)"
        )
    try:
        multi.load_state_dicts([state for state, _ in restored])
    except (ValueError, KeyError) as e:
        steps = ", ".join(str(meta["step"]) for _, meta in restored)
        raise CheckpointError(f"checkpoints at steps {steps} do not fit these runs: {e}") from e
