"""What an adapter adds to a third-party environment: success, task ids and key routing.

Our native environments report ``info["success"]`` ``[B]`` bool at every step (an episode
succeeds when any of its steps does, :mod:`behavior_priors.training.episodes`) and a stable
``task_id`` ``[B]`` int32. Gymnasium and dm_control environments have no such convention, so
each adapter takes a *success rule* and a *task-id rule*, both expressible as plain strings so
that they fit in ``env_kwargs`` (and so in ``run.json`` and on the command line):

success rules
  * ``None``: no success is reported (``info`` has no ``success``; success rates read 0).
  * ``"info:<key>"``: the step succeeds when the source's ``info[key]`` is true
    (Gymnasium-Robotics' ``"info:is_success"``).
  * ``"reward>=<x>"`` / ``"reward><x>"``: the step's reward reaches a threshold.
  * ``"terminated_positive"``: the episode terminated (not truncated) with a positive reward.
  * ``"auto"`` (the Gymnasium adapter's default): ``info["is_success"]`` or ``info["success"]``
    when the environment reports either, otherwise nothing.
  * from Python, any callable ``fn(observation, reward, terminated, info) -> bool`` taking the
    source's own observation and info of one copy.

task-id rules
  * an ``int``: every copy runs that task; a sequence of ints: copy ``i`` runs
    ``ids[i % len(ids)]``.
  * ``"info:<key>"`` (Gymnasium) or ``"obs:<name>"``: read from the source's info or
    observation at every step; a whole-number scalar is the id, a one-hot vector the index of
    its 1. Anything else is refused (an argmax of another vector is not an id);
    ``"obs:<name>[k]"`` reads element ``k`` of a vector as the id (dm_control's locomotion
    ``predicate_0`` holds it at index 3).
  * from Python, a callable ``fn(env) -> int`` of the copy's source environment.

Key routing: every source observation becomes ``proprio/<name>`` unless the adapter's
``key_map`` names it (``{"goal": "task/goal"}``); :func:`warn_if_unrouted_task_inputs` warns
when a source name looks like a task input but nothing went to ``task/``, because a prior
reading ``proprio/`` would then see it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

SuccessFn = Callable[[Any, float, bool, Mapping[str, Any]], bool]
SuccessRule = str | SuccessFn | None
TaskIdRule = int | Sequence[int] | str | Callable[[Any], int]

_THRESHOLD = re.compile(r"^reward\s*(>=|>)\s*([-+0-9.eE]+)$")
_SUCCESS_FORMS = (
    "None, 'auto', 'info:<key>', 'reward>=<x>', 'reward><x>', 'terminated_positive' "
    "or a callable fn(observation, reward, terminated, info) -> bool"
)
# Source observation names that usually carry task information (a goal, a target, a command).
_TASK_LIKE = re.compile(r"(goal|target|task|command|desired)", re.IGNORECASE)
# Source names that usually carry an absolute position (which a prior should rarely see).
_POSITION_LIKE = re.compile(r"(^|[_/])(x?pos|position)($|[_/])", re.IGNORECASE)
_INDEXED = re.compile(r"^(.*)\[(\d+)\]$")


def success_fn(rule: SuccessRule) -> SuccessFn | None:
    """The per-step success test of ``rule`` (see the module docstring), or None.

    Raises ``ValueError`` naming the accepted forms when ``rule`` is none of them.
    """
    if rule is None or callable(rule):
        return rule
    if not isinstance(rule, str):
        raise ValueError(f"success rule must be one of {_SUCCESS_FORMS}; got {rule!r}")
    if rule == "auto":
        return lambda obs, r, term, info: bool(info.get("is_success", info.get("success", False)))
    if rule == "terminated_positive":
        return lambda obs, r, term, info: bool(term) and r > 0
    if rule.startswith("info:") and len(rule) > 5:
        key = rule[5:]
        return lambda obs, r, term, info: bool(info.get(key, False))
    m = _THRESHOLD.match(rule.strip())
    if m:
        try:
            x = float(m.group(2))
        except ValueError:
            raise ValueError(f"success rule {rule!r}: {m.group(2)!r} is not a number") from None
        if m.group(1) == ">=":
            return lambda obs, r, term, info: r >= x
        return lambda obs, r, term, info: r > x
    raise ValueError(f"success rule must be one of {_SUCCESS_FORMS}; got {rule!r}")


class TaskIds:
    """Resolves a task-id rule for ``num_envs`` copies.

    ``static`` is the ``[B]`` int32 array of a constant rule (an int or one int per copy), or
    None when ids are read at every step with :meth:`read`.
    """

    def __init__(self, rule: TaskIdRule, num_envs: int, sources: str = "obs"):
        self.num_envs = num_envs
        self._source: str | None = None
        self._name = ""
        self._fn: Callable[[Any], int] | None = None
        self.static: np.ndarray | None = None
        if isinstance(rule, bool):
            raise ValueError(f"task_id must be an int, ints per copy, or a rule; got {rule!r}")
        if isinstance(rule, int | np.integer):
            self.static = np.full(num_envs, int(rule), np.int32)
        elif isinstance(rule, str):
            kind, _, name = rule.partition(":")
            allowed = ("obs", "info") if sources == "both" else ("obs",)
            if kind not in allowed or not name:
                forms = " or ".join(f"'{k}:<name>'" for k in allowed)
                raise ValueError(f"task_id rule {rule!r}: expected an int, {forms}, or a callable")
            self._source, self._name = kind, name
            self._index: int | None = None
            indexed = _INDEXED.match(name)
            if indexed:
                self._name, self._index = indexed.group(1), int(indexed.group(2))
        elif callable(rule):
            self._fn = rule
        else:
            ids = np.asarray(rule)
            if ids.ndim != 1 or not ids.size or not np.issubdtype(ids.dtype, np.integer):
                raise ValueError(f"task_id as a sequence needs ints, one per copy; got {rule!r}")
            # Copy i runs ids[i % len(ids)], so an evaluation environment with another number
            # of copies, made from the same env_kwargs, keeps the same assignment pattern.
            self.static = np.resize(ids, num_envs).astype(np.int32)
        if self.static is not None and np.any(self.static < 0):
            raise ValueError(f"task ids must be >= 0, got {self.static.tolist()}")

    def read(self, i: int, env: Any, obs: Any, info: Mapping[str, Any] | None) -> int:
        """Copy ``i``'s task id from its source ``env`` and its current ``obs`` and ``info``."""
        if self.static is not None:
            return int(self.static[i])
        if self._fn is not None:
            return int(self._fn(env))
        table = obs if self._source == "obs" else (info or {})
        if self._name not in table:
            raise KeyError(
                f"task_id rule '{self._source}:{self._name}': the environment's {self._source} "
                f"has no {self._name!r} (it has {', '.join(map(str, table)) or 'nothing'})"
            )
        value = np.asarray(table[self._name], np.float64).ravel()
        rule = f"task_id rule '{self._source}:{self._name}'"
        if self._index is not None:
            if self._index >= value.size:
                raise ValueError(f"{rule}[{self._index}]: the entry has {value.size} elements")
            value = value[self._index : self._index + 1]
            rule += f"[{self._index}]"
        if value.size == 1:
            x = float(value[0])
            if x < 0 or x != round(x):
                raise ValueError(
                    f"{rule}: {x!r} is not a task id (a whole number >= 0); read another entry "
                    "or pass a callable task_id=fn(env) -> int"
                )
            return int(x)
        ones = np.flatnonzero(value == 1.0)
        if len(ones) != 1 or np.count_nonzero(value) != 1:
            raise ValueError(
                f"{rule}: {value.tolist()} is not one-hot, so no task id can be read from it. "
                f"If one element holds the id, name it ('{self._source}:{self._name}[k]'); "
                "otherwise pass a callable task_id=fn(env) -> int"
            )
        return int(ones[0])


def task_id_reads_obs(rule: TaskIdRule) -> bool:
    """Whether ``rule`` reads an observation entry (``"obs:<name>"``)."""
    return isinstance(rule, str) and rule.startswith("obs:")


def default_key(name: str, key_map: Mapping[str, str | None]) -> str | None:
    """Our key of source entry ``name``: ``key_map[name]`` if given, the name itself when it
    already follows our convention, else ``proprio/<name>``."""
    from behavior_priors.envs.adapters.spaces import KEY_PREFIXES

    if name in key_map:
        return key_map[name]
    return name if name.startswith(KEY_PREFIXES) else f"proprio/{name}"


def warn_if_unrouted_task_inputs(routes: Mapping[str, str], what: str) -> None:
    """Warn when no key is under ``task/`` but a source name looks like a task input.

    Args:
      routes: ``{our_key: source_name}`` as the adapter built it.
      what: how the user routes inputs (e.g. ``"key_map"``), named in the message.
    """
    if any(k.startswith("task/") for k in routes):
        return
    suspects = [src for src in routes.values() if _TASK_LIKE.search(str(src))]
    if suspects:
        example = ", ".join(f"{s!r}: 'task/{_leaf(s)}'" for s in suspects[:2])
        warnings.warn(
            f"no observation is routed to task/, so a prior reading proprio/ sees "
            f"{', '.join(map(repr, suspects))}, which look like task inputs; route them with "
            f"{what}={{{example}}} to keep the prior task-agnostic",
            stacklevel=3,
        )


def warn_if_positions_in_proprio(routes: Mapping[str, str], what: str) -> None:
    """Say once when source entries that look like absolute positions (``position``, ``pos``,
    ``xpos``) are routed to ``proprio/``, where a prior sees them: a prior that knows where the
    body is in the world can memorise places instead of learning movement.

    Args:
      routes: ``{our_key: source_name}`` as the adapter built it.
      what: how the user routes inputs (e.g. ``"key_map"``), named in the message.
    """
    suspects = [
        src
        for key, src in routes.items()
        if key.startswith("proprio/") and _POSITION_LIKE.search(str(src))
    ]
    if suspects:
        warnings.warn(
            f"{', '.join(map(repr, suspects))} look like absolute positions and go to proprio/, "
            f"where a prior sees them; if the prior should not know where the body is, route "
            f"them elsewhere with {what}={{{suspects[0]!r}: 'extero/{_leaf(suspects[0])}'}} "
            "(or None to drop them)",
            stacklevel=3,
        )


def _leaf(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", str(name).split("/")[-1]).strip("_") or "input"
