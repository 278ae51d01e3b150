"""Checkpoints (issue 37): the meta JSON is as tamper-evident as the arrays, a downgraded or
old-format checkpoint is read only when asked, and a full disk while saving is one line.

Each test of a defect failed before the fix; the untouched-checkpoint test guards what must
keep working."""

import errno
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

from behavior_priors.cli import main
from behavior_priors.training.checkpoint import Checkpointer, CheckpointError, CheckpointWriteError
from behavior_priors.training.logger import read_metrics

from .test_run_directory import TINY  # noqa: F401 (the finished fixture of conftest.py trains it)

CONFIG = {"seed": 3, "agent": {"kl_cost": 0.1}, "env_kwargs": {}}


def _state():
    rng = np.random.default_rng(0)
    return {
        "learner": {"w": rng.normal(size=(8, 4)).astype(np.float32), "b": np.zeros(4)},
        "counters": {"updates": np.int64(7)},
        "latent": np.zeros((2, 0), np.float32),  # zero-size leaves are stored specially
    }


def _saved(tmp_path, step=10):
    ck = Checkpointer(tmp_path / "checkpoints")
    ck.save(step, _state(), {"version": "0.1.0", "config": CONFIG})
    return ck


def _meta_file(ck, step=10):
    return ck.directory / str(step) / "meta" / "metadata"


def _edit_meta(ck, edit, step=10):
    path = _meta_file(ck, step)
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def _set(key, value):
    def edit(meta):
        meta[key] = value

    return edit


def _assert_same_state(restored):
    for key, value in _state()["learner"].items():
        np.testing.assert_array_equal(restored["learner"][key], value)
    assert restored["latent"].shape == (2, 0)


def _one_line(error):
    text = str(error.value)
    assert "\n" not in text, text
    return text


# -- D6: the meta is covered by the checksums ----------------------------------------------------


@pytest.mark.parametrize(
    "edit, field",
    [
        (_set("step", 99), "step"),
        (_set("version", "9.9.9"), "version"),
        (lambda m: m["config"].update(seed=4), "config"),
        (lambda m: m.pop("version"), "version"),
        (_set("note", "added by hand"), "note"),
    ],
    ids=["step", "version", "config-value", "deleted-key", "added-key"],
)
def test_any_edit_of_the_meta_is_a_corrupt_checkpoint_error(tmp_path, edit, field):
    ck = _saved(tmp_path)
    _edit_meta(ck, edit)
    with pytest.raises(CheckpointError) as e:
        ck.restore(10)
    text = _one_line(e)
    assert "corrupt" in text and f"'{field}'" in text
    assert str(_meta_file(ck)) in text  # the file to look at
    assert "backup" in text  # and what to do


def test_an_untouched_checkpoint_still_restores_with_its_meta(tmp_path):
    ck = _saved(tmp_path)
    state, meta = ck.restore(10)
    _assert_same_state(state)
    assert meta["step"] == 10 and meta["config"] == CONFIG and meta["version"] == "0.1.0"
    assert "checksums" not in meta


def test_a_downgraded_meta_is_refused_unless_legacy_loading_is_asked_for(tmp_path):
    """Before: format_version 1 without checksums silently turned verification off."""
    ck = _saved(tmp_path)

    def downgrade(meta):
        meta["format_version"] = 1
        del meta["checksums"]

    _edit_meta(ck, downgrade)
    with pytest.raises(CheckpointError) as e:
        ck.restore(10)
    text = _one_line(e)
    assert "format version 1" in text and "allow_legacy=True" in text
    state, meta = ck.restore(10, allow_legacy=True)  # the explicit opt-in still reads it
    _assert_same_state(state)
    assert meta["format_version"] == 1


def _write_version_1(directory, step, state, meta):
    """A checkpoint as version-1 code wrote it: no checksums, no integrity item."""
    import orbax.checkpoint as ocp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manager = ocp.CheckpointManager(
            directory, options=ocp.CheckpointManagerOptions(enable_async_checkpointing=False)
        )
        manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.PyTreeSave(state),
                meta=ocp.args.JsonSave({"format_version": 1, "step": step, **meta}),
            ),
        )
        manager.wait_until_finished()
        manager.close()


def test_a_genuine_version_1_checkpoint_is_read_only_with_the_opt_in(tmp_path):
    state = {k: v for k, v in _state().items() if k != "latent"}  # v1 had no empty arrays
    _write_version_1(tmp_path / "checkpoints", 5, state, {"version": "0.0.1", "config": CONFIG})
    ck = Checkpointer(tmp_path / "checkpoints")
    with pytest.raises(CheckpointError) as e:
        ck.restore(5)
    assert "allow_legacy=True" in _one_line(e)
    restored, meta = ck.restore(5, allow_legacy=True)
    np.testing.assert_array_equal(restored["learner"]["w"], state["learner"]["w"])
    assert meta["step"] == 5 and meta["config"] == CONFIG


@pytest.mark.parametrize(
    "field, value",
    [("step", "abc"), ("step", 99), ("format_version", "1"), ("config", "x"), ("version", 3)],
)
def test_a_wrongly_typed_meta_value_is_a_one_line_error_naming_the_field(tmp_path, field, value):
    """Also when legacy loading is asked for (no checksum covers a version-1 meta)."""
    state = {k: v for k, v in _state().items() if k != "latent"}
    _write_version_1(tmp_path / "checkpoints", 5, state, {"version": "0.0.1", "config": CONFIG})
    ck = Checkpointer(tmp_path / "checkpoints")
    _edit_meta(ck, _set(field, value), step=5)
    with pytest.raises(CheckpointError) as e:
        ck.restore(5, allow_legacy=True)
    text = _one_line(e)
    assert f"'{field}'" in text and str(_meta_file(ck, 5)) in text


def test_a_non_integer_step_in_a_current_checkpoint_names_the_field(tmp_path):
    ck = _saved(tmp_path)
    _edit_meta(ck, _set("step", "abc"))
    with pytest.raises(CheckpointError) as e:
        ck.restore(10)
    assert "'step'" in _one_line(e)


# -- D5: a refused write is one error -------------------------------------------------------------


def test_a_refused_write_is_one_error_and_puts_stderr_and_logging_back(tmp_path, capfd):
    """In-process: the file size limit is lowered (and raised back) around the failing save."""
    ck = Checkpointer(tmp_path / "checkpoints")
    big = {"w": np.random.default_rng(0).normal(size=(256, 1024))}  # 2 MB, incompressible
    ck.save(1, big, {})
    stderr = sys.stderr
    filters = {name: list(logging.getLogger(name).filters) for name in ("absl", "asyncio")}
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, hard))
    try:
        with pytest.raises(CheckpointWriteError) as e:
            ck.save(2, big, {})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(e.value) == (
        f"checkpoint at step 2 could not be written to {ck.directory}: [Errno 27] File too "
        "large; the previous checkpoint 1 is intact"
    )
    assert isinstance(e.value, OSError) and e.value.errno == errno.EFBIG  # the CLI: status 2
    assert sys.stderr is stderr
    assert filters == {name: logging.getLogger(name).filters for name in ("absl", "asyncio")}
    assert capfd.readouterr().err == ""  # nothing printed by orbax's threads
    assert [p.name for p in ck.directory.iterdir()] == ["1"]  # the partial one removed
    np.testing.assert_array_equal(ck.restore(1)[0]["w"], big["w"])
    ck.save(2, big, {})  # with room again, the same step is written
    assert ck.steps() == [1, 2]


# -- through the command line ---------------------------------------------------------------------


def test_eval_refuses_a_checkpoint_whose_step_was_edited(copy, capsys):
    """Before: `behavior-priors eval` reported the edited step as the checkpoint's."""
    ck = Checkpointer(copy / "checkpoints")
    _edit_meta(ck, _set("step", 999), step=160)
    assert main(["eval", str(copy), "--episodes", "1"]) != 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "corrupt" in lines[0] and "'step'" in lines[0]
    assert not list(copy.glob("eval-*.json"))


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_previous_checkpoint(copy):
    """Before: some 120 lines of tracebacks from orbax's threads around the error line.

    The resumed run may write files up to RLIMIT_FSIZE bytes: enough for the metric log, not
    for a checkpoint's array file, so its checkpoint at 160 fails with EFBIG ("File too
    large"), which is how a full disk looks to the writer, without root."""
    shutil.rmtree(copy / "checkpoints" / "160")
    (copy / "final_eval.json").unlink()
    files = [f for f in (copy / "checkpoints" / "80").rglob("*") if f.is_file()]
    largest = max(f.stat().st_size for f in files)
    limit = (copy / "metrics.jsonl").stat().st_size + 4096
    assert limit < largest, "the checkpoint would fit under the limit: nothing to test"
    log_before = read_metrics(copy)

    # The limit is set in the child before it imports anything (not with preexec_fn: forking
    # this multithreaded JAX process can deadlock).
    child = (
        "import resource, runpy; "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
        "runpy.run_module('behavior_priors.cli', run_name='__main__')"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # JAX's compilation cache would write files too; only the checkpoint should hit the limit.
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env.pop("BEHAVIOR_PRIORS_TRACEBACK", None)
    result = subprocess.run(
        [sys.executable, "-c", child, "train", "--resume", str(copy)],
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert result.returncode == 2, result.stderr
    assert lines[0].startswith(
        f"behavior-priors: error: checkpoint at step 160 could not be written to "
        f"{copy / 'checkpoints'}: [Errno 27] File too large"
    ), lines[0]
    assert lines[0].endswith("the previous checkpoint 80 is intact"), lines[0]
    ck = Checkpointer(copy / "checkpoints")
    assert ck.steps() == [80]
    _, meta = ck.restore(80)
    assert meta["step"] == 80
    assert not [p for p in ck.directory.iterdir() if p.name != "80"]  # no half-written one
    kept = [ln for ln in log_before if ln["env_steps"] <= 80]
    assert read_metrics(copy)[: len(kept)] == kept  # whole lines, what was logged before kept


def test_forgetting_dead_futures_passes_over_dead_weak_proxies():
    """Before: a weak proxy whose object was gone, met in ``gc.get_objects()``, raised
    ReferenceError from ``isinstance`` (it reads the proxy's ``__class__``), and a checkpoint
    write that failed became that ReferenceError instead of a CheckpointWriteError (seen once
    in a full test run)."""
    import weakref

    from behavior_priors.training.checkpoint import _forget_dead_futures

    class Thing:
        pass

    thing = Thing()
    proxies = [weakref.proxy(thing)]
    del thing
    with pytest.raises(ReferenceError):
        isinstance(proxies[0], int)
    _forget_dead_futures()  # no error
