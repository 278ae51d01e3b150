"""Shared test set-up: keep JAX on the CPU and quiet, and hypothesis fast enough for CI."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Two xdist workers share two cores: stop XLA from spawning a thread pool per core in each.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci")
