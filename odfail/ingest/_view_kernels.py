"""numba kernels of ingest: spans of a mapped file handed to Arrow without copying (string views), and the
text of the numbers left to an exact parser. No Python objects.
"""

from __future__ import annotations

import numpy as np

from odfail._json_kernels import _has_space, _minify
from odfail._numba import JIT as _JIT
from odfail._numba import announce, njit


@njit(**_JIT)
def string_views(buf, starts, ends, minify, spaced):
    """Arrow string views of the bytes buf[starts[r]:ends[r]] (a null where starts[r] < 0): (views, side, valid).

    A view is 16 bytes: int32 length, then the bytes themselves when at most 12, else the first 4 bytes, a
    buffer index and an int32 offset: buffer 0 is ``buf`` itself (no copy; it must be under 2 GiB), buffer 1 is
    ``side``, where a value with white space outside its strings is copied without it when ``minify``.
    ``spaced[r]`` (read with ``minify``): 1 or 0 when the scan knows whether value r has such white space, -1
    to look."""
    n = starts.size
    views = np.zeros((n, 16), np.uint8)
    valid = np.empty(n, np.bool_)
    side_size = 0
    if minify:
        for r in range(n):
            if starts[r] >= 0 and spaced[r] != 0:  # room for every value that might be copied (not touched)
                side_size += ends[r] - starts[r]
    side = np.empty(side_size, np.uint8)
    o = 0
    for r in range(n):
        s, e = starts[r], ends[r]
        valid[r] = s >= 0
        if s < 0:
            continue
        source, at, index = buf, s, 0
        if minify and (spaced[r] == 1 or spaced[r] < 0 and _has_space(buf, s, e)):
            source, at, index = side, o, 1
            ln = _minify(buf, s, e, side, o)
            o += ln
        else:
            ln = e - s
        _put_int32(views, r, 0, ln)
        if ln <= 12:
            for j in range(ln):
                views[r, 4 + j] = source[at + j]
        else:
            for j in range(4):
                views[r, 4 + j] = source[at + j]
            _put_int32(views, r, 8, index)
            _put_int32(views, r, 12, at)
    return views, side[:o], valid


@njit(inline="always", **_JIT)
def _put_int32(views, r, at, v):
    for j in range(4):
        views[r, at + j] = (v >> (8 * j)) & 0xFF


@njit(**_JIT)
def gather_numbers(buf, slow, n):
    """The slow numbers' text, end to end, for an exact parser: (data, int32 offsets)."""
    total = 0
    for r in range(n):
        total += slow[1, r] - slow[0, r]
    data = np.empty(total, np.uint8)
    offsets = np.empty(n + 1, np.int32)
    o = 0
    for r in range(n):
        offsets[r] = o
        ln = slow[1, r] - slow[0, r]
        data[o:o + ln] = buf[slow[0, r]:slow[1, r]]
        o += ln
    offsets[n] = o
    return data, offsets


announce(__file__)
