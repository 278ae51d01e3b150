"""How many XLA devices this process's CPU is split into, chosen before JAX starts.

Seed-batched training (:mod:`behavior_priors.training.multiseed`) splits its seeds over the
host's XLA devices along the seed axis: XLA runs one device's work on one thread, so on a CPU
with one device a vmapped update of many seeds runs on about one core, and with one device per
core each share runs on its own (16 seeds of the demo agent on 2 cores: 48 ms per update on
2 devices against 96 ms on one, ``docs/benchmarks.md``, "Many seeds"). A single seed's run is
unaffected: it computes on the first device.

XLA reads the device count when JAX's backend starts, at its first computation, so
:func:`use_host_devices` must run before anything computes; after that it changes nothing and
says so.
"""

from __future__ import annotations

import os
import re

_FLAG = "--xla_force_host_platform_device_count"


def use_host_devices(count: int | None = None) -> bool:
    """Split the CPU into ``count`` XLA devices (default: one per core this process may use)
    for every computation of this process; ``True`` when it takes effect, ``False`` when JAX
    has already started (the count stays as it was) or when JAX is to run on an accelerator.
    """
    from jax._src import xla_bridge  # the only way to ask whether the backend has started

    if count is None:
        count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if xla_bridge.backends_are_initialized():
        return False
    platforms = os.environ.get("JAX_PLATFORMS", "")
    if platforms and "cpu" not in platforms.split(","):
        return False
    flags = re.sub(rf"{_FLAG}=\S+", "", os.environ.get("XLA_FLAGS", "")).strip()
    os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}={count}".strip()
    return True
