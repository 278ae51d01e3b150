"""Checkpoints of a whole run with orbax: atomic, versioned, the previous good one kept.

A checkpoint is a directory ``run_dir/checkpoints/<env_steps>/`` written by an orbax
``CheckpointManager``: orbax writes into a temporary directory and renames it when complete, so
a run killed mid-save leaves the previous checkpoint intact, and the newest ``max_to_keep``
(default 2) are kept. Each holds three items:

* ``state``: a pytree of arrays (learner state leaves, replay contents, environment and actor
  state, RNG states, counters), see :meth:`behavior_priors.training.loop.Trainer.state_dict`;
* ``meta``: JSON (format version, library version, env steps, the run's config, and a SHA-256
  checksum of every array of ``state``);
* ``integrity``: JSON, the format version again and a SHA-256 checksum of every entry of
  ``meta`` (of its canonical JSON).

What restoring guarantees (format version 3, written since the ``integrity`` item exists):

* a flipped byte in an array is a "corrupt checkpoint" error, never silently different
  weights;
* so is any edit of ``meta`` (its step, config, version, checksums, an entry added or deleted):
  the error names the entries changed, the file, and what to do;
* a ``meta`` claiming an older format than its files show (the ``integrity`` item proves
  version 3, e.g. ``format_version`` set to 1 and the checksums deleted) is refused, as is a
  version-1 checkpoint (it records no checksums, so nothing tells it from a downgraded one):
  both are read only when the caller asks, with ``restore(..., allow_legacy=True)``;
* a wrongly typed ``meta`` entry (``"step": "abc"``), or a ``step`` other than the
  checkpoint's own, is a one-line error naming the entry, whatever the format version;
* a version-2 checkpoint (array checksums, no ``integrity`` item) is still read by default,
  with its arrays verified; its ``meta`` is not covered.

Restoring also checks the format version and names the cause of any failure (missing, corrupt
or incompatible checkpoint).

Saving fails with one :class:`CheckpointWriteError` (an ``OSError`` too) when the file system
refuses a write (a full disk, a file size limit, no permission): its message names the step,
the directory, the OS error and the checkpoint still intact; the half-written directory is
removed, and what orbax's background threads print and log about the failure is held back,
so that the message is the only output. This holds back ``sys.stderr`` and the ``absl`` and
``asyncio`` loggers only while orbax saves or restores (a corrupt file makes its threads print
too); a save that succeeds, or fails for another reason, shows it all afterwards.

A checkpoint this object did not write itself (one left from before the point a run resumed
from) is replaced when the continued run reaches its step, never kept: it may be the corrupt
one the run was resumed around.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

# 3: an ``integrity`` item checksums the meta; 2: per-array checksums in meta (still read);
# 1: no checksums (read only with allow_legacy=True).
FORMAT_VERSION = 3
_READABLE_VERSIONS = (1, 2, 3)
_INTEGRITY = "integrity"  # the item whose presence proves format version 3 or later
log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or does not belong to this run."""


class CheckpointWriteError(CheckpointError, OSError):
    """A checkpoint could not be written because the file system refused (full disk, file
    size limit, permissions); ``errno`` is the OS error's. Also an ``OSError``, so that the
    command line reports it like any other file-system error."""


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
        """The newest complete checkpoint's step, ``None`` when there is none."""
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> Path:
        """Write checkpoint ``step`` and return its directory. A no-op when this object wrote
        ``step`` already; an existing ``step`` from elsewhere (before a resume) is replaced.

        Raises :class:`CheckpointWriteError` (one line: step, directory, OS error, the
        checkpoint still intact) when the file system refuses a write.
        """
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
        # Checksum the meta as restore will read it back (tuples become lists, and so on).
        meta = json.loads(json.dumps(meta))
        integrity = {"format_version": FORMAT_VERSION, "meta": _meta_checksums(meta)}
        muffled = _Muffled()
        refused: BaseException | None = None  # the file system's refusal, if any
        try:
            with muffled, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    self._write(step, encoded, meta, integrity)
                except Exception as e:
                    # orbax's other threads go on failing after the first error reaches us;
                    # their reports must land while the output is still held back.
                    muffled.settle()
                    if _os_error_text(e) is None:
                        raise
                    refused = e
        except BaseException:  # not the file system (a bug, an interrupt): show everything
            muffled.replay()
            raise
        if refused is not None:
            self._discard_partial(step)
            try:
                steps = self.steps()
            except Exception:  # an unreadable directory: the write error is the news
                steps = None
            if steps is None:
                kept = "the earlier checkpoints could not be listed"
            elif steps:
                kept = f"the previous checkpoint {steps[-1]} is intact"
            else:
                kept = "there is no earlier checkpoint"
            errno, text = _os_error_text(refused) or (None, str(refused))
            error = CheckpointWriteError(
                f"checkpoint at step {step} could not be written to {self.directory}: "
                f"{text}; {kept}"
            )
            error.errno = errno
            raise error from refused
        muffled.replay()
        self._written.add(step)
        return self.directory / str(step)

    def _write(self, step: int, encoded: Any, meta: dict[str, Any], integrity: Any) -> None:
        ocp = _ocp()
        self.directory.mkdir(parents=True, exist_ok=True)
        if step in self._manager.all_steps():
            self._manager.delete(step)
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.PyTreeSave(encoded),
                meta=ocp.args.JsonSave(meta),
                **{_INTEGRITY: ocp.args.JsonSave(integrity)},
            ),
        )
        self._manager.wait_until_finished()

    def _discard_partial(self, step: int) -> None:
        """Remove what a failed save left (orbax's temporary directory): on a full disk it
        holds the space a retry needs."""
        for leftover in self.directory.glob(f"{step}.orbax-checkpoint-tmp*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def restore(
        self, step: int | None = None, *, allow_legacy: bool = False
    ) -> tuple[Any, dict[str, Any]]:
        """``(state, meta)`` of checkpoint ``step`` (default: the latest).

        Raises :class:`CheckpointError` naming the directory and the cause; older complete
        checkpoints are left untouched, and the message lists them so one can be chosen.

        ``allow_legacy=True`` also reads a checkpoint whose meta claims a format without
        checksums (version 1) or older than its files show (its meta was edited): its arrays
        are verified only where it still records their checksums, its meta not at all.
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
        items = {"state": ocp.args.PyTreeRestore(), "meta": ocp.args.JsonRestore()}
        # Only version-3 checkpoints have the item; asking orbax for a missing one fails.
        has_integrity = (path / _INTEGRITY).is_dir()
        if has_integrity:
            items[_INTEGRITY] = ocp.args.JsonRestore()
        muffled = _Muffled()  # a corrupt file makes orbax's threads print as a failed save does
        try:
            with muffled, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    restored = self._manager.restore(step, args=ocp.args.Composite(**items))
                except Exception:
                    muffled.settle()
                    raise
        except Exception as e:  # orbax raises many types; all mean "unreadable"
            raise CheckpointError(
                f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}: {e}).{hint}"
            ) from e
        except BaseException:
            muffled.replay()
            raise
        muffled.replay()
        check = _MetaCheck(path, step, hint)
        meta = check.meta(
            restored["meta"], restored[_INTEGRITY] if has_integrity else None, allow_legacy
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


# The meta entries with a known type; the first two are required.
_META_TYPES: dict[str, tuple[type, str]] = {
    "format_version": (int, "an integer"),
    "step": (int, "an integer"),
    "checksums": (dict, "a JSON object"),
    "config": (dict, "a JSON object"),
    "version": (str, "a string"),
}


class _MetaCheck:
    """Checks a restored ``meta`` against the ``integrity`` item and the expected types,
    with messages that name the checkpoint, the meta file and what to do."""

    def __init__(self, path: Path, step: int, hint: str):
        self.path, self.step = path, step
        self.meta_file = path / "meta" / "metadata"
        self.advice = f" Restore it from a backup, or delete it and use another checkpoint.{hint}"

    def corrupt(self, why: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {self.path} is corrupt: {why}.{self.advice}")

    def opt_in(self) -> str:
        return (
            f' To read it anyway, without verifying it: Checkpointer("{self.path.parent}")'
            f".restore({self.step}, allow_legacy=True)."
        )

    def meta(self, meta: Any, integrity: Any, allow_legacy: bool) -> dict[str, Any]:
        """The verified meta, a copy; raises :class:`CheckpointError` otherwise."""
        if not isinstance(meta, dict):
            raise self.corrupt(f"its meta {self.meta_file} is not a JSON object")
        meta = dict(meta)
        claimed = meta.get("format_version")
        verified = False
        if integrity is not None:
            files_version, digests = self._integrity(integrity)
            if claimed == files_version:
                self._unchanged(meta, digests)
                verified = True
            elif not allow_legacy:
                raise CheckpointError(
                    f"checkpoint {self.path} is corrupt: its files are format version "
                    f"{files_version} but its meta {self.meta_file} claims format version "
                    f"{claimed!r}, so the meta was edited after saving (e.g. its checksums "
                    f"deleted).{self.advice}{self.opt_in()}"
                )
        self._types(meta)
        version = meta["format_version"]
        if version not in _READABLE_VERSIONS:
            raise CheckpointError(
                f"checkpoint {self.path} has format version {version}, this library reads "
                f"versions {list(_READABLE_VERSIONS)}.{self.advice}"
            )
        if not allow_legacy:
            if version >= 3 and not verified:
                raise self.corrupt(
                    f"its integrity record {self.path / _INTEGRITY} is missing, so its meta "
                    f"cannot be verified.{self.opt_in()}"
                )
            if version == 1:
                raise CheckpointError(
                    f"checkpoint {self.path} has format version 1, which records no "
                    f"checksums: nothing shows whether it is intact, or whether its meta "
                    f"{self.meta_file} was edited to claim version 1.{self.opt_in()}"
                )
        if allow_legacy and not verified:
            log.warning("checkpoint %s read without verifying its meta (allow_legacy)", self.path)
        return meta

    def _integrity(self, integrity: Any) -> tuple[int, dict[str, str]]:
        version = integrity.get("format_version") if isinstance(integrity, dict) else None
        digests = integrity.get("meta") if isinstance(integrity, dict) else None
        if (
            not _is_int(version)
            or not isinstance(digests, dict)
            or not all(isinstance(v, str) for v in digests.values())
        ):
            raise self.corrupt(f"its integrity record {self.path / _INTEGRITY} is malformed")
        if version not in _READABLE_VERSIONS:
            raise CheckpointError(
                f"checkpoint {self.path} has format version {version}, this library reads "
                f"versions {list(_READABLE_VERSIONS)}."
            )
        return version, digests

    def _unchanged(self, meta: dict[str, Any], digests: dict[str, str]) -> None:
        found = _meta_checksums(meta)
        changed = sorted(k for k in digests.keys() | found.keys() if digests.get(k) != found.get(k))
        if changed:
            names = ", ".join(repr(k) for k in changed)
            raise self.corrupt(
                f"its meta {self.meta_file} was edited after it was saved (changed: {names})"
            )

    def _types(self, meta: dict[str, Any]) -> None:
        for key, (kind, what) in _META_TYPES.items():
            if key not in meta:
                if key in ("format_version", "step"):
                    raise self.corrupt(f"its meta {self.meta_file} has no {key!r}")
                continue
            value = meta[key]
            if not (_is_int(value) if kind is int else isinstance(value, kind)):
                shown = repr(value)
                shown = shown if len(shown) <= 40 else shown[:37] + "..."
                raise self.corrupt(
                    f"its meta {self.meta_file} has {key!r} = {shown}, expected {what}"
                )
        if meta["step"] != self.step:
            raise self.corrupt(
                f"its meta {self.meta_file} has 'step' = {meta['step']}, but it is the "
                f"checkpoint of step {self.step}"
            )
        if "checksums" in meta and not all(isinstance(v, str) for v in meta["checksums"].values()):
            raise self.corrupt(f"its meta {self.meta_file} has malformed 'checksums'")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _meta_checksums(meta: dict[str, Any]) -> dict[str, str]:
    """``{entry: sha256}`` of the canonical JSON of every entry of ``meta``: one per entry,
    so that an error can name what was changed."""
    return {
        str(k): hashlib.sha256(
            json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
        ).hexdigest()
        for k, v in meta.items()
    }


def _os_error_text(error: BaseException) -> tuple[int | None, str] | None:
    """``(errno, "[Errno N] text")`` when ``error`` (or its cause) is the file system refusing
    a write: an ``OSError`` from a Python thread of orbax, or tensorstore's error, which only
    carries the code in its message; ``None`` otherwise."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno:
            text = current.strerror or os.strerror(current.errno)
            return current.errno, f"[Errno {current.errno}] {text}"
        match = re.search(r"os_error_code='?(\d+)", str(current))
        if match:
            code = int(match[1])
            return code, f"[Errno {code}] {os.strerror(code)}"
        current = current.__cause__ or current.__context__
    return None


def _forget_dead_futures() -> None:
    """Mark the exceptions of finished futures in closed event loops as retrieved.

    orbax leaves the asyncio futures of the writes that failed after the first one unawaited,
    in event loops it has closed; each logs "exception was never retrieved" whenever the
    garbage collector frees it, which may be long after the save (at exit, after the one-line
    error). Nobody can await a closed loop's future any more, so marking them loses nothing.
    """
    for obj in gc.get_objects():
        try:
            if not (isinstance(obj, asyncio.Future) and obj.done() and not obj.cancelled()):
                continue
            closed = obj.get_loop().is_closed()
        # ReferenceError: a weak proxy whose object is gone (isinstance reads its __class__);
        # RuntimeError: a future not initialised, with no loop, none of ours.
        except (ReferenceError, RuntimeError):
            continue
        if closed:
            obj.exception()


class _Muffled:
    """Holds back what orbax's threads print (tensorstore callbacks into a closed asyncio
    loop write tracebacks to ``sys.stderr``) and log (``absl``, ``asyncio``) while orbax saves
    or restores, to show it afterwards (:meth:`replay`) or drop it when the failure is
    reported in one line. Only for the duration of the ``with`` block: the previous
    ``sys.stderr`` and logger filters come back at its end."""

    LOGGERS = ("absl", "asyncio")

    def __init__(self):
        self.text = io.StringIO()
        self.records: list[logging.LogRecord] = []
        self._threads_before: set[threading.Thread] = set()
        self._stderr: Any = None

    def filter(self, record: logging.LogRecord) -> bool:
        """A logging filter: keep the record for later, let nothing through now."""
        self.records.append(record)
        return False

    def __enter__(self) -> _Muffled:
        self._threads_before = set(threading.enumerate())
        self._stderr = sys.stderr
        sys.stderr = self.text
        for name in self.LOGGERS:
            logging.getLogger(name).addFilter(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeFilter(self)
        if sys.stderr is self.text:  # not if someone else replaced it meanwhile
            sys.stderr = self._stderr

    def settle(self, timeout: float = 60.0, quiet: float = 0.3, patience: float = 5.0) -> None:
        """Wait for the threads orbax started to end, then until nothing more is printed or
        logged for ``quiet`` seconds (at most ``patience``): tensorstore reports writes that
        finish after their event loop closed from its own threads, which cannot be joined.
        Then keep the futures orbax abandoned from logging later (:func:`_forget_dead_futures`).
        """
        deadline = time.monotonic() + timeout
        for thread in threading.enumerate():
            # Only orbax's own: a worker of some executor may wait for work forever.
            if thread not in self._threads_before and type(thread).__module__.startswith("orbax."):
                # Thread.join itself: orbax's join() overrides it to poll for its signals.
                threading.Thread.join(thread, max(0.0, deadline - time.monotonic()))
        end = time.monotonic() + patience
        size = -1
        while time.monotonic() < end:
            now = self.text.tell() + len(self.records)
            if now == size:
                break
            size = now
            time.sleep(quiet)
        _forget_dead_futures()

    def replay(self) -> None:
        """Show what was held back, as it would have been shown."""
        text = self.text.getvalue()
        if text:
            sys.stderr.write(text)
        for record in self.records:
            logging.getLogger(record.name).handle(record)
        self.text = io.StringIO()
        self.records = []


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
