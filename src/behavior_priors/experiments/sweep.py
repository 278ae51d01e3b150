"""Sweeps: a preset trained at every point of a grid of settings x seeds, with a summary.

``behavior-priors sweep --preset P --grid agent.kl_cost 0.01 0.1 --grid agent.latent_dim 4 8
--seeds 5 --out DIR`` trains every combination of the grid's values (the Cartesian product, in
the order given) for seeds 0..N-1 on the same machinery as ``reproduce`` (local worker
processes, seeds trained batched, or Ray tasks with ``--ray-address``): finished runs are
skipped, interrupted ones resumed, so the same command continues a sweep. Layout::

    DIR/
      sweep.json                  the sweep (preset, fixed settings, grid, seeds); a later call
                                  with another sweep into DIR is refused
      p<k>/seed<s>/               run directories, point k of the grid
      sweep.md, sweep-summary.json   written by :func:`summarise_sweep`

The summary has, per point, the metric's final value and its area under the curve (the mean
metric over training) for every seed, their means, and the interquartile mean with its 95%
stratified-bootstrap interval (rliable, as the experiment pages).
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from behavior_priors.training.config import TrainConfig

SWEEP_FILE = "sweep.json"


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def setting_name(key: str) -> str:
    """``agent.kl-cost`` -> ``agent.kl_cost``, checked against the config's fields
    (``KeyError`` with the closest names otherwise)."""
    from behavior_priors.agents.svg0 import SVG0Config

    name = key.replace("-", "_")
    known = [n for n in _field_names(TrainConfig) if n != "agent"]
    known += [f"agent.{n}" for n in _field_names(SVG0Config)]
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown setting {key!r}{hint}")
    return name


def apply_settings(config: TrainConfig, settings: Mapping[str, Any]) -> TrainConfig:
    """``config`` with ``{"agent.kl_cost": 0.1, "num_envs": 4, ...}`` applied (the config's
    own checks refuse bad values)."""
    agent = {k.removeprefix("agent."): v for k, v in settings.items() if k.startswith("agent.")}
    top = {k: v for k, v in settings.items() if not k.startswith("agent.")}
    return config.replace(agent=config.agent.replace(**agent), **top)


@dataclass(frozen=True)
class Sweep:
    """A grid of settings over one preset.

    Attributes:
      preset: the preset every run starts from.
      grid: ``{setting: values}``; settings are TrainConfig fields or ``agent.<field>``.
      seeds: seeds 0..seeds-1 of every point.
      fixed: settings applied to every run (e.g. ``total_env_steps``).
      metric: the evaluation metric the summary reads (``eval/episode_return`` or
        ``eval/success_rate``).
    """

    preset: str
    grid: Mapping[str, tuple[Any, ...]]
    seeds: int = 3
    fixed: Mapping[str, Any] = field(default_factory=dict)
    metric: str = "eval/episode_return"

    def __post_init__(self):
        if not self.grid:
            raise ValueError("a sweep needs at least one setting to vary (--grid KEY V1 V2 ...)")
        for key, values in self.grid.items():
            if not values:
                raise ValueError(f"--grid {key}: give at least one value")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise ValueError(f"seeds must be an integer >= 1, got {self.seeds!r}")
        for key in (*self.grid, *self.fixed):
            setting_name(key)
        for point in self.points():  # every combination is a valid config before any training
            self.config(point, 0)

    def points(self) -> list[dict[str, Any]]:
        """The grid's combinations, the last setting varying fastest."""
        keys = list(self.grid)
        return [
            dict(zip(keys, combo, strict=True)) for combo in itertools.product(*self.grid.values())
        ]

    def config(self, point: Mapping[str, Any], seed: int) -> TrainConfig:
        from behavior_priors.training.presets import get_preset

        base = apply_settings(get_preset(self.preset), self.fixed)
        return apply_settings(base, point).replace(seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (tuples become lists), as ``sweep.json`` holds it."""
        return json.loads(
            json.dumps(
                {
                    "preset": self.preset,
                    "grid": {k: list(v) for k, v in self.grid.items()},
                    "fixed": dict(self.fixed),
                    "metric": self.metric,
                }
            )
        )


def sweep_specs(sweep: Sweep, out: str | Path, seeds: int | None = None) -> list:
    """A :class:`~behavior_priors.experiments.runner.RunSpec` per point and seed, seed-major
    (an interrupted sweep has comparable seeds of every point)."""
    from behavior_priors.experiments.runner import RunSpec

    out = Path(out)
    n = sweep.seeds if seeds is None else seeds
    return [
        RunSpec(
            f"p{k}", sweep.preset, seed, sweep.config(point, seed), out / f"p{k}" / f"seed{seed}"
        )
        for seed in range(n)
        for k, point in enumerate(sweep.points())
    ]


def _check_sweep_file(sweep: Sweep, out: Path) -> None:
    """Record the sweep in ``out/sweep.json``; refuse a directory that holds another sweep."""
    from behavior_priors.training.files import atomic_write_text

    path = out / SWEEP_FILE
    mine = sweep.to_dict()
    if path.exists():
        theirs = json.loads(path.read_text())
        if theirs != mine:
            changed = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            raise ValueError(
                f"{out} holds another sweep (its {', '.join(changed)} differ); choose another "
                "--out or give the same sweep"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(mine, indent=1) + "\n")


def run_sweep(
    sweep: Sweep,
    out: str | Path,
    *,
    workers: int = 1,
    vmap_seeds: bool = True,
    log: Callable[[str], None] = print,
    ray_address: str | None = None,
    cpus_per_unit: float = 1.0,
    gpus_per_unit: float = 0.0,
) -> dict[str, str]:
    """Train every run of ``sweep`` not finished yet (``reproduce``'s machinery: skip finished,
    resume interrupted, seeds batched, local workers or Ray tasks); ``{run name: outcome}``."""
    import contextlib

    from behavior_priors.experiments.runner import run_status, train_specs

    out = Path(out) if ray_address is None else Path(out).resolve()
    specs = sweep_specs(sweep, out)
    _check_sweep_file(sweep, out)
    outcomes = {s.name: "skipped: finished before" for s in specs if run_status(s) == "finished"}
    todo = [s for s in specs if s.name not in outcomes]
    log(
        f"sweep of {sweep.preset}: {len(sweep.points())} points x {sweep.seeds} seeds, "
        f"{len(specs) - len(todo)} runs finished before, into {out}"
    )

    def report(name: str, outcome: str, seconds: float) -> None:
        outcomes[name] = outcome
        log(f"{name}: {outcome} ({seconds / 60:.1f} min)")

    with contextlib.ExitStack() as stack:
        ray = None
        if ray_address is not None:
            from behavior_priors.experiments.cluster import connected

            ray = stack.enter_context(connected(ray_address, out))
        resources = dict(cpus_per_unit=cpus_per_unit, gpus_per_unit=gpus_per_unit)
        train_specs(todo, workers, vmap_seeds, ray, resources, outcomes, report, log)
    return outcomes


@dataclass
class SweepSummary:
    path: Path  # sweep.md
    rows: list[dict[str, Any]]
    missing: list[str]


def summarise_sweep(sweep: Sweep, out: str | Path) -> SweepSummary:
    """Write ``sweep.md`` and ``sweep-summary.json`` from the finished runs: per point, every
    seed's final metric and area under the curve, their means, and the IQM with its 95%
    bootstrap interval. Points with unfinished runs are listed as missing, not summarised."""
    from behavior_priors.experiments.report import summarise
    from behavior_priors.experiments.runner import run_status
    from behavior_priors.training.files import atomic_write_text

    out = Path(out)
    specs = sweep_specs(sweep, out)
    missing = [s.name for s in specs if run_status(s) != "finished"]
    rows = []
    for k, point in enumerate(sweep.points()):
        mine = [s for s in specs if s.task == f"p{k}"]
        if any(s.name in missing for s in mine):
            continue
        summary = summarise(
            [s.run_dir for s in mine],
            [s.seed for s in mine],
            sweep.metric,
            float("inf"),
            f"p{k}",
            sweep.preset,
        )
        rows.append(
            {
                "point": f"p{k}",
                "settings": point,
                "seeds": summary.seeds,
                "final": summary.final.values,
                "final_mean": summary.final.mean,
                "final_iqm": dataclasses.asdict(summary.final_iqm),
                "auc": summary.auc.values,
                "auc_mean": summary.auc.mean,
                "auc_iqm": dataclasses.asdict(summary.auc_iqm),
            }
        )
    best = max(rows, key=lambda r: r["auc_mean"])["point"] if rows else None
    data = {"sweep": sweep.to_dict(), "seeds": sweep.seeds, "rows": rows, "missing": missing}
    atomic_write_text(out / "sweep-summary.json", json.dumps(data, indent=1) + "\n")
    atomic_write_text(out / "sweep.md", _markdown(sweep, rows, missing, best))
    return SweepSummary(out / "sweep.md", rows, missing)


def _markdown(
    sweep: Sweep, rows: Sequence[dict[str, Any]], missing: Sequence[str], best: str | None
) -> str:
    metric = sweep.metric
    keys = list(sweep.grid)
    lines = [
        f"# Sweep of `{sweep.preset}`",
        "",
        f"{len(sweep.points())} points x {sweep.seeds} seeds; fixed settings: "
        + (", ".join(f"`{k}={v!r}`" for k, v in sweep.fixed.items()) or "none")
        + f". Metric: `{metric}` (final value, and its area under the curve: the mean over "
        "training). IQM: interquartile mean over seeds with its 95% stratified-bootstrap "
        "interval (rliable).",
        "",
        "| point | " + " | ".join(f"`{k}`" for k in keys) + " | final, mean | final, IQM [95% CI] "
        "| AUC, mean | AUC, IQM [95% CI] |",
        "| --- | " + " | ".join("---" for _ in keys) + " | --: | --- | --: | --- |",
    ]
    for r in rows:
        mark = " (highest mean AUC)" if r["point"] == best else ""
        cells = [repr(r["settings"][k]) for k in keys]
        fi, ai = r["final_iqm"], r["auc_iqm"]
        lines.append(
            f"| {r['point']}{mark} | "
            + " | ".join(cells)
            + f" | {r['final_mean']:.3g} | {fi['point']:.3g} [{fi['low']:.3g}, {fi['high']:.3g}]"
            f" | {r['auc_mean']:.3g} | {ai['point']:.3g} [{ai['low']:.3g}, {ai['high']:.3g}] |"
        )
    if missing:
        lines += ["", f"Not finished ({len(missing)} runs): " + ", ".join(missing)]
    return "\n".join(lines) + "\n"
