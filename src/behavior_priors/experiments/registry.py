"""Named experiments: methods x tasks x seeds with a step budget, each backing a claim.

An experiment is data, not code: which training presets to compare (``METHODS`` of
:mod:`behavior_priors.training.presets`), on which tasks (a preset task and body plus
environment overrides), how many seeds, and how many environment steps. ``behavior-priors
reproduce NAME`` runs it (:mod:`.runner`) and builds its report (:mod:`.report`).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from behavior_priors.training.config import TrainConfig
from behavior_priors.training.presets import METHODS, get_preset


@dataclass(frozen=True)
class ExperimentTask:
    """One task of an experiment: the preset task and body, plus environment overrides.

    Attributes:
      label: short name used in run directories and reports.
      preset_task: a task of the presets (``gtt``, ``gtt1``, ``movebox``).
      body: a body of the presets (``pointmass``, ``ball``, ``ant``, ``quadruped``).
      env_kwargs: merged over the preset's environment options.
    """

    label: str
    preset_task: str
    body: str
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """Methods x tasks x seeds at a step budget.

    Attributes:
      name: the registry key (``behavior-priors reproduce NAME``).
      description: one line for ``behavior-priors list experiments``.
      claim: the claim of ``PAPER.md`` section 7 this experiment tests, in words.
      methods: preset methods compared (``hier``, ``flat``, ``noprior``, ...).
      tasks: the tasks each method is trained on.
      total_env_steps: the budget of one run (before ``budget_scale``).
      seeds: default number of seeds.
      threshold: success rate that defines "steps to threshold" in the report.
      metric: the metric the report summarises (an evaluation metric with the deterministic
        policy, logged every ``eval_every`` steps).
      train_overrides: :class:`TrainConfig` fields set on every run (e.g. ``eval_every``).
      agent_overrides: agent fields set on every run (e.g. ``kl_cost``).
    """

    name: str
    description: str
    claim: str
    methods: tuple[str, ...]
    tasks: tuple[ExperimentTask, ...]
    total_env_steps: int
    seeds: int = 3
    threshold: float = 0.5
    metric: str = "eval/success_rate"
    train_overrides: Mapping[str, Any] = field(default_factory=dict)
    agent_overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"experiment {self.name!r}: unknown methods {unknown}")
        labels = [t.label for t in self.tasks]
        if not labels or len(set(labels)) != len(labels):
            raise ValueError(f"experiment {self.name!r}: task labels must be unique, non-empty")
        if not self.methods or self.total_env_steps < 1 or self.seeds < 1:
            raise ValueError(f"experiment {self.name!r}: needs methods, steps >= 1, seeds >= 1")

    def config(
        self, task: ExperimentTask, method: str, seed: int, budget_scale: float = 1.0
    ) -> TrainConfig:
        """The :class:`TrainConfig` of one run."""
        if budget_scale <= 0:
            raise ValueError(f"budget_scale must be > 0, got {budget_scale}")
        base = get_preset(f"{task.preset_task}-{task.body}-{method}")
        steps = max(1, round(self.total_env_steps * budget_scale))
        overrides = dict(self.train_overrides)
        # Scaled-down budgets still evaluate a few times along the way.
        for key in ("eval_every", "log_every", "checkpoint_every"):
            value = overrides.get(key, getattr(base, key))
            if budget_scale < 1 and value:
                overrides[key] = max(1, round(value * budget_scale))
        overrides["warmup_steps"] = min(overrides.get("warmup_steps", base.warmup_steps), steps)
        return base.replace(
            env_kwargs={**base.env_kwargs, **task.env_kwargs},
            total_env_steps=steps,
            seed=seed,
            agent=base.agent.replace(**self.agent_overrides)
            if self.agent_overrides
            else base.agent,
            **overrides,
        )


# Sparse go-to-target on the point mass (claim 1): reward only while on the target, with a
# bonus the first time; 10 s episodes. See docs/results/multitask-prior.md.
_SPARSE_GTT = {"shaped": False, "reward_scale": 1.0, "success_bonus": 0.5, "episode_seconds": 10.0}

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment(
            name="multitask-prior",
            description="claim 1: no prior vs flat prior vs hierarchical prior, "
            "point mass, go to one of 3 targets, sparse reward",
            claim="A learned prior (KL regularisation) speeds learning in multi-task "
            "sparse-reward settings over no prior (PAPER.md section 7, claim 1).",
            methods=("noprior", "flat", "hier"),
            tasks=(ExperimentTask("gtt3-sparse", "gtt", "pointmass", _SPARSE_GTT),),
            total_env_steps=200_000,
            seeds=5,
            threshold=0.5,
            train_overrides={"eval_every": 20_000, "tensorboard": False},
        ),
        Experiment(
            name="hier-vs-flat",
            description="claim 3a: no prior vs flat prior vs hierarchical prior, "
            "point mass, move one of 2 boxes to one of 2 targets",
            claim="The hierarchical prior with a shared low level learns at least as fast as "
            "flat priors (PAPER.md section 7, claim 3, first half).",
            methods=("noprior", "flat", "hier"),
            tasks=(ExperimentTask("movebox", "movebox", "pointmass"),),
            total_env_steps=300_000,
            seeds=3,
            threshold=0.5,
            train_overrides={"eval_every": 25_000, "tensorboard": False},
        ),
        Experiment(
            name="smoke",
            description="a tiny check of the harness (two methods, two seeds, a few hundred "
            "steps); its numbers mean nothing",
            claim="none: it checks that runs, resume and the report work end to end.",
            methods=("noprior", "hier"),
            tasks=(ExperimentTask("gtt1", "gtt1", "pointmass"),),
            total_env_steps=480,
            seeds=2,
            threshold=0.1,
            train_overrides={
                "eval_every": 160,
                "log_every": 160,
                "checkpoint_every": 160,
                "eval_episodes": 2,
                "warmup_steps": 160,
                "batch_size": 4,
                "tensorboard": False,
            },
        ),
    )
}


def get_experiment(name: str) -> Experiment:
    """A registered experiment; ``KeyError`` with suggestions if unknown."""
    if name in EXPERIMENTS:
        return EXPERIMENTS[name]
    close = difflib.get_close_matches(name, list(EXPERIMENTS), n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise KeyError(f"unknown experiment {name!r}{hint} (see `behavior-priors list experiments`)")
