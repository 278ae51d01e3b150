"""Configuration of a training run: the environment, the loop, and the agent."""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from behavior_priors.agents.svg0 import SVG0Config
from behavior_priors.agents.svg0.config import bool_problem, number_problem


@dataclass(frozen=True)
class TrainConfig:
    """One frozen dataclass that is at once the CLI, the run's config and its logged
    hyper-parameters (CleanRL style).

    Attributes:
      env: the environment's name, which every process rebuilds it from: a registered name
        (``behavior-priors list envs``), ``gymnasium:<id>``, ``dm_control:<domain>-<task>``
        or ``<module>:<callable>`` (docs/envs.md).
      env_kwargs: overrides passed to the environment factory.
      num_envs: B copies stepping together.
      seed: seeds the environment, the replay sampler and every JAX key.
      total_env_steps: stop after this many environment steps (summed over copies).
      sequence_length: T; replay windows hold T+1 steps.
      batch_size: windows per learner update.
      replay_capacity: steps kept in replay (summed over copies).
      warmup_steps: environment steps before the first update.
      updates_per_env_step: update-to-data ratio (learner updates per environment step summed
        over copies; e.g. 1/8 with 8 copies is one update per batched env step).
      eval_every: environment steps between evaluations (0: only at the end).
      eval_episodes: episodes per evaluation, run in parallel copies with the deterministic
        (mean) policy.
      log_every: environment steps between log lines.
      checkpoint_every: environment steps between checkpoints (0: only at the end).
      tensorboard: also write TensorBoard event files.
      wandb: also log to Weights & Biases (needs ``wandb`` installed and configured).
      agent: the SVG(0) agent.
    """

    env: str = "pointmass-gtt3"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    num_envs: int = 8
    seed: int = 0
    total_env_steps: int = 100_000
    sequence_length: int = 10
    batch_size: int = 32
    replay_capacity: int = 1_000_000
    warmup_steps: int = 2_000
    updates_per_env_step: float = 0.125
    eval_every: int = 10_000
    eval_episodes: int = 8
    log_every: int = 2_000
    checkpoint_every: int = 20_000
    tensorboard: bool = True
    wandb: bool = False
    agent: SVG0Config = field(default_factory=SVG0Config)

    def __post_init__(self):
        problems = {}
        if not isinstance(self.env, str) or not self.env:
            problems["env"] = (
                f"env must be a non-empty string (an environment name, docs/envs.md), got "
                f"{self.env!r}"
            )
        if not isinstance(self.env_kwargs, dict) or not all(
            isinstance(k, str) for k in self.env_kwargs
        ):
            problems["env_kwargs"] = (
                f"env_kwargs must be a dict of option names to values, got {self.env_kwargs!r}"
            )
        for name in (
            "num_envs",
            "total_env_steps",
            "sequence_length",
            "batch_size",
            "replay_capacity",
            "eval_episodes",
            "log_every",
        ):
            problems[name] = number_problem(name, getattr(self, name), ">= 1", integer=True)
        # eval_every and checkpoint_every 0 mean only at the end, warmup_steps 0 no warm-up;
        # NumPy's generators refuse a negative seed.
        for name in ("seed", "warmup_steps", "eval_every", "checkpoint_every"):
            problems[name] = number_problem(name, getattr(self, name), ">= 0", integer=True)
        problems["updates_per_env_step"] = number_problem(
            "updates_per_env_step", self.updates_per_env_step, ">= 0"
        )
        for name in ("tensorboard", "wandb"):
            problems[name] = bool_problem(name, getattr(self, name))
        if not isinstance(self.agent, SVG0Config):
            problems["agent"] = f"agent must be an SVG0Config, got {self.agent!r}"
        problems = {k: v for k, v in problems.items() if v is not None}
        if not problems.keys() & {"replay_capacity", "num_envs", "sequence_length"} and (
            self.replay_capacity < self.num_envs * (self.sequence_length + 1)
        ):
            problems["replay_capacity"] = (
                f"replay_capacity must hold at least one window per copy: >= num_envs * "
                f"(sequence_length + 1) = {self.num_envs * (self.sequence_length + 1)}, got "
                f"{self.replay_capacity}"
            )
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems.values()))

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict` (JSON turns tuples into lists; turn them back)."""
        if not isinstance(d, dict):
            raise ValueError(f"a train config must be a dict, got {d!r}")
        d = dict(d)
        agent = d.pop("agent", {})
        if not isinstance(agent, dict):
            raise ValueError(f"agent must be a dict of agent settings, got {agent!r}")
        fields = {f.name: f for f in dataclasses.fields(SVG0Config)}
        unknown = set(agent) - set(fields)
        if unknown:
            raise ValueError(f"unknown agent config keys {sorted(unknown)}")
        agent = {k: tuple(v) if isinstance(v, list) else v for k, v in agent.items()}
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown train config keys {sorted(unknown)}")
        return cls(**d, agent=SVG0Config(**agent))


def parse_key_values(items: list[str]) -> dict[str, Any]:
    """``["a=1", "b=(64, 64)", "c=text"]`` -> ``{"a": 1, "b": (64, 64), "c": "text"}``: values
    are Python literals where they parse as one, else strings; ``ValueError`` on an item
    without ``KEY=``."""
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out
