"""Training a run longer: ``train(None, d, resume=True, total_env_steps=N)`` and
``behavior-priors train --resume D --total-env-steps N``."""

import json

import pytest

from behavior_priors.cli import main
from behavior_priors.training.logger import read_metrics
from behavior_priors.training.run import train

from .test_run import TINY, _without_speed


def test_a_finished_run_extended_is_the_run_trained_to_the_new_budget(copy, tmp_path):
    """TINY (240 steps) extended to 320: its log equals that of a run started with a budget of
    320, line for line (speeds aside), and run.json records the new budget and the extension."""
    before = (copy / "run.json").read_text()
    result = train(None, copy, resume=True, total_env_steps=320)
    assert result.env_steps == 320 and not result.already_finished
    info = json.loads((copy / "run.json").read_text())
    assert info["config"]["total_env_steps"] == 320
    assert [{k: v for k, v in e.items() if k != "date"} for e in info["extended"]] == [
        {"from": 240, "to": 320, "at_env_steps": 240}
    ]
    assert {k: v for k, v in info.items() if k not in ("config", "extended")} == {
        k: v for k, v in json.loads(before).items() if k != "config"
    }
    assert json.loads((copy / "final_eval.json").read_text())["env_steps"] == 320
    reference = train(TINY.replace(total_env_steps=320), tmp_path / "ref")
    assert _without_speed(read_metrics(copy)) == _without_speed(read_metrics(reference.run_dir))
    # Resumed again with the same budget: finished, nothing written.
    again = train(None, copy, resume=True, total_env_steps=320)
    assert again.already_finished


def test_a_budget_is_never_lowered_and_nothing_is_written(copy):
    files = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    with pytest.raises(ValueError, match="would lower it"):
        train(None, copy, resume=True, total_env_steps=100)
    with pytest.raises(ValueError, match="extends a resumed run"):
        train(TINY, copy.parent / "new", total_env_steps=500)
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == files


def test_the_command_line_extends_and_says_how(copy, capsys):
    assert main(["train", "--resume", str(copy), "--no-progress"]) == 0
    assert "pass --total-env-steps N with --resume" in capsys.readouterr().out
    assert main(["train", "--resume", str(copy), "--total-env-steps", "280", "--no-progress"]) == 0
    assert json.loads((copy / "final_eval.json").read_text())["env_steps"] == 280
    assert main(["train", "--resume", str(copy), "--total-env-steps", "lots"]) == 2
    capsys.readouterr()
    assert main(["train", "--resume", str(copy), "--total-env-steps", "320", "--seed", "1"]) == 2
    assert "only --total-env-steps" in capsys.readouterr().err
