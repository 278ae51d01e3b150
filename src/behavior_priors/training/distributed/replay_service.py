"""One replay for many actors: a shard (a :class:`SequenceReplay`) per actor, sampled as one.

Each actor's chunks arrive in order, so a shard's streams are as continuous as in the
single-process loop; a restarted actor's first chunk cuts its shard's streams first
(:meth:`SequenceReplay.cut_episodes`), so no window bridges the lost episode and the new one.
The shards live with the learner, so an actor's death loses none of what it sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from behavior_priors.agents.types import SequenceBatch
from behavior_priors.replay import SequenceReplay
from behavior_priors.replay.sequence import _rng_from_array, _rng_to_array


class ShardedReplay:
    """``num_shards`` replays of ``num_envs`` streams each, sampled uniformly over all windows.

    Args:
      capacity_steps: environment steps kept in all shards together.
      num_shards: one per actor.
      others: as :class:`SequenceReplay`.
    """

    def __init__(
        self,
        capacity_steps: int,
        num_shards: int,
        num_envs: int,
        sequence_length: int,
        observation_spec: Mapping[str, Any],
        action_shape: tuple[int, ...],
        latent_dim: int = 0,
        seed: int = 0,
        action_dtype: Any = np.float32,
    ):
        self.shards = [
            SequenceReplay(
                capacity_steps // num_shards,
                num_envs,
                sequence_length,
                observation_spec,
                action_shape,
                action_dtype,
                latent_dim,
                seed=seed * 1_000 + i,
            )
            for i in range(num_shards)
        ]
        self._rng = np.random.default_rng(seed)

    def add_chunk(self, shard: int, steps: Sequence[tuple[Any, Any, Any]], cut: bool) -> None:
        """Store an actor's ``[(timestep, action [B, Da], extras), ...]`` in order; ``cut``:
        the actor (re)started, so its shard's streams end before these steps."""
        replay = self.shards[shard]
        if cut:
            replay.cut_episodes()
        for ts, action, extras in steps:
            replay.add(ts, action, extras)

    def num_sampleable(self) -> int:
        return sum(r.num_sampleable() for r in self.shards)

    def __len__(self) -> int:
        return sum(len(r) for r in self.shards)

    def sample(self, batch_size: int) -> SequenceBatch:
        """``batch_size`` windows drawn uniformly over every shard's windows: shard counts from
        a multinomial with probabilities proportional to the windows each holds."""
        sizes = np.array([r.num_sampleable() for r in self.shards], np.float64)
        if sizes.sum() == 0:
            raise ValueError("replay holds no complete window yet")
        counts = self._rng.multinomial(batch_size, sizes / sizes.sum())
        parts = [r.sample(int(n)) for r, n in zip(self.shards, counts, strict=True) if n]
        if len(parts) == 1:
            return parts[0]
        return SequenceBatch(
            *(
                {k: np.concatenate([p[i][k] for p in parts]) for k in parts[0][i]}
                if isinstance(parts[0][i], dict)
                else np.concatenate([p[i] for p in parts])
                for i in range(len(parts[0]))
            )
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "shards": {f"shard{i}": r.state_dict() for i, r in enumerate(self.shards)},
            "rng": _rng_to_array(self._rng),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        shards = state["shards"]
        if len(shards) != len(self.shards):
            raise ValueError(
                f"checkpointed replay has {len(shards)} shards (actors), this run "
                f"{len(self.shards)}: resume with the same number of actors"
            )
        for i, r in enumerate(self.shards):
            r.load_state_dict(shards[f"shard{i}"])
        self._rng = _rng_from_array(np.asarray(state["rng"]))
