"""An experiment's runs as Ray tasks: ``reproduce NAME --ray-address auto|HOST:PORT``.

Each unit the local runner would train in one process (one run, or a group of new seeds of one
method and task trained together) becomes one Ray task that asks for ``cpus_per_unit`` CPUs
(and ``gpus_per_unit`` GPUs: JAX then runs on CUDA, which needs the ``cuda`` extra, JAX's CUDA
wheel, on the GPU nodes; :func:`task_env`) and calls the
same function a local worker calls (:func:`behavior_priors.experiments.runner.train_unit`). The
driver keeps the stages in order (tuning, sources, targets), and writes the same report and
pages as the local runner, from the same run directories.

Requirements (docs/distributed.md, "Experiments on a cluster"):

* every node has this package (the same version) and the experiment's extras installed: Ray
  imports the runner's function by name on the worker;
* the experiment directory is on a filesystem every node reaches at the same path (NFS, a
  cluster filesystem): :func:`check_storage` writes a probe file from every node and reads it
  back here before anything trains, and refuses in one line a path that a node cannot write or
  that this machine does not see.

Faults: a task whose worker process or node dies is retried (``max_retries``) on a live node;
:func:`~behavior_priors.experiments.runner.train_unit` then resumes its runs from their latest
checkpoints, so a lost node costs at most one checkpoint interval of its runs. A driver stopped
and started again with the same command skips finished runs and resumes the others, as the
local runner does.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

PROBE_PREFIX = ".storage-probe-"


class StorageError(ValueError):
    """The experiment directory is not writable from every node, or not shared with the driver."""


def probe_storage(path: str, token: str, node: str) -> tuple[str, str | None]:
    """On node ``node``: write ``path/.storage-probe-<token>-<node>``; ``(file name, what went
    wrong or None)``."""
    import socket

    name = f"{PROBE_PREFIX}{token}-{node[:12]}"
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / name).write_text(socket.gethostname())
    except OSError as e:
        return name, f"node {socket.gethostname()} ({node[:12]}) cannot write there: {e}"
    return name, None


def check_storage(ray: Any, path: Path) -> int:
    """Refuse (:class:`StorageError`, one line) unless every alive node with CPUs can write into
    ``path`` and this process sees what each wrote; returns the number of nodes checked. The
    probe files are removed again."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    path = Path(path).resolve()
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0)]
    if not nodes:
        raise StorageError("the Ray cluster has no alive node with CPUs to train on")
    token = secrets.token_hex(6)
    probe = ray.remote(num_cpus=0, max_retries=0)(probe_storage)
    refs = [
        probe.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
        ).remote(str(path), token, n["NodeID"])
        for n in nodes
    ]
    problems = []
    try:
        for name, error in ray.get(refs):
            if error is not None:
                problems.append(error)
            elif not (path / name).exists():
                problems.append(
                    f"a node wrote {path / name} but this machine does not see it: the "
                    "experiment directory must be on a filesystem every node shares"
                )
    finally:
        for p in path.glob(f"{PROBE_PREFIX}{token}-*"):
            p.unlink(missing_ok=True)
    if problems:
        raise StorageError(f"experiment directory {path}: {problems[0]}")
    return len(nodes)


@contextlib.contextmanager
def connected(address: str, out: Path) -> Iterator[Any]:
    """Connect to the Ray cluster at ``address`` (unless this process is connected already; then
    that connection is used and kept), check the experiment directory ``out`` from every node
    (:func:`check_storage`) and yield the ``ray`` module; disconnect at the end if this
    connected."""
    try:
        import ray
    except ImportError:
        raise ImportError("--ray-address needs Ray: pip install 'behavior-priors[dist]'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        check_storage(ray, out)
        yield ray
    finally:
        if started:
            ray.shutdown()


def task_env(cpus: float, gpus: float) -> dict[str, str]:
    """Environment variables of a training task with ``cpus`` CPUs and ``gpus`` GPUs: one XLA
    thread for a one-CPU task (as the local runner's workers; with more CPUs XLA's own threads
    use them), and JAX on CUDA for a task that reserved a GPU, so that a node without JAX's CUDA
    wheel (the ``cuda`` extra) fails the task with JAX's error instead of training on the CPU
    while holding the GPU."""
    from behavior_priors.experiments.runner import SINGLE_THREAD_XLA_FLAGS

    env = {}
    if cpus <= 1:
        env["XLA_FLAGS"] = SINGLE_THREAD_XLA_FLAGS
    if gpus > 0:
        env["JAX_PLATFORMS"] = "cuda"
    return env


def train_units_on_ray(
    ray: Any,
    units: list[list[Any]],
    report: Callable[[str, str, float], None],
    log: Callable[[str], None],
    *,
    cpus_per_unit: float = 1.0,
    gpus_per_unit: float = 0.0,
    max_retries: int = 3,
) -> None:
    """Train ``units`` (lists of :class:`~behavior_priors.experiments.runner.RunSpec` trained
    together) as Ray tasks on the connected cluster (:func:`connected`), reporting each run's
    ``(name, outcome, seconds)`` as its task ends.

    A task that fails for good (its retries spent) is reported as an error for each of its
    runs; the other tasks go on. SIGINT cancels the tasks still queued or running (their runs
    keep their checkpoints) and re-raises.
    """
    from behavior_priors.experiments.runner import train_unit

    if not units:
        return
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    log(f"{len(units)} tasks on a Ray cluster of {nodes} nodes")
    task = ray.remote(
        num_cpus=cpus_per_unit,
        num_gpus=gpus_per_unit,
        max_retries=max_retries,
        runtime_env={"env_vars": task_env(cpus_per_unit, gpus_per_unit)},
    )(train_unit)
    refs = {task.remote(unit, False): unit for unit in units}
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    results = ray.get(ref)
                except Exception as e:  # retries spent: a fault for each run of the task
                    text = " ".join(str(e).split())[:300]
                    results = [
                        (s.name, f"error: {type(e).__name__}: {text}", 0.0) for s in refs[ref]
                    ]
                for result in results:
                    report(*result)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref)
        raise
