"""Distributed training with Ray: many actor processes, one learner with the replay, an
evaluator (:mod:`.driver` explains the processes, backpressure and faults).

Python::

    from behavior_priors.training.distributed import DistConfig, train_distributed
    result = train_distributed(config, "runs/x", DistConfig(num_actors=4))

Command line: ``behavior-priors train --distributed --num-actors 4 [--ray-address ADDR]``.
Needs the ``dist`` extra (``pip install 'behavior-priors[dist]'``).
"""

from behavior_priors.training.distributed.config import DistConfig
from behavior_priors.training.distributed.driver import (
    LearnerLost,
    actors_may_continue,
    train_distributed,
    utd_target,
)
from behavior_priors.training.distributed.replay_service import ShardedReplay

__all__ = [
    "DistConfig",
    "LearnerLost",
    "ShardedReplay",
    "actors_may_continue",
    "train_distributed",
    "utd_target",
]
