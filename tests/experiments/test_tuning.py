"""The tuning stage: every method gets the same candidates budget on a task of its own, the
best mean AUC is selected (checked against the AUCs computed from the logs by hand), and the
experiment's runs use the selected settings."""

import dataclasses

import numpy as np
import pytest

from behavior_priors.experiments import ExperimentTask, get_experiment, run_experiment, run_specs
from behavior_priors.experiments.registry import Tuning
from behavior_priors.experiments.tuning import select, tuning_results, tuning_run_dir
from behavior_priors.training.logger import read_metrics

SMOKE = get_experiment("smoke")
TUNE_TASK = ExperimentTask("gtt1-short", "gtt1", "pointmass", {"episode_seconds": 2.0})
TUNED = dataclasses.replace(
    SMOKE,
    name="smoke-tuned",
    tuning=Tuning(
        TUNE_TASK,
        total_env_steps=320,
        grid={"noprior": ({}, {"entropy_cost": 0.5}), "hier": ({}, {"kl_cost": 0.5})},
        seeds=1,
        train_overrides=SMOKE.train_overrides,
    ),
)


def test_select_takes_the_highest_mean_and_the_first_on_a_tie():
    assert select([[0.1, 0.3], [0.4, 0.2], [0.0, 0.5]]) == 1  # means 0.2, 0.3, 0.25
    assert select([[0.5], [0.5], [0.1]]) == 0
    assert select([[0.2], [0.3 + 1e-12], [0.3]]) == 1


def _auc(run_dir, metric):
    rows = [r for r in read_metrics(run_dir) if metric in r]
    x = np.array([r["env_steps"] for r in rows], float)
    y = np.array([r[metric] for r in rows], float)
    return sum((y[i] + y[i + 1]) / 2 * (x[i + 1] - x[i]) for i in range(len(x) - 1)) / (
        x[-1] - x[0]
    )


def test_tuning_runs_first_and_selects_each_methods_settings(tmp_path):
    before = run_specs(TUNED, tmp_path, seeds=1)
    assert {s.stage for s in before} == {"tuning"}  # nothing else is known before tuning
    assert len(before) == 4 and all(s.config.total_env_steps == 320 for s in before)
    assert before[1].config.env_kwargs["episode_seconds"] == 2.0

    outcomes = run_experiment(TUNED, tmp_path, seeds=1, log=lambda _: None)
    assert sorted(outcomes) == sorted(
        [f"tuning/c{k}/{m}/seed0" for k in (0, 1) for m in ("noprior", "hier")]
        + ["gtt1/noprior/seed0", "gtt1/hier/seed0"]
    )
    assert all(o.startswith("finished") for o in outcomes.values())

    results = tuning_results(TUNED, tmp_path)
    for method, field, value in (("noprior", "entropy_cost", 0.5), ("hier", "kl_cost", 0.5)):
        aucs = [_auc(tuning_run_dir(tmp_path, k, method, 0), SMOKE.metric) for k in (0, 1)]
        assert [a[0] for a in results[method].aucs] == pytest.approx(aucs)
        chosen = 1 if aucs[1] > aucs[0] + 1e-9 else 0
        assert results[method].selected == chosen
        target = next(
            s
            for s in run_specs(TUNED, tmp_path, seeds=1)
            if s.name.endswith(f"gtt1/{method}/seed0")
        )
        preset = SMOKE.config(SMOKE.tasks[0], method, 0)
        expected = value if chosen else getattr(preset.agent, field)
        assert getattr(target.config.agent, field) == expected

    again = run_experiment(TUNED, tmp_path, seeds=1, log=lambda _: None)
    assert set(again.values()) == {"skipped: finished before"}


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(grid={"noprior": ({},), "hier": ({}, {"kl_cost": 0.1})}), "same number"),
        (dict(grid={"noprior": ({},)}), "every method trained from scratch"),
        (dict(grid={"noprior": ({"kl_cos": 1},), "hier": ({},)}), "unknown agent fields"),
        (dict(task=SMOKE.tasks[0]), "is one of the evaluation tasks"),
        (dict(seeds=0), "seeds >= 1"),
    ],
)
def test_unfair_or_bad_tuning_is_refused(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TUNED, tuning=dataclasses.replace(TUNED.tuning, **change))
