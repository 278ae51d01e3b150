import pytest

from behavior_priors.agents.svg0 import SVG0Config
from behavior_priors.agents.types import FIRST, LAST, MID
from behavior_priors.envs import StepType


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(policy="flat", prior="hierarchical"), "hierarchical prior needs a hierarchical"),
        (dict(policy="hierarchical", prior="flat"), "flat prior needs a flat policy"),
        (dict(policy="flat", prior="flat", low_level="separate"), "only applies to a hier"),
        (dict(policy="flat", prior="none", critic_uses_latent=True), "critic_uses_latent"),
        (dict(policy="flat", prior="none", stop_q_grad_into_latent=True), "stop_q_grad"),
        (dict(stop_q_grad_into_latent=True), "needs critic_uses_latent=True"),
        (dict(latent_dim=0), "latent_dim must be positive"),
        (dict(ar1_coefficient=1.0), "ar1_coefficient"),
        (dict(discount=0.0), "discount"),
        (dict(kl_cost=-1.0), "kl_cost must be >= 0"),
        (dict(num_action_samples=0), "num_action_samples must be >= 1"),
        (dict(frozen=("prior.hgih",)), "unknown module 'prior.hgih'"),
        (dict(frozen="prior"), "tuple of module names"),
        (dict(policy="flat", prior="flat", frozen=("policy.low",)), "needs a hierarchical policy"),
        (dict(policy="flat", prior="none", frozen=("prior",)), "has no separate prior"),
        (dict(policy="flat", prior="flat", frozen=("prior.high",)), "needs a hierarchical prior"),
        (dict(frozen=("prior.low",)), "low_level='separate'"),
    ],
)
def test_invalid_combinations_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SVG0Config(**kwargs)


def test_defaults_are_the_papers_best_variant():
    c = SVG0Config()
    assert (c.policy, c.prior, c.low_level, c.high_prior) == (
        "hierarchical",
        "hierarchical",
        "shared",
        "learned",
    )
    assert c.prior_keys == ("proprio/",) and "task/" in c.high_keys
    assert c.latent_size == c.latent_dim
    assert SVG0Config(policy="flat", prior="flat").latent_size == 0


def test_the_entropy_enters_the_bootstrap_value_only_for_distral_by_default():
    assert not SVG0Config().soft_value
    assert not SVG0Config(policy="flat", prior="none").soft_value
    assert SVG0Config(policy="distral", prior="distilled").soft_value
    assert SVG0Config(entropy_in_value=True).soft_value
    assert not SVG0Config(policy="distral", prior="distilled", entropy_in_value=False).soft_value


def test_autoregressive_priors_give_the_high_level_the_previous_latent():
    assert not SVG0Config().autoregressive_high_level
    assert SVG0Config(high_prior="ar1").autoregressive_high_level
    assert SVG0Config(high_prior="learned_ar").autoregressive_high_level
    assert not SVG0Config(high_prior="ar1", prior="none").autoregressive_high_level


def test_step_type_values_agree_with_the_env_protocol():
    assert (FIRST, MID, LAST) == (StepType.FIRST, StepType.MID, StepType.LAST)
