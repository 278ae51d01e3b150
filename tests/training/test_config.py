"""Configuration helpers: KEY=VALUE overrides as the command line and the benchmarks read them."""

import pytest

from behavior_priors.training.config import parse_key_values


def test_parse_key_values_reads_literals_and_refuses_items_without_a_key():
    got = parse_key_values(["a=1", "b=(64, 64)", "c=text", "d=", "e=a=b"])
    assert got == {"a": 1, "b": (64, 64), "c": "text", "d": "", "e": "a=b"}
    for bad in ("novalue", "=3"):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            parse_key_values([bad])
