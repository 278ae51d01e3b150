"""Experiments on a Ray cluster (``reproduce --ray-address``): a local cluster of two worker
nodes gives the local runner's runs and report, a worker node killed mid-experiment costs at
most a checkpoint interval, and storage that a node cannot write is refused in one line."""

import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest

from behavior_priors.experiments import build_report, get_experiment, run_experiment
from behavior_priors.experiments.cluster import StorageError, check_storage, probe_storage
from behavior_priors.experiments.runner import run_specs, run_status

# The smoke experiment (2 methods x 2 seeds on the one-target point mass), long enough that a
# node can be killed while its run is between checkpoints.
SMOKE = get_experiment("smoke")
LONGER = dataclasses.replace(
    SMOKE,
    total_env_steps=1600,
    train_overrides={
        **SMOKE.train_overrides,
        "eval_every": 400,
        "log_every": 400,
        "checkpoint_every": 400,
    },
)


def _lines(run_dir):
    return [
        {k: v for k, v in json.loads(ln).items() if not k.startswith("perf/")}
        for ln in (run_dir / "metrics.jsonl").read_text().splitlines()
    ]


def _summary(out):
    """The report's figures, without wall times (``wall_minutes``)."""
    summary = json.loads((out / "summary.json").read_text())
    for m in summary["methods"]:
        del m["wall_minutes"]
    return summary


def test_a_killed_worker_node_costs_a_checkpoint_interval_and_the_report_is_the_local_one(
    tmp_path,
):
    """Two worker nodes of one CPU each; once a run has written a checkpoint, the node that
    trains it is removed (its raylet and workers killed). Every run still finishes, the killed
    one resumed on the other node, and every run's log equals the local runner's (one run per
    spawned one-thread process, as one run per one-CPU Ray task): resumed runs exactly."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (the dist extra)")
    from ray.cluster_utils import Cluster

    local = tmp_path / "local"
    outcomes = run_experiment(LONGER, local, seeds=2, workers=2, log=lambda _: None)
    assert all(o.startswith("finished") for o in outcomes.values()), outcomes

    try:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"a local Ray cluster cannot start here: {e}")
    out = tmp_path / "cluster"
    killed = {}

    def node_of(pid):
        """The cluster node whose raylet started process ``pid`` (its ancestor), or None."""
        raylets = {n.all_processes["raylet"][0].process.pid: n for n in nodes}
        while pid > 1 and pid not in raylets:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                return None
            pid = int(stat.rpartition(")")[2].split()[1])  # the parent's pid
        return raylets.get(pid)

    def kill_a_node_mid_run():
        """Once a run has a checkpoint and is still training, kill the node that trains it
        (found from the pid in the run's lock file)."""
        specs = run_specs(LONGER, out, seeds=2)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            for spec in specs:
                lock = spec.run_dir / ".lock"
                if run_status(spec) != "partial" or not lock.exists():
                    continue
                try:
                    node = node_of(int(lock.read_text().split()[0]))
                except (ValueError, IndexError, OSError):
                    continue
                if node is not None and run_status(spec) == "partial":
                    cluster.remove_node(node, allow_graceful=False)
                    killed["run"] = spec.name
                    return
            time.sleep(0.02)

    try:
        killer = threading.Thread(target=kill_a_node_mid_run, daemon=True)
        killer.start()
        logged = []
        outcomes = run_experiment(
            LONGER, out, seeds=2, workers=2, log=logged.append, ray_address=cluster.address
        )
        killer.join(timeout=5)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert killed, "no run reached a checkpoint before the end: the fault was not injected"
    assert any("tasks on a Ray cluster" in line for line in logged)
    assert all("finished" in o for o in outcomes.values()), outcomes
    # The killed run was retried on the other node and resumed from its checkpoint.
    assert outcomes[killed["run"]].startswith("resumed and finished"), outcomes
    for spec in run_specs(LONGER, out, seeds=2):
        assert run_status(spec) == "finished"
        twin = local / spec.run_dir.relative_to(out)
        assert _lines(spec.run_dir) == _lines(twin), spec.name
    build_report(LONGER, local, seeds=2)
    build_report(LONGER, out, seeds=2)
    assert _summary(out) == _summary(local)


def test_storage_a_node_cannot_write_or_the_driver_cannot_see_is_refused(tmp_path):
    """The probe's two failures, with a stand-in for Ray (one machine cannot have a node that
    does not share its filesystem): a node that cannot write, and a file the driver does not
    see; each is one line naming the directory, and no probe file is left behind."""
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    name, error = probe_storage(str(blocked / "exp"), "t0k3n", "node0123456789abcdef")
    assert name == ".storage-probe-t0k3n-node01234567" and "cannot write there" in error

    A, B, HIDDEN = "aa" * 28, "bb" * 28, "cc" * 28  # Ray's node ids: 28 bytes in hex

    class FakeRay:
        """Runs the probe "on" each node: for node ``HIDDEN``, into another directory."""

        def __init__(self, nodes, elsewhere=None):
            self._nodes, self.elsewhere = nodes, elsewhere

        def nodes(self):
            return [{"NodeID": n, "Alive": True, "Resources": {"CPU": 1.0}} for n in self._nodes]

        def remote(self, **_):
            outer = self

            def wrap(fn):
                class Remote:
                    def options(self, scheduling_strategy):
                        node = scheduling_strategy.node_id

                        class Call:
                            def remote(self, path, token, node_id):
                                where = outer.elsewhere if node == HIDDEN else path
                                return fn(str(where), token, node_id)

                        return Call()

                return Remote()

            return wrap

        def get(self, refs):
            return refs

    out = tmp_path / "exp"
    assert check_storage(FakeRay([A, B]), out) == 2
    assert list(out.iterdir()) == []  # the probes are removed
    with pytest.raises(StorageError, match="cannot write there") as e:
        check_storage(FakeRay([A]), blocked / "exp")
    assert "\n" not in str(e.value)
    with pytest.raises(StorageError, match="filesystem every node shares") as e:
        check_storage(FakeRay([A, HIDDEN], elsewhere=tmp_path / "other"), out)
    assert "\n" not in str(e.value) and list(out.iterdir()) == []


def test_task_env_runs_one_thread_per_cpu_task_and_jax_on_cuda_for_a_gpu_task():
    from behavior_priors.experiments.cluster import task_env
    from behavior_priors.experiments.runner import SINGLE_THREAD_XLA_FLAGS

    assert task_env(1, 0) == {"XLA_FLAGS": SINGLE_THREAD_XLA_FLAGS}
    assert task_env(4, 0) == {}
    assert task_env(1, 1) == {"XLA_FLAGS": SINGLE_THREAD_XLA_FLAGS, "JAX_PLATFORMS": "cuda"}
    assert task_env(8, 0.5) == {"JAX_PLATFORMS": "cuda"}


def _cuda_jax() -> bool:
    """Whether JAX in a fresh process (this one is held to the CPU) finds a CUDA GPU."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "JAX_PLATFORMS": "cuda"}
    done = subprocess.run(
        [sys.executable, "-c", "import jax; print(jax.default_backend())"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode == 0 and done.stdout.strip().endswith("gpu")


def test_a_gpu_task_trains_its_runs_on_the_gpu(tmp_path):
    """On a machine with an NVIDIA GPU and the cuda extra: a one-node cluster with the GPU, the
    smoke experiment with one GPU per task; the task's JAX is on the GPU and every run finishes.
    Skipped elsewhere (the test suite never needs a GPU)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (the dist extra)")
    if not _cuda_jax():
        pytest.skip("no CUDA GPU for JAX here (needs an NVIDIA GPU and the cuda extra)")
    from behavior_priors.experiments.cluster import task_env

    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False)
    try:

        def backend():
            import jax

            return jax.default_backend()

        probe = ray.remote(num_gpus=1, runtime_env={"env_vars": task_env(1, 1)})(backend)
        assert ray.get(probe.remote()) == "gpu"
        outcomes = run_experiment(
            SMOKE,
            tmp_path / "gpu",
            seeds=1,
            log=lambda _: None,
            ray_address="auto",
            gpus_per_unit=1,
        )
    finally:
        ray.shutdown()
    assert all(o.startswith("finished") for o in outcomes.values()), outcomes
