"""Sequence replay: windows equal the stream they came from, boundaries, memory, checkpoints."""

import numpy as np
import pytest

from behavior_priors.agents.types import ActorExtras
from behavior_priors.envs.base import ArraySpec, StepType, TimeStep
from behavior_priors.replay import SequenceReplay

N, T, DZ = 3, 4, 2
SPEC = {"proprio/x": ArraySpec((2,)), "task/id": ArraySpec((1,))}


def stream(num_steps: int, episode_lengths=(7, 5, 9), truncate=(True, False, True), seed=0):
    """A fake batched stream with next-step auto-reset. Observation ``proprio/x`` of copy i at
    global step t is ``[t, i]``, so every stored row says where it came from. Copy i has
    episodes of ``episode_lengths[i]`` transitions ending in truncation (discount 1) or
    termination (discount 0)."""
    rng = np.random.default_rng(seed)
    pos = np.zeros(N, int)  # steps into the current episode; -1 after LAST (reset next)
    out = []
    for t in range(num_steps):
        st = np.empty(N, np.int8)
        rew = np.zeros(N, np.float32)
        disc = np.ones(N, np.float32)
        for i in range(N):
            if t == 0 or pos[i] == -1:
                st[i], pos[i] = StepType.FIRST, 0
            else:
                pos[i] += 1
                rew[i] = 100 * t + i  # identifies the transition (t-1 -> t) of copy i
                if pos[i] == episode_lengths[i]:
                    st[i] = StepType.LAST
                    disc[i] = 1.0 if truncate[i] else 0.0
                    pos[i] = -1
                else:
                    st[i] = StepType.MID
        obs = {
            "proprio/x": np.stack([np.full(N, t), np.arange(N)], -1).astype(np.float32),
            "task/id": np.full((N, 1), t % 3, np.float32),
        }
        ts = TimeStep(st, obs, rew, disc, np.full(N, t % 3, np.int32), {})
        action = rng.normal(size=(N, 2)).astype(np.float32)
        extras = ActorExtras(
            behaviour_log_prob=-np.arange(N, dtype=np.float32) - t,
            latent=np.full((N, DZ), t, np.float32),
            prev_latent=np.full((N, DZ), t - 1, np.float32),
            latent_sampled=np.ones(N, np.float32),
        )
        out.append((ts, action, extras))
    return out


def filled(capacity_steps=N * 50, steps=30, seed=0):
    replay = SequenceReplay(capacity_steps, N, T, SPEC, (2,), latent_dim=DZ, seed=seed)
    data = stream(steps)
    for ts, a, e in data:
        replay.add(ts, a, e)
    return replay, data


def check_window(batch, b, data):
    """Window b of the batch must be the rows t0..t0+T of one copy of the stream."""
    t0, copy = (
        int(batch.observation["proprio/x"][b, 0, 0]),
        int(batch.observation["proprio/x"][b, 0, 1]),
    )
    for j in range(T + 1):
        ts, a, e = data[t0 + j]
        assert batch.observation["proprio/x"][b, j].tolist() == [t0 + j, copy]
        assert batch.step_type[b, j] == ts.step_type[copy]
        assert batch.task_id[b, j] == ts.task_id[copy]
        np.testing.assert_array_equal(batch.action[b, j], a[copy])
        assert batch.behaviour_log_prob[b, j] == e.behaviour_log_prob[copy]
        np.testing.assert_array_equal(batch.latent[b, j], e.latent[copy])
        if ts.step_type[copy] == StepType.LAST:
            # Padding at LAST: no transition leaves a final observation.
            assert batch.reward[b, j] == 0 and batch.discount[b, j] == 0
        elif j < T:  # the reward at index T is not part of the window's T transitions
            nxt = data[t0 + j + 1][0]
            # Row t holds the reward and discount of the transition t -> t+1.
            assert batch.reward[b, j] == nxt.reward[copy]
            assert batch.discount[b, j] == nxt.discount[copy]
    return t0, copy


def test_windows_are_consecutive_steps_of_one_copy_with_next_step_rewards():
    replay, data = filled()
    batch = replay.sample(256)
    assert batch.observation["proprio/x"].shape == (256, T + 1, 2)
    assert batch.action.shape == (256, T + 1, 2)
    assert batch.latent.shape == (256, T + 1, DZ)
    seen = {check_window(batch, b, data) for b in range(256)}
    # Uniform over all (start, copy): every window appears, none past the last written row.
    starts = {t0 for t0, _ in seen}
    assert starts == set(range(30 - T)) and {c for _, c in seen} == set(range(N))


def test_a_flat_policy_replay_without_latents_samples_windows():
    """latent_dim=0 (a flat policy) stores latents of width 0: sampling must still give
    ``[B, T+1, 0]`` latents (a gather through ``reshape(-1, 0)`` cannot, as size 0 leaves -1
    undetermined) and the same windows as with latents."""
    replay = SequenceReplay(N * 50, N, T, SPEC, (2,), latent_dim=0, seed=0)
    data = [
        (ts, a, e._replace(latent=e.latent[:, :0], prev_latent=e.prev_latent[:, :0]))
        for ts, a, e in stream(30)
    ]
    for ts, a, e in data:
        replay.add(ts, a, e)
    batch = replay.sample(64)
    assert batch.latent.shape == batch.prev_latent.shape == (64, T + 1, 0)
    for b in range(64):
        check_window(batch, b, data)


def test_episode_boundaries_cut_the_trace_and_truncation_keeps_the_final_observation():
    replay, _ = filled()
    batch = replay.sample(512)
    crossing = 0
    for b in range(512):
        st = batch.step_type[b]
        for j in np.flatnonzero(st == StepType.LAST):
            # The true final observation is stored at LAST; the discount of the transition
            # into it is 1 for truncation (copies 0 and 2) and 0 for termination (copy 1).
            copy = int(batch.observation["proprio/x"][b, j, 1])
            if j > 0:
                assert batch.discount[b, j - 1] == (0.0 if copy == 1 else 1.0)
            if j + 1 <= T:
                assert st[j + 1] == StepType.FIRST  # the next episode starts right after
                crossing += 1
    assert crossing > 0


def test_ring_overwrites_the_oldest_steps_and_stays_chronological():
    replay, data = filled(capacity_steps=N * 12, steps=40)
    assert len(replay) == N * 12 and replay.num_sampleable() == N * (12 - T)
    batch = replay.sample(300)
    starts = set()
    for b in range(300):
        t0, _ = check_window(batch, b, data)
        starts.add(t0)
    assert starts == set(range(40 - 12, 40 - T))


def test_memory_is_close_to_the_raw_bytes_of_one_copy_of_each_step():
    capacity = N * 1000
    replay = SequenceReplay(capacity, N, T, SPEC, (2,), latent_dim=DZ)
    # Per step: obs 3 floats, action 2, reward, discount, log-prob, 2+2 latents, sampled flag,
    # task id (int32) and step type (int8).
    raw = 4 * (3 + 2 + 1 + 1 + 1 + 2 * DZ + 1 + 1) + 1
    assert replay.nbytes == capacity * raw
    assert replay.nbytes < (T + 1) * capacity * raw / 4  # far from storing every window


def test_state_dict_round_trip_continues_identically():
    replay, _ = filled(capacity_steps=N * 12, steps=40, seed=3)
    state = replay.state_dict()
    copy = SequenceReplay(N * 12, N, T, SPEC, (2,), latent_dim=DZ, seed=99)
    copy.load_state_dict(state)
    more = stream(45)[40:]
    for r in (replay, copy):
        for ts, a, e in more:
            r.add(ts, a, e)
    a, b = replay.sample(64), copy.sample(64)
    for x, y in zip(a, b, strict=True):
        if isinstance(x, dict):
            for k in x:
                np.testing.assert_array_equal(x[k], y[k])
        else:
            np.testing.assert_array_equal(x, y)


def test_bad_input_gives_clear_errors_and_changes_nothing():
    replay = SequenceReplay(N * 20, N, T, SPEC, (2,), latent_dim=DZ)
    with pytest.raises(ValueError, match="a window needs"):
        replay.sample(4)
    ts, a, e = stream(1)[0]
    with pytest.raises(ValueError, match="action shape"):
        replay.add(ts, a[:, :1], e)
    bad = ts._replace(observation={"proprio/x": ts.observation["proprio/x"]})
    with pytest.raises(KeyError, match="task/id"):
        replay.add(bad, a, e)
    assert len(replay) == 0
    with pytest.raises(ValueError, match="sequence_length"):
        SequenceReplay(N * 4, N, T, SPEC, (2,))
    state = filled()[0].state_dict()
    other = SequenceReplay(N * 50, N, T, {"proprio/x": ArraySpec((3,))}, (2,), latent_dim=DZ)
    with pytest.raises(ValueError, match="proprio/x"):
        other.load_state_dict(state)


def _concat_steps(a, b):
    """Two streams' steps side by side: copies of ``a`` then of ``b``."""
    out = []
    for (ta, aa, ea), (tb, ab, eb) in zip(a, b, strict=True):
        ts = TimeStep(
            *(
                {k: np.concatenate([x[k], y[k]]) for k in x}
                if isinstance(x, dict)
                else np.concatenate([x, y])
                for x, y in zip(ta, tb, strict=True)
            )
        )
        extras = ActorExtras(*(np.concatenate([x, y]) for x, y in zip(ea, eb, strict=True)))
        out.append((ts, np.concatenate([aa, ab]), extras))
    return out


def test_seed_groups_sample_as_separate_replays_would():
    """A replay of 2 seed groups (seeds 7 and 9) holds two streams side by side; each group's
    windows, its state_dict and a restore from a single replay's state are exactly those of a
    replay of that group alone."""
    streams = [stream(40, seed=0), stream(40, episode_lengths=(4, 6, 3), seed=1)]
    grouped = SequenceReplay(2 * N * 50, 2 * N, T, SPEC, (2,), latent_dim=DZ, seed=[7, 9])
    alone = [SequenceReplay(N * 50, N, T, SPEC, (2,), latent_dim=DZ, seed=s) for s in (7, 9)]
    for step in _concat_steps(*streams):
        grouped.add(*step)
    for replay, data in zip(alone, streams, strict=True):
        for step in data:
            replay.add(*step)
    assert grouped.num_sampleable() == 2 * alone[0].num_sampleable()
    for _ in range(3):
        batch = grouped.sample_groups(5)
        assert batch.observation["proprio/x"].shape == (2, 5, T + 1, 2)
        for g, replay in enumerate(alone):
            mine, theirs = batch, replay.sample(5)
            for x, y in zip(mine.observation.values(), theirs.observation.values(), strict=True):
                np.testing.assert_array_equal(x[g], y)
            for name in SequenceBatchFields:
                np.testing.assert_array_equal(getattr(mine, name)[g], getattr(theirs, name))
    for g, replay in enumerate(alone):
        a, b = grouped.state_dict(group=g), replay.state_dict()
        for x, y in zip(_leaves(a), _leaves(b), strict=True):
            np.testing.assert_array_equal(x, y)
    # A single replay's state fills a group; both continue identically.
    restored = SequenceReplay(2 * N * 50, 2 * N, T, SPEC, (2,), latent_dim=DZ, seed=[0, 0])
    for g, replay in enumerate(alone):
        restored.load_state_dict(replay.state_dict(), group=g)
    np.testing.assert_array_equal(restored.sample_groups(4).action[1], alone[1].sample(4).action)
    with pytest.raises(ValueError, match="seed groups"):
        grouped.sample(4)
    with pytest.raises(ValueError, match="name one"):
        grouped.state_dict()
    with pytest.raises(ValueError, match="do not split"):
        SequenceReplay(100, 5, T, SPEC, (2,), seed=[1, 2])


SequenceBatchFields = ("step_type", "action", "reward", "discount", "behaviour_log_prob", "latent")


def _leaves(tree):
    if isinstance(tree, dict):
        return [x for k in sorted(tree) for x in _leaves(tree[k])]
    return [np.asarray(tree)]
