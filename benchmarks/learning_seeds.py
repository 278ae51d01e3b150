"""How robust is the learning test? Its configs over many seeds, with the saturation diagnostic.

``tests/training/test_learning.py::test_agent_learns_to_beat_a_random_policy`` trains seed 0 of
three variants on the one-target point-mass task and asserts a best evaluation return above 40
(random actions: about 3). Another CPU's rounding acts like another seed, so the test's margin
must hold over seeds. This trains the test's exact configs (imported from the test) for the
given seeds together (vmapped, ``MultiSeedTrainer``) and prints, per variant, each seed's best
evaluation return and the largest fraction of the action head's pre-activations beyond the
saturation bound (``policy/saturated_fraction``, see ``networks.heads.saturation``).

    .venv/bin/python benchmarks/learning_seeds.py --seeds 0-4
    .venv/bin/python benchmarks/learning_seeds.py --variants hier-shared --seeds 5-14 \\
        --agent saturation_cost=0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests/

from tests.training.test_learning import VARIANTS, learning_config

from behavior_priors.training.config import parse_key_values
from behavior_priors.training.multiseed import MultiSeedTrainer


def seed_range(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"2,5"`` -> [2, 5]."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    p.add_argument("--seeds", default="0-4", help="e.g. 0-4 or 2,5")
    p.add_argument("--agent", nargs="*", default=[], help="SVG0Config overrides, key=value")
    args = p.parse_args()
    seeds = seed_range(args.seeds)
    for variant in args.variants.split(","):
        config = learning_config(variant, **parse_key_values(args.agent))
        multi = MultiSeedTrainer(config, seeds)
        multi.run()
        best = [
            max(ln["eval/episode_return"] for ln in t.history if "eval/episode_return" in ln)
            for t in multi.runs
        ]
        saturated = [
            max(ln.get("policy/saturated_fraction", float("nan")) for ln in t.history)
            for t in multi.runs
        ]
        print(f"{variant} seeds {args.seeds}", flush=True)
        print("  best evaluation return:", " ".join(f"{b:.1f}" for b in best))
        print("  max saturated fraction:", " ".join(f"{s:.2f}" for s in saturated), flush=True)


if __name__ == "__main__":
    main()
