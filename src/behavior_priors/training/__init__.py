"""Training: the run loop, run directories (logs, checkpoints, resume), evaluation, plots,
videos and presets. See ``docs/training.md``."""

from behavior_priors.training.config import TrainConfig
from behavior_priors.training.loop import RunResult, Trainer
from behavior_priors.training.presets import get_preset, preset_names
from behavior_priors.training.run import (
    LoadedRun,
    Policy,
    evaluate_policy,
    load,
    make_run_env,
    train,
)

__all__ = [
    "LoadedRun",
    "Policy",
    "RunResult",
    "TrainConfig",
    "Trainer",
    "evaluate_policy",
    "get_preset",
    "load",
    "make_run_env",
    "preset_names",
    "train",
]
