"""The report of an experiment: curves with bootstrap intervals, and a table of summaries.

For each task and method, over the finished seeds:

* learning curves of the experiment's metric (default ``eval/success_rate``, deterministic
  policy) against environment steps and against wall time (``perf/wall_time_s``: seconds in the
  training loop, evaluations included), mean and 95% percentile-bootstrap interval of the mean;
* **final**: the metric at the last evaluation;
* **AUC**: the area under the metric's curve over the evaluated span, divided by that span
  (trapezoid rule over evaluation points; the mean metric during training: 1.0 is "succeeded
  from the first evaluation on");
* **steps to threshold**: the first evaluation step at which the metric reaches the
  experiment's threshold; seeds that never reach it are counted, not averaged;
* the table aggregates final and AUC over seeds with ``rliable``
  (:mod:`behavior_priors.experiments.stats`): the interquartile mean with its stratified-bootstrap
  95% interval; ``summary.json`` also keeps the plain mean and every seed's value;
* **comparisons** of each method's AUC with the experiment's first method (the baseline): the
  probability of improvement P(method > baseline) with its bootstrap interval (rliable), the
  difference of means, and a one-sided permutation p-value (exact over all splits of the seeds
  when there are at most 20 000, else 20 000 random splits).

Written to ``out/report.md``, ``out/curves.png`` and ``out/summary.json``.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from behavior_priors.experiments.curves import (
    area_under_curve,
    run_curve,
    steps_to_threshold,
)
from behavior_priors.experiments.registry import Experiment
from behavior_priors.experiments.runner import run_specs, run_status
from behavior_priors.experiments.stats import Interval, improvement_interval, iqm_interval
from behavior_priors.training.plotting import bootstrap_ci


def permutation_p_value(x, y, max_exact: int = 20_000, seed: int = 0) -> float:
    """One-sided p-value of ``mean(x) - mean(y)`` under random relabelling of the pooled
    values: the share of splits into groups of ``len(x)`` and ``len(y)`` whose difference is at
    least the observed one. Exact when the number of splits is at most ``max_exact``."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) == 0 or len(y) == 0:
        return math.nan
    pooled, n = np.concatenate([x, y]), len(x)
    observed = x.mean() - y.mean()
    if math.comb(len(pooled), n) <= max_exact:
        groups = np.array(list(itertools.combinations(range(len(pooled)), n)))
        mask = np.zeros((len(groups), len(pooled)), bool)
        np.put_along_axis(mask, groups, True, axis=1)
    else:
        rng = np.random.default_rng(seed)
        order = np.argsort(rng.random((max_exact, len(pooled))), axis=1)
        mask = np.zeros((max_exact, len(pooled)), bool)
        np.put_along_axis(mask, order[:, :n], True, axis=1)
    diffs = (mask @ pooled) / n - ((~mask) @ pooled) / len(y)
    return float(np.mean(diffs >= observed - 1e-12))


@dataclass
class Stat:
    """Mean over seeds with its 95% bootstrap interval, and the per-seed values."""

    mean: float
    low: float
    high: float
    values: list[float]

    @classmethod
    def of(cls, values: list[float]) -> Stat:
        if not values:
            return cls(math.nan, math.nan, math.nan, [])
        m, lo, hi = bootstrap_ci(np.asarray(values, np.float64)[:, None])
        return cls(float(m[0]), float(lo[0]), float(hi[0]), [float(v) for v in values])

    def text(self, fmt: str = ".2f") -> str:
        if not self.values:
            return "-"
        if len(self.values) == 1:
            return f"{self.mean:{fmt}}"
        return f"{self.mean:{fmt}} [{self.low:{fmt}}, {self.high:{fmt}}]"


@dataclass
class MethodSummary:
    task: str
    method: str
    seeds: list[int]
    final: Stat
    auc: Stat
    steps_to_threshold: list[float | None]
    wall_minutes: Stat
    final_iqm: Interval
    auc_iqm: Interval

    @property
    def reached(self) -> list[float]:
        return [s for s in self.steps_to_threshold if s is not None]


def summarise(
    run_dirs: list[Path], seeds: list[int], metric: str, threshold: float, task: str, method: str
) -> MethodSummary:
    """Summary of one method on one task from its runs' ``metrics.jsonl``."""
    finals, aucs, hits, walls = [], [], [], []
    for d in run_dirs:
        steps, wall, values = run_curve(d, metric)
        finals.append(float(values[-1]))
        aucs.append(area_under_curve(steps, values))
        hits.append(steps_to_threshold(steps, values, threshold))
        # The final evaluation may sit on a line of its own without a wall time (a budget that
        # is not a multiple of log_every): take the latest line that has one.
        timed = wall[np.isfinite(wall)]
        if timed.size:
            walls.append(float(timed[-1]) / 60)
    return MethodSummary(
        task,
        method,
        list(seeds),
        Stat.of(finals),
        Stat.of(aucs),
        hits,
        Stat.of(walls),
        iqm_interval(finals),
        iqm_interval(aucs),
    )


def _interp_band(curves: list[tuple[np.ndarray, np.ndarray]], num_points: int = 60):
    """Curves onto a common grid (the span every curve covers): ``(grid, mean, low, high)``."""
    start = max(x[0] for x, _ in curves)
    end = min(x[-1] for x, _ in curves)
    grid = np.linspace(start, end, num_points) if end > start else np.array([end])
    values = np.stack([np.interp(grid, x, y) for x, y in curves])
    return (grid, *bootstrap_ci(values))


@dataclass
class Report:
    path: Path
    figure: Path
    summaries: list[MethodSummary]
    missing: list[str]
    outcomes: dict[str, str] = field(default_factory=dict)  # set by reproduce()


def build_report(
    experiment: Experiment,
    out: str | Path,
    seeds: int | None = None,
    budget_scale: float = 1.0,
    command: str | None = None,
    parts: list[Report] = (),
) -> Report:
    """Summarise the finished runs of ``experiment`` under ``out`` into ``report.md``,
    ``curves.png`` and ``summary.json``; unfinished runs are listed as missing. ``parts``: the
    reports of the experiment's parts, linked from this one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    specs = run_specs(experiment, out, seeds, budget_scale)
    missing = [s.name for s in specs if run_status(s) != "finished"]
    sources = _source_lines(experiment, [s for s in specs if s.stage == "source"])
    tasks = [t.label for t in experiment.tasks]
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.8 * len(tasks)), squeeze=False)
    summaries: list[MethodSummary] = []
    for row, task in zip(axes, tasks, strict=True):
        for method in experiment.methods:
            done = [
                s
                for s in specs
                if s.task == task and s.method == method and run_status(s) == "finished"
            ]
            if not done:
                continue
            dirs = [s.run_dir for s in done]
            summaries.append(
                summarise(
                    dirs,
                    [s.seed for s in done],
                    experiment.metric,
                    experiment.threshold,
                    task,
                    method,
                )
            )
            curves = [run_curve(d, experiment.metric) for d in dirs]
            label = f"{method} (n={len(dirs)})"
            for ax, pairs in (
                (row[0], [(st, v) for st, _, v in curves]),
                (row[1], [(w / 60, v) for _, w, v in curves if np.all(np.isfinite(w))]),
            ):
                if not pairs:
                    continue
                grid, mean, low, high = _interp_band(pairs)
                (line,) = ax.plot(grid, mean, label=label)
                ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        for ax, xlabel in zip(row, ("environment steps", "wall time (minutes)"), strict=True):
            ax.set_xlabel(xlabel)
            ax.set_ylabel(experiment.metric)
            ax.set_title(f"{experiment.name}: {task}", fontsize=10)
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=8)
    fig.tight_layout()
    figure = out / "curves.png"
    fig.savefig(figure, dpi=90)
    plt.close(fig)

    path = out / "report.md"
    links = [
        f"- [{p.path.parent.name}]({p.path.relative_to(out).as_posix()})"
        + (f" ({len(p.missing)} runs not finished)" if p.missing else "")
        for p in parts
    ]
    if links:
        sources = [*sources, "", "Parts of this experiment, each with its own report:", "", *links]
    path.write_text(_markdown(experiment, summaries, missing, figure.name, command, sources))
    (out / "summary.json").write_text(
        json.dumps(
            {
                "experiment": experiment.name,
                "metric": experiment.metric,
                "threshold": experiment.threshold,
                "budget_scale": budget_scale,
                "missing": missing,
                "methods": [asdict(s) for s in summaries],
            },
            indent=2,
        )
    )
    return Report(path, figure, summaries, missing)


def _markdown(
    experiment: Experiment,
    summaries: list[MethodSummary],
    missing: list[str],
    figure: str,
    command: str | None,
    sources: list[str] = (),
) -> str:
    e = experiment
    lines = [
        f"# {e.name}",
        "",
        e.claim,
        "",
    ]
    if command:
        lines += ["```", command, "```", ""]
    lines += [
        f"Metric: `{e.metric}` (deterministic policy); threshold {e.threshold:g}. Final and AUC "
        "are interquartile means over seeds with rliable's stratified-bootstrap 95% intervals; "
        "the curves show the mean with a percentile-bootstrap 95% band; wall minutes are a "
        "mean with its bootstrap interval.",
        "",
        f"![curves]({figure})",
        "",
        "| task | method | seeds | final (IQM) | AUC (IQM) | steps to threshold (reached) "
        "| wall min |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        reached = s.reached
        hit = (
            f"{np.mean(reached):,.0f} ({len(reached)}/{len(s.steps_to_threshold)})"
            if reached
            else f"- (0/{len(s.steps_to_threshold)})"
        )
        lines.append(
            f"| {s.task} | {s.method} | {len(s.seeds)} | {_iqm_text(s.final_iqm)} | "
            f"{_iqm_text(s.auc_iqm)} | "
            f"{hit} | {s.wall_minutes.text('.1f')} |"
        )
    lines += _comparisons(experiment, summaries)
    lines += sources
    if missing:
        lines += ["", f"Not finished (not in the table): {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def _iqm_text(interval: Interval) -> str:
    """``point [low, high]``, or the point alone for one seed (no interval)."""
    if math.isnan(interval.low):
        return "-" if math.isnan(interval.point) else f"{interval.point:.2f}"
    return interval.text()


def _source_lines(experiment: Experiment, specs: list) -> list[str]:
    """Markdown: what each transfer method starts from, and the source runs' final results."""
    if experiment.source is None:
        return []
    lines = [
        "",
        f"Transfer methods start from the source run of the same seed, trained on "
        f"`{experiment.source.task.label}` ({experiment.source.task.body}):",
        "",
    ]
    for name, t in experiment.transfers.items():
        lines.append(
            f"- `{name}`: source `{t.source_method}`, prior {t.prior}, low level "
            f"{t.low_level or 'default'}, policy {t.policy or 'default'}"
        )
    lines += ["", "| source method | seeds finished | final (mean over seeds) |", "|---|---|---|"]
    for method in experiment.source_methods:
        finals = []
        for s in specs:
            f = s.run_dir / "final_eval.json"
            if s.method == method and f.exists():
                finals.append(json.loads(f.read_text()).get(experiment.metric, float("nan")))
        mean = f"{np.mean(finals):.2f}" if finals else "-"
        lines.append(f"| {method} | {len(finals)} | {mean} |")
    return lines


def _comparisons(experiment: Experiment, summaries: list[MethodSummary]) -> list[str]:
    """Markdown rows comparing every method's AUC with the first method's, and the pairs in
    ``experiment.comparisons``, per task."""
    base_method = experiment.methods[0]
    rows = []
    for task in [t.label for t in experiment.tasks]:
        by = {s.method: s for s in summaries if s.task == task}
        pairs = [(m, base_method) for m in by if m != base_method]
        pairs += [p for p in experiment.comparisons if p[1] != base_method]
        for a, b in pairs:
            if a not in by or b not in by or min(len(by[a].seeds), len(by[b].seeds)) < 2:
                continue
            diff = by[a].auc.mean - by[b].auc.mean
            p = permutation_p_value(by[a].auc.values, by[b].auc.values)
            better = improvement_interval(by[a].auc.values, by[b].auc.values)
            rows.append(f"| {task} | {a} - {b} | {better.text()} | {diff:+.3f} | {p:.3f} |")
    if not rows:
        return []
    return [
        "",
        f"AUC against `{base_method}` (and the experiment's other comparisons): probability of "
        f"improvement P(a > b) over pairs of runs with its bootstrap 95% interval (rliable; 0.5 "
        f"is no difference), difference of means, and one-sided permutation p-value (the chance "
        f"that relabelling the seeds gives a difference at least this large).",
        "",
        "| task | comparison | P(a > b) | AUC difference | p-value |",
        "|---|---|---|---|---|",
        *rows,
    ]
