"""One run directory, owned by one :class:`RunSession`, for every training loop.

The single-process loop (:func:`behavior_priors.training.run.train`), the vmapped seeds
(:func:`behavior_priors.training.multiseed.train_seeds`) and the Ray driver
(:mod:`behavior_priors.training.distributed`) differ in how they step and learn; what they
write is the same and is written here, once:

* opening: a new run needs a directory without a run in it; a folder holding files of a run
  but no ``run.json`` (or the reverse for ``--resume``) is refused with what to do;
* one writer at a time: the session holds an advisory lock on ``run_dir/.lock`` from opening
  to :meth:`RunSession.close` (the OS releases it when the process dies, so a killed run leaves
  no stale lock); a second writer is refused naming the holder's pid. Readers do not lock;
* consent: a resumed run's environment name comes from the folder, which may come from anyone;
  a name that would import code is refused without ``trust_code`` (see
  :func:`behavior_priors.envs.registry.require_consent`);
* one timeline: a run resumed from an earlier checkpoint than its latest discards the later
  checkpoints and final evaluation (they belong to the abandoned continuation) before its log
  is cut, so a kill at any point leaves a log and checkpoints that agree;
* ``run.json`` and ``final_eval.json``, written atomically (temporary file, then rename);
* the metric log, truncated atomically to the checkpoint a run resumes from, TensorBoard purged
  past it (:class:`~behavior_priors.training.logger.MetricLogger`);
* the checkpoints (:class:`~behavior_priors.training.checkpoint.Checkpointer`: checksummed,
  and a checkpoint left from before the resume point is rewritten, never trusted);
* the cadence of log lines, evaluations and checkpoints (:class:`Cadence`), the log line's
  common part (:func:`log_line`), stop signals (:class:`StopFlag`) and the progress display.

The guarantees are listed in ``docs/training.md``, "What a run directory guarantees".
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import stat
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from behavior_priors import __version__
from behavior_priors.envs.registry import require_consent
from behavior_priors.training.checkpoint import Checkpointer
from behavior_priors.training.config import TrainConfig
from behavior_priors.training.episodes import recent_metrics
from behavior_priors.training.files import atomic_write_text
from behavior_priors.training.logger import METRICS_FILE, MetricLogger, read_metrics

RUN_FILE = "run.json"
FINAL_EVAL_FILE = "final_eval.json"
CHECKPOINT_DIR = "checkpoints"
# What a run writes besides run.json: their presence without run.json means a broken run.
_RUN_OUTPUTS = (CHECKPOINT_DIR, METRICS_FILE, FINAL_EVAL_FILE, "tensorboard", "events.jsonl")
LOCK_FILE = ".lock"
# Checkpoints of an abandoned continuation are renamed to this prefix (out of orbax's sight,
# atomically) before they are deleted; a kill in between leaves only such names behind.
_ABANDONED = ".abandoned-checkpoint-"
# What atomic_write_text leaves behind when killed mid-rewrite of a writer's own files:
# `.<name>.<random>.tmp` (a reader's, e.g. eval's `.eval-*.tmp`, are not the writer's to remove).
_TEMP_GLOBS = (f".{RUN_FILE}.*.tmp", f".{METRICS_FILE}.*.tmp", f".{FINAL_EVAL_FILE}.*.tmp")
# The files and folders a writer appends to or writes into: a symbolic link among them would
# take its writes out of the run folder (orbax would even delete checkpoints over there).
_WRITTEN_THROUGH = (METRICS_FILE, CHECKPOINT_DIR, "tensorboard", "events.jsonl", "videos")
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


class RunDirectoryError(ValueError):
    """A run directory cannot be used as asked (the message says what to do)."""


class RunLockedError(RunDirectoryError):
    """Another process is writing the run directory."""


def _writable(fd: int) -> bool:
    """Whether ``fd`` was opened for writing."""
    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY


class RunLock:
    """An advisory, exclusive lock on ``run_dir/.lock`` (``flock``: released by the OS when the
    process dies, so a killed writer leaves no stale lock). The file holds the holder's pid,
    for the message a second writer gets.

    The lock file is opened without following a symbolic link and must be a regular file with
    one name: a folder from elsewhere could ship ``.lock`` as a link to one of the user's files,
    which writing the pid would clobber.

    Raises:
      RunLockedError: another open lock holds it (another process, or another session here).
      RunDirectoryError: ``.lock`` is a link or not a regular file.
      OSError: the folder cannot be written (read-only); ``errno`` says which.
    """

    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK_FILE
        flags = os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.path, os.O_RDWR | flags, 0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise self._not_regular() from None
            if e.errno != errno.EACCES or not self.path.exists():
                raise
            # A lock file copied read-only: flock needs no write access, only the pid is lost.
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                raise self._not_regular()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
                raise RunLockedError(
                    f"{run_dir} is being written by another process (pid {holder}); one writer "
                    "at a time: wait for it to finish or stop it, then try again"
                ) from None
            # The file may have been removed and made anew between open and flock (a new
            # run's folder is cleaned up on close): a lock on a file without that name is none.
            now = os.stat(self.path, follow_symlinks=False)
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                raise RunLockedError(
                    f"{run_dir} was being set up by another process meanwhile; try again"
                )
            if _writable(fd):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd

    def _not_regular(self) -> RunDirectoryError:
        return RunDirectoryError(
            f"{self.path} is a link or not a regular file; a run folder's lock file is a plain "
            "file: remove it and try again"
        )

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """The ``run.json`` of a run directory (clear error when it is not one, or is corrupt)."""
    path = Path(run_dir) / RUN_FILE
    if not path.exists():
        leftovers = [n for n in _RUN_OUTPUTS if (Path(run_dir) / n).exists()]
        if leftovers:
            raise FileNotFoundError(
                f"{run_dir} holds files of a run ({', '.join(leftovers)}) but no {RUN_FILE}: "
                "it cannot be resumed or loaded without its config. Restore run.json, or move "
                "the folder away and start a new run"
            )
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {RUN_FILE})")
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunDirectoryError(f"{path} is corrupt ({e}); the run cannot be opened") from None
    if not isinstance(info, dict) or not isinstance(info.get("config"), dict):
        raise RunDirectoryError(f"{path} has no config; the run cannot be opened")
    return info


# -- cadence, log lines, signals, progress -------------------------------------------------------


def next_multiple(n: int, every: int) -> int:
    """The next multiple of ``every`` after ``n`` (0 when ``every`` is 0: never)."""
    return (n // every + 1) * every if every else 0


@dataclass
class Cadence:
    """ "Every ``every`` env steps" (0: never), continuing from any step (a resumed run keeps
    the cadence of the run it continues)."""

    every: int
    next: int = 0

    @classmethod
    def after(cls, step: int, every: int) -> Cadence:
        return cls(every, next_multiple(step, every))

    def due(self, step: int) -> bool:
        """True at most once per multiple passed: the first call at or after it."""
        if not self.every or step < self.next:
            return False
        self.next = next_multiple(step, self.every)
        return True


def log_line(
    env_steps: int,
    updates: int,
    recent: Iterable[tuple[float, bool, int]],
    elapsed: float,
    steps_before: int,
    updates_before: int,
    wall_time: float,
    task_names: Sequence[str] | None = None,
    reports_success: bool = True,
) -> dict[str, float]:
    """The part of a log line every loop makes: counters, recent episodes (``charts/``, per
    task too in a multi-task environment) and speed since the previous line (``perf/``).
    ``recent``: (return, success, task id) of recent episodes; ``elapsed``: seconds since the
    previous line; ``wall_time``: training seconds so far, across resumes; ``task_names`` and
    ``reports_success``: the environment's (see
    :func:`~behavior_priors.training.episodes.recent_metrics`)."""
    line: dict[str, float] = {"env_steps": env_steps, "perf/updates": updates}
    line.update(recent_metrics(recent, task_names, reports_success))
    elapsed = max(elapsed, 1e-9)
    line["perf/env_steps_per_s"] = (env_steps - steps_before) / elapsed
    line["perf/updates_per_s"] = (updates - updates_before) / elapsed
    line["perf/wall_time_s"] = wall_time
    return line


class Interrupted(RuntimeError):
    """A run stopped by SIGINT/SIGTERM after saving a checkpoint."""

    def __init__(self, run_dir: Path, env_steps: int, signum: int):
        self.run_dir, self.env_steps, self.signum = run_dir, env_steps, signum
        super().__init__(
            f"stopped by {signal.Signals(signum).name} at env step {env_steps}; checkpoint "
            f"saved. Continue with: behavior-priors train --resume {run_dir}"
        )


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


class Progress:
    """A one-line ``rich`` display: steps, speed, recent return and success, KL."""

    def __init__(self, total: int, done: int):
        from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self._progress = RichProgress(
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
            if key in line and isinstance(line[key], int | float):
                parts.append(fmt.format(line[key]))
        self._progress.update(self._task, completed=line["env_steps"], info="  ".join(parts))


def _is_final_eval_line(line: dict[str, Any]) -> bool:
    return all(k == "env_steps" or k.startswith("eval/") for k in line)


# -- the session ---------------------------------------------------------------------------------


class RunSession:
    """A run directory opened for a new run or for continuing one.

    Args:
      run_dir: the directory.
      config: the run's config; ``None`` when resuming (the saved one is used; a different
        one is an error, because it would not continue the same run).
      resume: continue the run in ``run_dir``.
      checkpoint_step: with ``resume``, continue from this checkpoint (default: the latest).
      trust_code: with ``resume`` and no ``config``, consent to an environment name in
        ``run.json`` that imports code (``module:callable``); refused without it. A given
        ``config`` is the caller's own and needs no consent.
      total_env_steps: with ``resume``, raise the run's budget to this many env steps (extend
        a run, finished or not); :meth:`start` records it in ``run.json`` (the config's
        ``total_env_steps`` and an entry under ``"extended"``). Lowering it is refused.

    Opening checks the directory and takes the writer's lock (creating the directory of a new
    run, and only the lock file in it); nothing else is written. Then: :meth:`restore`
    (resume), :meth:`start` (writes ``run.json`` for a new run, opens the log), :meth:`log`,
    :meth:`save`, :meth:`finish`, and :meth:`close`, which releases the lock and must be called
    on every path (a new run's directory that got nothing but the lock is removed again).
    """

    def __init__(
        self,
        run_dir: str | Path,
        config: TrainConfig | None,
        *,
        resume: bool = False,
        checkpoint_step: int | None = None,
        trust_code: bool = False,
        total_env_steps: int | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.resume = resume
        if checkpoint_step is not None and not resume:
            raise ValueError("checkpoint_step chooses where a resumed run continues: resume=True")
        if total_env_steps is not None and not resume:
            raise ValueError("total_env_steps extends a resumed run: resume=True")
        self._extended_from: int | None = None
        self.checkpoint_step = checkpoint_step
        self._checkpointer: Checkpointer | None = None
        self.logger: MetricLogger | None = None
        self.history: list[dict[str, Any]] = []  # the log lines kept from before a resume
        self._lock: RunLock | None = None
        self._read_only: OSError | None = None  # a resumed run's folder that cannot be written
        self._created_dir = False
        self._started = False
        if resume:
            self._open_for_resume(config, trust_code, total_env_steps)
        else:
            if config is None:
                raise ValueError("a new run needs a config")
            self._check_new()
            self._created_dir = not self.run_dir.exists()
            self.run_dir.mkdir(parents=True, exist_ok=True)
            try:
                self._lock = RunLock(self.run_dir)
                self._check_new()  # again, under the lock: another writer may have begun
                self._refuse_links()
            except BaseException:
                self.close()
                raise
            self.info = {}
            self.config = config

    def _check_new(self) -> None:
        # The folder or one above it: mkdir would fail with "[Errno 20] Not a directory".
        blocker = next(
            (p for p in (self.run_dir, *self.run_dir.parents) if p.exists() and not p.is_dir()),
            None,
        )
        if blocker is not None:
            raise RunDirectoryError(
                f"{blocker} is a file, not a directory: choose another run directory"
            )
        if (self.run_dir / RUN_FILE).exists():
            raise FileExistsError(
                f"{self.run_dir} already holds a run; continue it with resume=True "
                "(--resume) or choose another run directory"
            )
        leftovers = [n for n in _RUN_OUTPUTS if (self.run_dir / n).exists()]
        if leftovers:
            raise RunDirectoryError(
                f"{self.run_dir} holds files of another run ({', '.join(leftovers)}) but no "
                f"{RUN_FILE}; a new run there would mix with them. Move them away or "
                "choose another run directory"
            )

    def _refuse_links(self) -> None:
        """Refuse symbolic links where the run appends or writes into (a folder from elsewhere
        could point them at the user's files or folders)."""
        checkpoints = self.run_dir / CHECKPOINT_DIR
        inside = list(checkpoints.iterdir()) if checkpoints.is_dir() else []
        links = [self.run_dir / n for n in _WRITTEN_THROUGH] + inside
        links = [str(p.relative_to(self.run_dir)) for p in links if p.is_symlink()]
        if links:
            raise RunDirectoryError(
                f"{self.run_dir} has symbolic links where a run writes ({', '.join(links)}): "
                "its writes would land outside the folder; replace each link with what it points "
                "to (or remove it), then try again"
            )

    def _open_for_resume(
        self, config: TrainConfig | None, trust_code: bool, total_env_steps: int | None
    ) -> None:
        # Everything that can refuse the folder is read before the lock is taken, so that a
        # refused folder gets nothing written into it, not even the lock file.
        self.info = read_run(self.run_dir)
        saved = TrainConfig.from_dict(self.info["config"])
        if config is not None and config != saved:
            raise ValueError(
                f"--resume continues {self.run_dir} with its own config; the given config "
                "differs (start a new run directory to change settings)"
            )
        if config is None:
            require_consent(saved.env, trust_code, str(self.run_dir / RUN_FILE))
        if total_env_steps is not None and total_env_steps != saved.total_env_steps:
            if isinstance(total_env_steps, bool) or not isinstance(total_env_steps, int):
                raise ValueError(f"total_env_steps must be an integer, got {total_env_steps!r}")
            if total_env_steps < saved.total_env_steps:
                raise ValueError(
                    f"{self.run_dir} has a budget of {saved.total_env_steps:,d} env steps; "
                    f"total_env_steps={total_env_steps:,d} would lower it. A run is extended, "
                    "never cut: stop it early, or continue from an earlier checkpoint with "
                    "--checkpoint-step"
                )
            self._extended_from = saved.total_env_steps
            saved = saved.replace(total_env_steps=total_env_steps)
        self.config = saved
        self._refuse_links()
        try:
            self._lock = RunLock(self.run_dir)
        except OSError as e:
            if e.errno not in _READ_ONLY:
                raise
            # Resuming a finished run writes nothing, so a read-only copy may still answer
            # "finished"; any other resume is refused by start().
            self._read_only = e

    # -- checkpoints -------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / CHECKPOINT_DIR

    @property
    def checkpointer(self) -> Checkpointer:
        if self._checkpointer is None:
            self._checkpointer = Checkpointer(self.checkpoint_dir)
        return self._checkpointer

    def restore(self) -> tuple[Any, dict[str, Any]] | None:
        """``(state, meta)`` of the checkpoint a resumed run continues from, or ``None`` when
        the run died before its first checkpoint (it then starts again from step 0 with its
        saved config; a transferred run cannot, since its grafted modules are not saved)."""
        if not self.resume:
            raise ValueError("restore() is for resumed runs")
        has_any = self.checkpoint_dir.exists() and self.checkpointer.steps()
        if not has_any and self.checkpoint_step is None:
            if "transfer" in self.info:
                raise RunDirectoryError(
                    f"{self.run_dir} stopped before its first checkpoint and was started from "
                    "another run's modules, which only a checkpoint holds: remove the folder "
                    "and run the transfer again"
                )
            return None
        return self.checkpointer.restore(self.checkpoint_step)

    def save(self, env_steps: int, state: Any, **meta: Any) -> None:
        """Checkpoint ``state`` at ``env_steps`` (see :class:`Checkpointer`)."""
        meta = {"version": __version__, "config": self.config.to_dict(), **meta}
        self.checkpointer.save(env_steps, state, meta)

    # -- run.json, the log, the final evaluation ----------------------------------------------
    def start(self, env_steps: int, **info: Any) -> None:
        """Begin writing: ``run.json`` for a new run (``info`` adds entries to it, e.g.
        ``env_specs``), and the metric log, cut back to ``env_steps`` for a resumed run.

        A resumed run that had already finished at ``env_steps`` writes nothing (no log is
        opened, so no TensorBoard file is added). Otherwise a resumed run first discards what
        lies after ``env_steps`` (later checkpoints, a later final evaluation, leftovers of
        killed rewrites), then cuts the log: killed at any point, the folder still resumes
        with a log and checkpoints that agree.
        """
        self._started = True
        if self.resume and self.finished_eval(env_steps) is not None:
            self.history = read_metrics(self.run_dir)
            return
        if self._read_only is not None:
            raise RunDirectoryError(
                f"{self.run_dir} cannot be written ({self._read_only.strerror}): the run is not "
                "finished and cannot be continued there; copy the folder somewhere writable and "
                "resume the copy"
            )
        self._remove_leftovers()
        if self.resume:
            if self._extended_from is not None:
                # The new budget first, then the old final evaluation goes: killed between
                # the two, the run still continues to the new budget.
                self.info["config"] = self.config.to_dict()
                self.info.setdefault("extended", []).append(
                    {
                        "from": self._extended_from,
                        "to": self.config.total_env_steps,
                        "at_env_steps": env_steps,
                        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    }
                )
                atomic_write_text(self.run_dir / RUN_FILE, json.dumps(self.info, indent=2))
            self._discard_after(env_steps)
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.info = {
                "config": self.config.to_dict(),
                "version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **info,
            }
            atomic_write_text(self.run_dir / RUN_FILE, json.dumps(self.info, indent=2))
        c = self.config
        if self.resume and (self.run_dir / METRICS_FILE).exists():
            # The resumed run logs the steps after its checkpoint again; a final-evaluation
            # line at the checkpoint itself is redone too.
            def keep(line: dict[str, Any]) -> bool:
                step = line["env_steps"]
                return step < env_steps or (step == env_steps and not _is_final_eval_line(line))

            self.history = MetricLogger.truncate(self.run_dir, keep)
        self._purge_abandoned()
        self.logger = MetricLogger(
            self.run_dir,
            tensorboard=c.tensorboard,
            wandb=c.wandb,
            config=c.to_dict(),
            resume=self.resume,
            purge_step=env_steps + 1 if self.resume else None,
        )

    def _remove_leftovers(self) -> None:
        """Temporary files of rewrites killed midway (only this session writes here now)."""
        for pattern in _TEMP_GLOBS:
            for tmp in self.run_dir.glob(pattern):
                tmp.unlink(missing_ok=True)
        self._purge_abandoned()

    def _discard_after(self, env_steps: int) -> None:
        """Take the checkpoints after ``env_steps`` out of the run (a rename each, atomic),
        and a final evaluation of a later step: a run continued from an earlier checkpoint
        abandons them, and a later resume must not continue from them past a cut log."""
        if self.checkpoint_dir.exists():
            for step in self.checkpointer.steps():
                if step > env_steps:
                    src = self.checkpoint_dir / str(step)
                    os.replace(src, self.run_dir / f"{_ABANDONED}{step}")
            if self._checkpointer is not None:
                self._checkpointer.steps()  # orbax re-reads the directory
        final = self.run_dir / FINAL_EVAL_FILE
        try:
            done_at = json.loads(final.read_text()).get("env_steps")
        except (OSError, ValueError, AttributeError):
            done_at = None
        # A later one belongs to an abandoned timeline; one at or before this step to a budget
        # since raised (the run trains on from here, so it is not finished).
        if isinstance(done_at, int) and (
            done_at > env_steps or env_steps < self.config.total_env_steps
        ):
            final.unlink()

    def _purge_abandoned(self) -> None:
        for path in self.run_dir.glob(f"{_ABANDONED}*"):
            if path.is_symlink():
                path.unlink()
            else:
                shutil.rmtree(path, ignore_errors=True)

    def last_eval(self) -> dict[str, float]:
        """The latest ``eval/`` metrics among the lines kept from before a resume."""
        for line in reversed(self.history):
            if any(k.startswith("eval/") for k in line):
                return {k: v for k, v in line.items() if k.startswith("eval/")}
        return {}

    def finished_eval(self, env_steps: int) -> dict[str, float] | None:
        """The final evaluation of a resumed run that had already finished at ``env_steps``
        (so resuming it again does nothing), else ``None``."""
        if not self.resume or env_steps < self.config.total_env_steps:
            return None
        try:
            final = json.loads((self.run_dir / FINAL_EVAL_FILE).read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(final, dict) or final.get("env_steps") != env_steps:
            return None
        return {k: v for k, v in final.items() if k != "env_steps"}

    def log(self, line: dict[str, float]) -> None:
        """Append one log line (``env_steps`` and metrics)."""
        if self.logger is None:
            raise RuntimeError("start() the session before logging")
        self.logger.log(int(line["env_steps"]), {k: v for k, v in line.items() if k != "env_steps"})

    def finish(self, env_steps: int, final: dict[str, float]) -> None:
        """Write ``final_eval.json`` (atomically) for the run's last evaluation."""
        atomic_write_text(
            self.run_dir / FINAL_EVAL_FILE,
            json.dumps({"env_steps": int(env_steps), **final}, indent=2),
        )

    def close(self) -> None:
        """Close the log and release the lock; a new run's directory that this session made
        and that holds nothing but the lock is removed (an error before :meth:`start` leaves
        no trace)."""
        if self.logger is not None:
            self.logger.close()
            self.logger = None
        if self._lock is not None:
            if self._created_dir and not self._started:
                self._lock.path.unlink(missing_ok=True)
                try:
                    self.run_dir.rmdir()
                except OSError:  # something else was put there meanwhile: keep it
                    pass
            self._lock.release()
            self._lock = None

    def __enter__(self) -> RunSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
