"""Training on third-party environments through the adapters: the loop evaluates on the
environment it trains on, single-task environments need no key overrides, and the agent
learns a small Gymnasium and a small dm_control task."""

import warnings

import gymnasium as gym
import pytest

from behavior_priors.agents.svg0 import SVG0Config
from behavior_priors.envs.adapters import from_gymnasium
from behavior_priors.envs.registry import make
from behavior_priors.training import TrainConfig
from behavior_priors.training.loop import Trainer

SMALL_AGENT = dict(policy_hidden=(16,), prior_hidden=(16,), critic_hidden=(16,), latent_dim=2)


def _config(**agent) -> TrainConfig:
    return TrainConfig(
        env="pointmass-gtt3",  # deliberately not the environment passed in
        num_envs=2,
        total_env_steps=40,
        warmup_steps=20,
        batch_size=4,
        sequence_length=4,
        eval_episodes=2,
        tensorboard=False,
        agent=SVG0Config(**{**SMALL_AGENT, **agent}),
    )


def test_an_environment_object_is_also_the_evaluation_environment():
    """Before: ``train(config, env=my_env)`` evaluated on ``config.env`` (here the point mass)."""
    env = from_gymnasium(lambda: gym.make("Pendulum-v1"), num_envs=2)
    trainer = Trainer(_config(policy="flat", prior="none"), env)
    assert trainer.eval_env is not env and trainer.eval_env.num_envs == 2
    assert trainer.eval_env.observation_spec() == env.observation_spec()
    final = trainer.run()
    assert final["eval/episode_length"] == 200  # Pendulum's episodes, not the point mass's


def test_an_environment_object_without_spawn_needs_a_name_or_an_eval_env():
    env = make("gridworld-tworooms", num_envs=2)
    with pytest.raises(ValueError, match="no spawn"):
        Trainer(_config(policy="flat", prior="none").replace(env="gridworld-fourrooms"), env)


def test_a_single_task_gymnasium_env_needs_no_key_overrides():
    """Before: "observation key 'task/' matches nothing (available: proprio/state)" until
    policy_keys and critic_keys were overridden by hand."""
    config = _config(policy="flat", prior="none").replace(env="gymnasium:Pendulum-v1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no prior: nothing to warn about
        trainer = Trainer(config)
    assert trainer.state.networks.policy.net.keys == ("proprio/state",)
    config = _config().replace(env="gymnasium:Pendulum-v1")  # hierarchical policy and prior
    with pytest.warns(UserWarning, match="prior sees everything the policy sees"):
        Trainer(config)
    # An exact task key that is missing is still an error.
    bad = _config(policy="flat", prior="none", policy_keys=("proprio/", "task/goal"))
    with pytest.raises(ValueError, match="'task/goal' matches nothing"):
        Trainer(bad.replace(env="gymnasium:Pendulum-v1"))
