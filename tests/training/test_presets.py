from behavior_priors.training.presets import DEMO, DEMO_AGENT, DEMO_TRAIN, get_preset


def test_the_demo_is_its_preset_with_its_rates_and_copies_and_nothing_else_changed():
    """`demo` differs from gtt-pointmass-hier in the three learning rates (2e-3), the number of
    environment copies (16) and the update-to-data ratio that keeps one update per batched
    step (measured on the demo only: docs/benchmarks.md), and asking for it leaves that preset
    as it was."""
    base = get_preset(DEMO)
    demo = get_preset("demo")
    assert DEMO == "gtt-pointmass-hier"
    rates = ("policy_learning_rate", "critic_learning_rate", "prior_learning_rate")
    assert set(DEMO_AGENT) == set(rates)
    assert [getattr(demo.agent, r) for r in rates] == [2e-3] * 3
    assert [getattr(base.agent, r) for r in rates] == [1e-3] * 3
    assert set(DEMO_TRAIN) == {"num_envs", "updates_per_env_step"}
    assert (demo.num_envs, base.num_envs) == (16, 8)
    # One update per batched step in both: 16 x 1/16 and 8 x 0.125.
    assert demo.num_envs * demo.updates_per_env_step == 1.0
    assert base.num_envs * base.updates_per_env_step == 1.0
    as_base = demo.replace(
        agent=demo.agent.replace(**{r: 1e-3 for r in rates}),
        num_envs=base.num_envs,
        updates_per_env_step=base.updates_per_env_step,
    )
    assert as_base.to_dict() == base.to_dict()
    assert get_preset(DEMO).to_dict() == base.to_dict()
