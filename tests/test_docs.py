"""Every Python block of the README and of docs/*.md runs as written, with a small budget.

The blocks of one page run in order in one fresh interpreter (a later block may use what an
earlier one defined), in an empty folder. Where a block trains, :data:`SMALL` swaps its budget
for a tiny one; each swap must find its text, so a block whose budget changes fails here
instead of training for minutes. A block that cannot run on its own (a fragment, a signature,
hours of training, a source run it needs) is marked in the page itself with
``<!-- docs-test: skip (why) -->`` on the line before it, and the reason must be given.
Shell blocks are not run.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(
    r"^(?:<!-- docs-test: skip \((?P<why>[^)]*)\) -->\n)?```python\n(?P<code>.*?)^```",
    re.S | re.M,
)

# (page, text in its blocks, what replaces it): the budgets a test can afford.
SMALL = {
    "README.md": [
        ("total_env_steps=20_000)", "total_env_steps=300, eval_every=300, warmup_steps=100)"),
        ("progress=True", "progress=False"),
    ],
    "docs/agent.md": [
        (
            "total_env_steps=20_000, eval_every=5_000, eval_episodes=32",
            "total_env_steps=400, eval_every=200, eval_episodes=4",
        ),
    ],
    "docs/distral.md": [("120_000)", "2_000)")],
    "docs/envs.md": [
        ("total_env_steps=20_000", "total_env_steps=200, warmup_steps=100"),
    ],
    "docs/training.md": [
        ("total_env_steps=50_000, seed=1)", "total_env_steps=300, seed=1, eval_every=300)"),
        ("total_env_steps=60_000)", "total_env_steps=400)"),
    ],
}


def blocks(page: str) -> list[tuple[str, str | None]]:
    """``[(code, reason it is skipped or None)]`` of a page's Python blocks, in order."""
    text = (ROOT / page).read_text()
    return [(m.group("code"), m.group("why")) for m in BLOCK.finditer(text)]


def runnable(page: str) -> str:
    """The page's runnable blocks joined, with :data:`SMALL`'s budgets."""
    code = "\n".join(c for c, why in blocks(page) if why is None)
    for old, new in SMALL.get(page, []):
        assert old in code, f"{page}: the budget {old!r} the test shrinks is gone; update SMALL"
        code = code.replace(old, new)
    return code


def test_every_skip_says_why_and_every_budget_is_found():
    for page in PAGES:
        for _code, why in blocks(page):
            assert why is None or why.strip(), f"{page}: a skipped block without a reason"
        runnable(page)
    assert set(SMALL) <= set(PAGES)


@pytest.mark.parametrize("page", [p for p in PAGES if any(w is None for _, w in blocks(p))])
def test_the_python_blocks_of_a_page_run(page, tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", runnable(page)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"{page}:\n{done.stderr[-3000:]}"
