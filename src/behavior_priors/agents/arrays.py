"""A pytree taken apart into its array leaves and the rest, and put back together.

A compiled function that takes a learner state or a policy as the flat list of its arrays, with
the tree's structure and its other leaves (activation functions, sizes) fixed when it is
compiled, skips flattening equinox modules in Python on every call: for the demo's learner
state (157 leaves) that is about 0.25 ms to flatten and 0.16 ms to rebuild, host time taken
from the update that runs on the same two cores (docs/benchmarks.md, "The host's share of the
two cores"). The donating update and the run loop's actor work this way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax


class ArrayLayout(NamedTuple):
    """Where a tree's arrays go: its structure, which leaves are arrays, and the other leaves.

    Hashable and comparable, so it keys caches of compiled functions (one per layout)."""

    treedef: Any  # jax.tree_util.PyTreeDef
    is_array: tuple[bool, ...]  # per leaf, in flattening order
    static: tuple[Any, ...]  # per leaf: the leaf itself, or None where an array goes

    @classmethod
    def split(cls, tree: Any) -> tuple[list[jax.Array], ArrayLayout]:
        """``(arrays, layout)``: the tree's array leaves in flattening order, and the rest."""
        leaves, treedef = jax.tree.flatten(tree)
        is_array = tuple(eqx.is_array(x) for x in leaves)
        static = tuple(None if a else x for a, x in zip(is_array, leaves, strict=True))
        return [x for a, x in zip(is_array, leaves, strict=True) if a], cls(
            treedef, is_array, static
        )

    @property
    def num_arrays(self) -> int:
        return sum(self.is_array)

    def merge(self, arrays: Sequence[Any]) -> Any:
        """The tree with ``arrays`` (as :meth:`split` gives them, or traced) in their places."""
        if len(arrays) != self.num_arrays:
            raise ValueError(f"this layout takes {self.num_arrays} arrays, got {len(arrays)}")
        it = iter(arrays)
        pairs = zip(self.is_array, self.static, strict=True)
        return jax.tree.unflatten(self.treedef, [next(it) if a else s for a, s in pairs])
