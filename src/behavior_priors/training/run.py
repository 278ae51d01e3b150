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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from behavior_priors.agents import svg0
from behavior_priors.envs.base import Env
from behavior_priors.training.acting import make_actor
from behavior_priors.training.actions import ActionLayout
from behavior_priors.training.checkpoint import Checkpointer, CheckpointError
from behavior_priors.training.config import TrainConfig
from behavior_priors.training.loop import (
    RunResult,
    Trainer,
    learner_state_from_arrays,
    learner_state_from_specs,
)
from behavior_priors.training.session import (
    RUN_FILE,
    Cadence,
    Interrupted,
    Progress,
    RunDirectoryError,
    RunSession,
    StopFlag,
    read_run,
)

__all__ = [
    "RUN_FILE",
    "Interrupted",
    "LoadedRun",
    "Policy",
    "StopFlag",
    "env_specs",
    "load",
    "make_run_env",
    "read_run",
    "restore_trainer",
    "train",
]


def env_specs(trainer: Any) -> dict[str, Any]:
    """``env_specs`` of run.json from anything with ``action_spec`` and ``obs_shapes`` (the
    single-process trainer, the distributed learner)."""
    return {
        "observation_shapes": {k: list(v) for k, v in trainer.obs_shapes.items()},
        **ActionLayout.from_spec(trainer.action_spec).to_env_specs(),
    }


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
    trust_code: bool = False,
    total_env_steps: int | None = None,
) -> RunResult:
    """Train an agent; the Python API of ``behavior-priors train``.

    Args:
      config: the run's config; ``None`` when resuming (the run's own config is used; a
        different one is an error, because it would not continue the same run).
      run_dir: where logs and checkpoints go; ``None`` trains in memory only.
      resume: continue ``run_dir`` from its latest checkpoint (or ``checkpoint_step``).
      env: an environment object instead of ``config.env``. ``run.json`` records its class
        (``env_object``), and the run can then only be resumed or evaluated from Python with an
        equal object: name environments by a string (docs/envs.md) so that every process can
        rebuild them.
      progress: show a ``rich`` progress display.
      on_log: also receives every log line.
      init_state: replaces the fresh learner state before the first step and returns entries
        for ``run.json`` (how :func:`behavior_priors.transfer.transfer` grafts a trained run's
        modules in and records where they came from). Runs before anything is written, so an
        error leaves no run directory behind. Not with ``resume``.
      trust_code: with ``resume`` and no ``config``, consent to an environment in ``run.json``
        named as ``module:callable`` (code the folder names is not run otherwise).
      total_env_steps: with ``resume``, train the run on to this budget (a finished run
        included; recorded in ``run.json``); otherwise the run's own budget. The continued
        steps are those a run started with this budget takes, exactly.

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

    if resume and init_state is not None:
        raise ValueError("a resumed run continues from its checkpoint; drop init_state")
    session = RunSession(
        run_dir,
        config,
        resume=resume,
        checkpoint_step=checkpoint_step,
        trust_code=trust_code,
        total_env_steps=total_env_steps,
    )
    with session:
        return _train_in(session, env, progress, on_log, init_state)


def _train_in(
    session: RunSession,
    env: Env | None,
    progress: bool,
    on_log: Callable[[dict[str, float]], None] | None,
    init_state: Callable[[svg0.TrainState], tuple[svg0.TrainState, dict[str, Any]]] | None,
) -> RunResult:
    """:func:`train` in an open session (the caller closes it on every path)."""
    resume = session.resume
    extra_info: dict[str, Any] = {}
    if resume and env is None and "env_object" in session.info:
        raise RunDirectoryError(
            f"{session.run_dir} trained on a Python environment object "
            f"({session.info['env_object']}), not on config.env: resume it from Python with "
            "train(None, run_dir, resume=True, env=<the same environment>)"
        )
    trainer = Trainer(session.config, env)
    if env is not None:
        extra_info["env_object"] = f"{type(env).__module__}.{type(env).__qualname__}"
    if init_state is not None:  # before anything is written: an error leaves no trace
        trainer.state, grafted = init_state(trainer.state)
        extra_info.update(grafted)
    if resume:
        restore_trainer(session, trainer)
    session.start(trainer.env_steps, env_specs=env_specs(trainer), **extra_info)
    final = session.finished_eval(trainer.env_steps)
    already_finished = final is not None
    if final is None:
        final = _run(session, trainer, progress, on_log)
        session.save(trainer.env_steps, trainer.state_dict())
        session.finish(trainer.env_steps, final)
    else:
        trainer.history = list(session.history)
    return RunResult(
        session.run_dir,
        trainer.env_steps,
        trainer.updates,
        final,
        trainer.state,
        trainer.history,
        already_finished=already_finished,
    )


def restore_trainer(session: RunSession, trainer: Trainer) -> None:
    """Load the checkpoint ``session`` resumes from into ``trainer`` (nothing when the run
    stopped before its first checkpoint: it starts again), and the log history before it."""
    restored = session.restore()
    if restored is not None:
        state, meta = restored
        try:
            trainer.load_state_dict(state)
        except (ValueError, KeyError) as e:
            raise CheckpointError(
                f"checkpoint {session.checkpoint_dir / str(meta['step'])} does not fit this "
                f"run: {e}"
            ) from e


def _run(
    session: RunSession,
    trainer: Trainer,
    progress: bool,
    on_log: Callable[[dict[str, float]], None] | None,
) -> dict[str, float]:
    """The single-process loop inside a session: log, checkpoint, stop on a signal."""
    trainer.history = list(session.history)
    trainer.last_eval = session.last_eval()
    checkpoints = Cadence.after(trainer.env_steps, session.config.checkpoint_every)
    display = Progress(session.config.total_env_steps, trainer.env_steps) if progress else None

    def log(line: dict[str, float]) -> None:
        session.log(line)
        if display is not None:
            display.update(line)
        if on_log is not None:
            on_log(line)

    def after_log(t: Trainer) -> None:
        if checkpoints.due(t.env_steps):
            session.save(t.env_steps, t.state_dict())

    with StopFlag() as stop:
        if display is not None:
            display.start()
        try:
            final = trainer.run(on_log=log, after_log=after_log, should_stop=stop)
        finally:
            if display is not None:
                display.stop()
        if stop.signum is not None:
            session.save(trainer.env_steps, trainer.state_dict())
            raise Interrupted(session.run_dir, trainer.env_steps, stop.signum)
    return final


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
        self._act = make_actor(agent, deterministic=deterministic)
        self.num_envs = num_envs

    def act(self, obs: dict[str, Any], first: Any = None) -> np.ndarray:
        first = np.zeros(self.num_envs, bool) if first is None else np.asarray(first, bool)
        a, _, self._state, self._key = self._act(self.network, obs, first, self._state, self._key)
        return self._actions.to_env(a)

    def predict(self, obs: dict[str, Any], first: bool = False) -> np.ndarray:
        """:meth:`act` for one observation ``{key: [*shape]}`` (no batch axis): the action
        ``[Da]`` (an int for discrete actions). ``first`` marks an episode's first step. Needs
        a policy of one copy (``run.policy()``), whose memory (a held latent) it carries."""
        if self.num_envs != 1:
            raise ValueError(
                f"predict takes one observation; this policy acts for {self.num_envs} copies: "
                "use act(), or run.policy() for one"
            )
        batch = {k: np.asarray(v)[None] for k, v in obs.items()}
        return self.act(batch, np.array([first]))[0]


def evaluate_policy(policy: Policy, env: Env, num_episodes: int, seed: int = 0) -> dict[str, float]:
    """Run ``num_episodes`` complete episodes of ``env`` with ``policy`` (of ``env.num_envs``
    copies; each copy contributes its first ``ceil(num_episodes / B)`` episodes, so short
    episodes are not favoured) from ``env.reset(seed)``: ``{"episode_return",
    "episode_return_std", "episode_length", "success_rate", "episodes"}`` (SB3's
    ``evaluate_policy``, with success).
    """
    from behavior_priors.training.evaluation import collect_episodes

    if policy.num_envs != env.num_envs:
        raise ValueError(
            f"the policy acts for {policy.num_envs} copies, the environment has "
            f"{env.num_envs}: make it with run.policy(num_envs={env.num_envs})"
        )
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    stats = collect_episodes(
        env, num_episodes, seed, lambda ts: policy.act(ts.observation, ts.first())
    )
    return {**stats.summary(), "episode_return_std": float(np.std(stats.returns))}


def make_run_env(
    run: LoadedRun, num_envs: int = 1, seed: int | None = None, *, trust_code: bool = False
) -> Env:
    """The environment ``run`` trained on, with ``num_envs`` copies (reset with ``seed``).

    Its name comes from the run folder: one that would import code (``module:callable``) is
    refused unless ``trust_code`` (:func:`~behavior_priors.envs.registry.require_consent`).
    """
    from behavior_priors.envs.registry import make, require_consent

    info = read_run(run.run_dir)
    if info.get("env_object"):
        raise RunDirectoryError(
            f"{run.run_dir} trained on a Python environment object ({info['env_object']}), "
            "which cannot be rebuilt from the folder: evaluate it from Python with the same "
            "object, or name the environment by a string (docs/envs.md)"
        )
    require_consent(run.config.env, trust_code, str(run.run_dir / RUN_FILE))
    return make(run.config.env, num_envs=num_envs, seed=seed, **run.config.env_kwargs)


def load(run_dir: str | Path, checkpoint_step: int | None = None) -> LoadedRun:
    """Load the learner state of a run directory's latest (or given) checkpoint.

    Reads arrays and JSON only: nothing the folder names is imported (building its
    environment is :func:`make_run_env`'s, with consent where it names code)."""
    run_dir = Path(run_dir)
    info = read_run(run_dir)
    config = TrainConfig.from_dict(info["config"])
    specs = info.get("env_specs")
    try:
        shapes = {k: tuple(int(n) for n in v) for k, v in specs["observation_shapes"].items()}
        actions = ActionLayout.from_env_specs(specs)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = "no env_specs" if specs is None else f"damaged env_specs ({type(e).__name__}: {e})"
        raise RunDirectoryError(
            f"{run_dir / RUN_FILE} has {what}: the run was damaged or written by another "
            "program and its networks cannot be rebuilt; restore run.json from a copy"
        ) from None
    template = learner_state_from_specs(config.agent, shapes, actions, jax.random.PRNGKey(0))
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
