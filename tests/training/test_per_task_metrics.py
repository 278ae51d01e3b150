"""Per-task metrics: each task's mean return (and success, where the environment has it) over
the episodes of a log line, in both training loops and in evaluation, and their plot."""

import json

import numpy as np
import pytest

from behavior_priors.training.episodes import (
    EpisodeStats,
    per_task_means,
    recent_from_state,
    recent_metrics,
    recent_state,
)
from behavior_priors.training.logger import read_metrics
from behavior_priors.training.multiseed import train_seeds
from behavior_priors.training.plotting import learning_curves, per_task_metrics
from behavior_priors.training.run import train

from .test_run import TINY

# The point mass's three go-to-target tasks, with the shaping term so returns are not all 0.
CONFIG = TINY.replace(
    env_kwargs={"episode_seconds": 1.0, "shaped": True},
    total_env_steps=160,
    eval_every=80,
    eval_episodes=4,
    checkpoint_every=0,
)
NAMES = ["go_to_target_0", "go_to_target_1", "go_to_target_2"]  # "go_to_target:0" in the env


def _stats(reports_success=True):
    # Task 0: returns 1, 2, 6 (one success); task 1: 4 (success); task 2: 10, 20 (none).
    return EpisodeStats(
        returns=[1.0, 4.0, 2.0, 10.0, 6.0, 20.0],
        lengths=[5, 5, 5, 5, 5, 5],
        successes=[False, True, True, False, False, False],
        task_ids=[0, 1, 0, 2, 0, 2],
        copies=[0, 1, 0, 1, 0, 1],
        reports_success=reports_success,
    )


def test_per_task_means_by_hand():
    stats = _stats()
    out = stats.metrics("eval", ["go_to_target:0", "go_to_target:1", "go_to_target:2"])
    expected = {
        "eval/episode_return/task_go_to_target_0": 3.0,
        "eval/episode_return/task_go_to_target_1": 4.0,
        "eval/episode_return/task_go_to_target_2": 15.0,
        "eval/success_rate/task_go_to_target_0": 1 / 3,
        "eval/success_rate/task_go_to_target_1": 1.0,
        "eval/success_rate/task_go_to_target_2": 0.0,
    }
    assert {k: v for k, v in out.items() if "/task_" in k} == pytest.approx(expected)
    assert out["eval/episode_return"] == pytest.approx(43 / 6)
    assert out["eval/success_rate"] == pytest.approx(2 / 6)
    # The episode-weighted mean of the per-task means is the overall mean.
    counts = {t: stats.task_ids.count(t) for t in (0, 1, 2)}
    for figure in ("episode_return", "success_rate"):
        weighted = sum(counts[t] * out[f"eval/{figure}/task_{NAMES[t]}"] for t in counts)
        assert weighted / len(stats) == pytest.approx(out[f"eval/{figure}"])
    # The training window gives the same figures under charts/.
    charts = recent_metrics(stats.outcomes(), ["go_to_target:0", "go_to_target:1", "x:2"])
    assert charts["charts/episode_return/task_x_2"] == 15.0
    assert charts["charts/success_rate/task_go_to_target_0"] == pytest.approx(1 / 3)
    assert charts["charts/episode_return"] == pytest.approx(43 / 6)


def test_which_tasks_and_figures_get_an_entry():
    # Without task names: the integer ids; only tasks with an episode here.
    out = _stats().metrics("eval")
    assert sorted(k for k in out if "/task_" in k) == [
        f"eval/{f}/task_{t}" for f in ("episode_return", "success_rate") for t in (0, 1, 2)
    ]
    part = _stats().select([0, 1])  # tasks 0 and 1 only
    assert not any("task_2" in k for k in part.metrics("eval", NAMES))
    # An environment without a notion of success: no per-task success (the overall success
    # rate is logged as before).
    quiet = _stats(reports_success=False).metrics("eval")
    assert "eval/success_rate" in quiet and not any("success_rate/task" in k for k in quiet)
    # A single-task environment writes nothing extra; a multi-task one whose episodes here
    # all ran one task still names that task.
    single = EpisodeStats([1.0, 2.0], [3, 3], [True, False], [0, 0], [0, 1])
    assert single.metrics("eval") == {f"eval/{k}": v for k, v in single.summary().items()}
    assert single.metrics("eval", ["only"]) == single.metrics("eval")
    assert single.metrics("eval", NAMES)["eval/episode_return/task_go_to_target_0"] == 1.5
    # Unknown task ids (a window restored from an older checkpoint) are left out; names that
    # would share a label fall back to the ids.
    assert per_task_means("charts", [-1, 0, 1], {"r": [9.0, 1.0, 2.0]}) == {
        "charts/r/task_0": 1.0,
        "charts/r/task_1": 2.0,
    }
    assert "charts/r/task_1" in per_task_means("charts", [0, 1], {"r": [1, 2]}, ["a:b", "a_b"])


def test_the_recent_window_checkpoints_its_task_ids():
    window = _stats().outcomes()
    state = recent_state(window)
    assert state["recent"].shape == (6, 2) and state["recent_task_ids"].dtype == np.int64
    assert recent_from_state(state) == window
    # A checkpoint written before task ids were kept: the episodes' tasks are unknown.
    old = recent_from_state({"recent": state["recent"]})
    assert [t for *_, t in old] == [-1] * 6
    assert recent_metrics(old) == {
        k: v for k, v in recent_metrics(window).items() if "/task_" not in k
    }


def _per_task(line, group):
    return {k.rsplit("task_", 1)[1]: v for k, v in line.items() if k.startswith(group + "/task_")}


def _check_log(lines):
    """Every training line and every evaluation carries per-task figures named by the tasks'
    names, each task's mean lying between the others'."""
    charts = [ln for ln in lines if "charts/episode_return" in ln]
    evals = [ln for ln in lines if "eval/episode_return" in ln]
    assert charts and evals
    for ln in charts:
        for group in ("charts/episode_return", "charts/success_rate"):
            tasks = _per_task(ln, group)
            assert tasks and set(tasks) <= set(NAMES), ln
            # The overall mean is an episode-weighted mean of the per-task ones.
            assert min(tasks.values()) - 1e-9 <= ln[group] <= max(tasks.values()) + 1e-9
    for ln in evals:
        assert _per_task(ln, "eval/episode_return") and _per_task(ln, "eval/success_rate")
    assert len(set().union(*(_per_task(ln, "charts/episode_return") for ln in charts))) >= 2
    assert any(v != 0 for ln in charts for v in _per_task(ln, "charts/episode_return").values())


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "gtt3-seed3"
    result = train(CONFIG, run_dir)
    return run_dir, result


def test_a_multi_task_run_logs_per_task_figures(single_run):
    run_dir, result = single_run
    lines = read_metrics(run_dir)
    _check_log(lines)
    # The final evaluation (final_eval.json) has them too.
    final = json.loads((run_dir / "final_eval.json").read_text())
    assert lines[-1]["env_steps"] == result.env_steps == final["env_steps"] == 160
    assert _per_task(final, "eval/episode_return") == _per_task(lines[-1], "eval/episode_return")


def test_the_trainer_computes_each_line_from_its_window():
    from behavior_priors.training.loop import Trainer

    trainer = Trainer(CONFIG.replace(eval_every=0, total_env_steps=80))
    checked = []

    def check(t):
        line = t.history[-1]
        window = list(t.recent_window)
        for i, name in enumerate(NAMES):
            mine = [r for r, _, task in window if task == i]
            key = f"charts/episode_return/task_{name}"
            assert (key in line) == bool(mine)
            if mine:
                assert line[key] == pytest.approx(np.mean(mine))
        checked.append(line["env_steps"])

    trainer.run(after_log=check)
    assert checked == [40, 80]


def test_seed_batched_runs_log_the_same_per_task_figures(single_run, tmp_path):
    run_dir, _ = single_run
    dirs = [tmp_path / "s3", tmp_path / "s5"]
    train_seeds(CONFIG, [3, 5], dirs)
    for d in dirs:
        _check_log(read_metrics(d))
    # Seed 3 batched logs what it logs alone, per-task figures included.
    alone, batched = read_metrics(run_dir), read_metrics(dirs[0])
    assert len(alone) == len(batched)
    for a, b in zip(alone, batched, strict=True):
        a = {k: v for k, v in a.items() if "/task_" in k}
        b = {k: v for k, v in b.items() if "/task_" in k}
        assert a.keys() == b.keys()
        assert b == pytest.approx(a, rel=1e-4, abs=1e-6)


def _write(path, lines):
    path.mkdir(parents=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(ln) + "\n" for ln in lines))


def test_plot_per_task_draws_one_curve_per_task(tmp_path):
    for seed, shift in ((0, 0.0), (1, 2.0)):
        lines = [
            {
                "env_steps": s,
                "charts/episode_return": 1.0 + shift,
                "charts/episode_return/task_2": 0.5 + shift,
                "charts/episode_return/task_10": 1.5 + shift,
            }
            for s in (10, 20, 30)
        ]
        _write(tmp_path / f"hier-seed{seed}", lines)
    dirs = sorted(tmp_path.iterdir())
    assert per_task_metrics(read_metrics(dirs[0]), "charts/episode_return") == [
        "charts/episode_return/task_2",
        "charts/episode_return/task_10",
    ]
    fig = learning_curves(dirs, ["charts/episode_return"], per_task=True)
    (ax,) = fig.axes
    curves = {ln.get_label(): ln for ln in ax.get_lines()}
    assert list(curves) == ["hier: 2 (n=2)", "hier: 10 (n=2)"]
    np.testing.assert_allclose(curves["hier: 10 (n=2)"].get_ydata(), [2.5, 2.5, 2.5])
    assert all(ln.get_marker() not in (None, "None", "") for ln in curves.values())
    assert len({ln.get_marker() for ln in curves.values()}) == 2
    # The default plot is unchanged: one curve per group.
    fig = learning_curves(dirs, ["charts/episode_return"])
    assert [ln.get_label() for ln in fig.axes[0].get_lines()] == ["hier (n=2)"]


def test_cli_plot_per_task(single_run, tmp_path, monkeypatch, capsys):
    from behavior_priors import cli
    from behavior_priors.training import plotting

    run_dir, _ = single_run
    figures, original = [], plotting.learning_curves

    def keep(*args, **kwargs):  # the figure the command saves, to read its curves
        figures.append(original(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(plotting, "learning_curves", keep)
    out = tmp_path / "tasks.png"
    assert cli.main(["plot", str(run_dir), "--per-task", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    (fig,) = figures
    panels = {ax.get_ylabel(): [ln.get_label() for ln in ax.get_lines()] for ax in fig.axes}
    # The default panels per task: training return, and evaluation success where there was
    # some, else evaluation return.
    shown = plotting.default_metrics(read_metrics(run_dir))
    assert list(panels) == [f"{m} (per task)" for m in shown]
    for labels in panels.values():
        assert labels and all(lb.split(": ")[1].split(" (")[0] in NAMES for lb in labels)
    logged = per_task_metrics(read_metrics(run_dir), "charts/episode_return")
    assert len(panels["charts/episode_return (per task)"]) == len(logged) >= 2
    # Without --per-task: the overall curves, as before.
    assert cli.main(["plot", str(run_dir), "--out", str(tmp_path / "all.png")]) == 0
    assert [ln.get_label() for ln in figures[-1].axes[0].get_lines()] == ["gtt3 (n=1)"]
    # A run without per-task figures (a single-task environment) is told so.
    _write(tmp_path / "single", [{"env_steps": 10, "charts/episode_return": 1.0}])
    capsys.readouterr()
    assert cli.main(["plot", str(tmp_path / "single"), "--per-task"]) == 2
    assert "per task" in capsys.readouterr().err
