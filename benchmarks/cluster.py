"""An experiment on a local 2-node Ray cluster against the local runner, on one machine.

Trains the same experiment's runs twice, into fresh directories: with the local runner
(``--workers`` spawned processes) and as Ray tasks on a local cluster of ``--workers`` worker
nodes of one CPU each (``ray.cluster_utils.Cluster``; the head has no CPUs, so it runs no task).
Both split every method's seeds into ``--workers`` groups trained batched, so both train the same
units. Reports each way's wall-clock seconds (cluster start excluded, the storage probe
included), the seconds the units themselves report (process start, JAX import, compilation and
training), and the difference per unit: what scheduling a unit on Ray costs over a local process.

    .venv/bin/python benchmarks/cluster.py --experiment smoke --budget-scale 20 --seeds 2
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path


def _train(specs, workers: int, ray=None) -> tuple[float, list[float]]:
    from behavior_priors.experiments.runner import train_specs

    seconds: list[float] = []
    outcomes: dict[str, str] = {}

    def report(name: str, outcome: str, s: float) -> None:
        if not outcome.startswith("finished"):
            raise RuntimeError(f"{name}: {outcome}")
        outcomes[name] = outcome
        seconds.append(s)

    t0 = time.perf_counter()
    resources = {"cpus_per_unit": 1.0, "gpus_per_unit": 0.0}
    train_specs(specs, workers, True, ray, resources, outcomes, report, lambda _: None)
    return time.perf_counter() - t0, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiment", default="smoke")
    p.add_argument("--budget-scale", type=float, default=20.0)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--workers", type=int, default=2, help="local processes = cluster nodes")
    args = p.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    from behavior_priors.experiments import get_experiment
    from behavior_priors.experiments.cluster import connected
    from behavior_priors.experiments.runner import run_specs

    experiment = get_experiment(args.experiment)
    result = {
        "experiment": args.experiment,
        "budget_scale": args.budget_scale,
        "seeds": args.seeds,
        "workers": args.workers,
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} CPUs",
        "date": time.strftime("%Y-%m-%d"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        local = run_specs(experiment, Path(tmp) / "local", args.seeds, args.budget_scale)
        result["runs"] = len(local)
        wall, unit_s = _train(local, args.workers)
        result["local"] = {"wall_s": round(wall, 1), "unit_s": [round(s, 1) for s in unit_s]}

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        for _ in range(args.workers):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        try:
            out = (Path(tmp) / "cluster").resolve()
            specs = run_specs(experiment, out, args.seeds, args.budget_scale)
            t0 = time.perf_counter()
            with connected(cluster.address, out) as connection:
                probe_s = time.perf_counter() - t0
                wall, unit_s = _train(specs, args.workers, connection)
            result["cluster"] = {
                "wall_s": round(wall + probe_s, 1),
                "storage_probe_s": round(probe_s, 2),
                "unit_s": [round(s, 1) for s in unit_s],
            }
        finally:
            ray.shutdown()
            cluster.shutdown()
    units = len(result["local"]["unit_s"])
    result["units"] = units
    extra = result["cluster"]["wall_s"] - result["local"]["wall_s"]
    result["cluster_over_local"] = round(result["cluster"]["wall_s"] / result["local"]["wall_s"], 3)
    result["extra_s_per_unit"] = round(extra / units, 2)
    out_dir = Path(__file__).parent / "out"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "cluster.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
