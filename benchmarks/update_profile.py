"""Where the demo learner's update spends its time, at the level of XLA's CPU thunks.

The compiled update runs as a sequence of thunks (fused loops, dot products, while loops for
the sequence scans, copies). This traces the update the run loop calls (buffer donation, the
demo preset's sizes and batch) with JAX's profiler, reads the Perfetto trace, and reports per
update: the wall time, the time XLA spends executing, the number of thunks, and the time by
thunk kind; then the update's FLOPs (XLA's cost analysis) against a float32 matmul peak
measured in the same run. Last, the matrix products: the thunks that hold one (found in the
compiled module's text, with their FLOPs), their traced time and so their share of the peak
while they run, against a compiled chain of products of the demo's shapes timed alone: what
those shapes can reach on this machine with nothing around them.

    .venv/bin/python benchmarks/update_profile.py [--updates 50] [--out FILE]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).parent))
from behavior_priors.agents.svg0 import InPlaceLearner, init
from behavior_priors.training.presets import get_preset
from learner_throughput import (
    ACTION_SIZE,
    OBS_SHAPES,
    best_seconds,
    matmul_peak,
    synthetic_batch,
    update_flops,
)

# Trace events that are not thunks: the executor, the client, Python.
_WRAPPERS = re.compile(
    r"^(\$|ThunkExecutor|ThreadpoolListener|PjitFunction|CommonPjRt|PjRt|TfrtCpu|Execute|Wait for|"
    r"Handle |ParseArguments|AllocateOutput|PythonRefManager)"
)


def thunk_kind(name: str) -> str:
    """``ynn_fusion.108`` -> ``ynn_fusion``; ``while.215`` -> ``while``."""
    return name.split(".")[0]


def tanh_chain(n: int):
    """``f(x, w)``, jitted: ``n`` dependent products ``x <- tanh(x @ w)``, a network layer's
    dot and activation, repeated."""

    def chain(x, w):
        for _ in range(n):
            x = jnp.tanh(x @ w)  # the tanh fuses with the next dot's input or stays tiny
        return x

    return jax.jit(chain)


def per_thunk_cost(n: int = 400, repeats: int = 30) -> float:
    """Seconds per thunk of a compiled chain of ``n`` dependent 8x8 matmuls (one dot thunk
    each, next to no arithmetic): what each thunk of the update costs before it computes."""
    f = tanh_chain(n)
    x = jnp.ones((8, 8), jnp.float32)
    w = jnp.eye(8, dtype=jnp.float32) * 0.5
    text = f.lower(x, w).compile().as_text()
    kernels = len(re.findall(r"^\s*\S+ = \S+ (?:fusion|dot|custom-call)\(", text, re.M))
    return best_seconds(f, x, w, repeats=repeats) / max(kernels, 1)


_COMPUTATION = re.compile(r"^(?:ENTRY )?%(\S+) \(")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%(\S+) = (\w+)\[([\d,]*)\]\S* (\w[\w-]*)\((.*)")


def dot_flops_by_thunk(hlo: str) -> dict[str, float]:
    """FLOPs of the matrix products in each thunk of a compiled module's text (``as_text()``):
    ``{instruction name: FLOPs}`` for every top-level instruction that is a ``dot`` or a fusion
    whose computation contains one (XLA:CPU's ``ynn_fusion``, ``dot``, ...). A dot's FLOPs are
    2 x (elements of its output) x (size of its contracted dimensions)."""
    computations: dict[str, list[str]] = {}
    current = None
    for line in hlo.splitlines():
        m = _COMPUTATION.match(line)
        if m:
            current = computations.setdefault(m.group(1), [])
        elif line.startswith("}"):
            current = None
        elif current is not None:
            current.append(line)

    def dots(lines: list[str]) -> dict[str, float]:
        """``{name: FLOPs}`` of the dot instructions among ``lines`` (one computation)."""
        shapes: dict[str, list[int]] = {}
        found = {}
        for line in lines:
            m = _INSTRUCTION.match(line)
            if not m:
                continue
            name, _, dims, op, rest = m.groups()
            shapes[name] = [int(d) for d in dims.split(",") if d]
            if op != "dot":
                continue
            lhs = rest.split(",")[0].split()[-1].lstrip("%")
            contracted = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", rest)
            size = math.prod(
                shapes[lhs][int(d)]
                for d in (contracted.group(1) if contracted else "").split(",")
                if d
            )
            found[name] = 2.0 * math.prod(shapes[name]) * size
        return found

    fused = set(re.findall(r"fusion\(.*calls=%([\w.\-]+)", hlo))
    result = {}
    for name, lines in computations.items():
        if name in fused:
            continue
        result.update(dots(lines))  # dots that are thunks of their own
        for line in lines:
            m = _INSTRUCTION.match(line)
            called = re.search(r"calls=%([\w.\-]+)", m.group(5)) if m else None
            if m and m.group(4) == "fusion" and called and called.group(1) in computations:
                f = sum(dots(computations[called.group(1)]).values())
                if f:
                    result[m.group(1)] = f
    return result


def dot_chain_flops_per_s(rows: int, size: int, n: int = 200, repeats: int = 20) -> float:
    """FLOP/s of ``n`` dependent ``[rows, size] x [size, size]`` float32 products in one
    compiled call (each with a tanh, as in a network layer): the best a matrix product of that
    shape does on this machine, with no other work around it."""
    x = jnp.ones((rows, size), jnp.float32)
    w = jnp.eye(size, dtype=jnp.float32) * 0.5
    seconds = best_seconds(tanh_chain(n), x, w, repeats=repeats)
    return 2.0 * rows * size * size * n / seconds


def compiled_text(learner: InPlaceLearner, batch) -> str:
    """The optimised HLO text of the executable the run loop's learner runs for ``batch``: the
    module whose thunks the trace names."""
    return learner.lower(batch).compile().as_text()


def profile(updates: int) -> dict:
    preset = get_preset("demo")
    config = preset.agent
    state = init(config, OBS_SHAPES, ACTION_SIZE, jax.random.PRNGKey(0))
    batch = synthetic_batch(config, preset.batch_size, preset.sequence_length)
    learner = InPlaceLearner(config, state)
    for _ in range(5):
        metrics = learner.update(batch)
    jax.block_until_ready(metrics)

    # Wall time per update as the run loop sees it (blocking on each result).
    walls = []
    for _ in range(updates):
        t = time.perf_counter()
        metrics = learner.update(batch)
        jax.block_until_ready(metrics)
        walls.append(time.perf_counter() - t)

    options = jax.profiler.ProfileOptions()
    options.python_tracer_level = 0  # Python function tracing would inflate the host side
    with tempfile.TemporaryDirectory() as tmp:
        jax.profiler.start_trace(tmp, create_perfetto_trace=True, profiler_options=options)
        for _ in range(updates):
            metrics = learner.update(batch)
            jax.block_until_ready(metrics)
        jax.profiler.stop_trace()
        trace = next(Path(tmp).rglob("*.trace.json.gz"))
        events = json.load(gzip.open(trace))
    events = events["traceEvents"] if isinstance(events, dict) else events
    spans = [e for e in events if e.get("ph") == "X"]
    # A thunk appears as its launch (its name) and its completion ("end: name").
    ends = {e["name"][5:]: e["dur"] for e in spans if e["name"].startswith("end: ")}
    thunks = [
        e for e in spans if not _WRAPPERS.match(e["name"]) and not e["name"].startswith("end")
    ]
    kinds = defaultdict(lambda: [0, 0.0])
    dot_flops = dot_flops_by_thunk(compiled_text(learner, batch))
    dot_us = dot_done = 0.0
    for e in thunks:
        k = kinds[thunk_kind(e["name"])]
        k[0] += 1
        k[1] += e["dur"] + ends.get(e["name"], 0.0)
        if e["name"] in dot_flops:  # once per execution: a while body's thunks run many times
            dot_us += e["dur"] + ends.get(e["name"], 0.0)
            dot_done += dot_flops[e["name"]]
    execute = sum(
        e["dur"]
        for e in spans
        if e["name"] == "CommonPjRtLoadedExecutable::ExecuteHelperOnSingleDevice"
    )
    per_thunk = per_thunk_cost()
    flops = update_flops(config, learner.state, batch) or float("nan")
    peak = max(matmul_peak(), matmul_peak())
    wall = statistics.median(walls)
    n_thunks = len(thunks) / updates
    rows = preset.batch_size * (preset.sequence_length + 1)  # states per batch: B (T+1)
    width = config.critic_hidden[0]
    alone = {
        f"[{r}, {width}] x [{width}, {width}]": dot_chain_flops_per_s(r, width) / peak
        for r in (rows, config.num_action_samples * rows)
    }
    return {
        "preset": "demo",
        "batch_size": preset.batch_size,
        "sequence_length": preset.sequence_length,
        "wall_ms_per_update": wall * 1e3,
        "traced_execute_ms_per_update": execute / updates / 1e3,
        "thunks_per_update": n_thunks,
        "per_thunk_cost_us": per_thunk * 1e6,
        "thunk_overhead_ms_per_update": n_thunks * per_thunk * 1e3,
        "by_kind": {
            k: {"per_update": n / updates, "ms_per_update": t / updates / 1e3}
            for k, (n, t) in sorted(kinds.items(), key=lambda kv: -kv[1][1])
        },
        "flops_per_update": flops,
        "dot_thunks_per_update": sum(1 for e in thunks if e["name"] in dot_flops) / updates,
        "dot_flops_per_update": dot_done / updates,
        "dot_ms_per_update": dot_us / updates / 1e3,
        "dot_fraction_of_peak": dot_done / (dot_us / 1e6) / peak if dot_us else float("nan"),
        "dot_alone_fraction_of_peak": alone,
        "matmul_peak_flops_per_s": peak,
        "fraction_of_peak": flops / wall / peak,
        "us_at_peak": flops / peak * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=50)
    parser.add_argument("--out", default="benchmarks/out/update_profile.json")
    args = parser.parse_args()
    r = profile(args.updates)
    r["machine"] = {"jax": jax.__version__, "backend": jax.default_backend()}
    print(
        f"update: {r['wall_ms_per_update']:.2f} ms wall; {r['thunks_per_update']:.0f} thunks at "
        f"{r['per_thunk_cost_us']:.1f} us each before any arithmetic = "
        f"{r['thunk_overhead_ms_per_update']:.2f} ms"
    )
    print(
        f"{r['flops_per_update'] / 1e6:.1f} MFLOP per update (XLA cost analysis): "
        f"{r['us_at_peak']:.0f} us at the matmul peak "
        f"({r['matmul_peak_flops_per_s'] / 1e9:.1f} GFLOP/s); {r['fraction_of_peak']:.1%} of peak"
    )
    print(
        f"matrix products: {r['dot_thunks_per_update']:.0f} thunks, "
        f"{r['dot_flops_per_update'] / 1e6:.1f} MFLOP and {r['dot_ms_per_update']:.2f} ms traced "
        f"per update: {r['dot_fraction_of_peak']:.1%} of peak while they run"
    )
    for shape, fraction in r["dot_alone_fraction_of_peak"].items():
        print(f"  a chain of {shape} products alone: {fraction:.1%} of peak")
    print(f"{'thunk kind (traced)':32s} {'per update':>10s} {'ms/update':>10s}")
    for kind, v in list(r["by_kind"].items())[:15]:
        print(f"{kind:32s} {v['per_update']:10.1f} {v['ms_per_update']:10.3f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
