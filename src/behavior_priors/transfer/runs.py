"""Transfer: start a run from the prior (and low level) of a trained run (docs/paper.md section 4).

* **Task transfer**: the prior (flat pi0, or pi0^H with the shared pi^L) of a run trained on task
  set A regularises a new policy on task B. The prior is kept frozen or trained further, the low
  level frozen, fine-tuned or relearned, and the new policy starts fresh, from the prior, or from
  the source's policy.
* **Body transfer**: a new body keeps pi^H and pi0^H (which must read body-agnostic inputs) and
  learns a new low level pi^L, shared with pi0^L, optimising r - alpha KL(z).

The critic always starts fresh (the rewards are new), as do the optimiser states. Frozen modules
are named in the new run's ``SVG0Config.frozen``, so a resumed transfer run keeps them frozen,
and the run directory records where every module came from (``run.json["transfer"]``).

Python::

    spec = TransferSpec(source="runs/gtt-hier", prior="frozen", low_level="frozen")
    config = transfer_config(spec, task="movebox")
    result = transfer(config, spec, "runs/movebox-from-gtt")
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from behavior_priors.agents import svg0
from behavior_priors.agents.svg0.learner import state_from_networks
from behavior_priors.training.config import TrainConfig
from behavior_priors.training.run import RunResult, load, read_run, train
from behavior_priors.transfer.modules import TransferError, check_agents, graft

PriorMode = Literal["frozen", "finetune"]
LowLevelMode = Literal["frozen", "finetune", "relearn"]
PolicyInit = Literal["fresh", "prior", "source", "source-frozen"]


@dataclass(frozen=True)
class TransferSpec:
    """What to take from a trained run and how to train it further.

    Attributes:
      source: the trained run directory.
      checkpoint_step: its checkpoint to use (default: the latest).
      prior: ``frozen`` (kept bit for bit) or ``finetune`` (distilled further on the new task).
        The prior is pi0 for a flat prior, pi0^H (plus pi0^L if separate) for a hierarchical one.
      low_level: the policy's pi^L (shared with pi0^L when the low level is shared): ``frozen``,
        ``finetune``, or ``relearn`` (fresh parameters). ``None``: ``frozen`` for the same body,
        ``relearn`` for a new body (the only choice there).
      policy: the new policy's own part (the flat policy, or pi^H): ``fresh``; ``prior``
        (initialised to act like the prior: its weights, with zero weights on the inputs the
        prior does not read); ``source`` (the source's, trained further); ``source-frozen``.
        ``None``: ``fresh`` for the same body, ``source`` for a new body.
    """

    source: str
    checkpoint_step: int | None = None
    prior: PriorMode = "frozen"
    low_level: LowLevelMode | None = None
    policy: PolicyInit | None = None

    def __post_init__(self):
        for name, allowed in (
            ("prior", ("frozen", "finetune")),
            ("low_level", (None, "frozen", "finetune", "relearn")),
            ("policy", (None, "fresh", "prior", "source", "source-frozen")),
        ):
            if getattr(self, name) not in allowed:
                choices = ", ".join(a for a in allowed if a)
                raise ValueError(f"transfer {name}={getattr(self, name)!r}: one of {choices}")

    def resolved(self, same_body: bool) -> TransferSpec:
        """The spec with its ``None`` defaults filled in for a same- or new-body transfer."""
        low = self.low_level or ("frozen" if same_body else "relearn")
        policy = self.policy or ("fresh" if same_body else "source")
        return dataclasses.replace(self, low_level=low, policy=policy)


# -- building the new run's config ---------------------------------------------------------------


def body_of(env: str) -> str:
    """``"ant-gtt3" -> "ant"`` (the suite's names are ``<body>-<task set>``)."""
    return env.split("-", 1)[0]


def task_of(env: str) -> str:
    """``"ant-gtt3" -> "gtt3"``."""
    return env.split("-", 1)[1] if "-" in env else env


def frozen_modules(spec: TransferSpec, agent: svg0.SVG0Config) -> tuple[str, ...]:
    """The ``SVG0Config.frozen`` names a (resolved) spec implies for ``agent``."""
    frozen = []
    if agent.policy == "distral":  # pi0 is the policy's distilled column
        if spec.prior == "frozen":
            frozen.append("policy.distilled")
        if spec.policy == "source-frozen":
            frozen.append("policy.columns")
        return tuple(frozen)
    if agent.prior != "none" and spec.prior == "frozen":
        if agent.prior == "flat":
            frozen.append("prior")
        else:
            frozen.append("prior.high")
            if agent.low_level == "separate" and spec.low_level != "relearn":
                frozen.append("prior.low")
    if agent.policy == "hierarchical" and spec.low_level == "frozen":
        frozen.append("policy.low")
    if spec.policy == "source-frozen":
        frozen.append("policy.high" if agent.policy == "hierarchical" else "policy")
    return tuple(frozen)


def transfer_config(
    spec: TransferSpec,
    *,
    task: str | None = None,
    body: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    source_config: TrainConfig | None = None,
    trust_code: bool = False,
    **overrides: Any,
) -> TrainConfig:
    """The config of a run that transfers from ``spec.source``.

    The agent's architecture (policy and prior kinds, latent size, observation keys, network
    sizes) is the source's, since its modules are loaded; the loop settings are the source's too.
    ``task`` is a registered task set (``gtt3``, ``movebox``, ... or a preset task ``gtt``,
    ``gtt1``) and ``body`` a body of the suite; each defaults to the source's. Environment
    options come from the preset of that task when it changes (the source's otherwise), then
    ``env_kwargs``. ``overrides`` are :class:`TrainConfig` fields (``agent`` fields go through
    ``agent=...``). ``source_config``: the source run's config, when the run does not exist yet
    (the experiment runner plans transfer runs before their sources are trained); default: read
    from ``spec.source``. ``trust_code``: consent to a new environment name that, taken from
    the source folder, would import code (``module:callable``); refused otherwise.
    """
    from behavior_priors.envs.registry import require_consent
    from behavior_priors.training.presets import BODIES, TASKS

    source = source_config or TrainConfig.from_dict(read_run(spec.source)["config"])
    src_body, src_task = body_of(source.env), task_of(source.env)
    new_body = body or src_body
    kwargs: dict[str, Any]
    if task is None or task == src_task:
        new_task, kwargs = src_task, dict(source.env_kwargs)
    elif task in TASKS:
        new_task, preset_kwargs = TASKS[task]
        kwargs = dict(preset_kwargs)
    else:
        new_task, kwargs = task, {}
    kwargs.update(env_kwargs or {})
    resolved = spec.resolved(same_body=new_body == src_body)
    agent = overrides.pop("agent", None) or source.agent
    agent = agent.replace(frozen=frozen_modules(resolved, agent))
    steps = source.total_env_steps if new_body == src_body else BODIES.get(new_body, 500_000)
    fields = {
        "env": f"{new_body}-{new_task}",
        "env_kwargs": kwargs,
        "total_env_steps": steps,
        "agent": agent,
    }
    fields.update(overrides)
    if source_config is None and "env" not in overrides and (task is None or body is None):
        # Part of the new environment's name comes from the source folder: it may name code.
        require_consent(fields["env"], trust_code, str(Path(spec.source) / "run.json"))
    return source.replace(**fields)


def transfer_state(
    fresh: svg0.TrainState,
    config: TrainConfig,
    spec: TransferSpec,
) -> tuple[svg0.TrainState, dict[str, Any]]:
    """A fresh learner state with the source run's modules grafted in (targets equal to the new
    networks, optimiser states zeroed), and the provenance record of the new run."""
    source = load(spec.source, spec.checkpoint_step)
    same_body = body_of(source.config.env) == body_of(config.env)
    resolved = spec.resolved(same_body)
    expected = frozen_modules(resolved, config.agent)
    if tuple(config.agent.frozen) != expected:
        raise TransferError(
            f"the new run's agent.frozen is {config.agent.frozen}, but the transfer asks for "
            f"{expected}; build the config with transfer_config()"
        )
    check_agents(source.config.agent, config.agent)
    nets, what = graft(fresh.networks, source.state.networks, resolved, same_body)
    state = state_from_networks(config.agent, nets, fresh.key)
    provenance = {
        "source": str(Path(spec.source).resolve()),
        "source_env": source.config.env,
        "source_checkpoint_env_steps": source.env_steps,
        "body_transfer": not same_body,
        "spec": dataclasses.asdict(resolved),
        "modules": what,
        "frozen": list(config.agent.frozen),
    }
    return state, provenance


def transfer(
    config: TrainConfig, spec: TransferSpec, run_dir: str | Path | None = None, **train_kwargs
) -> RunResult:
    """Train a run that starts from ``spec.source``'s modules: :func:`~behavior_priors.training.
    train` with the grafted learner state; ``run.json["transfer"]`` records the provenance.
    Build ``config`` with :func:`transfer_config`. ``train_kwargs`` go to ``train`` (``progress``,
    ``on_log``, ``env``). Continue an interrupted transfer run with ``train(None, run_dir,
    resume=True)``: its checkpoint holds the grafted modules, its config the frozen ones."""

    def init_state(fresh: svg0.TrainState) -> tuple[svg0.TrainState, dict[str, Any]]:
        state, provenance = transfer_state(fresh, config, spec)
        return state, {"transfer": provenance}

    return train(config, run_dir, init_state=init_state, **train_kwargs)
