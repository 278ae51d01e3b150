"""Checkpoints of a whole run with orbax: atomic, versioned, the previous good one kept.

A checkpoint is a directory ``run_dir/checkpoints/<env_steps>/`` written by an orbax
``CheckpointManager``: orbax writes into a temporary directory and renames it when complete, so
a run killed mid-save leaves the previous checkpoint intact, and the newest ``max_to_keep``
(default 2) are kept. Each holds two items:

* ``state``: a pytree of arrays (learner state leaves, replay contents, environment and actor
  state, RNG states, counters), see :meth:`behavior_priors.training.loop.Trainer.state_dict`;
* ``meta``: JSON (format version, library version, env steps, the run's config).

Restoring checks the format version and that the config matches, and names the cause of any
failure (missing, corrupt or incompatible checkpoint).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or does not belong to this run."""


def _ocp():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import orbax.checkpoint as ocp
    return ocp


class Checkpointer:
    """Saves and restores run state under ``directory`` (``run_dir/checkpoints``)."""

    def __init__(self, directory: str | Path, max_to_keep: int = 2):
        ocp = _ocp()
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep, enable_async_checkpointing=False, create=True
            ),
        )

    def steps(self) -> list[int]:
        """Complete checkpoints, oldest first (a half-written one is never listed)."""
        self._manager.reload()
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> Path:
        """Write checkpoint ``step`` (a no-op if it exists) and return its directory."""
        ocp = _ocp()
        meta = {"format_version": FORMAT_VERSION, "step": int(step), **meta}
        if step not in self._manager.all_steps():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._manager.save(
                    int(step),
                    args=ocp.args.Composite(
                        state=ocp.args.PyTreeSave(_encode_empty(state)),
                        meta=ocp.args.JsonSave(meta),
                    ),
                )
                self._manager.wait_until_finished()
        return self.directory / str(step)

    def restore(self, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """``(state, meta)`` of checkpoint ``step`` (default: the latest).

        Raises :class:`CheckpointError` naming the directory and the cause; older complete
        checkpoints are left untouched, and the message lists them so one can be chosen.
        """
        ocp = _ocp()
        steps = self.steps()
        if not steps:
            raise CheckpointError(f"no complete checkpoint in {self.directory}")
        if step is None:
            step = steps[-1]
        if step not in steps:
            raise CheckpointError(f"no checkpoint {step} in {self.directory}; have {steps}")
        path = self.directory / str(step)
        others = [s for s in steps if s != step]
        hint = (
            f" Earlier checkpoints kept: {others} (resume with --checkpoint-step)."
            if others
            else ""
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                restored = self._manager.restore(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.PyTreeRestore(), meta=ocp.args.JsonRestore()
                    ),
                )
        except Exception as e:  # orbax raises many types; all mean "unreadable"
            raise CheckpointError(
                f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}: {e}).{hint}"
            ) from e
        meta = dict(restored["meta"])
        if meta.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint {path} has format version {meta.get('format_version')}, this "
                f"library reads version {FORMAT_VERSION}.{hint}"
            )
        return _decode_empty(restored["state"]), meta


_EMPTY = "__empty_array_shape__"


def _encode_empty(tree: Any) -> Any:
    """Orbax refuses zero-size arrays (e.g. the latent of a flat policy, ``[..., 0]``); store
    their shape and dtype instead and rebuild them on restore."""
    if isinstance(tree, dict):
        return {k: _encode_empty(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return [_encode_empty(v) for v in tree]
    if isinstance(tree, np.ndarray | np.generic) or hasattr(tree, "shape"):
        arr = np.asarray(tree)
        if arr.size == 0:
            return {_EMPTY: np.array(arr.shape, np.int64), "dtype": np.zeros(1, arr.dtype)}
    return tree


def _decode_empty(tree: Any) -> Any:
    if isinstance(tree, dict):
        if _EMPTY in tree:
            return np.zeros(tuple(int(x) for x in tree[_EMPTY]), np.asarray(tree["dtype"]).dtype)
        return {k: _decode_empty(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return [_decode_empty(v) for v in tree]
    return tree
