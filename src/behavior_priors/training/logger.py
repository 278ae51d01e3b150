"""Metrics to JSONL (always), TensorBoard (tensorboardX) and Weights & Biases (optional)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from behavior_priors.training.files import atomic_write_text

METRICS_FILE = "metrics.jsonl"


class MetricLogger:
    """Writes ``{"env_steps": n, "name": value, ...}`` lines to ``run_dir/metrics.jsonl``.

    Metric names are grouped (``charts/``, ``losses/``, ``kl/``, ``perf/``, ``eval/``); the same
    names go to TensorBoard and W&B with ``env_steps`` as the step.
    """

    def __init__(
        self,
        run_dir: Path,
        tensorboard: bool = True,
        wandb: bool = False,
        config: dict[str, Any] | None = None,
        resume: bool = False,
        purge_step: int | None = None,
    ):
        self.path = Path(run_dir) / METRICS_FILE
        self._file = self.path.open("a" if resume else "w")
        self._tb = None
        self._wandb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            # purge_step: TensorBoard hides the points at and after it that earlier writers
            # logged (a resumed run logs those steps again). tensorboardX names an event file
            # by the second and the host only, so a writer opened in the same second as the
            # previous one (a run resumed at once) overwrote that file and lost its points: a
            # nanosecond suffix keeps every file, in the order TensorBoard reads them (by name).
            self._tb = SummaryWriter(
                str(Path(run_dir) / "tensorboard"),
                purge_step=purge_step,
                filename_suffix=f".{time.time_ns()}",
            )
            if config is not None and not resume:
                _log_config(self._tb, config)
        if wandb:
            try:
                import wandb as wandb_lib
            except ImportError as e:
                raise ImportError(
                    "wandb logging was asked for but `wandb` is not installed: pip install wandb"
                ) from e
            self._wandb = wandb_lib.init(config=config, dir=str(run_dir), resume="allow")

    def log(self, env_steps: int, metrics: dict[str, float]) -> None:
        """Append one line (``metrics`` at ``env_steps``) to every sink."""
        clean = {k: float(v) for k, v in metrics.items()}
        line = {
            "env_steps": int(env_steps),
            **{k: (v if math.isfinite(v) else str(v)) for k, v in clean.items()},
        }
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in clean.items():
                self._tb.add_scalar(k, v, env_steps)
            self._tb.flush()  # a killed run keeps every line it logged, as metrics.jsonl does
        if self._wandb is not None:
            self._wandb.log(clean, step=int(env_steps))

    @staticmethod
    def truncate(run_dir: str | Path, keep: Callable[[dict[str, Any]], bool]) -> list[dict]:
        """Keep the lines of ``run_dir``'s metric log for which ``keep(line)`` holds (a resumed
        run logs the others again) and return them. Atomic: a kill or a full disk meanwhile
        leaves the old file whole. Lines cut short by a killed process are dropped."""
        path = Path(run_dir) / METRICS_FILE
        kept, text = [], []
        for ln in path.read_text().splitlines():
            try:
                line = json.loads(ln)
                if not keep(line):
                    continue
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
            kept.append(line)
            text.append(ln + "\n")
        atomic_write_text(path, "".join(text))
        return kept

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All lines of a run's ``metrics.jsonl``.

    Raises:
      ValueError: a damaged line, named by the file and its line number. A last line without
        its newline that does not parse is left out instead: the logger writes each line whole,
        so only a process killed while writing it (or one still writing) leaves one.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: is {run_dir} a run directory?")
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path} is damaged: not UTF-8 text at byte {e.start}; repair or remove the file"
        ) from None
    lines = text.split("\n")
    out = []
    for number, ln in enumerate(lines, 1):
        if not ln.strip():
            continue
        try:
            line = json.loads(ln)
        except json.JSONDecodeError as e:
            if number == len(lines):  # the text did not end with a newline
                break
            raise ValueError(
                f"{path}, line {number}: {e.msg} (column {e.colno}); the log is damaged: "
                "repair or delete that line"
            ) from None
        steps = line.get("env_steps") if isinstance(line, dict) else None
        if isinstance(steps, bool) or not isinstance(steps, int | float):
            raise ValueError(
                f"{path}, line {number}: not a metric line (a JSON object with a number "
                "env_steps); the log is damaged: repair or delete that line"
            )
        out.append(line)
    return out


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, float | str | bool]:
    """``config`` (nested dicts) as ``{"agent.kl_cost": 0.1, ...}``: numbers and booleans
    as they are, anything else (strings, lists, None) as its JSON text."""
    out: dict[str, float | str | bool] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_config(v, key + "."))
        elif isinstance(v, bool | int | float):
            out[key] = v
        else:
            out[key] = v if isinstance(v, str) else json.dumps(v)
    return out


def _log_config(writer: Any, config: dict[str, Any]) -> None:
    """The run's config in TensorBoard: as hyperparameters (the HParams tab, one session per
    run, compared across runs with ``tensorboard --logdir runs/``) and as JSON text."""
    from tensorboardX.summary import hparams

    for summary in hparams(flat_config(config), {"eval/success_rate": 0.0}):
        writer.file_writer.add_summary(summary)
    writer.add_text("config", "```json\n" + json.dumps(config, indent=2) + "\n```", 0)
