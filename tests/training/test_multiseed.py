"""Seeds trained together (vmapped actor and learner) give each seed the run it would have had
alone, up to float rounding; their run directories are ordinary ones (resume, report)."""

import json
import shutil

import numpy as np
import pytest

from behavior_priors.experiments import get_experiment, run_experiment
from behavior_priors.training.loop import Trainer
from behavior_priors.training.multiseed import MultiSeedTrainer, train_seeds
from behavior_priors.training.run import load, train

from .test_run import TINY, _without_speed

CONFIG = TINY.replace(total_env_steps=200, eval_every=100)


def _close(a: list[dict], b: list[dict], rtol=1e-4, atol=1e-6):
    assert len(a) == len(b)
    for la, lb in zip(_without_speed(a), _without_speed(b), strict=True):
        assert la.keys() == lb.keys()
        for k in la:
            assert la[k] == pytest.approx(lb[k], rel=rtol, abs=atol), k


def test_each_seed_runs_as_it_would_alone():
    multi = MultiSeedTrainer(CONFIG, [3, 5])
    multi.run()
    for i, seed in enumerate((3, 5)):
        alone = Trainer(CONFIG.replace(seed=seed))
        alone.run()
        assert multi.trainers[i].updates == alone.updates > 0
        _close(multi.trainers[i].history, alone.history)
    # The two seeds did not run the same thing.
    a, b = (t.history[-2]["losses/critic"] for t in multi.trainers)
    assert a != b


def test_run_directories_resume_and_load(tmp_path):
    dirs = [tmp_path / "s3", tmp_path / "s5"]
    results = train_seeds(CONFIG, [3, 5], dirs)
    for d, r in zip(dirs, results, strict=True):
        assert json.loads((d / "final_eval.json").read_text())["env_steps"] == 200
        assert load(d).env_steps == 200
        assert r.env_steps == 200
    # Seed 3's run directory continues on its own like any other (one seed, no vmap).
    lines = (dirs[0] / "metrics.jsonl").read_text().splitlines()
    run = json.loads((dirs[0] / "run.json").read_text())
    run["config"]["total_env_steps"] = 280
    (dirs[0] / "run.json").write_text(json.dumps(run))
    resumed = train(None, dirs[0], resume=True)
    assert resumed.env_steps == 280
    assert (dirs[0] / "metrics.jsonl").read_text().splitlines()[: len(lines)] == lines
    # Mixed directories are refused before anything is written.
    with pytest.raises(ValueError, match="every run directory"):
        train_seeds(CONFIG, [3, 7], [dirs[1], tmp_path / "new"])
    assert not (tmp_path / "new").exists()
    with pytest.raises(ValueError, match="distinct"):
        MultiSeedTrainer(CONFIG, [1, 1])


def test_experiment_runner_with_vmapped_seeds(tmp_path):
    smoke = get_experiment("smoke")
    out = tmp_path / "smoke"
    outcomes = run_experiment(smoke, out, seeds=2, log=lambda _: None, vmap_seeds=True)
    assert len(outcomes) == 4
    assert all(o.startswith("finished with seeds [0, 1]") for o in outcomes.values()), outcomes
    # Every seed's directory is a finished run the report reads.
    assert all((out / n / "final_eval.json").exists() for n in outcomes)
    finals = [json.loads((out / n / "final_eval.json").read_text()) for n in outcomes]
    assert all(np.isfinite(f["eval/episode_return"]) for f in finals)


def test_interrupted_seeds_continue_together_exactly(tmp_path):
    dirs = [tmp_path / "a", tmp_path / "b"]
    train_seeds(CONFIG, [0, 1], dirs)
    reference = [(d / "metrics.jsonl").read_text().splitlines() for d in dirs]
    for d in dirs:  # as if stopped after the checkpoint at step 160
        shutil.rmtree(d / "checkpoints" / "200")
        (d / "final_eval.json").unlink()
    results = train_seeds(CONFIG, [0, 1], dirs)
    assert [r.env_steps for r in results] == [200, 200]
    for d, ref in zip(dirs, reference, strict=True):
        lines = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
        assert _without_speed(lines) == _without_speed([json.loads(x) for x in ref])
