"""The repository itself: what the docs promise to a fresh clone is tracked, not ignored."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _ignored(path: str) -> bool:
    proc = subprocess.run(
        ["git", "check-ignore", "-q", path], cwd=ROOT, capture_output=True, check=False
    )
    if proc.returncode not in (0, 1):
        pytest.skip(f"git check-ignore failed: {proc.stderr.decode().strip()}")
    return proc.returncode == 0


def test_result_pages_and_docs_are_not_ignored_but_run_outputs_are():
    """`.gitignore` had `results/`, which also ignored `docs/results/`: result pages the docs
    link to never reached a clone."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in ("docs/results/claim.md", "docs/results/claim.png", "docs/envs.md"):
        assert not _ignored(path), path
    for path in ("results/multitask-prior/report.md", "runs/demo/run.json", "x/videos/a.gif"):
        assert _ignored(path), path


def _markdown_links(text: str) -> list[str]:
    """Relative link targets of ``[text](target)`` in markdown, anchors dropped."""
    import re

    out = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        out.append(target.split("#", 1)[0])
    return out


def test_every_file_the_docs_link_to_is_tracked():
    """A link in the README or docs/ that points at a file missing from a fresh clone (never
    committed, or ignored) is a broken promise: each target must be tracked by git."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = set(
        subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.splitlines()
    )
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = []
    for page in pages:
        if str(page.relative_to(ROOT)) not in tracked:
            continue  # an untracked page is not part of a clone
        for target in _markdown_links(page.read_text()):
            path = (page.parent / target).resolve()
            rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else None
            if rel is None or not (rel in tracked or any(t.startswith(rel + "/") for t in tracked)):
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, "links to files a clone does not have:\n" + "\n".join(broken)


def test_the_claims_table_is_the_one_its_pages_make(tmp_path):
    """docs/results/README.md is generated from the pages' rows (``NAME.json``) and the
    registry; a hand edit, or a page added without its row, shows up here."""
    from behavior_priors.experiments.pages import INDEX, write_index

    results = ROOT / "docs" / "results"
    for row in results.glob("*.json"):
        shutil.copy(row, tmp_path / row.name)
    assert write_index(tmp_path).read_text() == (results / INDEX).read_text()
    pages = {p.stem for p in results.glob("*.md")} - {"README"}
    assert pages == {p.stem for p in results.glob("*.json")}
    assert all((results / f"{name}.png").exists() for name in pages)
