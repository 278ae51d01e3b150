"""Result pages: what ``reproduce --publish`` writes, rebuilt byte for byte from the same runs
and reproduced (apart from wall times) from runs trained again; the claims table."""

import dataclasses
import json
import re

from behavior_priors.cli import main
from behavior_priors.experiments import build_report, get_experiment, registry, reproduce
from behavior_priors.experiments.pages import write_index

SMOKE = dataclasses.replace(
    get_experiment("smoke"), claim_label="0", verdict=(("hier", "noprior", "better"),)
)


def _without_wall_times(text: str) -> str:
    text = re.sub(r"wall time: .*", "", text)
    # The table's last column (wall minutes) and the commit's "+changes" suffix.
    return re.sub(r"\| [0-9.]+( \[[0-9.]+, [0-9.]+\])? \|\n", "|\n", text)


def test_publish_writes_a_page_its_figure_and_the_claims_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(registry.EXPERIMENTS, "smoke", SMOKE)
    docs = tmp_path / "docs"
    log = []
    report = reproduce("smoke", tmp_path / "a", seeds=2, workers=1, publish=docs, log=log.append)
    page = (docs / "smoke.md").read_text()
    assert report.page == docs / "smoke.md"
    assert "![curves](smoke.png)" in page and (docs / "smoke.png").stat().st_size > 0
    assert "command: `behavior-priors reproduce smoke --seeds 2 --publish" in page
    assert "## Verdict: " in page and report.verdict in page
    assert re.search(r"commit: `([0-9a-f]{40}(\+changes)?|unknown)`", page)
    row = json.loads((docs / "smoke.json").read_text())
    assert row["seeds"] == 2 and row["verdict"] == report.verdict and row["missing"] == 0
    index = (docs / "README.md").read_text()
    assert "| 0 | [smoke](smoke.md) |" in index
    # Every registered claim has a row; those without a page say so.
    for e in registry.EXPERIMENTS.values():
        if e.claim_label and e.name != "smoke":
            assert f"| {e.claim_label} | {e.name} | `behavior-priors reproduce {e.name}" in index
    assert (
        index.count("not run yet")
        == sum(bool(e.claim_label) for e in registry.EXPERIMENTS.values()) - 1
    )

    # Rebuilt from the same runs (every run skipped): the same bytes, figure included.
    png = (docs / "smoke.png").read_bytes()
    reproduce("smoke", tmp_path / "a", seeds=2, workers=1, publish=docs, log=log.append)
    assert _without_wall_times((docs / "smoke.md").read_text()) == _without_wall_times(page)
    assert (docs / "smoke.png").read_bytes() == png

    # Trained again from nothing: the same page apart from wall times.
    again = tmp_path / "docs2"
    reproduce("smoke", tmp_path / "b", seeds=2, workers=1, publish=again, log=log.append)
    retrained = (again / "smoke.md").read_text().replace(str(again), str(docs))
    assert _without_wall_times(retrained) == _without_wall_times(page)

    assert (
        main(
            [
                "reproduce",
                "smoke",
                "--seeds",
                "2",
                "--out",
                str(tmp_path / "a"),
                "--workers",
                "1",
                "--publish",
                str(docs),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert f"verdict: {report.verdict}" in printed and "page: " in printed
    # With a seed still to train, the verdict waits for it.
    partial = build_report(SMOKE, tmp_path / "a", seeds=3)
    assert partial.verdict == "pending" and "## Verdict: pending" in partial.path.read_text()


def test_an_empty_results_directory_lists_every_claim_as_not_run(tmp_path):
    index = write_index(tmp_path / "new" / "results").read_text()
    claims = [e for e in registry.EXPERIMENTS.values() if e.claim_label]
    assert len(claims) == 6 and index.count("not run yet") == len(claims)


def test_the_index_marks_verdicts_given_by_the_earlier_rule(tmp_path):
    """Pages published before the non-inferiority margin and the 10-seed minimum carry no
    ``verdict_rule``: their agree/disagree is marked, since the current rule would not give it."""
    row = {
        "experiment": "hier-vs-flat",
        "claim": "3a",
        "command": "behavior-priors reproduce hier-vs-flat --publish docs/results",
        "seeds": 5,
        "budget": "150,000 env steps per run",
        "wall_minutes": 29.0,
        "verdict": "agree",
        "missing": 0,
    }
    (tmp_path / "hier-vs-flat.json").write_text(json.dumps(row))
    index = write_index(tmp_path).read_text()
    assert "**agree (earlier rule; inconclusive under the current one at 5 seeds)**" in index
    (tmp_path / "hier-vs-flat.json").write_text(json.dumps({**row, "verdict_rule": 2}))
    assert "| 29 min | **agree** |" in write_index(tmp_path).read_text()
