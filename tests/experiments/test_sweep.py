"""Sweeps (``behavior-priors sweep``): every combination of the grid x seeds trained on the
experiment machinery, finished runs skipped, a summary equal to what the logs say, and bad
sweeps refused before anything trains."""

import json

import numpy as np
import pytest

from behavior_priors.cli import main
from behavior_priors.experiments.sweep import (
    Sweep,
    apply_settings,
    run_sweep,
    setting_name,
    summarise_sweep,
    sweep_specs,
)
from behavior_priors.training.presets import get_preset

PRESET = "gtt1-pointmass-noprior"
TINY = {
    "total_env_steps": 320,
    "eval_every": 160,
    "log_every": 160,
    "checkpoint_every": 160,
    "warmup_steps": 160,
    "batch_size": 4,
    "eval_episodes": 2,
    "tensorboard": False,
}


def test_points_are_the_grids_product_and_settings_are_checked():
    sweep = Sweep(PRESET, {"agent.kl_cost": (0.01, 0.1), "num_envs": (4, 8, 16)}, 2)
    points = sweep.points()
    assert len(points) == 6
    assert points[:3] == [
        {"agent.kl_cost": 0.01, "num_envs": 4},
        {"agent.kl_cost": 0.01, "num_envs": 8},
        {"agent.kl_cost": 0.01, "num_envs": 16},
    ]
    config = sweep.config(points[4], seed=3)
    base = get_preset(PRESET)
    assert config == base.replace(num_envs=8, seed=3, agent=base.agent.replace(kl_cost=0.1))
    assert apply_settings(base, {}) == base
    assert setting_name("agent.kl-cost") == "agent.kl_cost"
    with pytest.raises(KeyError, match=r"did you mean agent\.kl_cost"):
        setting_name("agent.kl_cots")
    with pytest.raises(ValueError, match="discount must be in"):  # the config's own check
        Sweep(PRESET, {"agent.discount": (0.9, 2.0)})
    with pytest.raises(ValueError, match="at least one setting"):
        Sweep(PRESET, {})
    with pytest.raises(ValueError, match="seeds must be"):
        Sweep(PRESET, {"num_envs": (4,)}, seeds=0)


def _curve(run_dir, metric):
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if metric in r]
    return np.array([r["env_steps"] for r in rows], float), np.array([r[metric] for r in rows])


def test_a_sweep_trains_every_point_skips_finished_runs_and_summarises_its_logs(tmp_path):
    out = tmp_path / "sweep"
    sweep = Sweep(PRESET, {"agent.policy_learning_rate": (1e-3, 3e-3)}, 2, TINY)
    first = run_sweep(sweep, out, log=lambda _: None)
    assert sorted(first) == sorted(s.name for s in sweep_specs(sweep, out))
    assert all(o.startswith("finished") for o in first.values()), first
    for spec in sweep_specs(sweep, out):
        saved = json.loads((spec.run_dir / "run.json").read_text())["config"]
        lr = sweep.points()[int(spec.task[1:])]["agent.policy_learning_rate"]
        assert saved["agent"]["policy_learning_rate"] == lr and saved["seed"] == spec.seed
    again = run_sweep(sweep, out, log=lambda _: None)
    assert set(again.values()) == {"skipped: finished before"}

    summary = summarise_sweep(sweep, out)
    assert summary.missing == [] and len(summary.rows) == 2
    metric = "eval/episode_return"
    for k, row in enumerate(summary.rows):
        finals, aucs = [], []
        for seed in range(2):
            steps, values = _curve(out / f"p{k}" / f"seed{seed}", metric)
            finals.append(values[-1])
            trapezoids = (values[1:] + values[:-1]) / 2 * np.diff(steps)
            aucs.append(trapezoids.sum() / (steps[-1] - steps[0]))
        assert row["final"] == pytest.approx(finals)
        assert row["auc"] == pytest.approx(aucs)
        assert row["auc_mean"] == pytest.approx(np.mean(aucs))
    saved = json.loads((out / "sweep-summary.json").read_text())
    assert saved["rows"][0]["settings"] == {"agent.policy_learning_rate": 1e-3}
    text = summary.path.read_text()
    assert "| p0" in text and "| p1" in text and "highest mean AUC" in text

    other = Sweep(PRESET, {"agent.policy_learning_rate": (1e-3, 1e-2)}, 2, TINY)
    with pytest.raises(ValueError, match=r"holds another sweep .*grid"):
        run_sweep(other, out, log=lambda _: None)


def test_cli_sweep_refuses_bad_settings_in_one_line(tmp_path, capsys):
    base = ["sweep", "--preset", PRESET, "--out", str(tmp_path / "s")]
    assert main([*base, "--grid", "agent.kl-cots", "0.1"]) == 2
    assert "did you mean agent.kl_cost" in capsys.readouterr().err
    assert main([*base, "--grid", "agent.kl-cost"]) == 2
    assert "give its values" in capsys.readouterr().err
    assert main([*base, "--grid", "agent.discount", "2.0"]) == 2
    err = capsys.readouterr().err
    assert "discount must be in" in err and len(err.strip().splitlines()) == 1
    assert main([*base, "--grid", "num_envs", "4", "--cpus-per-task", "2"]) == 2
    assert "go with --ray-address" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # nothing written
