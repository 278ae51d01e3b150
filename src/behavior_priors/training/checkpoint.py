"""Checkpoints of a whole run with orbax: atomic, versioned, the previous good one kept.

A checkpoint is a directory ``run_dir/checkpoints/<env_steps>/`` written by an orbax
``CheckpointManager``: orbax writes into a temporary directory and renames it when complete, so
a run killed mid-save leaves the previous checkpoint intact, and the newest ``max_to_keep``
(default 2) are kept. Each holds two items:

* ``state``: a pytree of arrays (learner state leaves, replay contents, environment and actor
  state, RNG states, counters), see :meth:`behavior_priors.training.loop.Trainer.state_dict`;
* ``meta``: JSON (format version, library version, env steps, the run's config).

Saving records a SHA-256 checksum of every array in ``meta``; restoring recomputes them, so a
flipped byte is a "corrupt checkpoint" error instead of silently different weights. Restoring
also checks the format version and names the cause of any failure (missing, corrupt or
incompatible checkpoint).

A checkpoint this object did not write itself (one left from before the point a run resumed
from) is replaced when the continued run reaches its step, never kept: it may be the corrupt
one the run was resumed around.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 2  # 2: per-array checksums in meta; 1 (no checksums) is still read
_READABLE_VERSIONS = (1, 2)
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
                # Reading creates nothing: the directory appears with the first checkpoint.
                max_to_keep=max_to_keep,
                enable_async_checkpointing=False,
                create=False,
            ),
        )
        self._written: set[int] = set()  # steps this object saved

    def steps(self) -> list[int]:
        """Complete checkpoints, oldest first (a half-written one is never listed)."""
        self._manager.reload()
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> Path:
        """Write checkpoint ``step`` and return its directory. A no-op when this object wrote
        ``step`` already; an existing ``step`` from elsewhere (before a resume) is replaced."""
        ocp = _ocp()
        step = int(step)
        if step in self._written:
            return self.directory / str(step)
        encoded = _encode_empty(state)
        meta = {
            "format_version": FORMAT_VERSION,
            "step": step,
            **meta,
            "checksums": checksums(encoded),
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if step in self._manager.all_steps():
                self._manager.delete(step)
            self._manager.save(
                int(step),
                args=ocp.args.Composite(
                    state=ocp.args.PyTreeSave(encoded), meta=ocp.args.JsonSave(meta)
                ),
            )
            self._manager.wait_until_finished()
        self._written.add(step)
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
        if meta.get("format_version") not in _READABLE_VERSIONS:
            raise CheckpointError(
                f"checkpoint {path} has format version {meta.get('format_version')}, this "
                f"library reads versions {list(_READABLE_VERSIONS)}.{hint}"
            )
        expected = meta.pop("checksums", None)
        if expected is None and meta["format_version"] >= 2:
            raise CheckpointError(f"checkpoint {path} is corrupt: its checksums are missing.{hint}")
        if expected is not None:
            found = checksums(restored["state"])
            bad = sorted(
                k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k)
            )
            if bad:
                raise CheckpointError(
                    f"checkpoint {path} is corrupt: {len(bad)} array(s) do not match the "
                    f"checksums recorded when it was saved (first: {bad[0]}).{hint}"
                )
        return _decode_empty(restored["state"]), meta


def checksums(tree: Any) -> dict[str, str]:
    """``{path: sha256}`` of every array leaf of a (nested dict/list) state.

    Lists count as dicts keyed by index, because orbax restores a saved list as
    ``{"0": ..., "1": ...}``; the digest covers dtype, shape and bytes.
    """
    out: dict[str, str] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for k in sorted(node, key=str):
                walk(node[k], f"{path}/{k}")
        elif isinstance(node, list | tuple):
            for i, v in enumerate(node):
                walk(v, f"{path}/{i}")
        elif not isinstance(node, np.generic) and hasattr(node, "shape"):  # numpy or jax
            arr = np.ascontiguousarray(np.asarray(node))
            h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
            h.update(arr.tobytes())
            out[path or "/"] = h.hexdigest()
        else:  # a scalar: orbax gives numpy scalars back as Python numbers, so hash the value
            value = node.item() if isinstance(node, np.generic) else node
            if isinstance(value, bool | int):
                text = f"int:{int(value)}"
            elif isinstance(value, float):
                text = f"float:{value.hex()}"
            else:
                text = f"{type(value).__name__}:{value!r}"
            out[path or "/"] = hashlib.sha256(text.encode()).hexdigest()

    walk(tree, "")
    return out


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
