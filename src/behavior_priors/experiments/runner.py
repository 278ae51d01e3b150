"""Run an experiment's runs: skip finished ones, resume interrupted ones, seeds in parallel.

Layout of an experiment directory::

    out/
      experiment.json                   name, seeds, budget scale (a later call must agree)
      tuning/c<k>/<method>/seed<s>/     experiments with a tuning stage: candidate k, trained first
      <task>/<method>/seed<k>/          one run directory each (see behavior_priors.training.run)
      source/<method>/seed<k>/          transfer experiments: the source runs, trained first
      report.md, curves.png, summary.json   written by behavior_priors.experiments.report

A run is *finished* when its ``final_eval.json`` exists; a run directory with a checkpoint but no
final evaluation is *resumed* from its latest checkpoint (in synchronous mode it then produces the
same metrics as a run never stopped); one with no checkpoint yet starts again.

An experiment with a tuning stage (:mod:`.tuning`) trains its tuning runs first; the runs of a
tuned method exist (in :func:`run_specs`) once its tuning runs have finished and selected its
settings. A transfer experiment trains its source runs next; then each transferred run starts
from the modules of the source run of its seed (:func:`behavior_priors.transfer.transfer`).

``vmap_seeds=True`` trains the new seeds of each method and task together in one process
(:mod:`behavior_priors.training.multiseed`: one vmapped actor and learner for all seeds);
``workers > 1`` trains that many runs (or groups of seeds) at once in separate processes
(``spawn``). On the 2-core machines this project targets, 2 processes of vmapped seeds finish 4
seeds 1.48x sooner than one process running them in turn (vmapped in one process 1.33x, 2
processes of single seeds 1.19x); see ``docs/benchmarks.md`` ("Many seeds").
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from behavior_priors.experiments.registry import Experiment
from behavior_priors.experiments.tuning import TUNING_DIR, tuning_results, tuning_run_dir
from behavior_priors.training.config import TrainConfig
from behavior_priors.training.files import atomic_write_text

EXPERIMENT_FILE = "experiment.json"
SOURCE_DIR = "source"


@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment.

    Attributes:
      stage: ``"target"`` (the runs the report compares), ``"source"`` (runs a transfer
        experiment transfers from; task ``"source"``) or ``"tuning"`` (task ``"tuning/c<k>"``
        for candidate k).
      transfer: the :class:`~behavior_priors.transfer.TransferSpec` a transferred run starts
        from (``None``: trained from scratch).
    """

    task: str
    method: str
    seed: int
    config: TrainConfig
    run_dir: Path
    stage: str = "target"
    transfer: Any = None

    @property
    def name(self) -> str:
        return f"{self.task}/{self.method}/seed{self.seed}"


def run_specs(
    experiment: Experiment, out: str | Path, seeds: int | None = None, budget_scale: float = 1.0
) -> list[RunSpec]:
    """Every run of ``experiment`` with ``seeds`` seeds (default: the experiment's): the tuning
    runs, the source runs of a transfer experiment, then the target runs, each ordered
    seed-major so that an interrupted reproduction has comparable seeds of every method. A
    tuned method's target runs are listed once its tuning has finished (their settings depend
    on it)."""
    n = experiment.seeds if seeds is None else seeds
    if n < 1:
        raise ValueError(f"seeds must be >= 1, got {n}")
    out = Path(out)
    specs = []
    tuned = {}
    if experiment.tuning is not None:
        tuning = experiment.tuning
        tuned = tuning_results(experiment, out)
        size = len(next(iter(tuning.grid.values())))
        for seed in range(tuning.seeds):
            for k in range(size):
                for method in tuning.grid:
                    specs.append(
                        RunSpec(
                            f"{TUNING_DIR}/c{k}",
                            method,
                            seed,
                            experiment.tuning_config(method, k, seed, budget_scale),
                            tuning_run_dir(out, k, method, seed),
                            stage="tuning",
                        )
                    )
    source_dir = {}
    for seed in range(n):
        for method in experiment.source_methods:
            source_dir[method, seed] = out / SOURCE_DIR / method / f"seed{seed}"
            specs.append(
                RunSpec(
                    SOURCE_DIR,
                    method,
                    seed,
                    experiment.source_config(method, seed, budget_scale),
                    source_dir[method, seed],
                    stage="source",
                )
            )
    for seed in range(n):
        for task in experiment.tasks:
            for method in experiment.methods:
                recipe = experiment.transfers.get(method)
                if experiment.tuning is not None and recipe is None and method not in tuned:
                    continue  # its settings are not selected yet
                settings = tuned[method].settings if method in tuned else None
                specs.append(
                    RunSpec(
                        task.label,
                        method,
                        seed,
                        experiment.config(task, method, seed, budget_scale, settings),
                        out / task.label / method / f"seed{seed}",
                        transfer=None
                        if recipe is None
                        else recipe.spec(source_dir[recipe.source_method, seed]),
                    )
                )
    return specs


def config_changes(spec: RunSpec) -> list[str]:
    """How the config in ``spec.run_dir``'s ``run.json`` differs from ``spec.config``:
    ``["total_env_steps: 300000 (run) != 150000 (experiment)", ...]``; empty when they agree
    or the run has not started. Compared as JSON, the form ``run.json`` keeps."""
    from behavior_priors.training.session import read_run

    if not (spec.run_dir / "run.json").exists():
        return []
    stored = read_run(spec.run_dir).get("config", {})
    wanted = json.loads(json.dumps(spec.config.to_dict()))

    def flat(d: dict[str, Any]) -> dict[str, Any]:
        agent = d.get("agent") if isinstance(d.get("agent"), dict) else {}
        return {
            **{k: v for k, v in d.items() if k != "agent"},
            **{f"agent.{k}": v for k, v in agent.items()},
        }

    old, new = flat(stored), flat(wanted)
    missing = object()
    return [
        f"{k}: {old.get(k, '(absent)')!r} (run) != {new.get(k, '(absent)')!r} (experiment)"
        for k in sorted(set(old) | set(new))
        if old.get(k, missing) != new.get(k, missing)
    ]


def check_configs(specs: list[RunSpec]) -> None:
    """Refuse an experiment directory whose runs were made with other settings (an edited
    preset, budget or tuning grid): reusing them would report old runs as the new setting's.
    Raises ``ValueError`` naming each such run and its first differences."""
    changed = [(s, c) for s in specs if (c := config_changes(s))]
    if changed:
        lines = [f"  {s.run_dir}: {'; '.join(c[:3])}" for s, c in changed[:5]]
        more = f"\n  ... and {len(changed) - 5} more" if len(changed) > 5 else ""
        raise ValueError(
            f"{len(changed)} run(s) of this experiment directory were trained with other "
            "settings than the experiment now asks for:\n" + "\n".join(lines) + more + "\n"
            "Choose another --out (or move those runs away) to train the current settings."
        )


def run_status(spec: RunSpec) -> str:
    """``"finished"``, ``"partial"`` (has a checkpoint to resume) or ``"new"``."""
    d = spec.run_dir
    if (d / "final_eval.json").exists():
        return "finished"
    if (d / "run.json").exists() and any((d / "checkpoints").glob("[0-9]*")):
        return "partial"
    return "new"


def _check_experiment_file(experiment: Experiment, out: Path, budget_scale: float) -> None:
    """Write ``experiment.json``, or check that an existing one describes the same runs."""
    path = out / EXPERIMENT_FILE
    info = {"name": experiment.name, "budget_scale": budget_scale}
    if path.exists():
        old = json.loads(path.read_text())
        if {k: old.get(k) for k in info} != info:
            raise ValueError(
                f"{out} holds experiment {old.get('name')!r} at budget scale "
                f"{old.get('budget_scale')}; asked for {experiment.name!r} at {budget_scale}: "
                "choose another --out"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        path,
        json.dumps(
            {
                **info,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "commit": source_commit(),
                "wall_seconds": 0.0,
            }
        ),
    )


def source_commit() -> str | None:
    """The git commit of the code that runs (``None`` outside a git checkout), with
    ``+changes`` when tracked files differ from it."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
            cwd=here.parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return commit.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def _add_wall_time(out: Path, seconds: float, workers: int) -> None:
    """Add ``seconds`` of training to ``experiment.json`` (reproductions that resume add up)."""
    path = out / EXPERIMENT_FILE
    info = json.loads(path.read_text())
    info["wall_seconds"] = round(info.get("wall_seconds", 0.0) + seconds, 1)
    info["workers"] = workers
    atomic_write_text(path, json.dumps(info))


# One XLA thread per worker process (a local worker, a one-CPU Ray task) keeps workers from
# competing for cores.
SINGLE_THREAD_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def _single_thread() -> None:
    # Before JAX starts.
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " " + SINGLE_THREAD_XLA_FLAGS
    ).strip()


def train_unit(specs: list[RunSpec], single_thread: bool) -> list[tuple[str, str, float]]:
    """Train one run, or several seeds of one config together; ``[(name, outcome,
    seconds)]``. Runs in a worker process (or in the caller when ``workers == 1``, or as a Ray
    task: :mod:`.cluster`).

    Safe to call again on the same runs after a crash (a Ray task retried on another node):
    finished runs are skipped; a group whose runs all hold checkpoints of one step resumes
    together (exactly, as a batched run does); otherwise each run resumes or starts alone."""
    if single_thread:
        _single_thread()
    done = [(s.name, "skipped: finished before", 0.0) for s in specs if run_status(s) == "finished"]
    specs = [s for s in specs if run_status(s) != "finished"]
    statuses = {run_status(s) for s in specs}
    mixed = statuses not in ({"new"}, {"partial"})
    if len(specs) <= 1 or mixed or (statuses == {"partial"} and len(_checkpoint_steps(specs)) > 1):
        return done + [_train_one(s) for s in specs]
    return done + _train_together(specs, resume=statuses == {"partial"})


def _checkpoint_steps(specs: list[RunSpec]) -> set[int]:
    """The latest checkpoint step of each run (runs with checkpoints)."""
    return {max(int(p.name) for p in (s.run_dir / "checkpoints").glob("[0-9]*")) for s in specs}


def _train_together(specs: list[RunSpec], resume: bool) -> list[tuple[str, str, float]]:
    """New seeds of one config trained together, or such a group resumed from checkpoints of
    one step."""
    from behavior_priors.training.multiseed import train_seeds
    from behavior_priors.training.run import Interrupted

    t0 = time.perf_counter()
    if not resume:
        for spec in specs:
            if spec.run_dir.exists():  # killed before its first checkpoint: start again
                shutil.rmtree(spec.run_dir)
    init_states = None
    if specs[0].transfer is not None and not resume:
        from behavior_priors.transfer import transfer_state

        def init(spec: RunSpec):
            def init_state(fresh):
                state, provenance = transfer_state(fresh, spec.config, spec.transfer)
                return state, {"transfer": provenance}

            return init_state

        init_states = [init(s) for s in specs]
    try:
        results = train_seeds(
            specs[0].config,
            [s.seed for s in specs],
            [s.run_dir for s in specs],
            init_states=init_states,
        )
    except Interrupted as e:
        outcome = f"interrupted at {e.env_steps} steps"
        return [(s.name, outcome, time.perf_counter() - t0) for s in specs]
    except Exception as e:  # reported per run; the other runs go on
        outcome = f"error: {type(e).__name__}: {e}"
        return [(s.name, outcome, time.perf_counter() - t0) for s in specs]
    seconds = time.perf_counter() - t0
    verb = "resumed and finished" if resume else "finished"
    return [
        (
            s.name,
            f"{verb} with seeds {[x.seed for x in specs]}: success "
            f"{r.final_eval.get('eval/success_rate', float('nan')):.2f}",
            seconds,
        )
        for s, r in zip(specs, results, strict=True)
    ]


def _train_one(spec: RunSpec) -> tuple[str, str, float]:
    """Train or resume one run; returns ``(name, outcome, seconds)``; exceptions become the
    outcome text because some of ours do not pickle."""
    from behavior_priors.training.run import Interrupted, read_run, train

    t0 = time.perf_counter()
    status = run_status(spec)
    try:
        if status == "partial":
            # Compared as JSON: the run file turns tuples (e.g. in env_kwargs) into lists.
            saved = read_run(spec.run_dir)["config"]
            if saved != json.loads(json.dumps(spec.config.to_dict())):
                return spec.name, f"error: {spec.run_dir} holds a run with another config", 0.0
            result = train(None, spec.run_dir, resume=True)
        else:
            if spec.run_dir.exists():  # killed before its first checkpoint: start again
                shutil.rmtree(spec.run_dir)
            if spec.transfer is not None:
                from behavior_priors.transfer import transfer

                result = transfer(spec.config, spec.transfer, spec.run_dir)
            else:
                result = train(spec.config, spec.run_dir)
    except Interrupted as e:
        return spec.name, f"interrupted at {e.env_steps} steps", time.perf_counter() - t0
    except Exception as e:  # reported per run; the other runs go on
        return spec.name, f"error: {type(e).__name__}: {e}", time.perf_counter() - t0
    success = result.final_eval.get("eval/success_rate", float("nan"))
    verb = "resumed and finished" if status == "partial" else "finished"
    return spec.name, f"{verb}: success {success:.2f}", time.perf_counter() - t0


def run_experiment(
    experiment: Experiment,
    out: str | Path,
    seeds: int | None = None,
    budget_scale: float = 1.0,
    workers: int = 1,
    log: Callable[[str], None] = print,
    vmap_seeds: bool = False,
    ray_address: str | None = None,
    cpus_per_unit: float = 1.0,
    gpus_per_unit: float = 0.0,
) -> dict[str, str]:
    """Train every run of ``experiment`` not finished yet; returns ``{run name: outcome}``.

    Finished runs are skipped, interrupted runs resumed. ``vmap_seeds``: the new (not yet
    started) seeds of each method and task train together in one process. ``workers`` runs or
    groups train at once in separate processes (1: in this process, one after another).

    ``ray_address`` (``"auto"``, ``"HOST:PORT"``): train on that Ray cluster instead, each run or
    group of seeds one task of ``cpus_per_unit`` CPUs and ``gpus_per_unit`` GPUs (:mod:`.cluster`;
    ``out`` must be on a filesystem every node shares); ``workers`` then says into how many
    groups each method's new seeds are split.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    # On a cluster the runs' paths are used by other processes in other directories.
    out = Path(out) if ray_address is None else Path(out).resolve()
    run_specs(experiment, out, seeds, budget_scale)  # refuses a bad experiment before a connection
    _check_experiment_file(experiment, out, budget_scale)
    with contextlib.ExitStack() as stack:
        ray = None
        if ray_address is not None:
            from behavior_priors.experiments.cluster import connected

            ray = stack.enter_context(connected(ray_address, out))
        return _run_stages(
            experiment,
            out,
            seeds,
            budget_scale,
            workers,
            log,
            vmap_seeds,
            ray,
            dict(cpus_per_unit=cpus_per_unit, gpus_per_unit=gpus_per_unit),
        )


def _run_stages(
    experiment: Experiment,
    out: Path,
    seeds: int | None,
    budget_scale: float,
    workers: int,
    log: Callable[[str], None],
    vmap_seeds: bool,
    ray: Any,
    resources: dict[str, float],
) -> dict[str, str]:
    """:func:`run_experiment`'s stages, locally or (``ray``: the connected module) on Ray."""
    specs = run_specs(experiment, out, seeds, budget_scale)
    outcomes: dict[str, str] = {}
    finished = [s for s in specs if run_status(s) == "finished"]
    for spec in finished:
        outcomes[spec.name] = "skipped: finished before"
    tuning = "" if experiment.tuning is None else " (after the tuning runs)"
    log(
        f"{experiment.name}: {len(specs)} runs{tuning} ({len(finished)} finished before), "
        f"{experiment.total_env_steps * budget_scale:,.0f} env steps each, into {out}"
    )

    def report(name: str, outcome: str, seconds: float) -> None:
        outcomes[name] = outcome
        done = sum(not o.startswith(("error", "interrupted")) for o in outcomes.values())
        log(f"[{done}] {name}: {outcome} ({seconds / 60:.1f} min)")

    # Tuning runs first (they select the settings of the others), then a transfer experiment's
    # source runs (the target runs start from them). The runs are listed again at each stage:
    # the target runs of a tuned method exist once its tuning has finished.
    for stage in ("tuning", "source", "target"):
        specs = run_specs(experiment, out, seeds, budget_scale)
        # Every run listed so far, before this stage trains anything (the first stage checks
        # them all; later stages add the runs that exist once tuning has finished).
        check_configs(specs)
        stage_todo = [
            s
            for s in specs
            if s.stage == stage and s.name not in outcomes and run_status(s) != "finished"
        ]
        for s in specs:
            if s.stage == stage and s.name not in outcomes and run_status(s) == "finished":
                outcomes[s.name] = "skipped: finished before"
        if stage == "target":
            stage_todo = [s for s in stage_todo if _source_ready(s, report)]
        t0 = time.perf_counter()
        try:
            complete = train_specs(
                stage_todo, workers, vmap_seeds, ray, resources, outcomes, report, log
            )
        finally:
            if stage_todo:
                _add_wall_time(out, time.perf_counter() - t0, workers)
        if not complete:
            break  # interrupted
    return outcomes


def train_specs(
    specs: list[RunSpec],
    workers: int,
    vmap_seeds: bool,
    ray: Any,
    resources: dict[str, float],
    outcomes: dict[str, str],
    report: Callable[[str, str, float], None],
    log: Callable[[str], None],
) -> bool:
    """Train ``specs`` (none finished), grouped into units (``vmap_seeds``: the new seeds of
    one task and method together, split into ``workers`` groups), in ``workers`` local
    processes or (``ray``: the connected module) as Ray tasks with ``resources``; each run's
    outcome goes to ``report``. ``False`` if a run was interrupted. One way of training runs
    for experiments and sweeps."""
    units = _group_seeds(specs, workers) if vmap_seeds else [[s] for s in specs]
    if ray is not None:
        from behavior_priors.experiments.cluster import train_units_on_ray

        train_units_on_ray(ray, units, report, log, **resources)
        return True  # an interrupted driver raises; failed runs are reported
    return _train_units(units, workers, outcomes, report, log)


def _source_ready(spec: RunSpec, report: Callable[[str, str, float], None]) -> bool:
    """Whether a run's source (if any) is finished; if not, the run is reported as skipped."""
    if spec.transfer is None:
        return True
    if (Path(spec.transfer.source) / "final_eval.json").exists():
        return True
    report(spec.name, f"error: its source run {spec.transfer.source} did not finish", 0.0)
    return False


def _train_units(
    units: list[list[RunSpec]],
    workers: int,
    outcomes: dict[str, str],
    report: Callable[[str, str, float], None],
    log: Callable[[str], None],
) -> bool:
    """Train ``units`` (lists of runs trained together) with ``workers`` processes; ``False``
    if a run was interrupted (in this process; workers re-raise ``KeyboardInterrupt``)."""
    if workers == 1:
        for unit in units:
            log(f"training {', '.join(s.name for s in unit)} ...")
            for result in train_unit(unit, False):
                report(*result)
            if any(outcomes[s.name].startswith("interrupted") for s in unit):
                return False
        return True
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = [pool.submit(train_unit, unit, True) for unit in units]
        try:
            for fut in cf.as_completed(futures):
                for result in fut.result():
                    report(*result)
        except KeyboardInterrupt:
            # The workers got the same SIGINT, save their checkpoints and return.
            for f in futures:
                f.cancel()
            raise
    return not any(o.startswith("interrupted") for o in outcomes.values())


def _group_seeds(specs: list[RunSpec], parts: int = 1) -> list[list[RunSpec]]:
    """New runs of one task and method grouped (their configs differ only in the seed), each
    group split into ``parts`` near-equal groups so that ``parts`` workers share every method's
    seeds; runs with a checkpoint stay alone and resume on their own."""
    groups: dict[tuple[str, str], list[RunSpec]] = {}
    units: list[list[RunSpec]] = []
    for spec in specs:
        if run_status(spec) == "partial":
            units.append([spec])
        else:
            key = (spec.task, spec.method)
            if key not in groups:
                groups[key] = []
                units.append(groups[key])
            groups[key].append(spec)
    split = []
    for unit in units:
        n = min(parts, len(unit))
        split += [unit[i::n] for i in range(n)]
    return split
