"""Transfer: loaded modules equal the source's, frozen ones stay bit-identical while training,
fine-tuned ones change, body transfer relearns a low level of the new size, clear errors."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from behavior_priors.cli import main
from behavior_priors.networks import GaussianNet
from behavior_priors.training.run import load, read_run, train
from behavior_priors.transfer import (
    TransferError,
    TransferSpec,
    embed_net,
    transfer,
    transfer_config,
    transfer_state,
)

from ..training.test_run import TINY

# The high level and the prior read inputs every body of the suite has with the same shapes
# (the body's velocity and the task), so the source can give them to another body.
SOURCE = TINY.replace(
    seed=1,
    total_env_steps=160,
    eval_every=0,
    log_every=80,
    checkpoint_every=0,
    agent=TINY.agent.replace(
        high_keys=("proprio/velocity", "task/"), prior_keys=("proprio/velocity",)
    ),
)


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_array))]


def _equal(a, b) -> bool:
    la, lb = _leaves(a), _leaves(b)
    return len(la) == len(lb) and all(
        x.shape == y.shape and np.array_equal(x, y) for x, y in zip(la, lb, strict=True)
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("transfer") / "source"
    train(SOURCE, run_dir)
    return run_dir


@pytest.fixture(scope="module")
def flat_source(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("transfer") / "flat-source"
    agent = SOURCE.agent.replace(policy="flat", prior="flat")
    train(SOURCE.replace(agent=agent, total_env_steps=80), run_dir)
    return run_dir


def _fresh(config):
    from behavior_priors.training.loop import Trainer

    return Trainer(config).state


def test_loaded_modules_equal_the_source_checkpoint_and_the_critic_is_fresh(source):
    spec = TransferSpec(str(source))
    config = transfer_config(spec, task="movebox")
    assert config.env == "pointmass-movebox"
    assert config.agent.frozen == ("prior.high", "policy.low")
    src = load(source).state.networks
    state, provenance = transfer_state(_fresh(config), config, spec)
    nets = state.networks
    assert _equal(nets.prior.high, src.prior.high)
    assert _equal(nets.policy.low, src.policy.low)
    # The policy's high level reads the new task's inputs: fresh; the critic too.
    assert not _equal(nets.critic, src.critic)
    assert _equal(state.target, nets)
    assert int(state.step) == 0
    assert provenance["modules"] == {
        "prior.high": "transferred, frozen",
        "policy.low": "transferred, frozen",
        "policy.high": "fresh",
        "critic": "fresh",
    }
    assert provenance["source_env"] == "pointmass-gtt3"
    assert not provenance["body_transfer"]


def test_frozen_stay_bit_identical_and_finetuned_change_in_a_transfer_run(source, tmp_path):
    spec = TransferSpec(str(source), prior="frozen", low_level="finetune", policy="source")
    config = transfer_config(spec, total_env_steps=120, warmup_steps=20)
    assert config.agent.frozen == ("prior.high",)
    src = load(source).state.networks
    result = transfer(config, spec, tmp_path / "run")
    nets = result.state.networks
    assert result.updates > 0
    assert _equal(nets.prior.high, src.prior.high)  # frozen
    assert not _equal(nets.policy.low, src.policy.low)  # fine-tuned
    assert not _equal(nets.policy.high, src.policy.high)  # from the source, fine-tuned
    info = read_run(tmp_path / "run")
    assert info["transfer"]["source"] == str(source.resolve())
    assert info["transfer"]["modules"]["policy.high"] == "transferred, fine-tuned"
    # A resumed transfer run keeps its modules frozen: they are named in the agent config.
    assert info["config"]["agent"]["frozen"] == ["prior.high"]


def test_frozen_low_level_and_finetuned_prior(source, tmp_path):
    spec = TransferSpec(str(source), prior="finetune", low_level="frozen")
    config = transfer_config(spec, total_env_steps=120, warmup_steps=20)
    src = load(source).state.networks
    nets = transfer(config, spec, tmp_path / "run").state.networks
    assert _equal(nets.policy.low, src.policy.low)
    assert not _equal(nets.prior.high, src.prior.high)


def test_body_transfer_keeps_the_high_level_and_relearns_a_low_level_of_the_new_size(
    source, tmp_path
):
    spec = TransferSpec(str(source))
    config = transfer_config(spec, body="ant", total_env_steps=80, warmup_steps=20)
    assert config.env == "ant-gtt3"
    assert config.agent.frozen == ("prior.high",)
    src = load(source).state.networks
    result = transfer(config, spec, tmp_path / "ant")
    nets = result.state.networks
    assert _equal(nets.prior.high, src.prior.high)  # frozen
    assert nets.policy.low.head.loc.bias.shape == (8,)  # the Ant's 8 actuators
    assert "proprio/joints_pos" in nets.policy.low.keys
    assert _leaves(nets.policy.high)[0].shape == _leaves(src.policy.high)[0].shape
    info = read_run(tmp_path / "ant")["transfer"]
    assert info["body_transfer"]
    assert info["modules"]["policy.low"] == "fresh (relearned)"
    assert info["modules"]["policy.high"] == "transferred, fine-tuned"


def test_body_transfer_errors_name_what_differs(source, tmp_path):
    spec = TransferSpec(str(source), low_level="frozen")
    config = transfer_config(spec, body="ant")
    with pytest.raises(TransferError, match="relearn"):
        transfer_state(_fresh(config.replace(num_envs=1, eval_episodes=1)), config, spec)
    # A source whose high level reads the body's proprioception cannot move to another body.
    agent = SOURCE.agent.replace(high_keys=("proprio/", "task/"), prior_keys=("proprio/",))
    run = tmp_path / "proprio-source"
    train(SOURCE.replace(agent=agent, total_env_steps=40, warmup_steps=40), run)
    spec = TransferSpec(str(run))
    config = transfer_config(spec, body="ant")
    with pytest.raises(TransferError, match=r"pi0\^H.*inputs only in the new run: .*joints_pos"):
        transfer_state(_fresh(config.replace(num_envs=1, eval_episodes=1)), config, spec)


def test_architecture_mismatch_and_bad_specs_are_clear_errors(source, tmp_path):
    spec = TransferSpec(str(source))
    config = transfer_config(spec)
    other = config.replace(agent=config.agent.replace(latent_dim=3))
    with pytest.raises(TransferError, match="latent_dim: 2 in the source, 3 in the new run"):
        transfer_state(_fresh(other), other, spec)
    unfrozen = config.replace(agent=config.agent.replace(frozen=()))
    with pytest.raises(TransferError, match=r"agent\.frozen"):
        transfer_state(_fresh(unfrozen), unfrozen, spec)
    with pytest.raises(ValueError, match="prior='melted'"):
        TransferSpec(str(source), prior="melted")
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        transfer_config(TransferSpec(str(tmp_path / "nothing")))
    # Nothing was written for the failed attempts.
    assert not (tmp_path / "nothing").exists()


def test_policy_initialised_from_the_prior_acts_exactly_like_it():
    shapes = {"proprio/velocity": (3,), "proprio/gyro": (3,), "task/targets": (3, 2)}
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    prior = GaussianNet(("proprio/velocity",), shapes, 2, (16, 8), k1, tanh_mean=False)
    policy = GaussianNet(("proprio/", "task/"), shapes, 2, (16, 8), k2, tanh_mean=False)
    embedded = embed_net(prior, policy)
    rng = np.random.default_rng(0)
    obs = {k: jnp.asarray(rng.normal(size=(5, *s)), jnp.float32) for k, s in shapes.items()}
    a, b = prior(obs), embedded(obs)
    np.testing.assert_allclose(b.loc, a.loc, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(b.scale, a.scale, rtol=1e-6, atol=1e-6)
    # ... whatever the task inputs it ignores until it learns to use them.
    obs2 = {**obs, "task/targets": obs["task/targets"] * 10 + 3}
    np.testing.assert_allclose(embedded(obs2).loc, a.loc, rtol=1e-6, atol=1e-6)
    # A prior that reads what the policy does not cannot be embedded.
    narrow = GaussianNet(("proprio/gyro",), shapes, 2, (16, 8), k2, tanh_mean=False)
    with pytest.raises(TransferError, match="reads proprio/velocity"):
        embed_net(prior, narrow)
    wider = GaussianNet(("proprio/",), shapes, 2, (32, 8), k2, tanh_mean=False)
    with pytest.raises(TransferError, match="hidden"):
        embed_net(prior, wider)


def test_flat_prior_transfer_with_policy_from_prior(flat_source):
    spec = TransferSpec(str(flat_source), policy="prior")
    config = transfer_config(spec)
    assert config.agent.frozen == ("prior",)
    src = load(flat_source).state.networks
    state, provenance = transfer_state(_fresh(config), config, spec)
    assert _equal(state.networks.prior, src.prior)
    assert provenance["modules"]["policy"] == "initialised from the source's prior, fine-tuned"
    obs = {
        "proprio/velocity": jnp.ones((4, 3)),
        "proprio/gyro": jnp.zeros((4, 3)),
        "task/targets": jnp.ones((4, 3, 2)),
        "task/id_onehot": jnp.eye(3)[jnp.array([0, 1, 2, 0])],
    }
    np.testing.assert_allclose(
        state.networks.policy(obs).loc, src.prior(obs).loc, rtol=1e-6, atol=1e-6
    )
    # A flat prior cannot cross bodies.
    config = transfer_config(TransferSpec(str(flat_source)), body="ant")
    with pytest.raises(TransferError, match="flat prior acts in the source body"):
        transfer_state(
            _fresh(config.replace(num_envs=1, eval_episodes=1)),
            config,
            TransferSpec(str(flat_source)),
        )


def test_transfer_cli(source, tmp_path, capsys):
    run_dir = tmp_path / "cli"
    argv = ["transfer", "--from", str(source), "--task", "gtt1", "--run-dir", str(run_dir)]
    code = main([*argv, "--no-progress", "--total-env-steps", "80", "--warmup-steps", "40"])
    assert code == 0
    info = read_run(run_dir)
    assert info["config"]["env"] == "pointmass-gtt3"
    assert info["config"]["env_kwargs"]["tasks"] == ["go_to_target:0"]
    assert info["transfer"]["spec"]["low_level"] == "frozen"
    assert json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["env_steps"] == 80
    capsys.readouterr()
    assert main(["transfer", "--from", str(tmp_path / "missing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    bad = tmp_path / "bad"
    assert main([*argv[:3], "--body", "ant", "--low-level", "frozen", "--run-dir", str(bad)]) == 2
    assert "relearn" in capsys.readouterr().err
    assert not bad.exists()  # nothing written for a refused transfer
