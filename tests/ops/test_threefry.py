"""The CPU lowering of threefry-2x32: the same hash as JAX's, without a loop per draw."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32

import behavior_priors.ops  # noqa: F401  (registers the lowering, as every agent does)
from behavior_priors.ops.threefry import ROLLED_MAX_COUNTERS, threefry2x32, threefry2x32_rolled

# Known answers of threefry2x32 with 20 rounds, from Random123's kat_vectors (key, counter ->
# output), the same vectors JAX's own tests use.
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


def _u32(*xs):
    return [jnp.asarray(np.uint32(x)) for x in xs]


def test_both_forms_of_the_hash_give_random123s_known_answers():
    for form in (threefry2x32, jax.jit(threefry2x32_rolled)):
        for key, count, want in KNOWN_ANSWERS:
            got = form(*_u32(*key), *_u32(*count))
            assert [int(g) for g in got] == list(want), form


def _loops(f, *args) -> int:
    return f.lower(*args).compile().as_text().count(" while(")


def test_jax_on_the_cpu_hashes_with_the_registered_lowering_and_gets_the_known_answers():
    """Through JAX's public hash, compiled: the lowering in use computes threefry."""
    f = jax.jit(threefry_2x32)
    for key, count, want in KNOWN_ANSWERS:
        k, c = jnp.asarray(key, jnp.uint32), jnp.asarray(count, jnp.uint32)
        assert [int(x) for x in f(k, c)] == list(want)


def test_draws_compile_without_a_loop_and_key_splits_with_one():
    """A draw of more than ROLLED_MAX_COUNTERS counters is straight-line code (JAX 0.10's own
    CPU lowering is a loop for each); a key split keeps its one loop, which XLA does not copy
    into every consumer of the keys."""
    key = jax.random.PRNGKey(0)
    n = 2 * ROLLED_MAX_COUNTERS + 2  # float32 normals: one counter per two numbers
    assert _loops(jax.jit(lambda k: jax.random.normal(k, (n,))), key) == 0
    assert _loops(jax.jit(lambda k: jax.random.normal(k, (3,))), key) == 1
    assert _loops(jax.jit(lambda k: jax.random.split(k, 4)), key) == 1


_DRAWS = """
import json, sys
import jax
{setup}
key = jax.random.PRNGKey(7)
k1, k2 = jax.random.split(key)
f = jax.jit(lambda k1, k2: (jax.random.normal(k1, (3, 50)), jax.random.bits(k2, (4,)),
                            jax.random.split(k2, 3), jax.random.uniform(k2, (7, 9))))
json.dump([x.tolist() for x in f(k1, k2)], sys.stdout)
"""


def _draws(setup: str) -> list:
    code = _DRAWS.format(setup=setup)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_random_numbers_are_bit_identical_to_jaxs_own_lowering():
    """Draws (both forms), bits and splits in a process with JAX alone against one with the
    lowering registered: equal to the last bit (JSON keeps float32 values exactly)."""
    assert _draws("") == _draws("import behavior_priors.ops")
