"""Grid-world maps: named ASCII layouts, parsing, and the fixed cell order that defines task ids.

A layout is a rectangle of characters, ``#`` for a wall and ``.`` for a free cell, row 0 at the
top. Free cells are numbered in row-major order; that number is the *state index* of a cell and,
because there is one task per goal cell, also the *task id* of the task whose goal is that cell.
The numbering depends only on the map, so a task id never changes with the goal set a run uses.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# The two rooms are joined by one doorway in the middle of the dividing wall.
TWO_ROOMS = """
###########
#....#....#
#....#....#
#.........#
#....#....#
#....#....#
###########
"""

# Sutton, Precup and Singh (1999): four rooms joined by four one-cell doorways, 104 free cells.
FOUR_ROOMS = """
#############
#.....#.....#
#.....#.....#
#...........#
#.....#.....#
#.....#.....#
##.####.....#
#.....###.###
#.....#.....#
#.....#.....#
#...........#
#.....#.....#
#############
"""

LAYOUTS: dict[str, str] = {"tworooms": TWO_ROOMS, "fourrooms": FOUR_ROOMS}

# Default goal sets, (row, col): the far corner of every room, so that tasks need different
# routes through the doorways and a shared prior has something to share (going through doors).
DEFAULT_GOALS: dict[str, tuple[tuple[int, int], ...]] = {
    "tworooms": ((1, 1), (5, 1), (1, 9), (5, 9)),
    "fourrooms": ((1, 1), (1, 11), (11, 1), (11, 11)),
}

# Action indices and their (row, col) displacement; STAY is only present when enabled.
UP, DOWN, LEFT, RIGHT, STAY = 0, 1, 2, 3, 4
MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]], np.int64)
ACTION_NAMES = ("up", "down", "left", "right", "stay")


@dataclass(frozen=True)
class Layout:
    """A parsed map.

    Attributes:
      name: the layout's name (``"custom"`` for a map given as text).
      walls: ``[H, W]`` bool, True on walls.
      cells: ``[S, 2]`` int64 (row, col) of every free cell in row-major order; row ``s`` is
        the cell of state index ``s``.
      index: ``[H, W]`` int64 state index of each free cell, -1 on walls.
    """

    name: str
    walls: np.ndarray
    cells: np.ndarray
    index: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.walls.shape  # type: ignore[return-value]

    @property
    def num_cells(self) -> int:
        return len(self.cells)

    def state_of(self, cell: Sequence[int]) -> int:
        """State index of the free cell ``(row, col)``; ``ValueError`` for walls or outside."""
        try:
            row, col = (int(c) for c in cell)
        except (TypeError, ValueError):
            raise ValueError(f"a cell is a (row, col) pair of integers, got {cell!r}") from None
        h, w = self.shape
        if not (0 <= row < h and 0 <= col < w):
            raise ValueError(f"cell {(row, col)} is outside the {h}x{w} {self.name} layout")
        s = int(self.index[row, col])
        if s < 0:
            raise ValueError(f"cell {(row, col)} is a wall in the {self.name} layout")
        return s

    def next_state_table(self, num_actions: int) -> np.ndarray:
        """``[S, num_actions]`` int64: the state reached by each action; walls block (stay put)."""
        target = self.cells[:, None, :] + MOVES[None, :num_actions, :]  # [S, A, 2]
        # The border is walls, so every target is inside the grid; a wall target means no move.
        idx = self.index[target[..., 0], target[..., 1]]
        own = np.arange(self.num_cells)[:, None]
        return np.where(idx >= 0, idx, own)

    def render(self, marks: dict[tuple[int, int], str] | None = None) -> str:
        """The map as text, with optional single-character ``marks`` at cells."""
        rows = [["#" if w else "." for w in row] for row in self.walls]
        for (r, c), ch in (marks or {}).items():
            rows[r][c] = ch
        return "\n".join("".join(r) for r in rows)


def parse_layout(text: str, name: str = "custom") -> Layout:
    """Parse an ASCII map (``#`` wall, ``.`` free; blank leading/trailing lines ignored).

    Raises:
      ValueError: ragged rows, unknown characters, no free cell, or a free cell on the border
        (the border must be walls so that every move stays on the grid).
    """
    lines = [ln for ln in text.strip("\n").splitlines() if ln.strip()]
    if not lines:
        raise ValueError("empty layout")
    width = len(lines[0])
    if any(len(ln) != width for ln in lines):
        raise ValueError(f"layout rows have different lengths: {[len(ln) for ln in lines]}")
    bad = sorted({ch for ln in lines for ch in ln} - {"#", "."})
    if bad:
        raise ValueError(f"layout may only contain '#' and '.', found {bad}")
    walls = np.array([[ch == "#" for ch in ln] for ln in lines], bool)
    border = np.concatenate([walls[0], walls[-1], walls[:, 0], walls[:, -1]])
    if not border.all():
        raise ValueError("the layout's border must be walls ('#')")
    cells = np.argwhere(~walls).astype(np.int64)  # argwhere is row-major: the fixed order
    if len(cells) == 0:
        raise ValueError("layout has no free cell")
    index = np.full(walls.shape, -1, np.int64)
    index[cells[:, 0], cells[:, 1]] = np.arange(len(cells))
    return Layout(name, walls, cells, index)


def get_layout(layout: str) -> Layout:
    """A named layout (``"tworooms"``, ``"fourrooms"``) or an ASCII map containing a newline."""
    if "\n" in layout:
        return parse_layout(layout)
    if layout not in LAYOUTS:
        close = difflib.get_close_matches(layout, list(LAYOUTS), n=2)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown grid-world layout {layout!r}{hint} (known: {', '.join(sorted(LAYOUTS))}, "
            "or pass an ASCII map of '#' and '.')"
        )
    return parse_layout(LAYOUTS[layout], layout)
