"""What a setting costs the demo's update: the update under overrides, alternating in one process.

``update_ab.py`` compares the same settings at two commits; this compares settings at one. Each
``--variant`` is a name and overrides, ``NAME agent.KEY=VALUE train.KEY=VALUE ...`` (agent keys
go to ``SVG0Config``, train keys to ``TrainConfig``: ``batch_size`` and ``sequence_length`` set
the synthetic batch's shape). The reference, ``base``, is ``--preset`` unchanged. Every
variant's ``svg0.InPlaceLearner`` (buffer donation, as the run loop calls it) is built and
warmed up, then the variants take turns for ``--rounds`` blocks of ``--updates`` updates each
(``learner_throughput.alternating_blocks``). Prints, per variant, the median milliseconds per
update over the rounds and the median of its per-round ratio to ``base``.

    .venv/bin/python benchmarks/update_variants.py \
        --variant noprior agent.policy=flat agent.prior=none \
        --variant S1 agent.num_action_samples=1 [--rounds 15] [--updates 50]

The update is what a batched step of the demo's loop mostly waits for ("Where a demo step's
time goes" in docs/benchmarks.md), so its ratio is close to the loop's; the env steps a setting
needs are measured by ``demo_seeds.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).parent))
from behavior_priors.agents import svg0
from behavior_priors.training.config import parse_key_values
from behavior_priors.training.presets import get_preset
from learner_throughput import ACTION_SIZE, OBS_SHAPES, alternating_blocks, synthetic_batch


def parse_variant(words: list[str]) -> tuple[str, dict, dict]:
    """``["S1", "agent.num_action_samples=1"]`` -> ``("S1", {"num_action_samples": 1}, {})``."""
    if not words or "=" in words[0]:
        raise ValueError(f"a variant starts with its name, got {words!r}")
    name, agent, train = words[0], [], []
    for item in words[1:]:
        scope, dot, rest = item.partition(".")
        if not dot or scope not in ("agent", "train"):
            raise ValueError(f"expected agent.KEY=VALUE or train.KEY=VALUE, got {item!r}")
        (agent if scope == "agent" else train).append(rest)
    return name, parse_key_values(agent), parse_key_values(train)


def build(preset: str, agent: dict, train: dict):
    """A warmed-up in-place learner of ``preset`` with the overrides, and its batch."""
    config = get_preset(preset)
    config = config.replace(agent=config.agent.replace(**agent), **train)
    batch = synthetic_batch(config.agent, config.batch_size, config.sequence_length)
    state = svg0.init(config.agent, OBS_SHAPES, ACTION_SIZE, jax.random.PRNGKey(0))
    learner = svg0.InPlaceLearner(config.agent, state)
    for _ in range(5):
        jax.block_until_ready(learner.update(batch))
    return learner, batch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--variant",
        nargs="+",
        action="append",
        default=[],
        metavar="WORD",
        help="NAME [agent.KEY=VALUE | train.KEY=VALUE ...]; repeat for each variant",
    )
    p.add_argument("--preset", default="demo")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--updates", type=int, default=50, help="updates per block")
    args = p.parse_args()
    variants = [parse_variant(v) for v in args.variant]
    variants.insert(0, ("base", {}, {}))
    if len({name for name, _, _ in variants}) != len(variants):
        p.error("variant names must differ from each other and from 'base'")

    runs = {name: build(args.preset, agent, train) for name, agent, train in variants}
    names = list(runs)
    ms = alternating_blocks(runs, args.rounds, args.updates)
    for name in names:
        ratio = statistics.median(a / b for a, b in zip(ms[name], ms["base"], strict=True))
        print(
            f"{name:16s} {statistics.median(ms[name]):.3f} ms per update "
            f"(median of {args.rounds} blocks), {ratio:.3f}x base"
        )


if __name__ == "__main__":
    main()
