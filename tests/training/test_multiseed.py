"""Seeds trained batched (one environment, replay, actor call and vmapped update for all) give
each seed the run it would have had alone, up to float rounding; their run directories are
ordinary ones (resume, report); a seed that diverges stops alone."""

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
        assert multi.updates == alone.updates > 0
        _close(multi.runs[i].history, alone.history)
    # The two seeds did not run the same thing.
    a, b = (r.history[-2]["losses/critic"] for r in multi.runs)
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


def test_a_diverging_seed_stops_alone(tmp_path, capsys, monkeypatch):
    """Seed 1's parameters are poisoned with NaN half-way: it is reported by seed and keeps the
    checkpoint from before; seed 0 finishes, its log identical to an undisturbed batch's."""
    import jax.numpy as jnp

    reference = train_seeds(CONFIG, [0, 1], [tmp_path / "r0", tmp_path / "r1"])
    dirs = [tmp_path / "a", tmp_path / "b"]

    def poison(i, line):
        if i == 1 and line["env_steps"] == 120:
            # the policy's arrays come first: NaN actions from the next step on
            multi = poison.multi
            multi.stacked[0] = multi.stacked[0].at[1].set(jnp.nan)

    import behavior_priors.training.multiseed as ms

    original = ms.MultiSeedTrainer.__init__

    def keep(self, *a, **k):
        original(self, *a, **k)
        poison.multi = self

    monkeypatch.setattr(ms.MultiSeedTrainer, "__init__", keep)
    results = train_seeds(CONFIG, [0, 1], dirs, on_log=poison)
    assert results[0].error is None and results[0].env_steps == 200
    assert "seed 1 diverged at env step 12" in results[1].error
    assert "seed 1 diverged" in capsys.readouterr().err
    assert (dirs[0] / "final_eval.json").exists() and not (dirs[1] / "final_eval.json").exists()
    assert _without_speed(results[0].history) == _without_speed(reference[0].history)
    steps = sorted(int(p.name) for p in (dirs[1] / "checkpoints").iterdir() if p.name.isdigit())
    assert steps and max(steps) <= 120
    logged = [json.loads(x) for x in (dirs[1] / "metrics.jsonl").read_text().splitlines()]
    assert max(x["env_steps"] for x in logged) <= 120


def test_a_batched_seed_checkpoint_is_a_single_seed_checkpoint(tmp_path):
    """What seed i's checkpoint holds is what a single-seed Trainer saves, array for array in
    shape and dtype (so either loop resumes it), and the batch's environment, replay and
    episode state for that seed equal the single run's at the first steps exactly."""
    multi = MultiSeedTrainer(CONFIG, [3, 5])
    alone = Trainer(CONFIG.replace(seed=5))
    for _ in range(10):  # before warm-up: no update, so no float rounding difference
        multi.step()
        alone.step()
    mine, theirs = multi.seed_state_dict(1), alone.state_dict()
    import jax

    flat_a, tree_a = jax.tree.flatten(mine)
    flat_b, tree_b = jax.tree.flatten(theirs)
    assert tree_a == tree_b
    for x, y in zip(flat_a, flat_b, strict=True):
        assert np.shape(x) == np.shape(y) and np.asarray(x).dtype == np.asarray(y).dtype
    for part in ("replay", "env", "timestep", "episodes", "actor"):
        for x, y in zip(jax.tree.leaves(mine[part]), jax.tree.leaves(theirs[part]), strict=True):
            np.testing.assert_array_equal(x, y, err_msg=part)
    # A single run's checkpoint fills a batch's seed, and the batch continues.
    other = Trainer(CONFIG.replace(seed=3))
    for _ in range(10):
        other.step()
    multi.load_state_dicts([other.state_dict(), theirs])
    velocity = multi.ts.observation["proprio/velocity"]
    np.testing.assert_array_equal(velocity[2:], alone.ts.observation["proprio/velocity"])
    multi.step()
