"""Distributed training: the sharded replay and the workers without Ray (exact checks), then a
local Ray run that loses an actor (killed), an environment (raises) and the learner, and resumes.
"""

import json
import os
import re
import signal

import jax
import numpy as np
import pytest

from behavior_priors.replay import SequenceReplay
from behavior_priors.training.distributed import (
    DistConfig,
    LearnerLost,
    ShardedReplay,
    actors_may_continue,
    utd_target,
)
from behavior_priors.training.distributed.workers import ActorWorker, Learner, policy_arrays
from behavior_priors.training.logger import read_metrics

from .test_run import TINY


def _steps(worker, learner, n):
    stats, steps = worker.collect(policy_arrays(learner.state), learner.updates, n)
    return stats, steps


def test_sharded_replay_holds_each_actors_stream_as_a_plain_replay_would():
    learner = Learner(TINY, num_actors=2, envs_per_actor=2)
    workers = [ActorWorker(TINY, i, 2, seed=10 + i) for i in range(2)]
    plain = [
        SequenceReplay(
            TINY.replay_capacity // 2,
            2,
            TINY.sequence_length,
            {k: jax.ShapeDtypeStruct(v, np.float32) for k, v in learner.obs_shapes.items()},
            tuple(learner.action_spec.shape),
            np.float32,
            TINY.agent.latent_size,
        )
        for _ in range(2)
    ]
    for _ in range(3):
        for i, w in enumerate(workers):
            stats, steps = _steps(w, learner, 7)
            learner.add(i, steps, stats["fresh"])
            for ts, a, ex in steps:
                plain[i].add(ts, a, ex)
    assert learner.env_steps == 3 * 2 * 7 * 2
    for shard, ref in zip(learner.replay.shards, plain, strict=True):
        got, want = shard.state_dict(), ref.state_dict()
        for k in want["fields"]:
            np.testing.assert_array_equal(got["fields"][k], want["fields"][k])
        for k in want["observation"]:
            np.testing.assert_array_equal(got["observation"][k], want["observation"][k])
    # Samples are windows of one shard's stream each, drawn over both shards.
    batch = learner.replay.sample(64)
    assert batch.reward.shape == (64, TINY.sequence_length + 1)
    n, u = learner.update(3)
    assert n == 3 and np.isfinite(u["losses/critic"])
    # What is broadcast to the actors is the updated state's policy, read without rebuilding it.
    for got, want in zip(learner.policy_params(), policy_arrays(learner.state), strict=True):
        np.testing.assert_array_equal(got, want)


def test_sampling_is_uniform_over_all_windows():
    spec = {"proprio/x": jax.ShapeDtypeStruct((1,), np.float32)}
    replay = ShardedReplay(400, 2, 1, 1, spec, (1,), seed=0)

    class TS:  # a minimal timestep: shard i's observation is i
        def __init__(self, i):
            self.observation = {"proprio/x": np.full((1, 1), i, np.float32)}
            self.step_type, self.reward = np.array([1], np.int8), np.zeros(1, np.float32)
            self.discount, self.task_id = np.ones(1, np.float32), np.zeros(1, np.int32)

    class Ex:
        behaviour_log_prob = latent_sampled = np.zeros(1)
        latent = prev_latent = np.zeros((1, 0))

    # Shard 0 holds 31 windows, shard 1 holds 91: 25% / 75% of the samples.
    replay.add_chunk(0, [(TS(0), np.zeros((1, 1)), Ex)] * 32, cut=True)
    replay.add_chunk(1, [(TS(1), np.zeros((1, 1)), Ex)] * 92, cut=True)
    x = replay.sample(20_000).observation["proprio/x"][:, 0, 0]
    assert abs(x.mean() - 91 / 122) < 0.01
    state = replay.state_dict()
    other = ShardedReplay(400, 2, 1, 1, spec, (1,), seed=5)
    other.load_state_dict(state)
    np.testing.assert_array_equal(
        other.sample(50).observation["proprio/x"], replay.sample(50).observation["proprio/x"]
    )
    with pytest.raises(ValueError, match="same number of actors"):
        ShardedReplay(400, 3, 1, 1, spec, (1,)).load_state_dict(state)


def test_cut_episodes_leaves_no_window_across_a_restart():
    learner = Learner(TINY, num_actors=1, envs_per_actor=2)
    stats, steps = _steps(ActorWorker(TINY, 0, 2, seed=1), learner, 5)  # mid-episode at the end
    learner.add(0, steps, stats["fresh"])
    restarted = ActorWorker(TINY, 0, 2, seed=1, restarts=1)
    stats, steps = _steps(restarted, learner, 5)
    assert stats["fresh"]
    learner.add(0, steps, stats["fresh"])
    f = learner.replay.shards[0].state_dict()["fields"]
    # Row 4 (the last of the first life) is a LAST row with no transition out of it.
    assert list(f["step_type"][4]) == [2, 2] and list(f["step_type"][5]) == [0, 0]
    assert np.all(f["discount"][4] == 0) and np.all(f["reward"][4] == 0)
    # Without the cut, that row would continue into the next FIRST with discount 1.
    plain = ActorWorker(TINY, 0, 2, seed=1)
    plain.fresh = False
    learner2 = Learner(TINY, num_actors=1, envs_per_actor=2)
    for worker in (ActorWorker(TINY, 0, 2, seed=1), plain):
        _, st = _steps(worker, learner2, 5)
        learner2.add(0, st, cut=False)
    assert np.all(learner2.replay.shards[0].state_dict()["fields"]["discount"][4] == 1)


def test_backpressure_rule():
    config = TINY.replace(updates_per_env_step=0.5, warmup_steps=100)
    dist = DistConfig(num_actors=2, chunk_steps=4, utd_tolerance=0.1)
    assert utd_target(50, config) == 0 and utd_target(1100, config) == 500
    # Slack at 1100 steps: 0.1 * 500 + 0.5 * 2 actors * 4 steps * 2 copies = 58 updates.
    assert actors_may_continue(1100, 442, config, dist, envs_per_actor=2)
    assert not actors_may_continue(1100, 441, config, dist, envs_per_actor=2)
    with pytest.raises(ValueError, match="num_actors"):
        DistConfig(num_actors=0)
    with pytest.raises(ValueError, match="utd_tolerance"):
        DistConfig(utd_tolerance=0)


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray", reason="Ray is not installed (the dist extra)")
    try:
        ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"Ray cannot start on this machine: {e}")
    yield ray
    ray.shutdown()


def test_faults_actor_killed_env_raises_learner_lost_then_resume(ray_instance, tmp_path):
    from behavior_priors.training.distributed import train_distributed

    ray = ray_instance
    # Faults one after another, each once the previous one has healed: kill actor 0; when it is
    # back, make actor 1's environment raise; when that one is back, kill the learner. While an
    # actor is down the other one is held to a crawl (HOLD seconds per step), so that the run
    # cannot reach its end before the fresh process (a JAX import and compile, slow on a loaded
    # machine) is back: at 0.1 s per step the rest of the run would take minutes, a restart
    # takes seconds. The faults wait for each other rather than race the run.
    config = TINY.replace(total_env_steps=4_000, log_every=80, eval_every=800, checkpoint_every=400)
    dist = DistConfig(num_actors=2, chunk_steps=4, broadcast_every=4, max_actor_restarts=5)
    run_dir = tmp_path / "run"
    handles, done = {}, set()
    hold = 0.1

    def rejoined(actor):
        path = run_dir / "events.jsonl"
        events = path.read_text().splitlines() if path.exists() else []
        return any(
            json.loads(e) == {**json.loads(e), "event": "actor_rejoined", "actor": actor}
            for e in events
        )

    def faults(line):
        steps, actors = line["env_steps"], handles["actors"]
        if steps >= 240 and "kill" not in done:
            done.add("kill")
            ray.get(actors[1].set_step_delay.remote(hold))
            os.kill(ray.get(actors[0].pid.remote()), signal.SIGKILL)
        elif "kill" in done and "raise" not in done and rejoined(0):
            done.add("raise")
            ray.get(actors[0].set_step_delay.remote(hold))
            ray.get(actors[1].set_step_delay.remote(0.0))
            ray.get(actors[1].set_fail_after.remote(2))
        elif "raise" in done and "learner" not in done and rejoined(1) and steps > 400:
            done.add("learner")
            os.kill(ray.get(handles["learner"].pid.remote()), signal.SIGKILL)

    with pytest.raises(LearnerLost, match="--resume"):
        train_distributed(config, run_dir, dist, on_log=faults, on_start=handles.update)
    events = [json.loads(ln) for ln in (run_dir / "events.jsonl").read_text().splitlines()]
    kinds = [(e["event"], e["actor"]) for e in events]
    # Both actors failed once and came back, and the run went on after each.
    assert ("actor_restarted", 0) in kinds and ("actor_restarted", 1) in kinds
    assert ("actor_rejoined", 0) in kinds and ("actor_rejoined", 1) in kinds
    assert any("test hook" in e.get("reason", "") for e in events)
    lines = [ln for ln in read_metrics(run_dir) if "dist/utd_ratio" in ln]
    steps = [ln["env_steps"] for ln in lines]
    assert steps == sorted(steps)
    assert np.all(np.diff(steps) <= 2 * config.log_every)  # logged throughout, no gap
    assert lines[-1]["dist/actor_restarts"] >= 2
    # Backpressure held the update-to-data ratio throughout: never more updates than owed, and
    # never fewer than the tolerance allows, plus one chunk of every actor arriving after the
    # check and one update call in flight (8 + 8 + 4 updates here).
    for ln in lines:
        target = utd_target(int(ln["env_steps"]), config)
        assert ln["perf/updates"] <= target + 1e-9
        assert ln["perf/updates"] >= (1 - dist.utd_tolerance) * target - 20, ln
    assert any("losses/critic" in ln for ln in lines)

    # The learner is gone; the run continues from its latest checkpoint. SIGTERM to the driver
    # stops it again with a checkpoint at that step; a second resume finishes the run.
    from behavior_priors.training.run import Interrupted

    sent = []

    def terminate(line):
        if not sent and "dist/utd_ratio" in line:
            sent.append(line["env_steps"])
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Interrupted) as stopped:
        train_distributed(None, run_dir, resume=True, on_log=terminate)
    assert stopped.value.env_steps >= sent[0]
    assert (run_dir / "checkpoints" / str(stopped.value.env_steps)).exists()
    # Ray's core worker also saw the SIGTERM and refuses further calls in this process (a real
    # driver exits here); a fresh Ray connection stands for the new process.
    ray.shutdown()
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    result = train_distributed(None, run_dir, resume=True)
    assert result.env_steps >= config.total_env_steps
    final = json.loads((run_dir / "final_eval.json").read_text())
    assert final["env_steps"] == result.env_steps
    after = read_metrics(run_dir)
    assert [ln["env_steps"] for ln in after] == sorted(ln["env_steps"] for ln in after)
    # The update-to-data ratio was held: all owed updates done at the end.
    learned = result.env_steps - config.warmup_steps
    assert result.updates == int(config.updates_per_env_step * learned)
    with pytest.raises(ValueError, match="single-process"):
        from behavior_priors.training.run import train

        single = tmp_path / "single"
        train(TINY.replace(total_env_steps=80, eval_every=0), single)
        train_distributed(None, single, resume=True)


def test_a_killed_actor_is_recorded_when_it_dies_not_when_it_is_back(
    ray_instance, tmp_path, capsys
):
    """Issue 37 (D4): a SIGKILLed actor was counted only once its new process sent a chunk, so
    a run that ended first recorded nothing. While the actor is down the other one is held to
    a crawl, so that a log line can show the restart before the new process is back (a JAX
    import and compile, seconds); then it runs to the end at full speed."""
    from behavior_priors.training.distributed import train_distributed

    ray = ray_instance
    config = TINY.replace(log_every=16, eval_every=0, checkpoint_every=0)
    dist = DistConfig(num_actors=2, chunk_steps=4, broadcast_every=4, max_actor_restarts=3)
    run_dir = tmp_path / "run"
    events_path = run_dir / "events.jsonl"
    handles, state = {}, {}

    def events():
        text = events_path.read_text() if events_path.exists() else ""
        return [json.loads(ln) for ln in text.splitlines()]

    def on_log(line):
        actors = handles["actors"]
        if "killed" not in state and line["env_steps"] >= 80:
            ray.get(actors[1].set_step_delay.remote(0.1))
            state["killed"] = ray.get(actors[0].pid.remote())
            os.kill(state["killed"], signal.SIGKILL)
        elif "killed" in state and "released" not in state:
            back = any(e == {**e, "event": "actor_rejoined", "actor": 0} for e in events())
            recorded = line.get("dist/actor_restarts", 0) >= 1  # not in the final eval line
            if recorded and not back:
                state["recorded_while_down"] = True
            if recorded or back:
                state["released"] = True
                ray.get(actors[1].set_step_delay.remote(0.0))

    result = train_distributed(config, run_dir, dist, on_log=on_log, on_start=handles.update)
    assert result.env_steps >= config.total_env_steps
    assert (run_dir / "final_eval.json").exists()
    restarts = [e for e in events() if e["event"] == "actor_restarted"]
    assert [e["actor"] for e in restarts] == [0], restarts
    assert state.get("recorded_while_down"), "the restart was recorded only once actor 0 was back"
    lines = [ln for ln in read_metrics(run_dir) if "dist/actor_restarts" in ln]
    assert lines[-1]["dist/actor_restarts"] == 1
    assert capsys.readouterr().err.count("[distributed] actor 0 restarted") == 1


def test_cli_distributed_options_are_checked_before_anything_runs(tmp_path, capsys):
    from behavior_priors.cli import main

    run_dir = tmp_path / "r"
    assert main(["train", "--distributed", "--num-actors", "0", "--run-dir", str(run_dir)]) == 2
    assert "num_actors must be >= 1" in capsys.readouterr().err
    assert main(["train", "--distributed", "--utd-tolerance", "2", "--run-dir", str(run_dir)]) == 2
    assert not run_dir.exists()
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2


def test_the_three_loops_write_the_same_run_directory(ray_instance, tmp_path):
    """One seed, vmapped seeds and Ray write the same files with the same metric names (the
    driver's lines lacked perf/wall_time_s when each loop wrote its own)."""
    from behavior_priors.training.distributed import train_distributed
    from behavior_priors.training.multiseed import train_seeds
    from behavior_priors.training.run import read_run, train

    config = TINY.replace(total_env_steps=160, eval_every=80, checkpoint_every=80, log_every=40)
    dirs = {name: tmp_path / name for name in ("single", "seeds", "ray")}
    train(config, dirs["single"])
    train_seeds(config, [config.seed], [dirs["seeds"]])
    dist = DistConfig(num_actors=1, chunk_steps=4, broadcast_every=4)
    train_distributed(config, dirs["ray"], dist)

    def layout(d):
        return sorted(
            str(p.relative_to(d))
            for p in d.rglob("*")
            if (p.is_file() and p.parent == d) or p.parent.parent == d / "checkpoints"
        )

    def metric_names(d):
        # Per-task figures name the tasks that had episodes, and the Ray actors' episodes are
        # not the other loops': one name per figure (every loop must write them).
        return {
            re.sub(r"/task_[^/]+$", "/task_*", k)
            for ln in read_metrics(d)
            for k in ln
            if not k.startswith("dist/")
        }

    reference = dirs["single"]
    for name, d in dirs.items():
        assert layout(d) == layout(reference), name
        assert metric_names(d) == metric_names(reference), name
        assert "charts/episode_return/task_*" in metric_names(d), name
        info = read_run(d)
        assert {"config", "version", "created", "env_specs"} <= info.keys(), name
        assert info["env_specs"] == read_run(reference)["env_specs"], name
        final = json.loads((d / "final_eval.json").read_text())
        assert final.keys() == json.loads((reference / "final_eval.json").read_text()).keys()
        assert final["env_steps"] == 160
    assert "perf/wall_time_s" in metric_names(dirs["ray"])


def test_every_distributed_setting_is_a_command_line_option():
    """The options come from DistConfig's fields (they cannot drift from the dataclass)."""
    import dataclasses

    from behavior_priors.cli import _dist_config, _train_parser, build_train_config

    help_text = _train_parser().format_help()
    for f in dataclasses.fields(DistConfig):
        assert f"--{f.name.replace('_', '-')}" in help_text, f.name
    argv = ["--distributed", "--actor-cpus", "0.5", "--max-actor-restarts", "3"]
    _, opts = build_train_config([*argv, "--num-actors", "4"])
    assert _dist_config(opts) == DistConfig(num_actors=4, actor_cpus=0.5, max_actor_restarts=3)
    _, opts = build_train_config(["--distributed"])
    assert _dist_config(opts) == DistConfig()
