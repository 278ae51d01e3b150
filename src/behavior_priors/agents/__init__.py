"""Agents: one folder per algorithm (``svg0``: the paper's learner), plus the shared types
of the data they consume (:mod:`behavior_priors.agents.types`)."""
