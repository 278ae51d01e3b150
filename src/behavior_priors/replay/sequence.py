"""Sequence replay: each environment step stored once, windows of T+1 steps sampled uniformly.

Storage is one ring per environment copy, laid out ``[num_envs, capacity_per_copy, ...]``: the
B copies step together, so row ``r`` of every copy holds the same wall-clock step. A window is
T+1 consecutive rows of one copy, gathered with fancy indexing at sample time, so nothing is
stored T times; copy-major, a window's rows lie next to each other in memory (a few cache lines
instead of T+1: sampling 512 windows from 256 copies took 4.8 ms row-major, see
``docs/benchmarks.md``, "Many seeds").

Row t of a copy holds x_t, what the actor did there (action, behaviour log-prob, latents) and,
once x_{t+1} has arrived, the reward and discount of the transition x_t -> x_{t+1}: the replay
writes the reward and discount of timestep t+1 into row t (see
:mod:`behavior_priors.agents.types`). A window may therefore straddle an episode boundary
LAST -> FIRST; the row at LAST holds the true final observation (the bootstrap state for a
time-limit truncation) and padding for action, reward and discount, which the learner masks, so
the trace is cut there and never mixes two episodes. A window is sampleable once all its T+1
observations and its first T rewards are written, that is when its last row is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from behavior_priors.agents.types import ActorExtras, SequenceBatch


class SequenceReplay:
    """Uniform replay of windows of ``sequence_length + 1`` steps from B parallel streams.

    Args:
      capacity_steps: environment steps kept, summed over copies (rounded down to a multiple of
        ``num_envs``); the oldest rows are overwritten first.
      num_envs: B, the number of copies that :meth:`add` receives at once.
      sequence_length: T; windows hold T+1 steps.
      observation_spec: ``{key: spec}`` with ``spec.shape`` per copy (float32 storage).
      action_shape: per-copy action shape (``()`` for discrete actions).
      action_dtype: storage dtype of actions (float32, or int32 for discrete).
      latent_dim: width of z (0 for flat policies).
      seed: seeds the sampler (a numpy ``Generator``). A sequence of S seeds makes S *seed
        groups* (seed-batched training): the copies split into S groups of ``num_envs // S``
        consecutive copies, each a separate replay of ``capacity_steps // S`` steps with its own
        sampler, sampled together by :meth:`sample_groups`; :meth:`state_dict` and
        :meth:`load_state_dict` then take the group, in the format of a replay of one group.
    """

    def __init__(
        self,
        capacity_steps: int,
        num_envs: int,
        sequence_length: int,
        observation_spec: Mapping[str, Any],
        action_shape: tuple[int, ...],
        action_dtype: Any = np.float32,
        latent_dim: int = 0,
        seed: int | Sequence[int] = 0,
    ):
        if num_envs < 1 or sequence_length < 1:
            raise ValueError("num_envs and sequence_length must be >= 1")
        seeds = [seed] if isinstance(seed, int | np.integer) else [int(s) for s in seed]
        if not seeds or num_envs % len(seeds):
            raise ValueError(f"{num_envs} copies do not split into {len(seeds)} seed groups")
        self.num_envs = num_envs
        self.sequence_length = sequence_length
        self.capacity = capacity_steps // num_envs  # rows per copy
        if self.capacity < sequence_length + 1:
            raise ValueError(
                f"capacity_steps={capacity_steps} holds {self.capacity} steps per copy with "
                f"{num_envs} copies; a window needs sequence_length + 1 = {sequence_length + 1}"
            )
        C, N = self.capacity, num_envs
        self._obs = {
            k: np.zeros((N, C, *tuple(spec.shape)), np.float32)
            for k, spec in observation_spec.items()
        }
        self._fields = {
            "step_type": np.zeros((N, C), np.int8),
            "action": np.zeros((N, C, *action_shape), action_dtype),
            "reward": np.zeros((N, C), np.float32),
            "discount": np.zeros((N, C), np.float32),
            "behaviour_log_prob": np.zeros((N, C), np.float32),
            "latent": np.zeros((N, C, latent_dim), np.float32),
            "prev_latent": np.zeros((N, C, latent_dim), np.float32),
            "latent_sampled": np.zeros((N, C), np.float32),
            "task_id": np.zeros((N, C), np.int32),
        }
        self._next = 0  # row the next add writes
        self._size = 0  # rows written (<= capacity)
        self._added = 0  # adds ever made (steps per copy)
        self._rngs = [np.random.default_rng(s) for s in seeds]
        self.group_size = N // len(seeds)

    @property
    def num_groups(self) -> int:
        return len(self._rngs)

    # -- writing -------------------------------------------------------------------------------
    def add(self, timestep: Any, action: np.ndarray, extras: ActorExtras) -> None:
        """Store x_t (``timestep``, a batched :class:`~behavior_priors.envs.TimeStep`) with the
        action taken there ``[B, *action_shape]`` and the actor's extras (``[B, ...]`` each).

        The timestep's reward and discount belong to the transition that led to it, so they are
        written into the previous row.
        """
        N = self.num_envs
        obs = timestep.observation
        missing = set(self._obs) - set(obs)
        if missing:
            raise KeyError(f"observation lacks keys the replay stores: {sorted(missing)}")
        action = np.asarray(action)
        expected = (N, *self._fields["action"].shape[2:])
        if action.shape != expected:
            raise ValueError(
                f"action shape {action.shape} does not match the replay's "
                f"{expected} ([num_envs, *action_shape])"
            )
        if self._added > 0:
            prev = (self._next - 1) % self.capacity
            # After a LAST row comes the next episode's FIRST: not a transition, keep padding.
            ended = self._fields["step_type"][:, prev] == 2  # StepType.LAST
            self._fields["reward"][:, prev] = np.where(ended, 0.0, timestep.reward)
            self._fields["discount"][:, prev] = np.where(ended, 0.0, timestep.discount)
        r = self._next
        for k, buf in self._obs.items():
            buf[:, r] = obs[k]
        f = self._fields
        f["step_type"][:, r] = timestep.step_type
        f["task_id"][:, r] = timestep.task_id
        f["action"][:, r] = action
        # Padding until the next timestep arrives (and for ever at a LAST row).
        f["reward"][:, r] = 0.0
        f["discount"][:, r] = 0.0
        f["behaviour_log_prob"][:, r] = np.asarray(extras.behaviour_log_prob).reshape(N)
        f["latent"][:, r] = np.asarray(extras.latent).reshape(N, -1)
        f["prev_latent"][:, r] = np.asarray(extras.prev_latent).reshape(N, -1)
        f["latent_sampled"][:, r] = np.asarray(extras.latent_sampled).reshape(N)
        self._next = (r + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)
        self._added += 1

    def cut_episodes(self) -> None:
        """End every copy's stored stream here, as a time-limit truncation at the latest row.

        For streams that continue with fresh episodes although the old ones did not end (a
        restarted actor, a resumed run whose environment cannot restore mid-episode): the next
        :meth:`add` writes a FIRST step, and without the cut the MID -> FIRST pair would look
        like a transition (reward 0, discount 1). Marked LAST, the latest row is bootstrapped
        from (its observation is a true observation of that episode) and no trace crosses it.
        """
        if self._added == 0:
            return
        prev = (self._next - 1) % self.capacity
        self._fields["step_type"][:, prev] = 2  # StepType.LAST
        self._fields["reward"][:, prev] = 0.0
        self._fields["discount"][:, prev] = 0.0

    # -- reading -------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Steps stored, summed over copies."""
        return self._size * self.num_envs

    def num_sampleable(self) -> int:
        """Number of distinct windows that :meth:`sample` can return."""
        return max(0, self._size - self.sequence_length) * self.num_envs

    def sample(self, batch_size: int) -> SequenceBatch:
        """``batch_size`` windows drawn uniformly with replacement, as numpy arrays
        ``[batch_size, T+1, ...]`` in a :class:`SequenceBatch`."""
        if self.num_groups != 1:
            raise ValueError(f"this replay holds {self.num_groups} seed groups: sample_groups()")
        return self._gather(self._draw(batch_size))

    def sample_groups(self, batch_size: int) -> SequenceBatch:
        """``batch_size`` windows of each seed group, group g's drawn by its own sampler from
        its own copies exactly as :meth:`sample` of a replay of that group alone would: numpy
        arrays ``[S, batch_size, T+1, ...]``, gathered in one indexing call per array."""
        batch = self._gather(self._draw(batch_size))

        def split(x: np.ndarray) -> np.ndarray:
            return x.reshape(self.num_groups, batch_size, *x.shape[1:])

        return batch._replace(
            observation={k: split(v) for k, v in batch.observation.items()},
            **{f: split(getattr(batch, f)) for f in batch._fields if f != "observation"},
        )

    def _draw(self, batch_size: int) -> np.ndarray:
        """Flat row-major indices ``[S * batch_size, T+1]`` of the windows of every group."""
        starts_per_copy = self._size - self.sequence_length
        if starts_per_copy <= 0:
            raise ValueError(
                f"replay holds {self._size} steps per copy; a window needs "
                f"{self.sequence_length + 1}. Add more steps (see num_sampleable())."
            )
        oldest = (self._next - self._size) % self.capacity
        n = self.group_size
        start = np.empty(self.num_groups * batch_size, np.int64)
        copy = np.empty(self.num_groups * batch_size, np.int64)
        for g, rng in enumerate(self._rngs):  # each group's sampler, in a single run's order
            part = slice(g * batch_size, (g + 1) * batch_size)
            start[part] = rng.integers(0, starts_per_copy, size=batch_size)
            copy[part] = rng.integers(0, n, size=batch_size) + g * n
        rows = (oldest + start[:, None] + np.arange(self.sequence_length + 1)) % self.capacity
        # Element (copy, row) of an [N, C, ...] array is copy * C + row of its [N * C, ...] view:
        # one np.take per array, about 1.5x as fast as indexing with copies and rows (the
        # sampling is on the host's side of every learner step).
        return copy[:, None] * self.capacity + rows

    def _gather(self, flat: np.ndarray) -> SequenceBatch:

        def gather(v: np.ndarray) -> np.ndarray:
            rows_total = v.shape[0] * v.shape[1]  # not -1: latents of width 0 have size 0
            return np.take(v.reshape(rows_total, *v.shape[2:]), flat, axis=0)

        f = {k: gather(v) for k, v in self._fields.items()}
        f["step_type"] = f["step_type"].astype(np.int32)
        return SequenceBatch(observation={k: gather(v) for k, v in self._obs.items()}, **f)

    @property
    def nbytes(self) -> int:
        """Bytes held by the storage arrays."""
        return sum(a.nbytes for a in self._obs.values()) + sum(
            a.nbytes for a in self._fields.values()
        )

    # -- checkpointing -------------------------------------------------------------------------
    def state_dict(self, group: int | None = None) -> dict[str, Any]:
        """Everything needed to continue exactly: the filled rows (in chronological order),
        counters and the sampler's RNG state. Arrays are numpy; the dict nests only dicts.
        With seed groups, ``group``'s part, as a replay of that group alone would save it."""
        g, copies = self._group(group)
        order = (self._next - self._size + np.arange(self._size)) % self.capacity
        # Saved row-major, [rows, copies, ...], whatever the storage order.
        return {
            "observation": {k: _rows_first(v[copies][:, order]) for k, v in self._obs.items()},
            "fields": {k: _rows_first(v[copies][:, order]) for k, v in self._fields.items()},
            "counters": np.array([self._size, self._added], np.int64),
            "rng": _rng_to_array(self._rngs[g]),
        }

    def load_state_dict(self, state: Mapping[str, Any], group: int | None = None) -> None:
        """Restore from :meth:`state_dict`; the replay must have been built with the same
        capacity, copies and specs (a clear error otherwise). With seed groups, fill ``group``
        (every group must then be loaded with the same counters)."""
        g, copies = self._group(group)
        size, added = (int(x) for x in np.asarray(state["counters"]))
        if size > self.capacity:
            raise ValueError(
                f"checkpointed replay holds {size} rows per copy, more than this replay's "
                f"capacity {self.capacity}"
            )
        for name, src, dst in [
            *(("observation/" + k, state["observation"].get(k), v) for k, v in self._obs.items()),
            *((k, state["fields"].get(k), v) for k, v in self._fields.items()),
        ]:
            if src is None:
                raise ValueError(f"checkpointed replay lacks '{name}'")
            src = np.asarray(src)
            want = (copies.stop - copies.start, *dst.shape[2:])
            if src.shape[1:] != want or src.shape[0] != size:
                raise ValueError(
                    f"checkpointed replay '{name}' has shape {src.shape}, expected "
                    f"({size}, {', '.join(map(str, want))})"
                )
        for k, v in self._obs.items():
            v[copies, :size] = np.swapaxes(np.asarray(state["observation"][k]), 0, 1)
        for k, v in self._fields.items():
            v[copies, :size] = np.swapaxes(np.asarray(state["fields"][k]), 0, 1)
        self._size, self._added = size, added
        self._next = size % self.capacity
        self._rngs[g] = _rng_from_array(np.asarray(state["rng"]))

    def _group(self, group: int | None) -> tuple[int, slice]:
        """``(index, copies)`` of a seed group; ``None`` names the only one."""
        if group is None:
            if self.num_groups != 1:
                raise ValueError(f"this replay holds {self.num_groups} seed groups: name one")
            group = 0
        if not 0 <= group < self.num_groups:
            raise IndexError(f"seed group {group} out of range for {self.num_groups} groups")
        n = self.group_size
        return group, slice(group * n, (group + 1) * n)


def _rows_first(v: np.ndarray) -> np.ndarray:
    """``[copies, rows, ...]`` storage as a contiguous ``[rows, copies, ...]`` array."""
    return np.ascontiguousarray(np.swapaxes(v, 0, 1))


def _rng_to_array(rng: np.random.Generator) -> np.ndarray:
    """PCG64 state as uint64 words ``[state_hi, state_lo, inc_hi, inc_lo, has_uint32,
    uinteger]`` (checkpoint formats store arrays, not nested Python ints)."""
    s = rng.bit_generator.state
    mask = (1 << 64) - 1
    st, inc = s["state"]["state"], s["state"]["inc"]
    return np.array(
        [st >> 64, st & mask, inc >> 64, inc & mask, s["has_uint32"], s["uinteger"]], np.uint64
    )


def _rng_from_array(words: np.ndarray) -> np.random.Generator:
    w = [int(x) for x in words]
    bg = np.random.PCG64()
    bg.state = {
        "bit_generator": "PCG64",
        "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
        "has_uint32": w[4],
        "uinteger": w[5],
    }
    return np.random.Generator(bg)
