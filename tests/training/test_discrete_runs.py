"""Run directories with discrete actions (the grid world): run.json, exact resume, loading and
acting, the CLI; ActionLayout; the grid-world presets."""

import os
import signal

import numpy as np
import pytest

from behavior_priors.cli import main
from behavior_priors.envs.base import BoundedArraySpec, DiscreteSpec
from behavior_priors.envs.registry import make
from behavior_priors.training.actions import ActionLayout
from behavior_priors.training.logger import read_metrics
from behavior_priors.training.presets import get_preset, preset_names
from behavior_priors.training.run import Interrupted, load, read_run, train

GRID = get_preset("tworooms-gridworld-distral-2col").replace(
    num_envs=2,
    seed=2,
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
)
GRID = GRID.replace(
    agent=GRID.agent.replace(policy_hidden=(16,), prior_hidden=(16,), critic_hidden=(16,))
)


def test_action_layout_for_boxes_and_discrete_spaces():
    box = ActionLayout.from_spec(BoundedArraySpec((2,), np.float32, "a", -2.0, 4.0))
    assert (box.size, box.discrete, box.replay_shape) == (2, False, (2,))
    np.testing.assert_allclose(box.to_env(np.array([[-1.0, 3.0]])), [[-2.0, 4.0]])  # clipped
    assert ActionLayout.from_env_specs(box.to_env_specs()).to_env_specs() == box.to_env_specs()
    grid = ActionLayout.from_spec(DiscreteSpec(5))
    assert (grid.size, grid.discrete, grid.replay_shape, grid.replay_dtype) == (
        5,
        True,
        (),
        np.int32,
    )
    assert grid.to_env_specs() == {"num_actions": 5}
    actions = grid.random(np.random.default_rng(0), 1000)
    assert actions.dtype == np.int32 and set(np.unique(actions)) == set(range(5))
    np.testing.assert_array_equal(grid.to_env(np.array([3, 0])), [3, 0])
    with pytest.raises(ValueError, match="bounded box or a discrete"):
        ActionLayout.from_spec(object())


def test_grid_presets_pair_tasks_with_bodies_and_distral_with_discrete_actions():
    names = preset_names()
    assert "fourrooms-gridworld-distral-1col" in names and "tworooms-gridworld-hier" in names
    assert not any(n.startswith("gtt-") and "distral" in n for n in names)
    assert "tworooms-pointmass-flat" not in names and "gtt-gridworld-flat" not in names
    with pytest.raises(KeyError, match="unknown preset"):
        get_preset("gtt-pointmass-distral-2col")
    c = get_preset("fourrooms-gridworld-distral-2col-noent").agent
    assert (c.policy, c.distral_columns, c.entropy_cost) == ("distral", "2col", 0.0)
    assert get_preset("fourrooms-gridworld-noprior").agent.entropy_cost > 0


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("grid") / "run"
    return run_dir, train(GRID, run_dir)


def test_grid_run_records_its_discrete_action_space_and_acts_after_loading(grid_run):
    run_dir, result = grid_run
    info = read_run(run_dir)
    assert info["env_specs"]["num_actions"] == 4 and "action_minimum" not in info["env_specs"]
    run = load(run_dir)
    env = make(GRID.env, num_envs=3, seed=0, **GRID.env_kwargs)
    ts = env.reset(0)
    action = run.policy(num_envs=3).act(ts.observation, ts.first())
    assert action.shape == (3,) and action.dtype == np.int32
    # Deterministic: the most likely action of the policy.
    want = np.argmax(np.asarray(result.state.networks.policy(ts.observation).logits), -1)
    np.testing.assert_array_equal(action, want)


def test_interrupted_grid_run_resumes_exactly(grid_run, tmp_path):
    run_dir, _ = grid_run
    other = tmp_path / "interrupted"

    def interrupt(line):
        if line["env_steps"] >= 120:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does

    with pytest.raises(Interrupted):
        train(GRID, other, on_log=interrupt)
    train(None, other, resume=True)

    def lines(d):
        return [
            {k: v for k, v in ln.items() if not k.startswith("perf/")} for ln in read_metrics(d)
        ]

    assert lines(other) == lines(run_dir)


def test_grid_cli_eval(grid_run, capsys):
    run_dir, _ = grid_run
    assert main(["eval", str(run_dir), "--episodes", "4"]) == 0
    out = capsys.readouterr().out
    assert "success_rate" in out


def test_distral_transfer_keeps_pi0_frozen_and_starts_fresh_columns(grid_run, tmp_path):
    import equinox as eqx
    import jax

    from behavior_priors.transfer import TransferError, TransferSpec, transfer, transfer_config

    def equal(a, b):
        la = jax.tree.leaves(eqx.filter(a, eqx.is_array))
        lb = jax.tree.leaves(eqx.filter(b, eqx.is_array))
        return all(np.array_equal(x, y) for x, y in zip(la, lb, strict=True))

    run_dir, _ = grid_run
    spec = TransferSpec(str(run_dir))
    config = transfer_config(
        spec, env_kwargs={"goals": ((3, 1), (3, 9), (1, 4), (5, 6))}, total_env_steps=120
    )
    assert config.agent.frozen == ("policy.distilled",)
    src = load(run_dir).state.networks
    result = transfer(config, spec, tmp_path / "new")
    nets = result.state.networks
    assert result.updates > 0
    assert equal(nets.policy.distilled, src.policy.distilled)  # pi0: transferred, frozen
    assert not equal(nets.policy.columns, src.policy.columns)  # fresh columns, trained
    modules = read_run(tmp_path / "new")["transfer"]["modules"]
    assert modules["policy.distilled"] == "transferred, frozen"
    assert modules["policy.columns"] == "fresh"
    with pytest.raises(TransferError, match="does not apply to Distral"):
        bad = TransferSpec(str(run_dir), policy="prior")
        transfer(transfer_config(bad, total_env_steps=40), bad, tmp_path / "bad")


def test_grid_cli_video_is_a_clear_error(grid_run, capsys):
    run_dir, _ = grid_run
    assert main(["video", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "no video" in err and "neither render(index, width=, height=) frames nor" in err
