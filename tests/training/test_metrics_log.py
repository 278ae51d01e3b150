"""Reading a run's metric log: a damaged line is named by its file and line (issue 37, D9)."""

import json

import pytest

from behavior_priors.training.logger import METRICS_FILE, read_metrics

GOOD = [json.dumps({"env_steps": s, "charts/episode_return": 1.0}) for s in (10, 20)]


def _log(tmp_path, text: str | bytes):
    path = tmp_path / METRICS_FILE
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_a_line_cut_short_at_the_end_is_left_out(tmp_path):
    """What a process killed while writing a line (or one still writing) leaves behind."""
    _log(tmp_path, "\n".join(GOOD) + '\n{"env_steps": 30, "charts/epi')
    assert [ln["env_steps"] for ln in read_metrics(tmp_path)] == [10, 20]
    _log(tmp_path, "\n".join(GOOD) + "\n\n")
    assert len(read_metrics(tmp_path)) == 2


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"env_steps": 15 "x": 1}', "Expecting ',' delimiter"),
        ('{"env_steps": 15, "charts/epi', "Unterminated string"),  # not the last line
        ("[1, 2]", "not a metric line"),
        ('{"charts/episode_return": 1.0}', "not a metric line"),
        ('{"env_steps": "abc"}', "not a metric line"),
    ],
)
def test_a_damaged_line_names_the_file_and_the_line(tmp_path, bad, message):
    """Before: "Expecting ',' delimiter: line 1 column 18 (char 17)", or "error: env_steps"
    from the plot, without the file or its line."""
    path = _log(tmp_path, f"{GOOD[0]}\n{bad}\n{GOOD[1]}\n")
    with pytest.raises(ValueError) as e:
        read_metrics(tmp_path)
    assert f"{path}, line 2" in str(e.value) and message in str(e.value)
    assert "repair or delete that line" in str(e.value)


def test_a_log_that_is_not_text_is_named(tmp_path):
    path = _log(tmp_path, GOOD[0].encode() + b"\n\xff\xfe\n")
    with pytest.raises(ValueError, match=f"{path} is damaged: not UTF-8 text"):
        read_metrics(tmp_path)


def _events(folder):
    """Every event of the TensorBoard files in ``folder`` (TFRecord framing read by hand)."""
    import struct

    from tensorboardX.proto import event_pb2

    out = []
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        i = 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i : i + 8])
            out.append(event_pb2.Event.FromString(data[i + 12 : i + 12 + n]))
            i += 12 + n + 4
    return out


def test_tensorboard_gets_the_config_as_hyperparameters(tmp_path):
    """Before: the TensorBoard files held the metrics only; the run's settings were nowhere
    in them. Now: an HParams session with the flattened config, and the config as text."""
    from behavior_priors.training.logger import MetricLogger, flat_config

    config = {"seed": 3, "agent": {"kl_cost": 0.1, "policy": "flat"}, "env_kwargs": {}}
    assert flat_config(config) == {"seed": 3, "agent.kl_cost": 0.1, "agent.policy": "flat"}
    logger = MetricLogger(tmp_path, tensorboard=True, config=config)
    logger.log(10, {"charts/episode_return": 1.5})
    logger.close()
    tags = {v.tag for e in _events(tmp_path / "tensorboard") for v in e.summary.value}
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "config/text_summary"} <= tags
    assert "charts/episode_return" in tags
    # A resumed run does not start a second session.
    logger = MetricLogger(tmp_path, tensorboard=True, config=config, resume=True)
    logger.close()
    starts = [
        v
        for e in _events(tmp_path / "tensorboard")
        for v in e.summary.value
        if v.tag == "_hparams_/session_start_info"
    ]
    assert len(starts) == 1
