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
from behavior_priors.experiments.registry import Experiment, candidate_text
from behavior_priors.experiments.runner import run_specs, run_status
from behavior_priors.experiments.stats import (
    Interval,
    improvement_interval,
    iqm_interval,
    performance_profile,
    permutation_p_value,
)
from behavior_priors.experiments.tuning import tuning_results
from behavior_priors.experiments.verdict import (
    ALPHA,
    MIN_SEEDS,
    ROW_HEADER,
    WHAT_WOULD_CHANGE,
    Check,
    claim_checks,
    claim_verdict,
)
from behavior_priors.training.plotting import bootstrap_ci


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
    verdict: str | None = None  # the claim's verdict (None: the experiment declares no checks)
    checks: list[Check] = field(default_factory=list)
    page: Path | None = None  # the published page (reproduce(..., publish=DIR))


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
    import matplotlib.ticker

    out = Path(out)
    specs = run_specs(experiment, out, seeds, budget_scale)
    missing = [s.name for s in specs if run_status(s) != "finished"]
    sources = _source_lines(experiment, [s for s in specs if s.stage == "source"])
    tasks = [t.label for t in experiment.tasks]
    fig, axes = plt.subplots(len(tasks), 3, figsize=(15, 3.8 * len(tasks)), squeeze=False)
    summaries: list[MethodSummary] = []
    for row, task in zip(axes, tasks, strict=True):
        finals = {}
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
            finals[method] = summaries[-1].final.values
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
        _profile_panel(row[2], finals, experiment.metric)
        row[0].xaxis.set_major_formatter(
            matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1000:g}k")
        )
        for ax, xlabel in zip(row[:2], ("environment steps", "wall time (minutes)"), strict=True):
            ax.set_xlabel(xlabel)
            ax.set_ylabel(experiment.metric)
            ax.set_title(f"{experiment.name}: {task}", fontsize=10)
        for ax in row:
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=8)
    fig.tight_layout()
    figure = out / "curves.png"
    # No software version in the file: the same runs give the same bytes.
    fig.savefig(figure, dpi=90, metadata={"Software": None})
    plt.close(fig)
    checks = _checks(experiment, summaries)
    verdict = None
    if experiment.verdict:
        # A verdict on some of the seeds would be one chosen by when the report was built.
        verdict = "pending" if missing else claim_verdict(checks)
    tuned = tuning_results(experiment, out)

    path = out / "report.md"
    links = [
        f"- [{p.path.parent.name}]({p.path.relative_to(out).as_posix()})"
        + (f" ({len(p.missing)} runs not finished)" if p.missing else "")
        for p in parts
    ]
    if links:
        sources = [*sources, "", "Parts of this experiment, each with its own report:", "", *links]
    sources = [*_tuning_lines(experiment, tuned), *sources]
    sources += _verdict_lines(experiment, checks, verdict)
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
                "tuning": {m: asdict(r) for m, r in tuned.items()},
                "checks": [asdict(c) for c in checks],
                "verdict": verdict,
            },
            indent=2,
        )
    )
    return Report(path, figure, summaries, missing, verdict=verdict, checks=checks)


def _profile_panel(ax, finals: dict[str, list[float]], metric: str) -> None:
    """rliable's performance profile of the final scores: the share of runs above tau."""
    values = [v for vs in finals.values() for v in vs]
    if not values:
        return
    low, high = (0.0, 1.0) if metric.endswith("success_rate") else (min(values), max(values))
    taus = np.linspace(low, high, 101) if high > low else np.array([low])
    for method, scores in finals.items():
        profile, lo, hi = performance_profile(scores, taus)
        (line,) = ax.plot(
            taus, profile, label=f"{method} (n={len(scores)})", drawstyle="steps-post"
        )
        if np.all(np.isfinite(lo)):
            ax.fill_between(
                taus, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0, step="post"
            )
    ax.set_xlabel(f"final {metric} threshold tau")
    ax.set_ylabel("share of runs above tau")
    ax.set_title("performance profile (final score)", fontsize=10)


def _checks(experiment: Experiment, summaries: list[MethodSummary]) -> list[Check]:
    """The experiment's verdict checks on every task where both methods have runs, as one
    family (Holm, :func:`~.verdict.claim_checks`)."""
    items = []
    for task in [t.label for t in experiment.tasks]:
        by = {s.method: s for s in summaries if s.task == task}
        for a, b, kind in experiment.verdict:
            if a in by and b in by:
                items.append((task, a, b, kind, by[a].auc.values, by[b].auc.values))
    return claim_checks(items, experiment.metric_bounds, margin=experiment.margin)


def _verdict_lines(experiment: Experiment, checks: list[Check], verdict: str | None) -> list[str]:
    if verdict is None:
        return []
    if verdict == "pending":
        return ["", "## Verdict: pending", "", "Given when every run has finished."]
    lines = [
        "",
        f"## Verdict: {verdict}",
        "",
        "Decided by a fixed rule on the per-seed AUCs (`behavior_priors.experiments.verdict`): "
        "a method is significantly better when the one-sided permutation p-value is below the "
        f"check's level (Holm over the claim's checks, family-wise {ALPHA:g}) and the 95% "
        'interval of P(a > b) lies above 0.5; "at least as fast" agrees only when the '
        "interval of the AUC difference excludes a deficit larger than the margin "
        f"({experiment.margin:g} AUC), and disagrees when it shows one; a decided outcome "
        f"needs {MIN_SEEDS} seeds per method; a check is not tested when both methods sit at "
        "the floor or the ceiling. The AUC difference is the effect size, with its bootstrap "
        "interval at the check's level; the last column estimates the seeds per method that "
        "would decide an inconclusive check if the observed difference and spread held.",
        "",
        *ROW_HEADER,
        *[c.row() for c in checks],
        "",
        f"What would change it: {WHAT_WOULD_CHANGE[verdict]}",
    ]
    return lines


def _tuning_lines(experiment: Experiment, tuned: dict) -> list[str]:
    t = experiment.tuning
    if t is None:
        return []
    lines = [
        "",
        "## Tuning",
        "",
        f"Every method trained from scratch got the same budget: {len(next(iter(t.grid.values())))}"
        f" candidate settings x {t.seeds} seeds x {t.total_env_steps:,d} env steps on "
        f"`{t.task.label}` ({t.task.preset_task}, {t.task.body}; not an evaluation task). The "
        "candidate with the highest mean AUC was selected (the first on a tie) and used above.",
        "",
        "| method | candidate | tuning AUC (mean; per seed) | selected |",
        "|---|---|---|---|",
    ]
    for method, candidates in t.grid.items():
        r = tuned.get(method)
        for k, cand in enumerate(candidates):
            if r is None:
                lines.append(f"| {method} | {candidate_text(cand)} | not finished | |")
                continue
            per_seed = ", ".join(f"{a:.2f}" for a in r.aucs[k])
            mark = "**yes**" if k == r.selected else ""
            lines.append(
                f"| {method} | {candidate_text(cand)} | {r.means[k]:.3f}; {per_seed} | {mark} |"
            )
    return lines


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
    if e.notes:
        lines += [e.notes, ""]
    if command:
        lines += ["```", command, "```", ""]
    for t in e.tasks:
        options = ", ".join(f"{k}={v!r}" for k, v in t.env_kwargs.items()) or "the preset's"
        lines += [
            f"Task `{t.label}`: preset task `{t.preset_task}` on the `{t.body}`, environment "
            f"options {options}; {e.total_env_steps:,d} env steps per run.",
            "",
        ]
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
