"""Experiments: named comparisons (methods x tasks x seeds), their runner and their reports.

``behavior-priors reproduce NAME --seeds N`` (or :func:`reproduce`) trains every run not
finished yet and writes ``report.md`` and ``curves.png``. See ``docs/experiments.md``.
"""

from behavior_priors.experiments.registry import (
    EXPERIMENTS,
    Experiment,
    ExperimentTask,
    get_experiment,
)
from behavior_priors.experiments.report import Report, build_report
from behavior_priors.experiments.runner import RunSpec, run_experiment, run_specs, run_status

__all__ = [
    "EXPERIMENTS",
    "Experiment",
    "ExperimentTask",
    "Report",
    "RunSpec",
    "build_report",
    "get_experiment",
    "reproduce",
    "run_experiment",
    "run_specs",
    "run_status",
]


def reproduce(
    name: str,
    out=None,
    seeds: int | None = None,
    budget_scale: float = 1.0,
    workers: int = 1,
    log=print,
    vmap_seeds: bool = True,
    publish: str | None = None,
    ray_address: str | None = None,
    cpus_per_unit: float = 1.0,
    gpus_per_unit: float = 0.0,
) -> Report:
    """Run experiment ``name`` (skipping finished runs) and build its report; the Python API of
    ``behavior-priors reproduce``. ``out`` defaults to ``results/<name>``; ``workers`` and
    ``vmap_seeds`` as in :func:`run_experiment`.

    The experiment's ``parts`` run afterwards into ``<out>/<part>``, each with its own report;
    the returned report's ``outcomes`` and ``missing`` cover them too (runs named
    ``<part>/<run>``) and ``parts`` lists their reports.

    ``publish``: a directory (``docs/results``) to write the result page into
    (:func:`behavior_priors.experiments.pages.publish`): ``NAME.md``, ``NAME.png``, the row
    ``NAME.json`` and the summary table ``README.md``.

    ``ray_address``, ``cpus_per_unit``, ``gpus_per_unit``: train on a Ray cluster
    (:func:`run_experiment`, :mod:`.cluster`); ``out`` must then be on storage every node shares.
    """
    from pathlib import Path

    from behavior_priors.experiments.stats import require_rliable

    experiment = get_experiment(name)
    require_rliable()  # before an hour of training, not after it
    out = Path(out) if out is not None else Path("results") / name
    cluster = dict(
        ray_address=ray_address, cpus_per_unit=cpus_per_unit, gpus_per_unit=gpus_per_unit
    )
    outcomes = run_experiment(
        experiment, out, seeds, budget_scale, workers, log, vmap_seeds, **cluster
    )
    command = f"behavior-priors reproduce {name}"
    if seeds is not None:
        command += f" --seeds {seeds}"
    if budget_scale != 1.0:
        command += f" --budget-scale {budget_scale:g}"
    part_reports = []
    for part in experiment.parts:
        sub = reproduce(
            part, out / part, seeds, budget_scale, workers, log, vmap_seeds, None, **cluster
        )
        outcomes.update({f"{part}/{k}": v for k, v in sub.outcomes.items()})
        part_reports.append(sub)
    report = build_report(experiment, out, seeds, budget_scale, command, part_reports)
    report.outcomes = outcomes
    for sub in part_reports:
        report.missing += [f"{sub.path.parent.name}/{m}" for m in sub.missing]
    if publish is not None:
        from behavior_priors.experiments.pages import publish as publish_page

        report.page = publish_page(experiment, out, publish, command + f" --publish {publish}")
    return report
