"""Transfer: start runs from the prior and low level of trained runs (docs/paper.md section 4).

* :mod:`.modules`: grafting trained modules into fresh networks, with shape checks that name
  what differs, and :func:`embed_net` (a policy that starts acting like its prior).
* :mod:`.runs`: :class:`TransferSpec` (what to take, frozen or fine-tuned), the new run's config
  (:func:`transfer_config`), the grafted learner state and provenance (:func:`transfer_state`),
  and :func:`transfer`, which trains the new run. See ``docs/transfer.md``.
"""

from behavior_priors.transfer.modules import TransferError, embed_net, graft
from behavior_priors.transfer.runs import (
    TransferSpec,
    frozen_modules,
    transfer,
    transfer_config,
    transfer_state,
)

__all__ = [
    "TransferError",
    "TransferSpec",
    "embed_net",
    "frozen_modules",
    "graft",
    "transfer",
    "transfer_config",
    "transfer_state",
]
