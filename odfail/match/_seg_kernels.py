"""numba kernel: a workspace's stored segmentations (JSON text, one per row of a string column) read into what
``odfail.masks`` builds masks from, without DuckDB's JSON functions (0.37 s on 325k results and 44k GT; this
reads both in a few hundredths).

Per row, ``kind`` says what the text holds and ``start``/``end`` where its content went:
- `NONE`: no segmentation (an empty text or ``null``);
- `STRING`: an RLE with compressed counts: ``start:end`` is the counts string's bytes in ``data``, JSON-escaped
  (its only escape is ``\\\\``, a backslash, which is one of the alphabet's 64 characters);
- `POLYGONS`: polygons: ``start:end`` are the row's polygons in ``poly_off`` (polygon p is
  ``xy[poly_off[p]:poly_off[p + 1]]``);
- `RUNS`: an RLE with a list of run lengths: ``start:end`` is the row's span of ``runs``;
- `UNREAD`: anything else. Ingest checked every segmentation, so this means a workspace not written by odfail.
``h``/``w``: an RLE's size (-1 for polygons, which take their image's).

Polygon coordinates are exact: a number `_json_kernels._number` cannot compute exactly (more than 18 digits,
a large exponent) is listed in ``slow`` (xy index, start, end of its text) for the caller to parse with Python's
``float``, which is what pycocotools' ``json.load`` gives.
"""

from __future__ import annotations

import numpy as np

from odfail._json_kernels import (
    K_COUNTS,
    K_SIZE,
    _at,
    _int_list,
    _key,
    _literal,
    _next,
    _number,
    _size_pair,
    _skip,
    _ws,
)
from odfail._numba import JIT as _JIT
from odfail._numba import announce, borrowed, njit, prange

NONE, POLYGONS, STRING, RUNS, UNREAD = 0, 1, 2, 3, -1


@njit(**_JIT)
def _counts_string(buf, i):
    """The counts string whose opening quote is at i: (end of its content, position after the closing quote),
    -1, -1 if it does not close. Ingest let no escape but ``\\\\`` into a counts string (the decoders check
    each one), so the first quote closes it."""
    j = i + 1
    n = buf.size
    while j < n and buf[j] != 34:
        j += 1
    if j == n:
        return -1, -1
    return j, j + 1


@njit(**_JIT)
def _polygons(buf, i, o, xy, poly_off, slow, x0, p0, s0):
    """The polygons whose list opens at i: (end or -1, numbers, polygons, slow numbers). When ``xy`` is not
    empty, also writes the numbers to xy[x0:], each polygon's end to poly_off[p0 + 1:] and the slow numbers to
    slow[:, s0:] (positions in the whole buffer: ``o`` is where ``buf`` starts)."""
    write = xy.size > 0
    n_xy = n_poly = n_slow = 0
    i = _ws(buf, i + 1)
    state = 0
    while state == 0:
        if not _at(buf, i, 91):
            return -1, 0, 0, 0
        i = _ws(buf, i + 1)
        first = n_xy
        more = 0
        while more == 0:
            j, v, exact, _m = _number(buf, i)
            if j < 0:
                return -1, 0, 0, 0
            if write:
                if not exact:
                    slow[0, s0 + n_slow] = x0 + n_xy
                    slow[1, s0 + n_slow] = o + i
                    slow[2, s0 + n_slow] = o + j
                xy[x0 + n_xy] = v
            n_slow += 0 if exact else 1
            n_xy += 1
            i, more = _next(buf, j, 93)
        if more != 1 or n_xy - first < 6 or (n_xy - first) % 2 == 1:
            return -1, 0, 0, 0
        n_poly += 1
        if write:
            poly_off[p0 + n_poly] = x0 + n_xy
        i, state = _next(buf, i, 93)
    return (i if state == 1 else -1), n_xy, n_poly, n_slow


@njit(**_JIT)
def _rle(buf, i, runs, r0, stack):
    """The RLE object that opens at i: (end or -1, kind, h, w, start, end) with the counts string's span
    (STRING) or the number of run lengths (RUNS, written to runs[r0:] when ``runs`` is not empty)."""
    i = _ws(buf, i + 1)
    k = UNREAD
    h = w = -1
    s0 = s1 = 0
    state = 0
    while state == 0:
        i, key = _key(buf, i)
        if key == -2:
            return -1, UNREAD, h, w, 0, 0
        if key == K_SIZE:
            i, h, w = _size_pair(buf, i)
            if i < 0:
                return -1, UNREAD, h, w, 0, 0
        elif key == K_COUNTS and _at(buf, i, 34):
            s0 = i + 1
            s1, i = _counts_string(buf, i)
            if s1 < 0:
                return -1, UNREAD, h, w, 0, 0
            k = STRING
        elif key == K_COUNTS and _at(buf, i, 91):
            k = RUNS
            s0 = 0
            i, s1, _total = _int_list(buf, i, runs, r0, 0xFFFFFFFF)
            if i < 0:
                return -1, UNREAD, h, w, 0, 0
        else:
            i = _skip(buf, i, stack)
            if i < 0:
                return -1, UNREAD, h, w, 0, 0
        i, state = _next(buf, i, 125)
    if state != 1 or h < 0 or w < 0:
        return -1, UNREAD, h, w, 0, 0
    return i, k, h, w, s0, s1


@njit(parallel=True, **_JIT)
def read_segmentations(data, off):
    """Read the n texts ``data[off[i]:off[i + 1]]`` (see the module docstring). Returns kind, h, w, start, end
    (n each), xy (float64), poly_off, runs (uint32), slow (3, k). Rows in parallel: a first pass reads every
    row and counts what polygons and run lengths it holds, a second writes them where the counts put them."""
    data = borrowed(data)  # each row's slice of it would otherwise count references, atomically, on both cores
    n = len(off) - 1
    kind = np.full(n, UNREAD, dtype=np.int8)
    h = np.full(n, -1, dtype=np.int64)
    w = np.full(n, -1, dtype=np.int64)
    start = np.zeros(n, dtype=np.int64)
    end = np.zeros(n, dtype=np.int64)
    n_xy = np.zeros(n + 1, dtype=np.int64)  # per row, then (after the first pass) where each row's go
    n_poly = np.zeros(n + 1, dtype=np.int64)
    n_slow = np.zeros(n + 1, dtype=np.int64)
    n_runs = np.zeros(n + 1, dtype=np.int64)
    no_f = np.zeros(0, dtype=np.float64)
    no_i = np.zeros(0, dtype=np.int64)
    no_s = np.zeros((3, 0), dtype=np.int64)
    no_u = np.zeros(0, dtype=np.uint32)
    n_chunks = min(n, 1024)
    for c in prange(n_chunks):
        stack = np.empty(64, dtype=np.uint8)  # _skip's scratch, per chunk of rows (an allocation costs)
        for r in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            o = off[r]
            buf = data[o: off[r + 1]]
            i = _ws(buf, 0)
            k = UNREAD
            if i == buf.size:
                k = NONE
            elif _at(buf, i, 91):
                i, n_xy[r + 1], n_poly[r + 1], n_slow[r + 1] = _polygons(buf, i, o, no_f, no_i, no_s, 0, 0, 0)
                k = POLYGONS
            elif _at(buf, i, 123):
                i, k, h[r], w[r], s0, s1 = _rle(buf, i, no_u, 0, stack)
                if k == STRING:
                    start[r], end[r] = o + s0, o + s1
                elif k == RUNS:
                    n_runs[r + 1] = s1
            else:
                i, lit = _literal(buf, i)
                if i >= 0 and lit == -1:
                    k = NONE
            if i < 0 or _ws(buf, i) != buf.size:
                k = UNREAD
            kind[r] = k
    for r in range(n):
        n_xy[r + 1] += n_xy[r]
        n_poly[r + 1] += n_poly[r]
        n_slow[r + 1] += n_slow[r]
        n_runs[r + 1] += n_runs[r]
    xy = np.empty(n_xy[n], dtype=np.float64)
    poly_off = np.zeros(n_poly[n] + 1, dtype=np.int64)
    slow = np.empty((3, n_slow[n]), dtype=np.int64)
    runs = np.empty(n_runs[n], dtype=np.uint32)
    for r in prange(n):
        if kind[r] == POLYGONS:
            o = off[r]
            buf = data[o: off[r + 1]]
            _polygons(buf, _ws(buf, 0), o, xy, poly_off, slow, n_xy[r], n_poly[r], n_slow[r])
            start[r], end[r] = n_poly[r], n_poly[r + 1]
        elif kind[r] == RUNS:
            o = off[r]
            buf = data[o: off[r + 1]]
            _rle(buf, _ws(buf, 0), runs, n_runs[r], np.empty(64, dtype=np.uint8))  # rare: crowd GT
            start[r], end[r] = n_runs[r], n_runs[r + 1]
    return kind, h, w, start, end, xy, poly_off, runs, slow


announce(__file__)
