"""Run directories: exact resume, signals, corrupt and incompatible checkpoints, loading."""

import json
import os
import shutil
import signal

import jax
import numpy as np
import pytest

from behavior_priors.agents.svg0 import SVG0Config
from behavior_priors.training.checkpoint import Checkpointer, CheckpointError
from behavior_priors.training.config import TrainConfig
from behavior_priors.training.logger import read_metrics
from behavior_priors.training.run import Interrupted, load, train

TINY = TrainConfig(
    env="pointmass-gtt3",
    env_kwargs={"episode_seconds": 1.0},  # 20 control steps: many episode boundaries
    num_envs=2,
    seed=3,
    total_env_steps=240,
    sequence_length=4,
    batch_size=8,
    replay_capacity=2_000,
    warmup_steps=40,
    updates_per_env_step=0.5,
    eval_every=120,
    eval_episodes=2,
    log_every=40,
    checkpoint_every=80,
    tensorboard=False,
    agent=SVG0Config(
        policy_hidden=(16,),
        prior_hidden=(16,),
        critic_hidden=(16,),
        latent_dim=2,
        num_action_samples=2,
        target_update_period=5,
    ),
)


def _without_speed(lines):
    return [{k: v for k, v in ln.items() if not k.startswith("perf/")} for ln in lines]


def _params(state):
    import equinox as eqx

    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(state, eqx.is_array))]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "full"
    result = train(TINY, run_dir)
    return run_dir, result


def test_run_directory_holds_config_metrics_and_checkpoints(finished_run):
    run_dir, result = finished_run
    info = json.loads((run_dir / "run.json").read_text())
    assert TrainConfig.from_dict(info["config"]) == TINY
    assert info["env_specs"]["observation_shapes"]["task/targets"] == [3, 2]
    lines = read_metrics(run_dir)
    steps = [ln["env_steps"] for ln in lines]
    assert steps == sorted(steps) and steps[-1] == result.env_steps == 240
    assert any("losses/critic" in ln and "kl/high" in ln for ln in lines)
    assert any("eval/success_rate" in ln for ln in lines)
    # The newest two checkpoints are kept, the final one among them.
    assert Checkpointer(run_dir / "checkpoints").steps() == [160, 240]
    assert json.loads((run_dir / "final_eval.json").read_text())["env_steps"] == 240


@pytest.mark.parametrize("stop_at", [120, 200])
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(finished_run, tmp_path, stop_at):
    run_dir, full = finished_run
    other = tmp_path / "interrupted"

    def interrupt(line):
        if line["env_steps"] >= stop_at:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does

    with pytest.raises(Interrupted) as info:
        train(TINY, other, on_log=interrupt)
    assert info.value.env_steps == stop_at  # stops at the next step, after saving
    assert Checkpointer(other / "checkpoints").latest_step() == stop_at
    resumed = train(None, other, resume=True)
    assert _without_speed(read_metrics(other)) == _without_speed(read_metrics(run_dir))
    for a, b in zip(_params(resumed.state), _params(full.state), strict=True):
        np.testing.assert_array_equal(a, b)


def test_corrupt_checkpoint_is_a_clear_error_and_the_previous_one_is_kept(finished_run, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(finished_run[0], run_dir)
    latest = run_dir / "checkpoints" / "240" / "state"
    for f in latest.rglob("*"):
        if f.is_file() and "ocdbt" in str(f.relative_to(latest)):
            f.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"240.*corrupt.*Earlier checkpoints kept: \[160\]"):
        train(None, run_dir, resume=True)
    # Nothing was lost: the previous checkpoint still resumes.
    result = train(None, run_dir, resume=True, checkpoint_step=160)
    assert result.env_steps == 240


def test_incompatible_checkpoint_names_what_differs(finished_run, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(finished_run[0], run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    info["config"]["agent"]["policy_hidden"] = [32]
    (run_dir / "run.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match=r"does not fit this run.*shape"):
        train(None, run_dir, resume=True)


def test_new_run_refuses_an_existing_run_directory_and_resume_refuses_another_config(
    finished_run,
):
    run_dir, _ = finished_run
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(TINY, run_dir)
    with pytest.raises(ValueError, match="own config"):
        train(TINY.replace(seed=4), run_dir, resume=True)
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        train(None, run_dir / "nothing", resume=True)


def test_loaded_policy_acts_like_the_trained_one(finished_run):
    from behavior_priors.agents.svg0 import select_action, to_env_action
    from behavior_priors.envs.registry import make

    run_dir, result = finished_run
    run = load(run_dir)
    assert run.env_steps == 240
    for a, b in zip(_params(run.state), _params(result.state), strict=True):
        np.testing.assert_array_equal(a, b)
    env = make(TINY.env, num_envs=3, seed=0, **TINY.env_kwargs)
    ts = env.reset(0)
    policy = run.policy(num_envs=3)
    action = policy.act(ts.observation, ts.first())
    assert action.shape == (3, 2)
    spec = env.action_spec()
    state = __import__("behavior_priors").agents.svg0.initial_actor_state(TINY.agent, 3)
    mean, _, _ = select_action(
        result.state.networks.policy,
        ts.observation,
        ts.first(),
        state,
        jax.random.PRNGKey(0),
        TINY.agent,
        evaluation=True,
    )
    np.testing.assert_allclose(action, to_env_action(mean, spec.minimum, spec.maximum), atol=1e-6)


def test_predict_one_observation_and_evaluate_policy(tmp_path):
    """``predict`` on one observation is ``act`` on a batch of one; ``evaluate_policy`` gives
    the numbers of the evaluation the run loop makes (deterministic actions, same episodes)."""
    from behavior_priors.training import evaluate_policy, make_run_env
    from behavior_priors.training.evaluation import run_episodes

    result = train(TINY.replace(total_env_steps=120), tmp_path / "r")
    run = load(result.run_dir)
    env = make_run_env(run, num_envs=1, seed=0)
    ts = env.reset(0)
    one = run.policy().predict({k: v[0] for k, v in ts.observation.items()}, first=True)
    batch = run.policy().act(ts.observation, ts.first())
    np.testing.assert_array_equal(one, batch[0])
    with pytest.raises(ValueError, match="one observation"):
        run.policy(num_envs=2).predict({k: v[0] for k, v in ts.observation.items()})

    env = make_run_env(run, num_envs=2)
    mine = evaluate_policy(run.policy(num_envs=2), env, 4, seed=5)
    theirs = run_episodes(run.state.networks.policy, env, run.config.agent, 4, seed=5).summary()
    assert {k: mine[k] for k in theirs} == theirs
    assert mine["episode_return_std"] >= 0
    with pytest.raises(ValueError, match=r"run\.policy\(num_envs=2\)"):
        evaluate_policy(run.policy(), env, 4)
