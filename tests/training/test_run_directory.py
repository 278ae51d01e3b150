"""What a run directory guarantees (docs/training.md): each test reproduces a defect found by
using the run directory as a careless or hostile user would, and failed before the fix."""

import errno
import io
import json
import os
import pickle
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from behavior_priors.cli import main
from behavior_priors.training.checkpoint import Checkpointer, CheckpointError
from behavior_priors.training.logger import read_metrics
from behavior_priors.training.run import load, train
from behavior_priors.training.session import RunDirectoryError, RunSession

from .test_run import TINY as RUN_TINY

# The run tests' tiny config, shorter: checkpoints at 80 and 160.
TINY = RUN_TINY.replace(
    seed=5, total_env_steps=160, replay_capacity=1_000, eval_every=80, checkpoint_every=80
)


def _params(state):
    import equinox as eqx

    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(state, eqx.is_array))]


def _without_speed(lines):
    return [{k: v for k, v in ln.items() if not k.startswith("perf/")} for ln in lines]


def test_a_folder_with_checkpoints_but_no_run_json_is_refused_and_left_as_it_was(copy, capsys):
    (copy / "run.json").unlink()
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    short = TINY.replace(total_env_steps=80)
    with pytest.raises(RunDirectoryError, match="holds files of another run"):
        train(short, copy)
    with pytest.raises(FileNotFoundError, match=r"no run\.json"):
        train(None, copy, resume=True)
    with pytest.raises(FileNotFoundError, match="holds files of a run"):
        load(copy)
    assert main(["eval", str(copy)]) == 2
    assert "holds files of a run" in capsys.readouterr().err
    after = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    assert after == before  # nothing wiped, nothing added


def test_a_full_disk_while_resuming_leaves_the_metric_log_whole(copy, monkeypatch):
    metrics = copy / "metrics.jsonl"
    original = metrics.read_bytes()

    class FullDisk(io.TextIOWrapper):
        def write(self, text):
            super().write(text[: len(text) // 2])
            self.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

    def full_disk(opener):
        def wrapped(file, mode="r", *args, **kwargs):
            f = opener(file, mode, *args, **kwargs)
            return FullDisk(f.detach()) if "w" in mode and "b" not in mode else f

        return wrapped

    # pathlib writes through io.open; atomic_write_text through os.fdopen.
    monkeypatch.setattr(io, "open", full_disk(io.open))
    monkeypatch.setattr(os, "fdopen", full_disk(os.fdopen))
    with pytest.raises(OSError, match="No space left"):
        train(None, copy, resume=True, checkpoint_step=80)
    monkeypatch.undo()
    assert metrics.read_bytes() == original
    assert not [p for p in copy.iterdir() if p.name.endswith(".tmp")]


def test_resuming_from_an_earlier_checkpoint_replaces_a_corrupt_later_one(finished, copy):
    state_dir = copy / "checkpoints" / "160" / "state"
    for f in state_dir.rglob("*"):
        if f.is_file() and "ocdbt" in str(f.relative_to(state_dir)):
            f.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load(copy)
    train(None, copy, resume=True, checkpoint_step=80)
    # The continued run rewrote 160: it loads, and it is the uninterrupted run's state.
    for a, b in zip(_params(load(copy).state), _params(load(finished).state), strict=True):
        np.testing.assert_array_equal(a, b)
    assert _without_speed(read_metrics(copy)) == _without_speed(read_metrics(finished))


class _Payload:
    """Pickles to a call that creates a file: what a crafted checkpoint would run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_pickle_in_a_checkpoint_is_refused_not_executed(copy, tmp_path):
    marker = tmp_path / "pwned"
    ck = Checkpointer(copy / "checkpoints")
    state, meta = ck.restore(160)
    state["env"]["rng"] = np.frombuffer(pickle.dumps(_Payload(marker)), np.uint8).copy()
    shutil.rmtree(copy / "checkpoints" / "160")
    Checkpointer(copy / "checkpoints").save(160, state, {k: meta[k] for k in ("version", "config")})
    with pytest.raises(CheckpointError, match="pickle"):
        train(None, copy, resume=True)
    assert not marker.exists()


def test_generator_state_round_trips_as_json_and_garbage_is_a_clear_error():
    from behavior_priors.envs.base import generator_state_from_array, generator_state_to_array

    a = np.random.default_rng(7)
    a.random(3)
    saved = generator_state_to_array(a)
    json.loads(saved.tobytes())  # plain JSON, readable by anyone
    b = np.random.default_rng(0)
    generator_state_from_array(b, saved)
    assert a.random() == b.random()
    with pytest.raises(ValueError, match="corrupt"):
        generator_state_from_array(b, np.frombuffer(b"{not json", np.uint8))
    with pytest.raises(ValueError, match="not a PCG64"):
        generator_state_from_array(b, np.frombuffer(b'{"bit_generator": "MT19937"}', np.uint8))


def _flat(tree, path=""):
    if isinstance(tree, dict):
        return {k: v for key in tree for k, v in _flat(tree[key], f"{path}/{key}").items()}
    if isinstance(tree, list | tuple):
        return {k: v for i, x in enumerate(tree) for k, v in _flat(x, f"{path}/{i}").items()}
    return {path: np.asarray(tree)}


def test_every_flipped_byte_of_a_checkpoint_is_caught_or_harmless(finished, tmp_path):
    """Flip one random bit in each of 24 copies of a checkpoint (spread over its data files):
    restoring either raises the corrupt-checkpoint error or gives back exactly the saved arrays
    (a flip in unused padding), never other values."""
    source = finished / "checkpoints" / "160"
    clean = _flat(Checkpointer(finished / "checkpoints").restore(160)[0])
    data = sorted(
        f for f in (source / "state").rglob("*") if f.is_file() and f.stat().st_size > 128
    )
    assert data
    caught = 0
    rng = np.random.default_rng(0)
    for trial in range(24):
        run_dir = tmp_path / f"flip{trial}"
        shutil.copytree(finished, run_dir)
        target = run_dir / data[trial % len(data)].relative_to(finished)
        raw = bytearray(target.read_bytes())
        raw[int(rng.integers(len(raw)))] ^= 1 << int(rng.integers(8))
        target.write_bytes(bytes(raw))
        try:
            restored = _flat(Checkpointer(run_dir / "checkpoints").restore(160)[0])
        except CheckpointError as e:
            assert "corrupt" in str(e)
            caught += 1
        else:
            assert restored.keys() == clean.keys()
            for k, v in clean.items():
                assert restored[k].dtype == v.dtype and restored[k].tobytes() == v.tobytes(), k
        shutil.rmtree(run_dir)
    assert caught > 0


def test_a_run_that_died_before_its_first_checkpoint_resumes_from_the_start(finished, tmp_path):
    run_dir = tmp_path / "early"

    class Crash(Exception):
        pass

    def crash(line):
        if line["env_steps"] >= 40:
            raise Crash

    with pytest.raises(Crash):
        train(TINY, run_dir, on_log=crash)
    assert (run_dir / "run.json").exists() and not (run_dir / "checkpoints").exists()
    with pytest.raises(FileExistsError, match="resume"):
        train(TINY, run_dir)
    result = train(None, run_dir, resume=True)
    assert result.env_steps == TINY.total_env_steps
    assert _without_speed(read_metrics(run_dir)) == _without_speed(read_metrics(finished))


def test_resuming_a_finished_run_again_changes_nothing(finished, copy):
    before = read_metrics(copy)
    final = json.loads((copy / "final_eval.json").read_text())
    for _ in range(2):
        result = train(None, copy, resume=True)
        assert result.env_steps == TINY.total_env_steps
        assert {"env_steps": result.env_steps, **result.final_eval} == final
    assert read_metrics(copy) == before


def test_a_diverged_learner_is_reported_as_such_not_as_bad_actions(tmp_path):
    lr = 1e30  # NaN parameters within a few updates, long before the first log line
    config = TINY.replace(
        total_env_steps=2_000,
        eval_every=0,
        log_every=2_000,
        checkpoint_every=0,
        agent=TINY.agent.replace(
            policy_learning_rate=lr, critic_learning_rate=lr, prior_learning_rate=lr
        ),
    )
    with pytest.raises(FloatingPointError, match=r"learner step .* diverged"):
        train(config, tmp_path / "nan")


def test_session_refuses_a_checkpoint_step_without_resume(tmp_path):
    with pytest.raises(ValueError, match="resume"):
        RunSession(tmp_path / "r", TINY, checkpoint_step=80)


def _tensorboard_view(log_dir: Path, tag: str) -> list[tuple[int, float]]:
    """``[(step, value)]`` of ``tag`` as TensorBoard shows it: event files read in order, and a
    session START at step s discards the points at and after s written before it (purge)."""
    import struct

    from tensorboardX.proto import event_pb2

    points: list[tuple[int, float]] = []
    for path in sorted(log_dir.glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime):
        data = path.read_bytes()
        pos = 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            if event.HasField("session_log") and event.session_log.status == 1:  # START
                points = [(s, v) for s, v in points if s < event.step]
            for value in event.summary.value:
                if value.tag == tag:
                    points.append((event.step, value.simple_value))
    return sorted(points)


def test_tensorboard_shows_each_step_once_after_a_resume(tmp_path):
    """Before: the resumed run appended its replay of the steps after the checkpoint to the
    points the first run had logged there."""
    import os
    import signal
    import time

    from behavior_priors.training.run import Interrupted

    config = TINY.replace(tensorboard=True)
    run_dir = tmp_path / "tb"

    def stop(line):
        if line["env_steps"] >= 120:  # after the checkpoint at 80: 120 is logged twice
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted):
        train(config, run_dir, on_log=stop)
    shutil.rmtree(run_dir / "checkpoints" / "120")  # as if killed before that checkpoint
    time.sleep(0.01)  # the resumed run's event file is newer
    train(None, run_dir, resume=True)
    tag = "charts/episode_return"
    expected = [(ln["env_steps"], ln[tag]) for ln in read_metrics(run_dir) if tag in ln]
    shown = _tensorboard_view(run_dir / "tensorboard", tag)
    assert [s for s, _ in shown] == [s for s, _ in expected]  # each step once
    np.testing.assert_allclose([v for _, v in shown], [v for _, v in expected], rtol=1e-6)


def test_a_writer_opened_in_the_same_second_keeps_the_earlier_event_file(tmp_path, monkeypatch):
    """tensorboardX names event files by the second and the host: a run resumed within the
    second its previous writer opened overwrote that file, and TensorBoard lost the points
    before the resume (seen as a flaky resume test on a loaded machine). The clock is frozen
    here, so the two writers always share the second."""
    import tensorboardX.event_file_writer as efw

    from behavior_priors.training.logger import MetricLogger

    monkeypatch.setattr(efw.time, "time", lambda: 1_800_000_000.25)
    first = MetricLogger(tmp_path, tensorboard=True)
    first.log(40, {"charts/episode_return": 1.0})
    first.close()
    second = MetricLogger(tmp_path, tensorboard=True, resume=True, purge_step=80)
    second.log(120, {"charts/episode_return": 3.0})
    second.close()
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2
    shown = _tensorboard_view(tmp_path / "tensorboard", "charts/episode_return")
    assert shown == [(40, 1.0), (120, 3.0)]


def test_atomic_writes_get_the_permissions_a_plain_write_gets(tmp_path):
    """Before: every file written atomically (run files, result pages) was private (0600),
    the mode of ``tempfile.mkstemp``, unlike the same file written with ``open``."""
    import os

    from behavior_priors.training.files import atomic_write_text

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = tmp_path / "atomic.txt"
    atomic_write_text(atomic, "x")
    assert os.stat(atomic).st_mode & 0o777 == os.stat(plain).st_mode & 0o777
    old = os.umask(0o077)
    try:
        atomic_write_text(tmp_path / "private.txt", "x")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "private.txt").st_mode & 0o777 == 0o600
