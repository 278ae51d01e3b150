"""JAX's random-number hash, threefry-2x32, lowered for the CPU without a loop per draw.

Every ``jax.random`` call (a key split, a normal draw) evaluates the threefry-2x32 hash
(Salmon et al. 2011, 20 rounds). On the CPU, JAX (0.10) lowers it as a rolled loop of 5
iterations, which XLA runs as a ``while`` thunk: one per call, each stepping through its
iterations one thunk at a time. The demo learner's update makes 9 such calls, about a tenth of
its time (``docs/benchmarks.md``, "Inside the demo update"). On every other platform JAX emits
the hash unrolled, and upstream JAX has since made that the CPU's lowering too
(jax-ml/jax#37872).

Unrolled everywhere, though, the demo update took twice as long to compile (11 s against 6 s):
XLA copies a straight-line chain of cheap integer operations into every fusion that consumes
it, and a key derived by three nested splits then appears, rehashed, in each of the fusions
that use it (1138 shift operations in the compiled update, where its program has 120). So
:func:`use_fast_threefry_on_cpu` registers a lowering that unrolls the hash of a draw (more
than :data:`ROLLED_MAX_COUNTERS` counters: the numbers a loss consumes once) and keeps a rolled
loop for a key derivation (a split hashes 2 counters per key), whose loop XLA does not copy.
The demo update then compiles faster than with JAX's lowering and keeps 5 of its 9 loops, those
of the key splits: 9% faster (``benchmarks/rng_lowering.py``).

It goes through JAX's public extension points (``jax.extend.random.threefry2x32_p``,
``jax.interpreters.mlir``). The hash is the same function, so every random number, and every
run, is bit-identical to JAX's own lowering (tested against Random123's known answers and
against JAX's lowering in a separate process); only functions compiled after the call use it.
``behavior_priors.ops`` calls it on import, so everything the package compiles does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.random import threefry2x32_p
from jax.interpreters import mlir

# Rotation distances of the even and odd groups of four rounds (Random123, threefry2x32).
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)  # the key schedule's parity constant


def _rotate_left(x: jax.Array, d: np.uint32 | jax.Array) -> jax.Array:
    """``x`` rotated left by ``d`` bits (a uint32, static or traced)."""
    return (x << d) | (x >> (np.uint32(32) - d))


def threefry2x32(
    key1: jax.Array, key2: jax.Array, x1: jax.Array, x2: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The threefry-2x32 hash with 20 rounds, unrolled.

    Args:
      key1, key2: uint32 arrays, the key's two words (broadcast against ``x1``, ``x2``).
      x1, x2: uint32 arrays ``[...]`` of one shape, the counter's two words.

    Returns:
      The two uint32 words of the hashed counter, each ``[...]``.
    """
    ks = (key1, key2, key1 ^ key2 ^ _PARITY)
    a, b = x1 + ks[0], x2 + ks[1]
    for i in range(5):  # 5 groups of 4 rounds, a key injection after each
        for r in _ROTATIONS[i % 2]:
            a = a + b
            b = _rotate_left(b, np.uint32(r)) ^ a
        a = a + ks[(i + 1) % 3]
        b = b + ks[(i + 2) % 3] + np.uint32(i + 1)
    return a, b


# Hashes of at most this many counters (key splits: 2 per key) keep a rolled loop.
ROLLED_MAX_COUNTERS = 16


def threefry2x32_rolled(
    key1: jax.Array, key2: jax.Array, x1: jax.Array, x2: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """:func:`threefry2x32` as a loop over its 5 groups of 4 rounds (one XLA ``while``), the
    form JAX uses on the CPU. Same arguments and result."""
    rotations = jnp.asarray(_ROTATIONS, jnp.uint32)  # [2, 4]

    def group(i, carry):
        a, b, ks = carry
        for j in range(4):
            a = a + b
            b = _rotate_left(b, rotations[i % 2, j]) ^ a
        a = a + ks[1]
        b = b + ks[2] + (i + 1).astype(jnp.uint32)
        return a, b, (ks[1], ks[2], ks[0])  # the key schedule moves on by one word

    ks = (key1, key2, key1 ^ key2 ^ _PARITY)
    a, b, _ = lax.fori_loop(0, 5, group, (x1 + ks[0], x2 + ks[1], ks))
    return a, b


def _threefry2x32_cpu(key1, key2, x1, x2):
    if x1.size <= ROLLED_MAX_COUNTERS:
        return threefry2x32_rolled(key1, key2, x1, x2)
    return threefry2x32(key1, key2, x1, x2)


_installed = False


def use_fast_threefry_on_cpu() -> None:
    """Make JAX lower threefry-2x32 on the CPU unrolled for draws and rolled for key
    derivations (module docstring; idempotent).

    Global to the process, like any lowering rule, and affects only speed: the numbers are the
    same. Functions already compiled keep the loop they were compiled with."""
    global _installed
    if not _installed:
        rule = mlir.lower_fun(_threefry2x32_cpu, multiple_results=True)
        mlir.register_lowering(threefry2x32_p, rule, platform="cpu")
        _installed = True
