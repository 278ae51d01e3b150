"""Shared test set-up: keep JAX on the CPU and quiet, and hypothesis fast enough for CI."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Two xdist workers share two cores: stop XLA from spawning a thread pool per core in each.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

from pathlib import Path

import jax
from hypothesis import HealthCheck, settings

# XLA compiles of the learner take seconds; let test processes (xdist workers, CLI
# subprocesses) share them through a persistent cache inside pytest's own cache directory.
_CACHE = Path(__file__).resolve().parent.parent / ".pytest_cache" / "jax-compilation"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])

settings.register_profile(
    "ci", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci")
