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
