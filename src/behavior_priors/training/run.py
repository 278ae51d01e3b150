"""Runs with a run directory: logs, checkpoints, resume, signals, progress; and loading.

A run directory holds everything a run writes (nothing is written elsewhere)::

    run_dir/
      run.json            config, library version, environment specs, creation time
      metrics.jsonl       one JSON line per log point (charts/, losses/, kl/, perf/, eval/)
      tensorboard/        event files (when config.tensorboard)
      checkpoints/<n>/    orbax checkpoints at env step n (the newest two kept)
      final_eval.json     the last evaluation

``train(config, run_dir)`` starts a run; ``train(None, run_dir, resume=True)`` continues one
from its latest checkpoint (in synchronous mode the continued run produces the same metrics as a
run never stopped, speed figures aside). SIGINT and SIGTERM save a checkpoint and stop cleanly.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from behavior_priors import __version__
from behavior_priors.agents import svg0
from behavior_priors.envs.base import Env
from behavior_priors.training.actions import ActionLayout
from behavior_priors.training.checkpoint import Checkpointer, CheckpointError
from behavior_priors.training.config import TrainConfig
from behavior_priors.training.logger import MetricLogger
from behavior_priors.training.loop import RunResult, Trainer, learner_state_from_arrays

RUN_FILE = "run.json"


class Interrupted(RuntimeError):
    """A run stopped by SIGINT/SIGTERM after saving a checkpoint."""

    def __init__(self, run_dir: Path, env_steps: int, signum: int):
        self.run_dir, self.env_steps, self.signum = run_dir, env_steps, signum
        super().__init__(
            f"stopped by {signal.Signals(signum).name} at env step {env_steps}; checkpoint "
            f"saved. Continue with: behavior-priors train --resume {run_dir}"
        )


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """The ``run.json`` of a run directory (clear error when it is not one)."""
    path = Path(run_dir) / RUN_FILE
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {RUN_FILE})")
    return json.loads(path.read_text())


def _env_specs(trainer: Trainer) -> dict[str, Any]:
    """``env_specs`` of run.json from anything with ``action_spec`` and ``obs_shapes`` (the
    single-process trainer, the distributed learner)."""
    return {
        "observation_shapes": {k: list(v) for k, v in trainer.obs_shapes.items()},
        **ActionLayout.from_spec(trainer.action_spec).to_env_specs(),
    }


class StopFlag:
    """Installs SIGINT/SIGTERM handlers that ask the loop to stop (main thread only)."""

    def __init__(self):
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self):
        try:
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        except ValueError:  # not the main thread: no handlers, the caller stops the run
            self._old.clear()
        return self

    def _handle(self, signum, _frame):
        if self.signum is not None:  # a second signal: stop now, the checkpoint is on disk
            raise KeyboardInterrupt
        self.signum = signum

    def __call__(self) -> bool:
        return self.signum is not None

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def train(
    config: TrainConfig | None,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    checkpoint_step: int | None = None,
    env: Env | None = None,
    progress: bool = False,
    on_log: Callable[[dict[str, float]], None] | None = None,
    init_state: Callable[[svg0.TrainState], tuple[svg0.TrainState, dict[str, Any]]] | None = None,
) -> RunResult:
    """Train an agent; the Python API of ``behavior-priors train``.

    Args:
      config: the run's config; ``None`` when resuming (the run's own config is used; a
        different one is an error, because it would not continue the same run).
      run_dir: where logs and checkpoints go; ``None`` trains in memory only.
      resume: continue ``run_dir`` from its latest checkpoint (or ``checkpoint_step``).
      env: a custom environment instead of ``config.env`` (not recorded for resume).
      progress: show a ``rich`` progress display.
      on_log: also receives every log line.
      init_state: replaces the fresh learner state before the first step and returns entries
        for ``run.json`` (how :func:`behavior_priors.transfer.transfer` grafts a trained run's
        modules in and records where they came from). Runs before anything is written, so an
        error leaves no run directory behind. Not with ``resume``.

    Returns:
      :class:`RunResult` with the final evaluation, counters, learner state and log history.
    """
    if run_dir is None:
        if resume or config is None:
            raise ValueError("resume needs a run_dir")
        trainer = Trainer(config, env)
        if init_state is not None:
            trainer.state, _ = init_state(trainer.state)
        final = trainer.run(on_log=on_log)
        return RunResult(
            None, trainer.env_steps, trainer.updates, final, trainer.state, trainer.history
        )

    run_dir = Path(run_dir)
    checkpointer_dir = run_dir / "checkpoints"
    if resume:
        if init_state is not None:
            raise ValueError("a resumed run continues from its checkpoint; drop init_state")
    config = run_config(config, run_dir, resume)
    trainer = Trainer(config, env)
    extra_info: dict[str, Any] = {}
    if init_state is not None:  # before anything is written: an error leaves no trace
        trainer.state, extra_info = init_state(trainer.state)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpointer = Checkpointer(checkpointer_dir)
    if resume:
        state, meta = checkpointer.restore(checkpoint_step)
        try:
            trainer.load_state_dict(state)
        except (ValueError, KeyError) as e:
            raise CheckpointError(
                f"checkpoint {checkpointer_dir / str(meta['step'])} does not fit this run: {e}"
            ) from e
    else:
        write_run_file(run_dir, trainer, **extra_info)

    logger = open_logger(run_dir, trainer, resume)

    def save(t: Trainer) -> None:
        save_checkpoint(checkpointer, t)

    next_ckpt = [next_multiple(trainer.env_steps, config.checkpoint_every)]

    def after_log(t: Trainer) -> None:
        if config.checkpoint_every and t.env_steps >= next_ckpt[0]:
            save(t)
            next_ckpt[0] = next_multiple(t.env_steps, config.checkpoint_every)

    display = _Progress(config.total_env_steps, trainer.env_steps) if progress else None

    def log(line: dict[str, float]) -> None:
        logger.log(int(line["env_steps"]), {k: v for k, v in line.items() if k != "env_steps"})
        if display is not None:
            display.update(line)
        if on_log is not None:
            on_log(line)

    try:
        with StopFlag() as stop:
            if display is not None:
                display.start()
            try:
                final = trainer.run(on_log=log, after_log=after_log, should_stop=stop)
            finally:
                if display is not None:
                    display.stop()
            if stop.signum is not None:
                save(trainer)
                raise Interrupted(run_dir, trainer.env_steps, stop.signum)
        save(trainer)
        write_final_eval(run_dir, trainer, final)
    finally:
        logger.close()
    return RunResult(
        run_dir, trainer.env_steps, trainer.updates, final, trainer.state, trainer.history
    )


# -- the pieces of a run directory (also written by training.multiseed.train_seeds) --------------


def run_config(config: TrainConfig | None, run_dir: Path, resume: bool) -> TrainConfig:
    """The config a run in ``run_dir`` trains with: the saved one when resuming (a different
    ``config`` is an error: it would not continue the same run), else ``config``, and then
    ``run_dir`` must not hold a run yet."""
    if resume:
        saved = TrainConfig.from_dict(read_run(run_dir)["config"])
        if config is not None and config != saved:
            raise ValueError(
                f"--resume continues {run_dir} with its own config; the given config differs "
                "(start a new run directory to change settings)"
            )
        return saved
    if config is None:
        raise ValueError("a new run needs a config")
    if (run_dir / RUN_FILE).exists():
        raise FileExistsError(
            f"{run_dir} already holds a run; continue it with resume=True (--resume) or "
            "choose another run directory"
        )
    return config


def next_multiple(n: int, every: int) -> int:
    """The next multiple of ``every`` after ``n`` (0 when ``every`` is 0: never)."""
    return (n // every + 1) * every if every else 0


def write_run_file(run_dir: Path, trainer: Trainer, **extra: Any) -> None:
    """``run.json`` of a new run: config, version, creation time, environment specs, ``extra``."""
    info = {
        "config": trainer.config.to_dict(),
        "version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "env_specs": _env_specs(trainer),
        **extra,
    }
    (run_dir / RUN_FILE).write_text(json.dumps(info, indent=2))


def open_logger(run_dir: Path, trainer: Trainer, resume: bool) -> MetricLogger:
    """The run's metric logger; on resume, the lines after the checkpoint are dropped (the
    continued run logs them again)."""
    c = trainer.config
    logger = MetricLogger(
        run_dir, tensorboard=c.tensorboard, wandb=c.wandb, config=c.to_dict(), resume=resume
    )
    if resume:
        logger.truncate_after(trainer.env_steps)
    return logger


def save_checkpoint(checkpointer: Checkpointer, trainer: Trainer) -> None:
    meta = {"version": __version__, "config": trainer.config.to_dict()}
    checkpointer.save(trainer.env_steps, trainer.state_dict(), meta)


def write_final_eval(run_dir: Path, trainer: Trainer, final: dict[str, float]) -> None:
    (run_dir / "final_eval.json").write_text(
        json.dumps({"env_steps": trainer.env_steps, **final}, indent=2)
    )


class _Progress:
    """A one-line ``rich`` display: steps, speed, recent return and success, KL."""

    def __init__(self, total: int, done: int):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
        )
        self._task = self._progress.add_task("train", total=total, completed=done, info="")

    def start(self):
        self._progress.start()

    def stop(self):
        self._progress.stop()

    def update(self, line: dict[str, float]) -> None:
        parts = []
        for key, fmt in (
            ("perf/env_steps_per_s", "{:,.0f} steps/s"),
            ("perf/updates_per_s", "{:,.0f} upd/s"),
            ("charts/episode_return", "return {:.1f}"),
            ("charts/success_rate", "success {:.0%}"),
            ("eval/success_rate", "eval success {:.0%}"),
            ("kl/total", "KL {:.3f}"),
        ):
            if key in line:
                parts.append(fmt.format(line[key]))
        self._progress.update(self._task, completed=line["env_steps"], info="  ".join(parts))


# -- loading a trained policy --------------------------------------------------------------------


@dataclass
class LoadedRun:
    """A trained run: its config, environment specs and learner state (latest checkpoint)."""

    run_dir: Path
    config: TrainConfig
    state: svg0.TrainState
    env_specs: dict[str, Any]
    env_steps: int

    def policy(self, num_envs: int = 1, deterministic: bool = True, seed: int = 0) -> Policy:
        """A stateful policy for ``num_envs`` copies (see :class:`Policy`)."""
        return Policy(self, num_envs, deterministic, seed)


class Policy:
    """``act(obs)`` for a batch of ``num_envs`` copies: observations ``{key: [B, *shape]}`` and
    the ``first`` flags ``[B]`` (episode starts, where held latents restart) in, actions in the
    environment's box ``[B, Da]`` out. Deterministic (means) by default."""

    def __init__(self, run: LoadedRun, num_envs: int, deterministic: bool, seed: int):
        agent = run.config.agent
        self.network = run.state.networks.policy
        self._actions = ActionLayout.from_env_specs(run.env_specs)
        self._state = svg0.initial_actor_state(agent, num_envs)
        self._key = jax.random.PRNGKey(seed)
        self._act = jax.jit(
            lambda p, o, f, s, k: svg0.select_action(p, o, f, s, k, agent, deterministic)
        )
        self.num_envs = num_envs

    def act(self, obs: dict[str, Any], first: Any = None) -> np.ndarray:
        first = np.zeros(self.num_envs, bool) if first is None else np.asarray(first, bool)
        self._key, sub = jax.random.split(self._key)
        a, _, self._state = self._act(self.network, obs, first, self._state, sub)
        return self._actions.to_env(a)


def load(run_dir: str | Path, checkpoint_step: int | None = None) -> LoadedRun:
    """Load the learner state of a run directory's latest (or given) checkpoint."""
    run_dir = Path(run_dir)
    info = read_run(run_dir)
    config = TrainConfig.from_dict(info["config"])
    specs = info["env_specs"]
    shapes = {k: tuple(v) for k, v in specs["observation_shapes"].items()}
    actions = ActionLayout.from_env_specs(specs)
    template = svg0.init(
        config.agent, shapes, actions.size, jax.random.PRNGKey(0), actions.discrete
    )
    state, meta = Checkpointer(run_dir / "checkpoints").restore(checkpoint_step)
    try:
        learner = learner_state_from_arrays(template, state["learner"])
    except ValueError as e:
        raise CheckpointError(f"checkpoint in {run_dir} does not match its run.json: {e}") from e
    return LoadedRun(
        run_dir,
        config,
        learner,
        specs,
        int(meta["step"]),
    )
