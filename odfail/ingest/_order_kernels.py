"""numba kernels of row order: the stored row order of a table and the class ranks of predictions (ingest), a
column gathered in an order. No Python objects.

Rows are stored in COCO evaluation order (see ``odfail.ingest``), so that evaluation sorts nothing. At 3.25M
rows each numpy step here wrote fresh arrays and ran on one core; these write once and run on both.
"""

from __future__ import annotations

import numpy as np

from odfail._numba import JIT as _JIT
from odfail._numba import announce, njit, prange


@njit(**_JIT)
def own_positions(values):
    """Each value's position among the distinct values present, in ascending order, and their count: the
    positions `stored_order` needs, from a file's own ids. (-1 count when the values span more than 50M: no
    dense table then.)"""
    n = values.size
    if n == 0:
        return np.zeros(0, np.int64), 0
    lo = hi = values[0]
    for i in range(n):
        lo = min(lo, values[i])
        hi = max(hi, values[i])
    if hi - lo > 50_000_000:
        return np.zeros(0, np.int64), -1
    table = np.zeros(hi - lo + 1, np.int64)
    for i in range(n):
        table[values[i] - lo] = 1
    count = 0
    for k in range(table.size):
        present = table[k]
        table[k] = count
        count += present
    pos = np.empty(n, np.int64)
    for i in range(n):
        pos[i] = table[values[i] - lo]
    return pos, count


@njit(parallel=True, **_JIT)
def take(src, order, out):
    """out[i] = src[order[i]] on both cores (np.take runs on one)."""
    for i in prange(order.size):
        out[i] = src[order[i]]


@njit(**_JIT)
def take_rows(src, order, out):
    """out[k, i] = src[k, order[i]] for the first out.shape[0] rows of src: one row group's columns, on one core
    (the other writes the row group before it)."""
    for k in range(out.shape[0]):
        for i in range(order.size):
            out[k, i] = src[k, order[i]]


@njit(**_JIT)
def stored_order(cat_idx, n_cats, img_idx, n_images, score):
    """The stored row order (see ``odfail.ingest``): category, then image, then score descending (when
    ``score`` is not empty), then file order. Returns the permutation.

    Sorted from the last key to the first, each step stable: by image (a counting sort), by score within each
    image (short runs; files list an image's records together, so this reads them nearly in sequence), then by
    category (a counting sort). No step reads the rows in random order more than once."""
    n = cat_idx.size
    start = np.zeros(n_images + 1, np.int64)
    for r in range(n):
        start[img_idx[r] + 1] += 1
    for k in range(n_images):
        start[k + 1] += start[k]
    bounds = start.copy()
    by_image = np.empty(n, np.int64)
    for r in range(n):
        by_image[start[img_idx[r]]] = r
        start[img_idx[r]] += 1
    if score.size:
        for k in range(n_images):
            _sort_run(by_image, bounds[k], bounds[k + 1], score)
    start = np.zeros(n_cats + 1, np.int64)
    for r in range(n):
        start[cat_idx[r] + 1] += 1
    for k in range(n_cats):
        start[k + 1] += start[k]
    order = np.empty(n, np.int64)
    for r in by_image:
        order[start[cat_idx[r]]] = r
        start[cat_idx[r]] += 1
    return order


@njit(**_JIT)
def _sort_run(rows, a, b, score):
    """rows[a:b] stably by score descending: insertion sort for a short run, else a merge sort."""
    if b - a > 32:
        seg = np.empty(b - a)
        for j in range(a, b):
            seg[j - a] = -score[rows[j]]
        rows[a:b] = rows[a:b][np.argsort(seg, kind="mergesort")]
        return
    for j in range(a + 1, b):
        r = rows[j]
        s = score[r]
        k = j
        while k > a and score[rows[k - 1]] < s:
            rows[k] = rows[k - 1]
            k -= 1
        rows[k] = r


@njit(inline="always", **_JIT)
def _descending_key(v):
    """An unsigned integer whose ascending order is v's descending order; -0.0 ranks as 0.0, as compared."""
    bits = np.float64(v + 0.0).view(np.uint64)  # + 0.0 turns -0.0 into 0.0
    bits = ~bits if bits >> np.uint64(63) else bits | np.uint64(1 << 63)  # ascending as unsigned
    return ~bits


@njit(parallel=True, **_JIT)
def class_ranks(category, score):
    """Each prediction's rank in its category by score descending, ties in stored order (image, then file
    order): pycocotools' accumulation order. Takes the stored-order columns, where a category is one run, so
    each run is sorted where it lies, the runs on both cores: an LSD radix sort over the score bits, 11 at a
    time, skipping a digit the whole run shares. Shape: (n,)."""
    n = score.size
    rank = np.empty(n, np.int64)
    runs = 0
    for r in range(n):
        if r == 0 or category[r] != category[r - 1]:
            runs += 1
    first = np.empty(runs + 1, np.int64)
    k = 0
    for r in range(n):
        if r == 0 or category[r] != category[r - 1]:
            first[k] = r
            k += 1
    first[runs] = n
    for q in prange(runs):
        _rank_run(score, first[q], first[q + 1], rank)
    return rank


@njit(**_JIT)
def _rank_run(score, a, b, rank):
    """rank[a:b]: the ranks of score[a:b] by score descending, ties in order (see `class_ranks`)."""
    m = b - a
    keys, keys2 = np.empty(m, np.uint64), np.empty(m, np.uint64)
    pos, pos2 = np.empty(m, np.int64), np.empty(m, np.int64)
    counts = np.zeros((6, 2049), np.int64)
    for j in range(m):
        keys[j] = _descending_key(score[a + j])
        pos[j] = j
    for j in range(m):
        for d in range(6):
            counts[d, ((keys[j] >> np.uint64(11 * d)) & np.uint64(2047)) + np.uint64(1)] += 1
    ka, kb, pa, pb = keys, keys2, pos, pos2
    for d in range(6):
        if counts[d].max() == m:
            continue
        start = counts[d]
        for j in range(2048):
            start[j + 1] += start[j]
        shift = np.uint64(11 * d)
        for j in range(m):
            digit = (ka[j] >> shift) & np.uint64(2047)
            kb[start[digit]] = ka[j]
            pb[start[digit]] = pa[j]
            start[digit] += 1
        ka, kb, pa, pb = kb, ka, pb, pa
    for j in range(m):
        rank[a + pa[j]] = j


announce(__file__)
