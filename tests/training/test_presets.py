from behavior_priors.training.presets import DEMO, DEMO_AGENT, get_preset


def test_the_demo_is_its_preset_with_learning_rates_of_2e_3_and_nothing_else_changed():
    """`demo` differs from gtt-pointmass-hier in the three learning rates alone (measured on the
    demo only: docs/benchmarks.md), and asking for it leaves that preset as it was."""
    base = get_preset(DEMO)
    demo = get_preset("demo")
    assert DEMO == "gtt-pointmass-hier"
    rates = ("policy_learning_rate", "critic_learning_rate", "prior_learning_rate")
    assert set(DEMO_AGENT) == set(rates)
    assert [getattr(demo.agent, r) for r in rates] == [2e-3] * 3
    assert [getattr(base.agent, r) for r in rates] == [1e-3] * 3
    as_base = demo.replace(agent=demo.agent.replace(**{r: 1e-3 for r in rates}))
    assert as_base.to_dict() == base.to_dict()
    assert get_preset(DEMO).to_dict() == base.to_dict()
