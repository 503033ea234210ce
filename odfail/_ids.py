"""Ids -> positions: where each id of a column sits among a sorted set of ids. Every stage needs it (ingest checks
a results file's ids against the GT's, matching groups rows by image and category, masks line up with their
rows), so it lives below them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from odfail._numba import JIT as _JIT
from odfail._numba import announce, njit, prange

if TYPE_CHECKING:
    from collections.abc import Callable


@njit(parallel=True, **_JIT)
def _dense_positions(table, values):
    """The position of each value in a dense table (``table[id]`` = position, -1 for none) and whether it is
    there: (positions (0 where absent), found)."""
    n = values.size
    pos = np.empty(n, np.int64)
    found = np.empty(n, np.bool_)
    for i in prange(n):
        v = values[i]
        p = table[v] if 0 <= v < table.size else -1
        found[i] = p >= 0
        pos[i] = max(p, 0)
    return pos, found


def index(ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each value in sorted unique ``ids`` and whether it is there at all."""
    return indexer(ids)(values)


def indexer(ids: np.ndarray) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """`index` into sorted unique ``ids`` for several value arrays, building its lookup table once."""
    table = None
    if len(ids) and ids[0] >= 0 and ids[-1] < 50_000_000:
        # COCO ids are small non-negative integers: one gather from a dense table beats a binary search per row
        table = np.full(int(ids[-1]) + 1, -1, dtype=np.int64)
        table[ids] = np.arange(len(ids))

    def lookup(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not len(ids) or not len(values):
            return np.zeros(len(values), np.int64), np.zeros(len(values), bool)
        if table is not None:
            return _dense_positions(table, np.asarray(values, dtype=np.int64))
        pos = np.minimum(np.searchsorted(ids, values), len(ids) - 1)
        return pos, ids[pos] == values

    return lookup


@njit(**_JIT)
def counting_order(idx, n_bins):
    """Stable order of rows by a small non-negative integer key, and the bin offsets (n_bins + 1)."""
    off = np.zeros(n_bins + 1, dtype=np.int64)
    for v in idx:
        off[v + 1] += 1
    for b in range(n_bins):
        off[b + 1] += off[b]
    pos = off[:-1].copy()
    order = np.empty(len(idx), dtype=np.int64)
    for i in range(len(idx)):
        order[pos[idx[i]]] = i
        pos[idx[i]] += 1
    return order, off


announce(__file__)
