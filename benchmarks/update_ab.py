"""The run loop's update at another commit against the working tree's, alternating in one process.

On a shared 2-core machine two processes run minutes apart can differ by 10% in speed, which
hides a change of a few percent. This builds both updates in one process: the package as it is
at ``--base`` (``git archive``, into a temporary directory, renamed ``behavior_priors_base`` with
its imports rewritten) and the working tree's, each an ``svg0.InPlaceLearner`` of the
``--preset`` agent on the same synthetic batch. Then it alternates ``--rounds`` blocks of
``--updates`` updates between them (each goes first in every other round), so that a change in
the machine's load hits both, and reports the median per-round ratio new / base, the products
(dot instructions) in each compiled update, and whether the first update's metrics are
identical. Comparing a commit with itself gives the noise floor.

    .venv/bin/python benchmarks/update_ab.py [--base HEAD] [--rounds 20] [--updates 50]
"""

from __future__ import annotations

import argparse
import io
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).parent))
from learner_throughput import ACTION_SIZE, OBS_SHAPES, alternating_blocks, synthetic_batch

ROOT = Path(__file__).resolve().parent.parent
BASE = "behavior_priors_base"


def extract_base(rev: str, into: Path) -> None:
    """``src/behavior_priors`` at ``rev``, as the package ``behavior_priors_base`` in ``into``."""
    tar = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src/behavior_priors"],
        check=True,
        capture_output=True,
    ).stdout
    word = re.compile(r"\bbehavior_priors\b")
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        for member in archive.getmembers():
            if not member.isfile():
                continue
            rel = Path(member.name).relative_to("src/behavior_priors")
            path = into / BASE / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            data = archive.extractfile(member).read()
            if path.suffix == ".py":
                data = word.sub(BASE, data.decode()).encode()
            path.write_bytes(data)


def learner(package: str, preset_name: str, batch):
    """An in-place learner of ``package``'s preset agent, warmed up, and its first metrics."""
    svg0 = __import__(f"{package}.agents.svg0", fromlist=["svg0"])
    presets = __import__(f"{package}.training.presets", fromlist=["presets"])
    config = presets.get_preset(preset_name).agent
    state = svg0.init(config, OBS_SHAPES, ACTION_SIZE, jax.random.PRNGKey(0))
    out = svg0.InPlaceLearner(config, state)
    dots = out.lower(batch).compile().as_text().count(" dot(")
    first = {k: float(v) for k, v in jax.device_get(out.update(batch)).items()}
    for _ in range(4):
        jax.block_until_ready(out.update(batch))
    return out, dots, first


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--base",
        default="HEAD",
        help="the commit to compare the working tree with (git rev; HEAD: an uncommitted change)",
    )
    p.add_argument("--preset", default="demo")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--updates", type=int, default=50, help="updates per block")
    args = p.parse_args()

    from behavior_priors.training.presets import get_preset

    preset = get_preset(args.preset)
    batch = synthetic_batch(preset.agent, preset.batch_size, preset.sequence_length)
    with tempfile.TemporaryDirectory() as tmp:
        extract_base(args.base, Path(tmp))
        sys.path.insert(0, tmp)
        runs = {
            name: learner(package, args.preset, batch)
            for name, package in (("base", BASE), ("new", "behavior_priors"))
        }
        ms = alternating_blocks(
            {name: (run[0], batch) for name, run in runs.items()}, args.rounds, args.updates
        )
    ratios = [n / b for n, b in zip(ms["new"], ms["base"], strict=True)]
    for name, (_, dots, _) in runs.items():
        print(
            f"{name:4s} {statistics.median(ms[name]):.3f} ms per update (median of "
            f"{args.rounds} blocks, min {min(ms[name]):.3f}); {dots} products"
        )
    print(f"new / base, median over rounds: {statistics.median(ratios):.3f}")
    same = runs["base"][2] == runs["new"][2]
    print(f"first update's metrics identical: {same}")


if __name__ == "__main__":
    main()
