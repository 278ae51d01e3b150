"""The experiment runner on the tiny ``smoke`` experiment: skip finished runs, resume interrupted
ones exactly, parallel workers, and a report equal to what the logs say."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from behavior_priors.cli import main
from behavior_priors.experiments import (
    build_report,
    get_experiment,
    reproduce,
    run_experiment,
    run_specs,
    run_status,
)
from behavior_priors.experiments.runner import config_changes

SMOKE = get_experiment("smoke")


def _lines(run_dir):
    return [
        {k: v for k, v in json.loads(ln).items() if not k.startswith("perf/")}
        for ln in (run_dir / "metrics.jsonl").read_text().splitlines()
    ]


def test_resume_skips_finished_and_continues_interrupted(tmp_path):
    out = tmp_path / "smoke"
    first = run_experiment(SMOKE, out, seeds=1, log=lambda _: None)
    assert set(first) == {"gtt1/noprior/seed0", "gtt1/hier/seed0"}
    assert all(o.startswith("finished") for o in first.values())
    hier0 = out / "gtt1" / "hier" / "seed0"
    noprior0 = out / "gtt1" / "noprior" / "seed0"
    reference = _lines(hier0)
    untouched = (noprior0 / "metrics.jsonl").read_text()

    # Interrupt hier/seed0 after its checkpoint at step 320: drop what came later.
    shutil.rmtree(hier0 / "checkpoints" / "480")
    (hier0 / "final_eval.json").unlink()
    assert run_status(run_specs(SMOKE, out, seeds=1)[1]) == "partial"

    second = run_experiment(SMOKE, out, seeds=2, log=lambda _: None)
    assert second["gtt1/noprior/seed0"] == "skipped: finished before"
    assert second["gtt1/hier/seed0"].startswith("resumed and finished")
    assert second["gtt1/noprior/seed1"].startswith("finished")
    assert (noprior0 / "metrics.jsonl").read_text() == untouched
    # Synchronous mode: the resumed run logs exactly what the uninterrupted one did.
    assert _lines(hier0) == reference

    report = build_report(SMOKE, out, seeds=2)
    assert report.missing == []
    summary = json.loads((out / "summary.json").read_text())
    for m in summary["methods"]:
        for i, seed in enumerate(m["seeds"]):
            rows = [
                r
                for r in _lines(out / "gtt1" / m["method"] / f"seed{seed}")
                if "eval/success_rate" in r
            ]
            steps = np.array([r["env_steps"] for r in rows], float)
            values = np.array([r["eval/success_rate"] for r in rows], float)
            assert m["final"]["values"][i] == values[-1]
            auc = sum(
                (values[j] + values[j + 1]) / 2 * (steps[j + 1] - steps[j])
                for j in range(len(steps) - 1)
            ) / (steps[-1] - steps[0])
            assert m["auc"]["values"][i] == pytest.approx(auc)
            hits = [s for s, v in zip(steps, values, strict=True) if v >= SMOKE.threshold]
            assert m["steps_to_threshold"][i] == (hits[0] if hits else None)
        assert m["final"]["mean"] == pytest.approx(np.mean(m["final"]["values"]))

    with pytest.raises(ValueError, match="budget scale"):
        run_experiment(SMOKE, out, seeds=2, budget_scale=0.5, log=lambda _: None)

    # The experiment edited after its runs (a new KL cost): the old runs must not be reported
    # as the new setting's. The runner refuses, names the run and the field, and trains nothing.
    edited = dataclasses.replace(SMOKE, agent_overrides={"kl_cost": 0.5})
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match=r"(?s)other settings.*hier/seed0.*agent\.kl_cost"):
        run_experiment(edited, out, seeds=2, log=lambda _: None)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    spec = run_specs(edited, out, seeds=1)[1]
    assert config_changes(spec) == ["agent.kl_cost: 0.01 (run) != 0.5 (experiment)"]
    assert config_changes(run_specs(SMOKE, out, seeds=1)[1]) == []


def test_parallel_workers_finish_every_run(tmp_path):
    report = reproduce("smoke", tmp_path / "p", seeds=1, workers=2, log=lambda _: None)
    assert report.missing == []
    assert all(o.startswith("finished") for o in report.outcomes.values())
    assert "reproduce smoke --seeds 1" in report.path.read_text()


def _untuned(name):
    return dataclasses.replace(get_experiment(name), tuning=None)


def test_budget_scale_shrinks_runs_and_their_intervals():
    spec = run_specs(_untuned("multitask-prior"), "x", seeds=1, budget_scale=0.01)[0]
    c = spec.config
    assert c.total_env_steps == 2_000
    assert c.eval_every == 200 and c.warmup_steps <= 2_000
    assert c.env_kwargs["shaped"] is False  # the experiment's sparse reward over the preset's
    with pytest.raises(ValueError, match="budget_scale"):
        run_specs(SMOKE, "x", budget_scale=0)


def test_cli_errors_and_listing(capsys):
    assert main(["reproduce", "multitask-prio"]) == 2
    assert "did you mean multitask-prior" in capsys.readouterr().err
    assert main(["reproduce", "smoke", "--seeds", "0"]) == 2
    assert main(["list", "experiments"]) == 0
    listed = capsys.readouterr().out
    assert "multitask-prior" in listed and "hier-vs-flat" in listed


def test_vmapped_seed_groups_share_one_method_and_split_among_workers(tmp_path):
    from behavior_priors.experiments.runner import _group_seeds

    specs = run_specs(_untuned("multitask-prior"), tmp_path, seeds=5)
    units = _group_seeds(specs, 2)
    assert sorted(len(u) for u in units) == [2, 2, 2, 3, 3, 3]
    assert all(len({(s.task, s.method) for s in u}) == 1 for u in units)
    assert sorted(s.name for u in units for s in u) == sorted(s.name for s in specs)
    assert [len(u) for u in _group_seeds(specs, 1)] == [5, 5, 5]


def test_parts_run_after_the_experiment_and_are_linked_from_its_report(tmp_path, monkeypatch):
    from behavior_priors.experiments import registry

    parent = dataclasses.replace(SMOKE, name="smoke-parent", methods=("noprior",), parts=("smoke",))
    monkeypatch.setitem(registry.EXPERIMENTS, "smoke-parent", parent)
    report = reproduce("smoke-parent", tmp_path, seeds=1, workers=1, vmap_seeds=False)
    assert (tmp_path / "smoke" / "report.md").exists()
    assert "[smoke](smoke/report.md)" in report.path.read_text()
    assert "smoke/gtt1/hier/seed0" in report.outcomes and "gtt1/noprior/seed0" in report.outcomes
    assert report.missing == []
    with pytest.raises(ValueError, match="unknown parts"):
        registry.check_parts({"a": dataclasses.replace(SMOKE, name="a", parts=("b",))})
    with pytest.raises(ValueError, match="lists itself"):
        dataclasses.replace(SMOKE, parts=("smoke",))
