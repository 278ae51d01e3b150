"""Configuration helpers: KEY=VALUE overrides as the command line and the benchmarks read them."""

import dataclasses
import json
import math

import pytest

from behavior_priors.agents.svg0 import SVG0Config
from behavior_priors.training.config import TrainConfig, parse_key_values
from behavior_priors.training.presets import get_preset, preset_names


def test_parse_key_values_reads_literals_and_refuses_items_without_a_key():
    got = parse_key_values(["a=1", "b=(64, 64)", "c=text", "d=", "e=a=b"])
    assert got == {"a": 1, "b": (64, 64), "c": "text", "d": "", "e": "a=b"}
    for bad in ("novalue", "=3"):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            parse_key_values([bad])


# -- every numeric setting is checked up front (issue 37, D7) ------------------------------------

# (field, bad value, what the message must say). Before: a negative learning rate trained to
# completion, nan and inf were caught only as divergence at step 2, and a string stopped at
# "'<' not supported between instances of 'str' and 'int'".
BAD_TRAIN = [
    ("env", "", "env must be a non-empty string"),
    ("env", 3, "env must be a non-empty string"),
    ("env_kwargs", ["a=1"], "env_kwargs must be a dict"),
    ("num_envs", 0, "num_envs must be >= 1, got 0"),
    ("num_envs", "eight", "num_envs must be an integer >= 1, got 'eight'"),
    ("num_envs", 8.0, "num_envs must be an integer >= 1, got 8.0"),
    ("num_envs", True, "num_envs must be an integer >= 1, got True"),
    ("seed", -1, "seed must be >= 0, got -1"),
    ("seed", 1.5, "seed must be an integer >= 0"),
    ("total_env_steps", 0, "total_env_steps must be >= 1"),
    ("sequence_length", -3, "sequence_length must be >= 1"),
    ("batch_size", None, "batch_size must be an integer >= 1, got None"),
    ("replay_capacity", "1e6", "replay_capacity must be an integer >= 1"),
    ("warmup_steps", -1, "warmup_steps must be >= 0"),
    ("updates_per_env_step", -0.5, "updates_per_env_step must be >= 0, got -0.5"),
    ("updates_per_env_step", math.nan, "updates_per_env_step must be a finite number >= 0"),
    ("updates_per_env_step", math.inf, "updates_per_env_step must be a finite number >= 0"),
    ("updates_per_env_step", "0.1", "updates_per_env_step must be a finite number >= 0"),
    ("eval_every", -1, "eval_every must be >= 0"),
    ("eval_episodes", 0, "eval_episodes must be >= 1"),
    ("log_every", 0, "log_every must be >= 1"),
    ("checkpoint_every", -5, "checkpoint_every must be >= 0"),
    ("tensorboard", "no", "tensorboard must be True or False, got 'no'"),
    ("wandb", 1, "wandb must be True or False, got 1"),
    ("agent", {"discount": 0.9}, "agent must be an SVG0Config"),
]

BAD_AGENT = [
    ("policy", "hier", "policy must be one of 'flat', 'hierarchical', 'distral', got 'hier'"),
    ("prior", 2, "prior must be one of"),
    ("low_level", "shraed", "low_level must be one of 'shared', 'separate'"),
    ("high_prior", "ar2", "high_prior must be one of"),
    ("distral_columns", "3col", "distral_columns must be one of '1col', '2col'"),
    ("ar1_coefficient", 1.0, "ar1_coefficient must be in [0, 1), got 1.0"),
    ("ar1_coefficient", math.nan, "ar1_coefficient must be a finite number in [0, 1)"),
    ("latent_dim", 0, "latent_dim must be positive"),
    ("latent_dim", "8", "latent_dim must be an integer >= 1, got '8'"),
    ("latent_hold_steps", 0, "latent_hold_steps must be >= 1"),
    ("policy_keys", "proprio/", "policy_keys must be a non-empty tuple of observation keys"),
    ("high_keys", (), "high_keys must be a non-empty tuple of observation keys"),
    ("low_keys", ("proprio/", 3), "low_keys must be a non-empty tuple of observation keys"),
    ("prior_keys", ("",), "prior_keys must be a non-empty tuple of observation keys"),
    ("critic_keys", ["proprio/"], "critic_keys must be a non-empty tuple of observation keys"),
    ("critic_uses_latent", "yes", "critic_uses_latent must be True or False"),
    ("policy_hidden", (64, 0), "policy_hidden must be a non-empty tuple of integers >= 1"),
    ("prior_hidden", (), "prior_hidden must be a non-empty tuple of integers >= 1"),
    ("critic_hidden", (64.5,), "critic_hidden must be a non-empty tuple of integers >= 1"),
    ("min_scale", 0.0, "min_scale must be in (0, 1), got 0.0"),
    ("min_scale", 1.0, "min_scale must be in (0, 1), got 1.0"),
    ("min_scale", -0.1, "min_scale must be in (0, 1)"),
    ("distral_task_key", "", "distral_task_key must be a non-empty string"),
    ("discount", 0.0, "discount must be in (0, 1], got 0.0"),
    ("discount", 1.5, "discount must be in (0, 1], got 1.5"),
    ("discount", math.nan, "discount must be a finite number in (0, 1]"),
    ("discount", "0.99", "discount must be a finite number in (0, 1], got '0.99'"),
    ("retrace_lambda", -0.1, "retrace_lambda must be in [0, 1]"),
    ("retrace_lambda", 1.1, "retrace_lambda must be in [0, 1]"),
    ("kl_cost", -1.0, "kl_cost must be >= 0"),
    ("kl_cost", math.inf, "kl_cost must be a finite number >= 0, got inf"),
    ("entropy_cost", -1e-3, "entropy_cost must be >= 0"),
    ("entropy_cost", math.nan, "entropy_cost must be a finite number >= 0"),
    ("entropy_in_value", "no", "entropy_in_value must be None, True or False"),
    ("target_entropy", math.inf, "target_entropy must be None or a finite number"),
    ("target_entropy", "-2", "target_entropy must be None or a finite number"),
    ("entropy_learning_rate", 0.0, "entropy_learning_rate must be > 0"),
    ("entropy_learning_rate", math.nan, "entropy_learning_rate must be a finite number > 0"),
    ("saturation_cost", -1.0, "saturation_cost must be >= 0"),
    ("num_action_samples", 0, "num_action_samples must be >= 1"),
    ("num_policy_samples", 0, "num_policy_samples must be >= 1"),
    ("num_kl_samples", 2.0, "num_kl_samples must be an integer >= 1"),
    ("stop_q_grad_into_latent", None, "stop_q_grad_into_latent must be True or False"),
    ("policy_learning_rate", -1e-4, "policy_learning_rate must be >= 0, got -0.0001"),
    ("critic_learning_rate", -1.0, "critic_learning_rate must be >= 0"),
    ("prior_learning_rate", math.inf, "prior_learning_rate must be a finite number >= 0"),
    ("policy_learning_rate", math.nan, "policy_learning_rate must be a finite number >= 0"),
    ("policy_learning_rate", "fast", "policy_learning_rate must be a finite number >= 0"),
    ("max_grad_norm", 0.0, "max_grad_norm must be > 0"),
    ("max_grad_norm", -40.0, "max_grad_norm must be > 0"),
    ("max_grad_norm", math.nan, "max_grad_norm must be a finite number > 0"),
    ("target_update_period", 0, "target_update_period must be >= 1"),
    ("target_update_rate", 0.0, "target_update_rate must be None or in (0, 1]"),
    ("target_update_rate", math.nan, "target_update_rate must be None or a finite number in"),
    ("frozen", ["prior"], "frozen must be a tuple of module names"),
]


@pytest.mark.parametrize(
    ("cls", "name", "value", "message"),
    [(TrainConfig, *row) for row in BAD_TRAIN] + [(SVG0Config, *row) for row in BAD_AGENT],
)
def test_a_bad_setting_is_refused_with_its_name_value_and_range(cls, name, value, message):
    with pytest.raises(ValueError) as e:
        cls(**{name: value})
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_the_tables_cover_every_field():
    """A new field gets its range here too: the tables name each field at least once."""
    assert {n for n, _, _ in BAD_TRAIN} == {f.name for f in dataclasses.fields(TrainConfig)}
    assert {n for n, _, _ in BAD_AGENT} == {f.name for f in dataclasses.fields(SVG0Config)}


def test_every_problem_is_named_at_once():
    with pytest.raises(ValueError) as e:
        SVG0Config(discount=2.0, policy_learning_rate=-1.0, num_kl_samples="one")
    for name in ("discount", "policy_learning_rate", "num_kl_samples"):
        assert name in str(e.value)


def test_a_run_json_with_a_string_for_a_number_names_the_field():
    """`"num_envs": "eight"` in run.json (resume, eval) stopped at "'<' not supported ..."."""
    d = json.loads(json.dumps(TrainConfig().to_dict()))
    d["num_envs"] = "eight"
    with pytest.raises(ValueError, match="num_envs must be an integer >= 1, got 'eight'"):
        TrainConfig.from_dict(d)
    d = json.loads(json.dumps(TrainConfig().to_dict()))
    d["agent"]["discount"] = "0.99"
    with pytest.raises(ValueError, match="discount must be a finite number in"):
        TrainConfig.from_dict(d)
    with pytest.raises(ValueError, match="agent must be a dict"):
        TrainConfig.from_dict({**TrainConfig().to_dict(), "agent": 3})


def test_the_edges_of_each_range_are_valid():
    SVG0Config(
        discount=1.0,
        retrace_lambda=0.0,
        ar1_coefficient=0.0,
        kl_cost=0.0,
        entropy_cost=0.0,
        saturation_cost=0.0,
        # Learning rate 0 keeps a module's parameters (tests train one module alone with it).
        policy_learning_rate=0.0,
        critic_learning_rate=0,
        prior_learning_rate=0.0,
        target_update_rate=1.0,
        min_scale=1e-6,
        policy_hidden=(1,),
    )
    SVG0Config(retrace_lambda=1, discount=1e-9, entropy_in_value=False, target_update_rate=1e-9)
    SVG0Config(target_entropy=-2, entropy_cost=1e-3, min_scale=0.999)
    TrainConfig(seed=0, warmup_steps=0, updates_per_env_step=0, eval_every=0, checkpoint_every=0)


def test_every_default_and_every_preset_is_valid_and_survives_run_json():
    def as_json(config):
        return json.loads(json.dumps(config.to_dict()))

    SVG0Config()
    for config in [TrainConfig(), *map(get_preset, preset_names())]:
        assert as_json(TrainConfig.from_dict(as_json(config))) == as_json(config)
