"""The ``behavior-priors`` command: errors with suggestions, SIGKILL and resume, eval/video/plot."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from behavior_priors.cli import main
from behavior_priors.training.checkpoint import Checkpointer
from behavior_priors.training.logger import read_metrics

TINY_ARGS = [
    "--preset",
    "gtt1-pointmass-hier",
    "--env-kwargs",
    "episode_seconds=1.0",
    "--num-envs",
    "2",
    "--sequence-length",
    "4",
    "--batch-size",
    "8",
    "--warmup-steps",
    "40",
    "--updates-per-env-step",
    "0.5",
    "--log-every",
    "40",
    "--eval-every",
    "0",
    "--eval-episodes",
    "2",
    "--no-tensorboard",
    "--agent.policy-hidden",
    "16",
    "--agent.prior-hidden",
    "16",
    "--agent.critic-hidden",
    "16",
    "--agent.latent-dim",
    "2",
    "--agent.num-action-samples",
    "2",
]


def test_unknown_preset_suggests_names(capsys):
    assert main(["train", "--preset", "gtt-pointmas-hier"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'gtt-pointmas-hier'" in err and "gtt-pointmass-hier" in err


def test_unknown_override_and_bad_value_suggest_fixes(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--agent.kl-cots", "0.1"])
    assert e.value.code != 0
    assert "--agent.kl-cost" in capsys.readouterr().err
    assert main(["train", "--agent.prior", "hierarchcal"]) == 2
    assert "did you mean 'hierarchical'?" in capsys.readouterr().err
    assert main(["train", "--env-kwargs", "episode_seconds"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_invalid_combination_is_rejected_before_training(capsys):
    assert main(["train", "--agent.policy", "flat"]) == 2  # the demo's prior is hierarchical
    assert "a hierarchical prior needs a hierarchical policy" in capsys.readouterr().err


def test_list_names_presets_envs_bodies_and_tasks(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("gtt-pointmass-hier", "ant-movebox", "quadruped", "move_box_then_go"):
        assert name in out


def _wait_for(predicate, timeout, proc):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"training exited early:\n{proc.stderr.read()}")
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_sigkill_mid_run_loses_only_the_steps_after_the_last_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "behavior_priors.cli", "train", *TINY_ARGS]
    cmd += ["--total-env-steps", "400", "--checkpoint-every", "80", "--run-dir", str(run_dir)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ckpts = Checkpointer(run_dir / "checkpoints")
    try:
        _wait_for(lambda: (ckpts.latest_step() or 0) >= 160, 240, proc)
        os.kill(proc.pid, signal.SIGKILL)  # no handler runs, nothing is flushed
        proc.wait(30)
    finally:
        proc.kill()
    saved = ckpts.latest_step()
    assert 160 <= saved < 400
    before = [ln for ln in read_metrics(run_dir) if ln["env_steps"] <= saved]
    # Resume from the command line; the run completes and keeps what was logged before.
    result = subprocess.run(
        [sys.executable, "-m", "behavior_priors.cli", "train", "--resume", str(run_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr
    after = read_metrics(run_dir)
    steps = [
        ln["env_steps"] for ln in after if "charts/episode_return" in ln or "perf/updates" in ln
    ]
    assert steps == sorted(set(steps)) and steps[-1] == 400  # no duplicate, no gap at the end
    assert after[: len(before)] == before
    assert json.loads((run_dir / "final_eval.json").read_text())["env_steps"] == 400


def test_resume_with_overrides_is_refused(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path), "--seed", "3"]) == 2
    assert "own config" in capsys.readouterr().err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    args = ["train", *TINY_ARGS, "--total-env-steps", "120", "--no-progress"]
    assert main([*args, "--run-dir", str(run_dir)]) == 0
    return run_dir


def test_eval_video_and_plot_of_a_trained_run(trained, capsys):
    run_dir: Path = trained
    assert main(["eval", str(run_dir), "--episodes", "2"]) == 0
    summary = json.loads((run_dir / "eval-policy-120-2ep-seed0.json").read_text())
    assert summary["episodes"] == 2 and 0 <= summary["success_rate"] <= 1
    # Another evaluation of the same checkpoint adds a file; it replaces none.
    assert main(["eval", str(run_dir), "--episodes", "3"]) == 0
    assert json.loads((run_dir / "eval-policy-120-2ep-seed0.json").read_text()) == summary
    assert json.loads((run_dir / "eval-policy-120-3ep-seed0.json").read_text())["episodes"] == 3
    assert (
        main(["eval", str(run_dir), "--episodes", "2", "--out", str(run_dir.parent / "e.json")])
        == 0
    )
    assert json.loads((run_dir.parent / "e.json").read_text()) == summary
    assert main(["eval", str(run_dir), "--episodes", "2", "--prior"]) == 0
    out = run_dir / "v.gif"
    args = ["video", str(run_dir), "--steps", "5", "--renderer", "schematic", "--out", str(out)]
    assert main(args) == 0
    import imageio.v2 as imageio

    frames = imageio.mimread(out)
    assert len(frames) == 6 and frames[0].ndim == 3
    assert main(["video", str(run_dir), "--prior", "--steps", "3", "--renderer", "schematic"]) == 0
    assert (run_dir / "videos" / "prior-120.gif").exists()
    assert main(["plot", str(run_dir), "--out", str(run_dir / "c.png")]) == 0
    assert (run_dir / "c.png").stat().st_size > 1000
    assert main(["plot", str(run_dir / "missing")]) == 2
    assert main(["eval", str(run_dir / "missing")]) == 2


def test_video_camera_errors_are_one_line(trained, tmp_path, monkeypatch, capsys):
    """`--camera` (new): an unknown camera and a camera with the schematic are refused before
    anything renders; a Gymnasium run without pygame names the extra that installs it."""
    run_dir: Path = trained
    out = tmp_path / "v.gif"
    cases = [
        (["--camera", "nosuch"], "unknown camera 'nosuch'; cameras: 'top', 'track'"),
        (["--camera", "9"], "unknown camera 9"),
        (["--renderer", "schematic", "--camera", "track"], "always drawn from above"),
    ]
    for extra, message in cases:
        assert main(["video", str(run_dir), "--steps", "2", "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not out.exists()
    # The run's environment swapped for CartPole with pygame missing: the frames fail first.
    import behavior_priors.cli as cli
    from behavior_priors.envs.registry import make

    monkeypatch.setitem(sys.modules, "pygame", None)
    monkeypatch.setattr(
        cli, "_load_env", lambda run, n, seed, trust: make("gymnasium:CartPole-v1", n, seed=seed)
    )
    assert main(["video", str(run_dir), "--steps", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'behavior-priors[classic-control]'" in err and err.count("\n") == 1, err


def test_demo_writes_its_results_with_a_final_evaluation_and_its_interval(tmp_path, capsys):
    """`make demo` runs this command; here with a short run. The final verdict comes from its own
    deterministic evaluation (not the last 16-episode periodic one), with a Wilson interval."""
    run_dir = tmp_path / "demo"
    assert (
        main(["demo", "--steps", "1600", "--final-episodes", "24", "--run-dir", str(run_dir)]) == 0
    )
    out = capsys.readouterr().out
    summary = json.loads((run_dir / "demo.json").read_text())
    assert summary["final_episodes"] == 24
    low, high = summary["final_success_rate_95ci"]
    assert 0.0 <= low <= summary["final_success_rate"] <= high <= 1.0
    assert high - low > 0.05  # 24 episodes cannot pin a rate down
    assert "eval/success_rate" in summary["last_periodic_eval"]
    for name in ("curves.png", "policy.gif", "prior.gif", "metrics.jsonl"):
        assert (run_dir / name).stat().st_size > 0, name
    assert "95% interval" in out and str(run_dir / "curves.png") in out
    assert main(["demo", "--final-episodes", "0", "--run-dir", str(tmp_path / "no")]) == 2
    assert "--final-episodes must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_bad_input_is_one_line_and_changes_nothing(trained, tmp_path, capsys):
    """Each case printed a traceback, `error: 17`, or silently did the wrong thing before."""
    run_dir: Path = trained
    video = run_dir / "videos" / "kept.gif"
    video.parent.mkdir(exist_ok=True)
    video.write_bytes(b"a video the user keeps")
    capsys.readouterr()
    cases = [
        (["video", str(run_dir), "--steps", "-5", "--out", str(video)], "integer >= 1"),
        (["eval", str(run_dir), "--episodes", "0"], "integer >= 1"),
        (["plot", str(run_dir), "--metric", "nosuch", "--out", str(tmp_path / "p.png")], "nosuch"),
        (["plot", str(run_dir), "--metric", "charts/episode_retrun"], "charts/episode_return"),
    ]
    for argv, message in cases:
        try:
            code = main(argv)
        except SystemExit as e:  # argparse rejects the value
            code = e.code
        assert code == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
    assert video.read_bytes() == b"a video the user keeps"
    assert not (tmp_path / "p.png").exists()
    # A run directory that is a file: the OS error's message, not its number.
    blocker = tmp_path / "afile"
    blocker.write_text("mine")
    assert main(["train", *TINY_ARGS, "--total-env-steps", "40", "--run-dir", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "error: 17" not in err
    assert blocker.read_text() == "mine"
    # Environment options are checked before anything is written.
    for kwargs, message in [
        ("shaped=banana", "shaped must be True or False"),
        ("episode_seconds=-1", "episode_seconds must be a finite number > 0"),
        ("shaping_weight=nan", "shaping_weight must be a"),
    ]:
        target = tmp_path / kwargs.split("=")[0]
        argv = ["train", *TINY_ARGS, "--env-kwargs", kwargs, "--run-dir", str(target)]
        assert main(argv) == 2, kwargs
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
        assert not target.exists()


# -- environments a researcher brings (issue 19) ---------------------------------------------------

# TINY_ARGS without the point mass's own options.
SMALL_ARGS = [a for a in TINY_ARGS if a not in ("--env-kwargs", "episode_seconds=1.0")]


def test_env_is_an_option_of_its_own_not_an_abbreviation(capsys):
    """Before: `--env X` was 'ambiguous option: --env could match --env-kwargs,
    --envs-per-actor' (argparse abbreviations), and `transfer --env X` became --env-kwargs."""
    from behavior_priors.cli import _transfer_parser, build_train_config

    config, _ = build_train_config(["--preset", "demo", "--env", "gymnasium:Pendulum-v1"])
    assert config.env == "gymnasium:Pendulum-v1"
    assert config.env_kwargs == {}  # the point mass's options are not given to Pendulum
    assert "not passing the preset's environment options" in capsys.readouterr().err
    config, _ = build_train_config(
        ["--env=dm_control:cartpole-swingup", "--env-kwargs", "time_limit=2.0"]
    )
    assert config.env == "dm_control:cartpole-swingup"
    assert config.env_kwargs == {"time_limit": 2.0}
    # Adapter options as Python literals, as docs/envs.md shows them.
    kwargs = ['key_map={"goal": "task/goal"}', "task_id=info:goal_index", "success=info:is_success"]
    config, _ = build_train_config(
        ["--env", "my_envs:reach", "--env-kwargs", *kwargs, "horizon=60"]
    )
    assert config.env_kwargs == {
        "key_map": {"goal": "task/goal"},
        "task_id": "info:goal_index",
        "success": "info:is_success",
        "horizon": 60,
    }
    opts, rest = _transfer_parser().parse_known_args(["--from", "r", "--env", "gymnasium:X-v0"])
    assert rest == ["--env", "gymnasium:X-v0"] and opts.env_kwargs == []
    with pytest.raises(SystemExit):  # an abbreviation is an unknown option, not a guess
        build_train_config(["--env-kw", "a=1", "--distrib"])


def test_an_outside_env_without_a_preset_gets_the_outside_preset(tmp_path, monkeypatch, capsys):
    """Before: `train --env gymnasium:Pendulum-v1` took the demo preset (16 copies, one update
    per 16 env steps, a hierarchical prior), which ended 20k steps at -1240, no better than
    random; and every outside run went to runs/demo-seed0."""
    from behavior_priors.cli import build_train_config, main
    from behavior_priors.training.presets import get_preset

    outside = get_preset("outside")
    for env in ("gymnasium:Pendulum-v1", "dm_control:cartpole-swingup", "my_envs:reach"):
        config, opts = build_train_config(["--env", env, "--seed", "2"])
        assert opts.preset == "outside"
        assert config == outside.replace(env=env, seed=2)
    assert capsys.readouterr().err == ""  # the outside preset has no options of its own to drop
    config, opts = build_train_config(["--env", "ball-gtt3"])  # native: the demo, as before
    assert opts.preset == "demo" and config.agent == get_preset("demo").agent
    config, opts = build_train_config(["--preset", "demo", "--env", "gymnasium:Pendulum-v1"])
    assert opts.preset == "demo" and config.num_envs == get_preset("demo").num_envs
    # The default run folder is named after the outside environment, not the preset.
    monkeypatch.chdir(tmp_path)
    tiny = [
        "--total-env-steps",
        "16",
        "--warmup-steps",
        "8",
        "--batch-size",
        "2",
        "--num-envs",
        "2",
        "--eval-episodes",
        "1",
        "--no-progress",
    ]
    assert main(["train", "--env", "gymnasium:Pendulum-v1", *tiny]) == 0
    assert main(["train", "--env", "dm_control:cartpole-swingup", *tiny]) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "Pendulum-v1-seed0",
        "cartpole-swingup-seed0",
    ]


USER_ENVS = '''
"""A researcher's own environment module (a script's environment, importable by name)."""
from dm_control import suite


def cartpole(time_limit=0.2):
    return suite.load("cartpole", "balance", task_kwargs={"time_limit": time_limit})
'''


def _cli(args, env, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "behavior_priors.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def test_a_script_environment_trains_and_every_other_process_makes_it(tmp_path, monkeypatch):
    """Before: an environment registered in a script was unknown to eval, video and resume.
    Named `<module>:<callable>`, run.json alone lets each new process build it, with the
    user's consent to the code the folder names (refused without it)."""
    pytest.importorskip("dm_control")
    (tmp_path / "bp_cli_envs.py").write_text(USER_ENVS)
    monkeypatch.syspath_prepend(str(tmp_path))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    run_dir = tmp_path / "run"
    args = ["train", *SMALL_ARGS, "--env", "bp_cli_envs:cartpole", "--env-kwargs"]
    args += ["time_limit=0.3", "--total-env-steps", "120", "--checkpoint-every", "60"]
    assert main([*args, "--no-progress", "--run-dir", str(run_dir)]) == 0
    run = json.loads((run_dir / "run.json").read_text())
    assert run["config"]["env"] == "bp_cli_envs:cartpole"
    assert run["config"]["env_kwargs"] == {"time_limit": 0.3}

    proc = _cli(["eval", str(run_dir), "--episodes", "2"], env)
    assert proc.returncode == 2 and "--trust-env-code" in proc.stderr, proc.stderr[-2000:]
    proc = _cli(["eval", str(run_dir), "--episodes", "2", "--trust-env-code"], env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((run_dir / "eval-policy-120-2ep-seed0.json").read_text())
    assert summary["episodes"] == 2 and summary["episode_length"] == 30

    ckpts = run_dir / "checkpoints"
    earliest = min(int(p.name) for p in ckpts.iterdir() if p.name.isdigit())
    assert earliest < 120
    proc = _cli(
        ["train", "--resume", str(run_dir), "--checkpoint-step", str(earliest), "--trust-env-code"],
        env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((run_dir / "final_eval.json").read_text())["env_steps"] == 120

    assert main(["plot", str(run_dir), "--out", str(tmp_path / "c.png")]) == 0

    out = tmp_path / "v.gif"
    video = ["video", str(run_dir), "--steps", "3", "--renderer", "mujoco", "--out", str(out)]
    proc = _cli([*video, "--trust-env-code"], env)
    if proc.returncode != 0 and "GL" in proc.stderr:
        pytest.skip(f"no headless GL here for the dm_control video: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.stat().st_size > 0


def test_a_gymnasium_task_trains_with_the_default_agent_and_evaluates_elsewhere(tmp_path):
    """`--env gymnasium:<id>` with the demo's hierarchical agent: Pendulum has no task/ input,
    so the policy reads proprio/ only (before: "observation key 'task/' matches nothing")."""
    run_dir = tmp_path / "pendulum"
    args = ["train", *SMALL_ARGS, "--env", "gymnasium:Pendulum-v1", "--env-kwargs"]
    args += ["max_episode_steps=20", "--total-env-steps", "80", "--no-progress"]
    with pytest.warns(UserWarning, match="prior sees everything the policy sees"):
        assert main([*args, "--run-dir", str(run_dir)]) == 0
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = _cli(["eval", str(run_dir), "--episodes", "2"], env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((run_dir / "eval-policy-80-2ep-seed0.json").read_text())
    assert summary["episode_length"] == 20


# -- messages that say what to do (issue 37, D9) ---------------------------------------------------


def _one_error_line(capsys) -> str:
    """The only `error:` line on stderr, with no tyro box around it."""
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(errors) == 1 and not any(c in err for c in "│╭╰"), err
    assert "Traceback" not in err, err
    return errors[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agent.discount", "2"], "discount must be in (0, 1], got 2.0"),
        (
            ["--agent.policy-learning-rate", "-1e-3"],
            "policy_learning_rate must be >= 0, got -0.001",
        ),
        (["--agent.kl-cost", "nan"], "kl_cost must be a finite number >= 0, got nan"),
        (["--updates-per-env-step", "inf"], "updates_per_env_step must be a finite number"),
        (["--num-envs", "0"], "num_envs must be >= 1, got 0"),
        (["--num-envs", "eight"], "--num-envs expects INT, got 'eight'"),
        (["--agent.policy-hidden", "64", "a"], "--agent.policy-hidden expects"),
        (["--agent.target-entropy=abc"], "--agent.target-entropy expects"),
        (
            ["--agent.prior", "hierarchcal"],
            "--agent.prior must be one of 'none', 'flat', 'hierarchical', 'distilled', got "
            "'hierarchcal'; did you mean 'hierarchical'?",
        ),
    ],
)
def test_a_bad_config_value_is_one_line_with_the_field_and_its_range(
    args, message, tmp_path, capsys
):
    """Before: a 5-12 line box drawn by tyro (or, for a negative learning rate, a run that
    trained to the end)."""
    run_dir = tmp_path / "run"
    # A small run: without the checks, a negative learning rate trains it to the end.
    tiny = [*TINY_ARGS, "--total-env-steps", "40", "--no-progress"]
    assert main(["train", *tiny, *args, "--run-dir", str(run_dir)]) == 2
    assert message in _one_error_line(capsys)
    assert not run_dir.exists()


def test_native_env_tasks_must_be_a_list_of_task_names(tmp_path, capsys):
    """Before: "'int' object is not iterable"."""
    run_dir = tmp_path / "run"
    assert main(["train", "--env-kwargs", "tasks=42", "--run-dir", str(run_dir)]) == 2
    line = _one_error_line(capsys)
    assert "tasks must be a list of task names" in line and "42" in line
    assert "go_to_target:0" in line  # an example of the form
    assert not run_dir.exists()


def _fake_run(path: Path, **changes) -> Path:
    """A run folder holding only a run.json (enough for the errors before any checkpoint)."""
    from behavior_priors.training.presets import get_preset

    info = {"config": get_preset("gtt1-pointmass-hier").to_dict(), "version": "0"}
    info["env_specs"] = {"observation_shapes": {"proprio/x": [2]}, "action_size": 2}
    for key, value in changes.items():
        if value is None:
            info.pop(key)
        else:
            info[key] = value
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps(info))
    return path


def test_a_run_json_without_env_specs_says_the_run_is_damaged(tmp_path, capsys):
    """Before: `error: env_specs` (a KeyError's key)."""
    run_dir = _fake_run(tmp_path / "run", env_specs=None)
    assert main(["eval", str(run_dir)]) == 2
    line = _one_error_line(capsys)
    assert str(run_dir / "run.json") in line and "env_specs" in line and "damaged" in line


def test_a_string_for_a_number_in_run_json_names_the_field(tmp_path, capsys):
    """Before: "'<' not supported between instances of 'str' and 'int'"."""
    from behavior_priors.training.presets import get_preset

    config = get_preset("gtt1-pointmass-hier").to_dict()
    run_dir = _fake_run(tmp_path / "run", config={**config, "num_envs": "eight"})
    for argv in (["eval", str(run_dir)], ["train", "--resume", str(run_dir)]):
        assert main(argv) == 2, argv
        assert "num_envs must be an integer >= 1, got 'eight'" in _one_error_line(capsys)


def test_plot_of_a_damaged_metric_log_names_the_file_and_the_line(tmp_path, capsys):
    """Before: "Expecting ',' delimiter: line 1 column 40 (char 39)", without the file."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    log = run_dir / "metrics.jsonl"
    good = [
        json.dumps({"env_steps": s, "charts/episode_return": 1.0, "eval/success_rate": 0.5})
        for s in (10, 20, 30)
    ]
    # A line cut short by a process killed while writing it: the last one, without its newline.
    log.write_text("\n".join(good) + '\n{"env_steps": 40, "charts/ep')
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "ok.png")]) == 0
    capsys.readouterr()
    log.write_text(f'{good[0]}\n{{"env_steps": 15 "charts/episode_return": 1}}\n{good[1]}\n')
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "bad.png")]) == 2
    line = _one_error_line(capsys)
    assert f"{log}, line 2" in line and "Expecting ',' delimiter" in line
    assert not (tmp_path / "bad.png").exists()


def test_a_run_dir_that_is_a_file_is_refused_as_such(tmp_path, capsys):
    """Before: "[Errno 17] File exists: ..." (after building the environment), and for a folder
    inside a file "[Errno 20] Not a directory: ..."."""
    blocker = tmp_path / "afile"
    blocker.write_text("mine")
    for run_dir in (blocker, blocker / "run"):
        argv = ["train", *TINY_ARGS, "--total-env-steps", "40", "--run-dir", str(run_dir)]
        assert main(argv) == 2
        line = _one_error_line(capsys)
        assert f"{blocker} is a file" in line and "Errno" not in line, line
        assert blocker.read_text() == "mine"


def test_help_screens_show_the_common_options_with_their_defaults(capsys):
    """Before: `train --help` showed neither --env, --seed nor --total-env-steps, and `eval
    --help` had options without a word or a default. Every option named there must parse."""
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for option in ("--env NAME", "--seed INT", "--total-env-steps N", "--agent.kl-cost"):
        assert option in text
    from behavior_priors.cli import build_train_config

    args = "--env pointmass-gtt1 --seed 3 --total-env-steps 500 --num-envs 2 --eval-every 0"
    args += " --agent.policy flat --agent.prior none --agent.kl-cost 0.1"
    config, _ = build_train_config(args.split())
    assert (config.env, config.seed, config.total_env_steps, config.num_envs) == (
        "pointmass-gtt1",
        3,
        500,
        2,
    )
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = capsys.readouterr().out
    assert "(default 20)" in text and "(default 0)" in text and "a run directory" in text
