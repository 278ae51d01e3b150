"""Result pages: an experiment's report published into ``docs/results/`` with its provenance.

``behavior-priors reproduce NAME --publish docs/results`` writes, after the report:

* ``NAME.md``: the report (curves, tables, tuning, verdict) with the commit that trained the
  runs, the command, the budget and the wall time;
* ``NAME.png``: its figure; ``NAME.json``: the row of the summary table;
* ``README.md``: the table of every claim (from all ``*.json`` pages there), listing the
  registered claims that have no page yet as such.

Rebuilt from the same runs, a page and its figure are the same byte for byte apart from wall
times (the wall-time panel and column): the statistics are seeded and the figure carries no
software version.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from behavior_priors.experiments.registry import EXPERIMENTS, Experiment
from behavior_priors.experiments.runner import EXPERIMENT_FILE
from behavior_priors.experiments.verdict import MIN_SEEDS, RULE_VERSION
from behavior_priors.training.files import atomic_write_text

INDEX = "README.md"


def publish(experiment: Experiment, out: str | Path, dest: str | Path, command: str) -> Path:
    """Copy the report under ``out`` into ``dest`` as ``NAME.md`` / ``NAME.png`` /
    ``NAME.json`` (its parts first, as their own pages) and rebuild ``dest/README.md``."""
    out, dest = Path(out), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for part in experiment.parts:
        publish(EXPERIMENTS[part], out / part, dest, command)
    name = experiment.name
    summary = json.loads((out / "summary.json").read_text())
    info = json.loads((out / EXPERIMENT_FILE).read_text())
    text = (out / "report.md").read_text().replace("](curves.png)", f"]({name}.png)")
    for part in experiment.parts:
        text = text.replace(f"]({part}/report.md)", f"]({part}.md)")
    title, _, body = text.partition("\n")
    minutes = info.get("wall_seconds", 0.0) / 60
    workers = info.get("workers", "?")
    seeds = sorted({seed for m in summary["methods"] for seed in m["seeds"]})
    provenance = [
        "",
        f"Claim {experiment.claim_label} of [paper.md](../paper.md) section 7; the summary of "
        f"all claims is in [README.md]({INDEX}).",
        "",
        f"- commit: `{info.get('commit') or 'unknown'}` (the code that trained these runs)",
        f"- command: `{command}`",
        f"- seeds: {len(seeds)} per method; budget: {_budget(experiment, summary)}",
        f"- wall time: {minutes:.0f} min with {workers} worker processes on this machine",
        f"- runs not finished: {len(summary['missing'])}",
    ]
    tmp_png = dest / f".{name}.png.tmp"
    shutil.copyfile(out / "curves.png", tmp_png)
    tmp_png.replace(dest / f"{name}.png")
    atomic_write_text(dest / f"{name}.md", "\n".join([title, *provenance, body]))
    row = {
        "experiment": name,
        "claim": experiment.claim_label,
        "command": command,
        "seeds": len(seeds),
        "budget": _budget(experiment, summary),
        "wall_minutes": round(minutes, 1),
        "verdict": summary.get("verdict"),
        "verdict_rule": RULE_VERSION,
        "missing": len(summary["missing"]),
    }
    atomic_write_text(dest / f"{name}.json", json.dumps(row, indent=2) + "\n")
    write_index(dest)
    return dest / f"{name}.md"


def _budget(experiment: Experiment, summary: dict) -> str:
    scale = summary.get("budget_scale", 1.0)
    text = f"{experiment.total_env_steps * scale:,.0f} env steps per run"
    if experiment.source is not None:
        text += f" after {experiment.source.total_env_steps * scale:,.0f} on the source"
    if experiment.tuning is not None:
        t = experiment.tuning
        n = len(next(iter(t.grid.values())))
        text += (
            f"; tuning {n} candidates x {t.seeds} seeds x {t.total_env_steps * scale:,.0f} "
            "steps per method"
        )
    return text


def write_index(dest: str | Path) -> Path:
    """``dest/README.md``: one row per registered claim, from the pages in ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    rows = []
    for e in EXPERIMENTS.values():
        if not e.claim_label:
            continue
        page = dest / f"{e.name}.json"
        command = f"behavior-priors reproduce {e.name} --publish docs/results"
        if page.exists():
            r = json.loads(page.read_text())
            verdict = r["verdict"] or "-"
            if r.get("verdict_rule", 1) < RULE_VERSION and verdict in ("agree", "disagree"):
                # Given before "no worse" needed a margin and a verdict 10 seeds a method.
                verdict += " (earlier rule"
                if r["seeds"] < MIN_SEEDS:
                    verdict += f"; inconclusive under the current one at {r['seeds']} seeds"
                verdict += ")"
            if r["missing"]:
                verdict += f" ({r['missing']} runs not finished)"
            rows.append(
                f"| {e.claim_label} | [{e.name}]({e.name}.md) | `{r['command']}` | {r['seeds']} "
                f"| {r['budget']} | {r['wall_minutes']:.0f} min | **{verdict}** |"
            )
        else:
            rows.append(f"| {e.claim_label} | {e.name} | `{command}` | - | - | - | not run yet |")
    text = "\n".join(
        [
            "# Results: the paper's claims at CPU scale",
            "",
            "One row per claim of [paper.md](../paper.md) section 7. Each page gives the exact "
            "command, the commit that trained its runs, the figure (learning curves against "
            "steps and wall time, and rliable's performance profile), the tuning every method "
            "got, the statistics (interquartile means with stratified-bootstrap intervals, "
            "probability of improvement, permutation tests) and the verdict with what would "
            "change it. Verdicts follow a fixed rule (`behavior_priors.experiments.verdict`); "
            "how the protocol works is in [docs/experiments.md](../experiments.md). Wall times "
            "are on a 2-core machine with 2 worker processes.",
            "",
            "| claim | experiment | command | seeds | budget | wall time | verdict |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    atomic_write_text(dest / INDEX, text)
    return dest / INDEX
