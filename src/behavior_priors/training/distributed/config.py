"""Settings of a distributed run (the training loop's own settings stay in ``TrainConfig``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DistConfig:
    """How a run is spread over Ray processes.

    Attributes:
      num_actors: actor processes, each stepping its own batched environments.
      envs_per_actor: copies per actor (``None``: the run's ``num_envs``).
      ray_address: an existing cluster (``auto``, ``ray://host:10001``, ``host:6379``);
        ``None`` starts a local Ray instance for this run.
      chunk_steps: batched environment steps per actor task; a chunk of ``chunk_steps *
        envs_per_actor`` transitions travels to the replay in one object.
      broadcast_every: learner updates between parameter broadcasts (one ``ray.put`` read by
        every actor); actors act with parameters at most this many updates old, plus a chunk.
      utd_tolerance: the update-to-data ratio is held within this fraction of the target
        (``TrainConfig.updates_per_env_step``): actors pause when the learner falls behind by
        more than that (and one chunk of every actor), the learner waits when it is ahead.
      learner_gpus: GPUs the learner asks Ray for (its node must have them; JAX's CUDA wheel
        then runs the update there).
      actor_cpus: CPUs each actor reserves in Ray's scheduler.
      max_actor_restarts: restarts of one actor (after a crash or an environment error) before
        the run fails.
    """

    num_actors: int = 2
    envs_per_actor: int | None = None
    ray_address: str | None = None
    chunk_steps: int = 8
    broadcast_every: int = 8
    utd_tolerance: float = 0.1
    learner_gpus: float = 0.0
    actor_cpus: float = 1.0
    max_actor_restarts: int = 20

    def __post_init__(self):
        problems = []
        for name in ("num_actors", "chunk_steps", "broadcast_every"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if self.envs_per_actor is not None and self.envs_per_actor < 1:
            problems.append("envs_per_actor must be >= 1 (or None)")
        if not 0 < self.utd_tolerance <= 1:
            problems.append("utd_tolerance must be in (0, 1]")
        if self.learner_gpus < 0 or self.actor_cpus < 0 or self.max_actor_restarts < 0:
            problems.append("learner_gpus, actor_cpus and max_actor_restarts must be >= 0")
        if problems:
            raise ValueError("invalid DistConfig: " + "; ".join(problems))
