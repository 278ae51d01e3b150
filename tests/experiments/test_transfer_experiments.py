"""Transfer experiments in the harness: source runs first, then transferred runs that start from
the source run of their own seed; the report compares the target runs only."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from behavior_priors.experiments import build_report, get_experiment, run_experiment, run_specs
from behavior_priors.experiments.registry import (
    Experiment,
    ExperimentTask,
    SourceStage,
    TransferMethod,
)
from behavior_priors.training.run import load

SMOKE = get_experiment("smoke")
TINY_TRANSFER = dataclasses.replace(
    SMOKE,
    name="smoke-transfer",
    methods=("noprior", "transfer-hier"),
    tasks=(ExperimentTask("gtt1-sparse", "gtt1", "pointmass", {"shaped": False}),),
    source=SourceStage(
        ExperimentTask("gtt1", "gtt1", "pointmass"),
        total_env_steps=320,
        train_overrides=SMOKE.train_overrides,
    ),
    transfers={"transfer-hier": TransferMethod("hier")},
)


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


@pytest.mark.parametrize("vmap_seeds", [False, True])
def test_sources_first_then_transfers_from_the_same_seed(tmp_path, vmap_seeds):
    out = tmp_path / "tt"
    outcomes = run_experiment(
        TINY_TRANSFER, out, seeds=2, log=lambda _: None, vmap_seeds=vmap_seeds
    )
    assert all(o.startswith("finished") for o in outcomes.values()), outcomes
    assert set(outcomes) == {
        f"{task}/{m}/seed{k}"
        for k in (0, 1)
        for task, m in (
            ("source", "hier"),
            ("gtt1-sparse", "noprior"),
            ("gtt1-sparse", "transfer-hier"),
        )
    }
    for seed in (0, 1):
        source_dir = out / "source" / "hier" / f"seed{seed}"
        target_dir = out / "gtt1-sparse" / "transfer-hier" / f"seed{seed}"
        info = json.loads((target_dir / "run.json").read_text())
        assert info["transfer"]["source"] == str(source_dir.resolve())
        assert info["config"]["env_kwargs"]["shaped"] is False
        assert info["config"]["total_env_steps"] == 480
        source, target = load(source_dir), load(target_dir)
        assert source.env_steps == 320 and target.env_steps == 480
        # The frozen prior's high level and the shared low level are the source's, bit for bit.
        for module in ("prior", "policy"):
            for part in ("high", "low") if module == "policy" else ("high",):
                src = getattr(getattr(source.state.networks, module), part)
                tgt = getattr(getattr(target.state.networks, module), part)
                if module == "policy" and part == "high":
                    continue  # the new policy's own part: fresh, then trained
                for a, b in zip(_leaves(src), _leaves(tgt), strict=True):
                    np.testing.assert_array_equal(a, b)

    report = build_report(TINY_TRANSFER, out, seeds=2)
    assert report.missing == []
    assert {(s.task, s.method) for s in report.summaries} == {
        ("gtt1-sparse", "noprior"),
        ("gtt1-sparse", "transfer-hier"),
    }
    text = report.path.read_text()
    assert "source `hier`" in text and "| hier | 2 |" in text

    again = run_experiment(TINY_TRANSFER, out, seeds=2, log=lambda _: None)
    assert set(again.values()) == {"skipped: finished before"}


def test_a_target_whose_source_failed_is_reported_and_not_trained(tmp_path):
    broken = dataclasses.replace(
        TINY_TRANSFER,
        source=dataclasses.replace(
            TINY_TRANSFER.source,
            task=ExperimentTask("gtt1", "gtt1", "pointmass", {"no_such_option": 1}),
        ),
    )
    outcomes = run_experiment(broken, tmp_path / "b", seeds=1, log=lambda _: None)
    assert outcomes["source/hier/seed0"].startswith("error")
    assert "did not finish" in outcomes["gtt1-sparse/transfer-hier/seed0"]
    assert outcomes["gtt1-sparse/noprior/seed0"].startswith("finished")
    assert not (tmp_path / "b" / "gtt1-sparse" / "transfer-hier" / "seed0").exists()


def test_transfer_experiment_definitions():
    with pytest.raises(ValueError, match="source stage"):
        dataclasses.replace(TINY_TRANSFER, source=None)
    with pytest.raises(ValueError, match="unknown methods"):
        dataclasses.replace(TINY_TRANSFER, transfers={"transfer-hier": TransferMethod("hierr")})
    with pytest.raises(ValueError, match="prior"):
        dataclasses.replace(
            TINY_TRANSFER, transfers={"transfer-hier": TransferMethod("hier", prior="thawed")}
        )
    assert isinstance(TINY_TRANSFER, Experiment)
    # The registered experiments: sources on the source task, targets transfer from the same seed.
    for name in ("task-transfer", "body-transfer"):
        e = get_experiment(name)
        specs = run_specs(e, "out", seeds=2)
        sources = {(s.method, s.seed): s.run_dir for s in specs if s.stage == "source"}
        for s in specs:
            if s.transfer is not None:
                recipe = e.transfers[s.method]
                assert s.transfer.source == str(sources[recipe.source_method, s.seed])
                assert s.config.agent.frozen  # the prior (high level) stays frozen
    body = [s for s in run_specs(get_experiment("body-transfer"), "out") if s.transfer]
    assert {s.config.env for s in body} == {"ball-gtt3"}
    assert all("policy.low" not in s.config.agent.frozen for s in body)  # relearned low level
