"""Learning curves of one or several run directories: mean and 95% interval across seeds."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from behavior_priors.training.episodes import TASK_PREFIX
from behavior_priors.training.logger import read_metrics


def bootstrap_ci(
    values: np.ndarray, confidence: float = 0.95, num_resamples: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds and a percentile-bootstrap confidence interval of that mean.

    Args:
      values: ``[num_seeds, num_points]``.

    Returns:
      ``(mean, low, high)``, each ``[num_points]``. With one seed, low = high = mean.
    """
    values = np.asarray(values, np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError(f"values must be [num_seeds, num_points], got {values.shape}")
    mean = values.mean(0)
    n = values.shape[0]
    if n == 1:
        return mean, mean.copy(), mean.copy()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(num_resamples, n))
    means = values[idx].mean(1)  # [num_resamples, num_points]
    alpha = (1.0 - confidence) / 2
    return mean, np.quantile(means, alpha, axis=0), np.quantile(means, 1 - alpha, axis=0)


def load_curve(run_dir: str | Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """``(env_steps, values)`` of one metric in one run (lines without it are skipped)."""
    rows = [r for r in read_metrics(run_dir) if isinstance(r.get(metric), int | float)]
    if not rows:
        raise KeyError(f"metric {metric!r} never logged in {run_dir}")
    return (
        np.array([r["env_steps"] for r in rows], np.float64),
        np.array([r[metric] for r in rows], np.float64),
    )


def aggregate(run_dirs: Sequence[str | Path], metric: str, num_points: int = 100):
    """Every run's curve on common env steps and ``(steps [P], mean [P], low [P], high [P],
    num_seeds)``: the logged steps themselves when every run logged the metric at the same
    steps (evaluations of seeds of one config), else a grid of ``num_points`` up to the
    shortest run, each run interpolated onto it."""
    curves = [load_curve(d, metric) for d in run_dirs]
    if all(np.array_equal(s, curves[0][0]) for s, _ in curves):
        grid = curves[0][0]
        values = np.stack([v for _, v in curves])
    else:
        end = min(s[-1] for s, _ in curves)
        start = max(s[0] for s, _ in curves)
        grid = np.linspace(start, end, num_points) if end > start else np.array([end])
        values = np.stack([np.interp(grid, s, v) for s, v in curves])
    mean, low, high = bootstrap_ci(values)
    return grid, mean, low, high, len(curves)


def default_metrics(lines: Sequence[dict]) -> tuple[str, str]:
    """The panels ``plot`` draws when none is named, from the runs' log ``lines``: the
    training return, and the evaluation success rate where any success was logged, else the
    evaluation return (a task with no notion of success logs a success rate of 0 throughout,
    which says nothing)."""
    succeeded = any(line.get("eval/success_rate", 0) > 0 for line in lines)
    return ("charts/episode_return", "eval/success_rate" if succeeded else "eval/episode_return")


def group_runs(run_dirs: Sequence[str | Path]) -> dict[str, list[Path]]:
    """Group run directories by label: runs named ``<label>-seed<N>`` (or ``<label>/seed<N>``)
    share a label; any other run is its own group."""
    groups: dict[str, list[Path]] = defaultdict(list)
    for d in map(Path, run_dirs):
        name = d.name
        if "seed" in name and name.rsplit("seed", 1)[1].isdigit():
            label = name.rsplit("seed", 1)[0].rstrip("-_") or d.parent.name
        else:
            label = name
        groups[label].append(d)
    return dict(groups)


def per_task_metrics(lines: Sequence[dict], metric: str) -> list[str]:
    """The per-task metrics of ``metric`` in metric log ``lines``
    (``{metric}/task_<label>``, :func:`~behavior_priors.training.episodes.per_task_means`),
    in the order of their labels (numbers by value: ``task_2`` before ``task_10``)."""
    prefix = f"{metric}/{TASK_PREFIX}"
    found = {k for line in lines for k in line if k.startswith(prefix)}

    def natural(key: str) -> list:
        # re.split with a group alternates text and digits, so two keys compare part by part.
        return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]

    return sorted(found, key=natural)


# Per-task curves overlap: each task gets its own marker as well as its colour, and each group
# of runs its own line style.
_TASK_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
_GROUP_STYLES = ("-", "--", ":", "-.")


def learning_curves(
    run_dirs: Sequence[str | Path],
    metrics: Sequence[str] = ("charts/episode_return", "eval/episode_return"),
    title: str | None = None,
    per_task: bool = False,
):
    """The figure :func:`plot_runs` saves (a ``matplotlib.figure.Figure``; close it with
    ``matplotlib.pyplot.close``): one panel per metric, one curve per group of runs (mean and
    95% interval across its seeds). ``per_task``: a panel whose metric was logged per task
    (:func:`per_task_metrics`) draws one curve per task and group instead, with markers,
    labelled ``"<group>: <task> (n=<seeds>)"``; other panels are drawn as without it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = group_runs(run_dirs)
    lines = (
        [ln for dirs in groups.values() for d in dirs for ln in read_metrics(d)] if per_task else []
    )
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        tasks = per_task_metrics(lines, metric)
        if tasks:
            plotted = _draw_per_task(ax, groups, tasks)
            ax.set_ylabel(f"{metric} (per task)")
        else:
            plotted = _draw_groups(ax, groups, metric)
            ax.set_ylabel(metric)
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
        if plotted:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, f"no {metric} logged", ha="center", transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _draw_groups(ax, groups: dict[str, list[Path]], metric: str) -> bool:
    """One curve per group (mean and 95% interval); whether any was drawn."""
    plotted = False
    for label, dirs in sorted(groups.items()):
        try:
            steps, mean, low, high, n = aggregate(dirs, metric)
        except KeyError:
            continue
        # Markers on sparse curves (evaluations), so a single point shows.
        marker = "o" if len(steps) <= 30 else None
        (line,) = ax.plot(steps, mean, marker=marker, markersize=4, label=f"{label} (n={n})")
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
        plotted = True
    return plotted


def _draw_per_task(ax, groups: dict[str, list[Path]], tasks: Sequence[str]) -> bool:
    """One curve per task metric in ``tasks`` and group (mean and 95% interval across the
    group's seeds that logged it); whether any was drawn."""
    plotted = False
    for g, (label, dirs) in enumerate(sorted(groups.items())):
        for t, key in enumerate(tasks):
            try:
                steps, mean, low, high, n = aggregate(dirs, key)
            except KeyError:  # no episode of this task in some run of the group
                continue
            name = key.rsplit("/", 1)[1].removeprefix(TASK_PREFIX)
            # Every point marked on sparse curves, about 20 spread over a dense one.
            (line,) = ax.plot(
                steps,
                mean,
                color=f"C{t % 10}",
                linestyle=_GROUP_STYLES[g % len(_GROUP_STYLES)],
                marker=_TASK_MARKERS[t % len(_TASK_MARKERS)],
                markevery=max(1, len(steps) // 20),
                markersize=4,
                label=f"{label}: {name} (n={n})",
            )
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
            plotted = True
    return plotted


def plot_runs(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    metrics: Sequence[str] = ("charts/episode_return", "eval/episode_return"),
    title: str | None = None,
    per_task: bool = False,
) -> Path:
    """Plot each metric (one panel each) for each group of runs, mean and 95% interval, into
    the PNG ``out`` (:func:`learning_curves`; ``per_task``: one curve per task where the
    metric was logged per task)."""
    fig = learning_curves(run_dirs, metrics, title, per_task)
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
