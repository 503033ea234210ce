"""numba kernels of ingest: one COCO record at a time (a result, an image, a category, an annotation) read into
columns of ids, numbers and byte spans (the JSON itself is read by ``odfail._json_kernels``; whole files by
``odfail._scan_kernels``). No Python objects.

They accept only the shape COCO files have in practice, strictly (RFC 8259 JSON, valid UTF-8) and return a
non-zero status at the first byte outside it: a string key with an escape, a ``null`` in a field we read, a
duplicate key, a number that is not a plain integer where an id goes, ... The caller (``odfail.ingest``) then
falls back to DuckDB's reader, which accepts the rest of valid JSON and names the bad record and field. So
these kernels never explain an error; they only have to be right when they say "fine".

A number `_json_kernels._number` cannot compute exactly is left to an exact parser (Arrow's cast,
fast_float): its byte span goes to the ``slow`` list with the flat index of the value it fills.

Layouts (column-major, ``cap`` = capacity in records; allocate with ``np.empty``: pages never written cost no
memory, and each column's first n values are contiguous):
- ``ids``: int64 (k, cap), the integer fields of a record;
- ``fl``: float64 (k, cap), the number fields; NaN where absent (JSON has no NaN, so NaN means absent; a
  result's bbox may be absent when it has a segmentation);
- ``spans``: int64 (2, cap): start, end of a kept string's bytes (-1, -1 when absent);
- ``segs``: int64 (6, cap): one column per record that has a segmentation: the record, its bytes' start and
  end, an RLE's height and width (-1 for polygons), and whether white space lies between its tokens (1, 0; -1
  not known: an RLE's is not tracked);
- ``slow``: int64 (3, scap): start, end, destination (table code * 2**40 + flat index into that table's ``fl``).
"""


from __future__ import annotations

import numpy as np

from odfail._json_kernels import (
    _MAX_EXACT,
    _POW10,
    K_AREA,
    K_BBOX,
    K_CATEGORY_ID,
    K_COUNTS,
    K_FILE_NAME,
    K_HEIGHT,
    K_ID,
    K_IMAGE_ID,
    K_ISCROWD,
    K_NAME,
    K_SCORE,
    K_SEGMENTATION,
    K_SIZE,
    K_SUPERCATEGORY,
    K_WIDTH,
    _at,
    _int_list,
    _integer,
    _key,
    _literal,
    _next,
    _number,
    _size_pair,
    _skip,
    _string,
    _ws,
)
from odfail._numba import JIT as _JIT
from odfail._numba import announce, njit

# Destination table codes for slow numbers.
T_PRED, T_IMAGES, T_ANN = 0, 1, 2
TABLE_SHIFT = 2 ** 40


@njit(inline="always", **_JIT)
def _plain_number(buf, i, integer):
    """The common number at i, read without a call: -?(0|[1-9][0-9]*)(.[0-9]+)? with at most 18 significant
    digits, its value m / 10**k exact in one float division (m <= 2**53, k <= 22, as `_number`'s fast path
    computes it); with ``integer``, what `_integer` takes (no fraction). Returns (end, value as float, value as
    int), end -1 for anything else (the caller's generic reader then decides)."""
    n = buf.size
    neg = i < n and buf[i] == 45
    if neg:
        i += 1
    if i >= n or not (48 <= buf[i] <= 57) or (buf[i] == 48 and i + 1 < n and 48 <= buf[i + 1] <= 57):
        return -1, 0.0, 0
    m = 0
    digits = 0
    while i < n and 48 <= buf[i] <= 57:
        m = m * 10 + (buf[i] - 48)
        digits += 1
        i += 1
    if digits > 18:
        return -1, 0.0, 0
    frac = 0
    if i < n and buf[i] == 46:
        if integer:
            return -1, 0.0, 0
        i += 1
        if not (i < n and 48 <= buf[i] <= 57):
            return -1, 0.0, 0
        sig = digits if m > 0 else 0
        while i < n and 48 <= buf[i] <= 57:
            m = m * 10 + (buf[i] - 48)
            frac += 1
            if m > 0:
                sig += 1
            if sig > 18:
                return -1, 0.0, 0
            i += 1
    if i < n and (buf[i] == 101 or buf[i] == 69) or m > _MAX_EXACT or frac > 22:
        return -1, 0.0, 0
    v = float(m)
    if frac:
        v /= _POW10[frac]
    if neg:
        return i, -v, -m
    return i, v, m


@njit(**_JIT)
def _segmentation(buf, i):
    """A COCO segmentation at i, checked as ``odfail.ingest_checks`` does: polygons (a non-empty list of lists of
    an even count >= 6 of finite numbers) or an RLE ({"size": [h, w], "counts": a string of '0'..'o' not ending
    inside a value, or run lengths summing to h * w}). Returns (end, h, w, spaced) with h = w = -1 for
    polygons; end -1 to give up. ``spaced``: whether white space lies between the polygons' tokens (1 or 0; -1
    for an RLE, not tracked), so that storing the text needs no second look at its bytes."""
    if _at(buf, i, 91):
        j = _ws(buf, i + 1)
        spaced = j != i + 1
        i = j
        while True:  # each polygon
            if not _at(buf, i, 91):
                return -1, 0, 0, 0
            j = _ws(buf, i + 1)
            spaced |= j != i + 1
            i = j
            count = 0
            state = 0
            while state == 0:  # the common number and comma without a call (`_plain_number`), else the readers
                j, _v, _iv = _plain_number(buf, i, False)
                if j >= 0:
                    i = j
                else:
                    i, _v, _x, magnitude = _number(buf, i)
                    if i < 0 or magnitude > 300:  # beyond 1e300 it might overflow: DuckDB judges that
                        return -1, 0, 0, 0
                count += 1
                if _at(buf, i, 44):
                    j = _ws(buf, i + 1)
                    spaced |= j != i + 1
                    i = j
                else:
                    j, state = _next(buf, i, 93)
                    spaced |= j != i + 1  # white space before the bracket
                    i = j
            if state < 0 or count < 6 or count % 2 == 1:
                return -1, 0, 0, 0
            j, state = _next(buf, i, 93)
            spaced |= j != i + 1
            i = j
            if state == 1:
                return i, -1, -1, 1 if spaced else 0
            if state < 0:
                return -1, 0, 0, 0
    if not _at(buf, i, 123):
        return -1, 0, 0, 0
    i = _ws(buf, i + 1)
    h = w = -1
    total = -1  # run lengths' sum; -1 for a compressed string
    seen = 0
    state = 0
    while state == 0:
        i, k = _key(buf, i)
        if k != K_SIZE and k != K_COUNTS or seen & (1 << (k - K_SIZE)):
            return -1, 0, 0, 0
        seen |= 1 << (k - K_SIZE)
        if k == K_SIZE:
            i, h, w = _size_pair(buf, i)
            if i < 0:
                return -1, 0, 0, 0
        elif _at(buf, i, 34):
            last = 0
            j = i + 1
            while True:
                if j >= buf.size:
                    return -1, 0, 0, 0
                c = buf[j]
                if c == 34:
                    break
                if c == 92:  # only a backslash itself may be escaped: it is character 92, inside '0'..'o'
                    if not _at(buf, j + 1, 92):
                        return -1, 0, 0, 0
                    j += 1
                elif c < 48 or c > 111:
                    return -1, 0, 0, 0
                last = c
                j += 1
            if last >= 80:
                return -1, 0, 0, 0
            i = j + 1
        elif _at(buf, i, 91):
            i, _n, total = _int_list(buf, i, np.empty(0, np.int64), 0, 2 ** 40)  # checked and summed only
            if i < 0:
                return -1, 0, 0, 0
        else:
            return -1, 0, 0, 0
        i, state = _next(buf, i, 125)
    if state < 0 or seen != 3 or (total >= 0 and total != h * w):
        return -1, 0, 0, 0
    return i, h, w, -1


@njit(inline="always", **_JIT)
def _put_number(buf, i, fl, row, col, slow, nslow, table):
    """Read a number at i into fl[col, row], or queue it in ``slow``: (end, nslow); end -1 on failure."""
    start = i
    i, v, exact, _m = _number(buf, i)
    if i < 0:
        return -1, nslow
    if exact:
        fl[col, row] = v
    else:
        if nslow >= slow.shape[1]:
            return -1, nslow
        fl[col, row] = np.nan
        slow[0, nslow] = start
        slow[1, nslow] = i
        slow[2, nslow] = table * TABLE_SHIFT + col * fl.shape[1] + row
        nslow += 1
    return i, nslow


@njit(**_JIT)
def _bbox(buf, i, fl, row, slow, nslow, table):
    """[x, y, w, h] at i into fl[0:4, row]: (end, nslow), end -1 on failure."""
    if not _at(buf, i, 91):
        return -1, nslow
    i = _ws(buf, i + 1)
    for col in range(4):
        i, nslow = _put_number(buf, i, fl, row, col, slow, nslow, table)
        if i < 0:
            return -1, nslow
        i = _ws(buf, i)
        if not _at(buf, i, 44 if col < 3 else 93):
            return -1, nslow
        i = _ws(buf, i + 1)
    return i, nslow


@njit(**_JIT)
def _record(buf, i, kind, row, ids, fl, spans, spans2, segs, nseg, slow, nslow, stack):
    """One record (an object) at i of a given kind (0 result, 1 image, 2 category, 3 annotation) into column
    ``row`` of its arrays: (end, nslow, nseg), end -1 to give up."""
    if not _at(buf, i, 123):
        return -1, nslow, nseg
    i = _ws(buf, i + 1)
    if _at(buf, i, 125):
        return -1, nslow, nseg
    if kind == 1 or kind == 2:
        spans[0, row] = spans[1, row] = spans2[0, row] = spans2[1, row] = -1
    if kind != 2:  # categories read no numbers; ``fl`` is the images' then
        for c in range(fl.shape[0]):
            fl[c, row] = np.nan
    crowd = -1
    seen = 0
    table = T_PRED if kind == 0 else (T_IMAGES if kind == 1 else T_ANN)
    while True:
        i, k = _key(buf, i)
        if k == -2:
            return -1, nslow, nseg
        if k >= 0:
            if seen & (1 << k):
                return -1, nslow, nseg
            seen |= 1 << k
        # which fields a kind reads; every other key is skipped
        if k == K_ID and kind != 0:
            i, v = _integer(buf, i)
            ids[0, row] = v
        elif (k == K_IMAGE_ID or k == K_CATEGORY_ID) and (kind == 0 or kind == 3):
            i, v = _integer(buf, i)
            ids[k - K_IMAGE_ID + (0 if kind == 0 else 1), row] = v
        elif k == K_BBOX and (kind == 0 or kind == 3):
            i, nslow = _bbox(buf, i, fl, row, slow, nslow, table)
        elif k == K_SCORE and kind == 0:
            i, nslow = _put_number(buf, i, fl, row, 4, slow, nslow, table)
        elif k == K_AREA and kind == 3:
            i, nslow = _put_number(buf, i, fl, row, 4, slow, nslow, table)
        elif (k == K_WIDTH or k == K_HEIGHT) and kind == 1:
            i, nslow = _put_number(buf, i, fl, row, k - K_WIDTH, slow, nslow, table)
        elif k == K_ISCROWD and kind == 3:
            if _at(buf, i, 116) or _at(buf, i, 102):
                i, crowd = _literal(buf, i)
                if crowd < 0:  # null: for DuckDB to judge
                    return -1, nslow, nseg
            else:
                i, v = _integer(buf, i)
                crowd = 1 if v != 0 else 0
        elif k == K_SEGMENTATION and (kind == 0 or kind == 3):
            if nseg >= segs.shape[1]:
                return -1, nslow, nseg
            start = i
            i, h, w, spaced = _segmentation(buf, i)
            segs[0, nseg] = row
            segs[1, nseg] = start
            segs[2, nseg] = i
            segs[3, nseg] = h
            segs[4, nseg] = w
            segs[5, nseg] = spaced
            nseg += 1
        elif ((k == K_FILE_NAME and kind == 1) or (k == K_NAME and kind == 2)
              or (k == K_SUPERCATEGORY and kind == 2)):
            if not _at(buf, i, 34):
                return -1, nslow, nseg
            start = i + 1
            i, escaped = _string(buf, i)
            if escaped:
                return -1, nslow, nseg
            target = spans2 if k == K_SUPERCATEGORY else spans
            target[0, row] = start
            target[1, row] = i - 1
        else:
            i = _skip(buf, i, stack)
        if i < 0:
            return -1, nslow, nseg
        i, state = _next(buf, i, 125)
        if state == -1:
            return -1, nslow, nseg
        if state == 1:
            break
    if kind == 3:
        ids[3, row] = crowd
    # required fields
    if kind == 0:  # a result needs a bbox or a segmentation (loadRes then takes the mask's box)
        need = (1 << K_IMAGE_ID) | (1 << K_CATEGORY_ID) | (1 << K_SCORE)
        if not seen & ((1 << K_BBOX) | (1 << K_SEGMENTATION)):
            return -1, nslow, nseg
    elif kind == 3:
        need = (1 << K_ID) | (1 << K_IMAGE_ID) | (1 << K_CATEGORY_ID) | (1 << K_BBOX)
    else:
        need = 1 << K_ID
    if seen & need != need:
        return -1, nslow, nseg
    return i, nslow, nseg


@njit(**_JIT)
def _records(buf, i, kind, ids, fl, spans, spans2, segs, slow, nslow, stack):
    """A list of records at i: (end, count, segmentations, nslow), end -1 to give up."""
    if not _at(buf, i, 91):
        return -1, 0, 0, nslow
    i = _ws(buf, i + 1)
    if _at(buf, i, 93):
        return i + 1, 0, 0, nslow
    row = 0
    nseg = 0
    while True:
        if row >= ids.shape[1]:
            return -1, row, nseg, nslow
        i, nslow, nseg = _record(buf, i, kind, row, ids, fl, spans, spans2, segs, nseg, slow, nslow, stack)
        if i < 0:
            return -1, row, nseg, nslow
        row += 1
        i, state = _next(buf, i, 93)
        if state != 0:
            return (i if state == 1 else -1), row, nseg, nslow


announce(__file__)
