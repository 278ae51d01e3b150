"""Metrics to JSONL (always), TensorBoard (tensorboardX) and Weights & Biases (optional)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


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
    ):
        self.path = Path(run_dir) / "metrics.jsonl"
        self._file = self.path.open("a" if resume else "w")
        self._tb = None
        self._wandb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))
        if wandb:
            try:
                import wandb as wandb_lib
            except ImportError as e:
                raise ImportError(
                    "wandb logging was asked for but `wandb` is not installed: pip install wandb"
                ) from e
            self._wandb = wandb_lib.init(config=config, dir=str(run_dir), resume="allow")

    def log(self, env_steps: int, metrics: dict[str, float]) -> None:
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
        if self._wandb is not None:
            self._wandb.log(clean, step=int(env_steps))

    def truncate_after(self, env_steps: int) -> None:
        """Drop lines logged after ``env_steps`` (a resumed run replays those steps)."""
        self._file.close()
        lines = []
        for ln in self.path.read_text().splitlines():
            try:
                if json.loads(ln)["env_steps"] <= env_steps:
                    lines.append(ln)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by a killed process
        self.path.write_text("".join(ln + "\n" for ln in lines))
        self._file = self.path.open("a")

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All lines of a run's ``metrics.jsonl``."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: is {run_dir} a run directory?")
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
