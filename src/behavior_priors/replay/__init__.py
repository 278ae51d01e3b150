"""Sequence replay for off-policy learners: windows of T+1 steps with behaviour log-probs,
latents and task ids (see :mod:`behavior_priors.agents.types` for the index convention)."""

from behavior_priors.replay.sequence import SequenceReplay

__all__ = ["SequenceReplay"]
