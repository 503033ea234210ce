"""numba kernels of ingest: scanners for COCO JSON (the file's bytes in, columns of ids, numbers and byte spans
out) and the stored row order. No Python objects.

They accept only the shape COCO files have in practice, strictly (RFC 8259 JSON, valid UTF-8) and return a
non-zero status at the first byte outside it: a string key with an escape, a ``null`` in a field we read, a
duplicate key, a number that is not a plain integer where an id goes, ... The caller (``odfail.ingest``) then
falls back to DuckDB's reader, which accepts the rest of valid JSON and names the bad record and field. So
these kernels never explain an error; they only have to be right when they say "fine".

Numbers: a decimal with at most 18 significant digits whose value ``m * 10**e`` has ``m <= 2**53`` and
``|e| <= 22`` is exact in one float operation (Clinger's fast path: both factors are exact doubles and IEEE
rounds the product or quotient once). Any other number is left to an exact parser (Arrow's cast, fast_float):
its byte span goes to the ``slow`` list with the flat index of the value it fills.

Layouts (column-major, ``cap`` = capacity in records; allocate with ``np.empty``: pages never written cost no
memory, and each column's first n values are contiguous):
- ``ids``: int64 (k, cap), the integer fields of a record;
- ``fl``: float64 (k, cap), the number fields; NaN where absent (JSON has no NaN, so NaN means absent; a
  result's bbox may be absent when it has a segmentation);
- ``spans``: int64 (2, cap): start, end of a kept string's bytes (-1, -1 when absent);
- ``segs``: int64 (5, cap): one column per record that has a segmentation: the record, its bytes' start and
  end, and an RLE's height and width (-1 for polygons);
- ``slow``: int64 (3, scap): start, end, destination (table code * 2**40 + flat index into that table's ``fl``).
Each scanner returns (status, counts..., slow count[, end]); status 0 = every record read, else 1 + the byte
offset where the scan gave up (a debugging aid: the caller only needs "not 0").
"""

from __future__ import annotations

import numpy as np

from odfail._numba import borrowed, njit

_JIT = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}

_POW10 = np.array([10.0 ** k for k in range(23)])
_MAX_EXACT = 2 ** 53
# Field names, one id each: a record's fields are recognised by comparing bytes with these.
KEYS = ("id", "image_id", "category_id", "bbox", "score", "segmentation", "file_name", "width", "height", "name",
        "supercategory", "area", "iscrowd", "images", "categories", "annotations", "size", "counts")
(K_ID, K_IMAGE_ID, K_CATEGORY_ID, K_BBOX, K_SCORE, K_SEGMENTATION, K_FILE_NAME, K_WIDTH, K_HEIGHT, K_NAME,
 K_SUPERCATEGORY, K_AREA, K_ISCROWD, K_IMAGES, K_CATEGORIES, K_ANNOTATIONS, K_SIZE, K_COUNTS) = range(len(KEYS))
_KEY_BYTES = np.frombuffer("".join(KEYS).encode(), dtype=np.uint8)
_KEY_OFF = np.cumsum([0] + [len(k) for k in KEYS]).astype(np.int64)
# The candidate key for a (length, first letter in lower case): no two of KEYS share both.
_KEY_BY_LEN_FIRST = np.full((max(map(len, KEYS)) + 1, 256), -1, np.int64)
for _k, _name in enumerate(KEYS):
    assert _KEY_BY_LEN_FIRST[len(_name), ord(_name[0])] == -1
    _KEY_BY_LEN_FIRST[len(_name), ord(_name[0])] = _k
# Destination table codes for slow numbers.
T_PRED, T_IMAGES, T_ANN = 0, 1, 2
TABLE_SHIFT = 2 ** 40


@njit(inline="always", **_JIT)
def _ws(buf, i):
    n = buf.size
    while i < n:
        c = buf[i]
        if c != 32 and c != 10 and c != 13 and c != 9:
            return i
        i += 1
    return i


@njit(inline="always", **_JIT)
def _at(buf, i, c):
    return i < buf.size and buf[i] == c


@njit(**_JIT)
def _utf8(buf, i):
    """A multi-byte UTF-8 sequence starting at i (RFC 3629: no overlongs, no surrogates): its end, or -1."""
    n = buf.size
    c = buf[i]
    if 0xC2 <= c <= 0xDF:
        k, lo, hi = 1, 0x80, 0xBF
    elif c == 0xE0:
        k, lo, hi = 2, 0xA0, 0xBF
    elif 0xE1 <= c <= 0xEC or c == 0xEE or c == 0xEF:
        k, lo, hi = 2, 0x80, 0xBF
    elif c == 0xED:
        k, lo, hi = 2, 0x80, 0x9F
    elif c == 0xF0:
        k, lo, hi = 3, 0x90, 0xBF
    elif 0xF1 <= c <= 0xF3:
        k, lo, hi = 3, 0x80, 0xBF
    elif c == 0xF4:
        k, lo, hi = 3, 0x80, 0x8F
    else:
        return -1
    if i + k >= n or not (lo <= buf[i + 1] <= hi):
        return -1
    for j in range(i + 2, i + k + 1):
        if not (0x80 <= buf[j] <= 0xBF):
            return -1
    return i + k + 1


@njit(inline="always", **_JIT)
def _hex(c):
    return (48 <= c <= 57) or (65 <= c <= 70) or (97 <= c <= 102)


@njit(**_JIT)
def _string(buf, i):
    """The JSON string whose opening quote is at i: (end after the closing quote, has an escape), end -1 if
    invalid. A ``\\u`` escape of a surrogate is refused too (decoders differ on lone ones)."""
    n = buf.size
    i += 1
    escaped = False
    while i < n:
        c = buf[i]
        if c == 34:
            return i + 1, escaped
        if c < 32:
            return -1, escaped
        if c == 92:
            escaped = True
            if i + 1 >= n:
                return -1, escaped
            e = buf[i + 1]
            if e == 117:
                if i + 5 >= n or not (_hex(buf[i + 2]) and _hex(buf[i + 3]) and _hex(buf[i + 4])
                                      and _hex(buf[i + 5])):
                    return -1, escaped
                if (buf[i + 2] == 68 or buf[i + 2] == 100) and buf[i + 3] >= 56:  # \uD800-\uDFFF
                    return -1, escaped
                i += 6
            elif e == 34 or e == 92 or e == 47 or e == 98 or e == 102 or e == 110 or e == 114 or e == 116:
                i += 2
            else:
                return -1, escaped
        elif c >= 128:
            i = _utf8(buf, i)
            if i < 0:
                return -1, escaped
        else:
            i += 1
    return -1, escaped


@njit(**_JIT)
def _key(buf, i):
    """The object key at i (a string, then ':'): (position of its value, key id), key id -1 for a key we do not
    read, -2 if the scan must give up (bad syntax, an escape, or a read key in other letter case, which DuckDB
    might match)."""
    if not _at(buf, i, 34):
        return i, -2
    end = i + 1  # the common key: plain ASCII, no escape
    n = buf.size
    while end < n and 32 <= buf[end] < 128 and buf[end] != 34 and buf[end] != 92:
        end += 1
    if end < n and buf[end] == 34:
        end += 1
    else:
        end, escaped = _string(buf, i)
        if end < 0 or escaped:
            return i, -2
    s, ln = i + 1, end - 1 - (i + 1)
    found = -1
    if 0 < ln < _KEY_BY_LEN_FIRST.shape[0]:
        k = _KEY_BY_LEN_FIRST[ln, buf[s] | 32]
        if k >= 0:
            o = _KEY_OFF[k]
            exact, folded = True, True
            for j in range(ln):
                a, b = buf[s + j], _KEY_BYTES[o + j]
                if a != b:
                    exact = False
                    if a | 32 != b:
                        folded = False
                        break
            if exact:
                found = k
            elif folded:
                return i, -2
    j = _ws(buf, end)
    if not _at(buf, j, 58):
        return i, -2
    return _ws(buf, j + 1), found


@njit(**_JIT)
def _number(buf, i):
    """The JSON number at i: (end, value, exact, magnitude); end -1 if not a number. ``exact`` is False when
    ``value`` must come from an exact parser; ``magnitude`` (the decimal exponent of the leading digit, roughly)
    tells whether it could overflow."""
    n = buf.size
    neg = _at(buf, i, 45)
    if neg:
        i += 1
    if i >= n:
        return -1, 0.0, False, 0
    c = buf[i]
    m = 0
    digits = 0  # significant digits kept in m (at most 18: m stays an int64)
    dropped = False
    exp10 = 0
    int_digits = 0
    if c == 48:
        i += 1
        if i < n and 48 <= buf[i] <= 57:
            return -1, 0.0, False, 0
    elif 49 <= c <= 57:
        while i < n and 48 <= buf[i] <= 57:
            int_digits += 1
            if digits < 18:
                m = m * 10 + (buf[i] - 48)
                digits += 1
            else:
                exp10 += 1
                dropped = True
            i += 1
    else:
        return -1, 0.0, False, 0
    if i < n and buf[i] == 46:
        i += 1
        if not (i < n and 48 <= buf[i] <= 57):
            return -1, 0.0, False, 0
        while i < n and 48 <= buf[i] <= 57:
            d = buf[i] - 48
            if m == 0 and d == 0:
                exp10 -= 1
            elif digits < 18:
                m = m * 10 + d
                digits += 1
                exp10 -= 1
            else:
                dropped = True
            i += 1
    if i < n and (buf[i] == 101 or buf[i] == 69):
        i += 1
        eneg = False
        if i < n and (buf[i] == 43 or buf[i] == 45):
            eneg = buf[i] == 45
            i += 1
        if not (i < n and 48 <= buf[i] <= 57):
            return -1, 0.0, False, 0
        e = 0
        while i < n and 48 <= buf[i] <= 57:
            if e < 100000:
                e = e * 10 + (buf[i] - 48)
            i += 1
        exp10 += -e if eneg else e
    magnitude = digits + exp10 if m != 0 else -1000
    value = 0.0
    exact = False
    if m == 0:
        exact = True
    elif not dropped and m <= _MAX_EXACT and -22 <= exp10 <= 22:
        value = float(m)
        value = value * _POW10[exp10] if exp10 >= 0 else value / _POW10[-exp10]
        exact = True
    if neg:
        value = -value
    return i, value, exact, magnitude


@njit(**_JIT)
def _integer(buf, i):
    """A plain JSON integer of at most 18 digits at i (anything else, such as 1.0, is for DuckDB to judge):
    (end, value), end -1 otherwise."""
    n = buf.size
    neg = _at(buf, i, 45)
    j = i + 1 if neg else i
    if not (j < n and 48 <= buf[j] <= 57) or (buf[j] == 48 and j + 1 < n and 48 <= buf[j + 1] <= 57):
        return -1, 0
    v = 0
    k = j
    while k < n and 48 <= buf[k] <= 57:
        v = v * 10 + (buf[k] - 48)
        k += 1
    if k - j > 18 or (k < n and (buf[k] == 46 or buf[k] == 101 or buf[k] == 69)):
        return -1, 0
    return k, -v if neg else v


@njit(**_JIT)
def _literal(buf, i):
    """true / false / null at i: (end, 1 / 0 / -1), end -1 otherwise."""
    n = buf.size
    if i + 4 <= n and buf[i] == 116 and buf[i + 1] == 114 and buf[i + 2] == 117 and buf[i + 3] == 101:
        return i + 4, 1
    if (i + 5 <= n and buf[i] == 102 and buf[i + 1] == 97 and buf[i + 2] == 108 and buf[i + 3] == 115
            and buf[i + 4] == 101):
        return i + 5, 0
    if i + 4 <= n and buf[i] == 110 and buf[i + 1] == 117 and buf[i + 2] == 108 and buf[i + 3] == 108:
        return i + 4, -1
    return -1, 0


@njit(**_JIT)
def _skip(buf, i, stack):
    """Any JSON value at i, validated and skipped: its end, or -1. ``stack``: uint8 scratch, its size the deepest
    nesting accepted."""
    depth = 0
    while True:
        i = _ws(buf, i)
        if i >= buf.size:
            return -1
        c = buf[i]
        if c == 123 or c == 91:
            j = _ws(buf, i + 1)
            if _at(buf, j, 125 if c == 123 else 93):
                i = j + 1
            else:
                if depth == stack.size:
                    return -1
                stack[depth] = c
                depth += 1
                if c == 123:
                    j, _k = _key(buf, j)
                    if _k == -2:
                        return -1
                i = j
                continue
        elif c == 34:
            i, _e = _string(buf, i)
        elif c == 45 or 48 <= c <= 57:
            i, _v, _x, _m = _number(buf, i)
        else:
            i, _v2 = _literal(buf, i)
        if i < 0:
            return -1
        # after a value: close containers, or a comma and the next member
        while True:
            if depth == 0:
                return i
            i = _ws(buf, i)
            top = stack[depth - 1]
            if _at(buf, i, 44):
                i = _ws(buf, i + 1)
                if top == 123:
                    i, k = _key(buf, i)
                    if k == -2:
                        return -1
                break
            if _at(buf, i, 125 if top == 123 else 93):
                i += 1
                depth -= 1
                continue
            return -1


@njit(**_JIT)
def _segmentation(buf, i):
    """A COCO segmentation at i, checked as ``odfail.ingest_checks`` does: polygons (a non-empty list of lists of
    an even count >= 6 of finite numbers) or an RLE ({"size": [h, w], "counts": a string of '0'..'o' not ending
    inside a value, or run lengths summing to h * w}). Returns (end, h, w) with h = w = -1 for polygons;
    end -1 to give up."""
    if _at(buf, i, 91):
        i = _ws(buf, i + 1)
        polygons = 0
        while True:
            if not _at(buf, i, 91):
                return -1, 0, 0
            i = _ws(buf, i + 1)
            count = 0
            while True:
                i, _v, _x, mag = _number(buf, i)
                if i < 0 or mag > 300:
                    return -1, 0, 0
                count += 1
                i = _ws(buf, i)
                if _at(buf, i, 44):
                    i = _ws(buf, i + 1)
                elif _at(buf, i, 93):
                    i = _ws(buf, i + 1)
                    break
                else:
                    return -1, 0, 0
            if count < 6 or count % 2 == 1:
                return -1, 0, 0
            polygons += 1
            if _at(buf, i, 44):
                i = _ws(buf, i + 1)
            elif _at(buf, i, 93):
                return i + 1, -1, -1
            else:
                return -1, 0, 0
    if not _at(buf, i, 123):
        return -1, 0, 0
    i = _ws(buf, i + 1)
    h = w = -1
    total = -1  # run lengths' sum; -1 for a compressed string
    seen = 0
    while True:
        i, k = _key(buf, i)
        if k != K_SIZE and k != K_COUNTS or seen & (1 << (k - K_SIZE)):
            return -1, 0, 0
        seen |= 1 << (k - K_SIZE)
        if k == K_SIZE:
            if not _at(buf, i, 91):
                return -1, 0, 0
            i, h = _integer(buf, _ws(buf, i + 1))
            if i < 0 or h < 0 or not _at(buf, _ws(buf, i), 44):
                return -1, 0, 0
            i, w = _integer(buf, _ws(buf, _ws(buf, i) + 1))
            if i < 0 or w < 0 or not _at(buf, _ws(buf, i), 93):
                return -1, 0, 0
            i = _ws(buf, i) + 1
        elif _at(buf, i, 34):
            last = 0
            j = i + 1
            while True:
                if j >= buf.size:
                    return -1, 0, 0
                c = buf[j]
                if c == 34:
                    break
                if c == 92:  # only a backslash itself may be escaped: it is character 92, inside '0'..'o'
                    if not _at(buf, j + 1, 92):
                        return -1, 0, 0
                    j += 1
                elif c < 48 or c > 111:
                    return -1, 0, 0
                last = c
                j += 1
            if last >= 80:
                return -1, 0, 0
            i = j + 1
        elif _at(buf, i, 91):
            total = 0
            i = _ws(buf, i + 1)
            if not _at(buf, i, 93):
                while True:
                    i, v = _integer(buf, i)
                    if i < 0 or v < 0 or v > 2 ** 40:
                        return -1, 0, 0
                    total += v
                    i = _ws(buf, i)
                    if _at(buf, i, 44):
                        i = _ws(buf, i + 1)
                    elif _at(buf, i, 93):
                        break
                    else:
                        return -1, 0, 0
            i += 1
        else:
            return -1, 0, 0
        i = _ws(buf, i)
        if _at(buf, i, 44):
            i = _ws(buf, i + 1)
        elif _at(buf, i, 125):
            break
        else:
            return -1, 0, 0
    if seen != 3 or (total >= 0 and total != h * w):
        return -1, 0, 0
    return i + 1, h, w


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
def _number_field(buf, i, fl, row, col, slow, nslow, table):
    return _put_number(buf, i, fl, row, col, slow, nslow, table)


@njit(**_JIT)
def _members_end(buf, i):
    """After a member's value: (next position, 0 = another member follows, 1 = the object closed, -1 = bad)."""
    i = _ws(buf, i)
    if _at(buf, i, 44):
        return _ws(buf, i + 1), 0
    if _at(buf, i, 125):
        return i + 1, 1
    return i, -1


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
            i, nslow = _number_field(buf, i, fl, row, 4, slow, nslow, table)
        elif k == K_AREA and kind == 3:
            i, nslow = _number_field(buf, i, fl, row, 4, slow, nslow, table)
        elif (k == K_WIDTH or k == K_HEIGHT) and kind == 1:
            i, nslow = _number_field(buf, i, fl, row, k - K_WIDTH, slow, nslow, table)
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
            i, h, w = _segmentation(buf, i)
            segs[0, nseg] = row
            segs[1, nseg] = start
            segs[2, nseg] = i
            segs[3, nseg] = h
            segs[4, nseg] = w
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
        i, closed = _members_end(buf, i)
        if closed == -1:
            return -1, nslow, nseg
        if closed == 1:
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
        i = _ws(buf, i)
        if _at(buf, i, 44):
            i = _ws(buf, i + 1)
        elif _at(buf, i, 93):
            return i + 1, row, nseg, nslow
        else:
            return -1, row, nseg, nslow


@njit(**_JIT)
def scan_results(buf, start, stop, row0, row_end, ids, fl, segs, slow):
    """Records of a COCO results file (a list of {image_id, category_id, bbox, score[, segmentation]}) whose
    opening brace lies in [start, stop); ``start`` is 0 for the file's beginning, else a record's brace, so
    that parts of one file can be scanned at once.

    ids (2, cap): image_id, category_id; fl (5, cap): x, y, w, h, score; rows row0 .. row_end - 1.
    segs (5, cap): the records with a segmentation, from column row0. Returns (status, records, segmentations,
    slow count, end): ``end`` is the next record's brace, or the file's size after the closing bracket.
    """
    buf, ids, fl, segs, slow = borrowed(buf), borrowed(ids), borrowed(fl), borrowed(segs), borrowed(slow)
    stack = np.empty(64, np.uint8)
    spans = np.empty((2, 0), np.int64)
    i = start
    if start == 0:
        i = _ws(buf, 0)
        if not _at(buf, i, 91):
            return 1 + i, 0, 0, 0, 0
        i = _ws(buf, i + 1)
        if _at(buf, i, 93):  # an empty list: DuckDB's path stores that
            return 1 + i, 0, 0, 0, 0
    row, seg, nslow = row0, row0, 0
    while True:
        if row >= row_end:
            return 1 + i, row - row0, seg - row0, nslow, 0
        i, nslow, seg = _record(buf, i, 0, row, ids, fl, spans, spans, segs, seg, slow, nslow, stack)
        if i < 0:
            return 1, row - row0, seg - row0, nslow, 0
        row += 1
        i = _ws(buf, i)
        if _at(buf, i, 44):
            i = _ws(buf, i + 1)
            if i >= stop:
                return 0, row - row0, seg - row0, nslow, i
        elif _at(buf, i, 93) and _ws(buf, i + 1) == buf.size:
            return 0, row - row0, seg - row0, nslow, buf.size
        else:
            return 1 + i, row - row0, seg - row0, nslow, 0


@njit(**_JIT)
def record_start_after(buf, at):
    """The first '{' after ``at`` that follows '}' and ',' (white space between): where a record of a results
    file most likely starts (a string could hold the same bytes: the scan of the part before checks it).
    -1 if none."""
    j = at
    n = buf.size
    while j < n:
        if buf[j] == 125:
            k = _ws(buf, j + 1)
            if _at(buf, k, 44):
                k = _ws(buf, k + 1)
                if _at(buf, k, 123):
                    return k
        j += 1
    return -1


@njit(**_JIT)
def move_rows(arr, src, dst, n):
    """arr[:, dst:dst + n] = arr[:, src:src + n] for dst <= src, in place (no temporary)."""
    for c in range(arr.shape[0]):
        for j in range(n):
            arr[c, dst + j] = arr[c, src + j]


@njit(**_JIT)
def scan_instances(buf, img_ids, img_fl, img_spans, cat_ids, cat_spans, cat_spans2, ann_ids, ann_fl, ann_segs,
                   slow):
    """A COCO instances file: {"images": [...], "categories": [...], "annotations": [...], anything else}.

    img_ids (1, cap): id; img_fl (2, cap): width, height; img_spans (2, cap): file_name. cat_ids (1, cap): id;
    cat_spans: name; cat_spans2: supercategory. ann_ids (4, cap): id, image_id, category_id, iscrowd (-1 absent,
    0, 1); ann_fl (5, cap): x, y, w, h, area; ann_segs (5, cap): segmentations.
    Returns (status, images, categories, annotations, segmentations, slow count).
    """
    buf, slow = borrowed(buf), borrowed(slow)
    img_ids, img_fl, img_spans = borrowed(img_ids), borrowed(img_fl), borrowed(img_spans)
    cat_ids, cat_spans, cat_spans2 = borrowed(cat_ids), borrowed(cat_spans), borrowed(cat_spans2)
    ann_ids, ann_fl, ann_segs = borrowed(ann_ids), borrowed(ann_fl), borrowed(ann_segs)
    stack = np.empty(64, np.uint8)
    counts = np.zeros(4, np.int64)
    nslow = 0
    i = _ws(buf, 0)
    if not _at(buf, i, 123):
        return 1 + i, 0, 0, 0, 0, 0
    i = _ws(buf, i + 1)
    seen = 0
    while True:
        i, k = _key(buf, i)
        if k == -2 or (k >= 0 and seen & (1 << k)):
            return 1 + i, 0, 0, 0, 0, 0
        if k >= 0:
            seen |= 1 << k
        if k == K_IMAGES:
            i, c, _s, nslow = _records(buf, i, 1, img_ids, img_fl, img_spans, img_spans, ann_segs, slow, nslow,
                                       stack)
            counts[0] = c
        elif k == K_CATEGORIES:
            i, c, _s, nslow = _records(buf, i, 2, cat_ids, img_fl, cat_spans, cat_spans2, ann_segs, slow, nslow,
                                       stack)
            counts[1] = c
        elif k == K_ANNOTATIONS:
            i, c, ns, nslow = _records(buf, i, 3, ann_ids, ann_fl, img_spans, img_spans, ann_segs, slow, nslow,
                                       stack)
            counts[2] = c
            counts[3] = ns
        else:
            i = _skip(buf, i, stack)
        if i < 0:
            return 1, 0, 0, 0, 0, 0
        i, closed = _members_end(buf, i)
        if closed == -1:
            return 1 + i, 0, 0, 0, 0, 0
        if closed == 1:
            break
    need = (1 << K_IMAGES) | (1 << K_CATEGORIES) | (1 << K_ANNOTATIONS)
    if seen & need != need or _ws(buf, i) != buf.size:
        return 1 + i, 0, 0, 0, 0, 0
    return 0, counts[0], counts[1], counts[2], counts[3], nslow


@njit(**_JIT)
def string_views(buf, starts, ends, minify):
    """Arrow string views of the bytes buf[starts[r]:ends[r]] (a null where starts[r] < 0): (views, side, valid).

    A view is 16 bytes: int32 length, then the bytes themselves when at most 12, else the first 4 bytes, a
    buffer index and an int32 offset: buffer 0 is ``buf`` itself (no copy; it must be under 2 GiB), buffer 1 is
    ``side``, where a value with white space outside its strings is copied without it when ``minify``."""
    n = starts.size
    views = np.zeros((n, 16), np.uint8)
    valid = np.empty(n, np.bool_)
    side_size = 0
    if minify:
        for r in range(n):
            if starts[r] >= 0 and _has_space(buf, starts[r], ends[r]):
                side_size += ends[r] - starts[r]
    side = np.empty(side_size, np.uint8)
    o = 0
    for r in range(n):
        s, e = starts[r], ends[r]
        valid[r] = s >= 0
        if s < 0:
            continue
        source, at, index = buf, s, 0
        if minify and _has_space(buf, s, e):
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
def _has_space(buf, s, e):
    """White space outside strings in buf[s:e] (a segmentation: no escapes outside strings)."""
    in_string = False
    j = s
    while j < e:
        c = buf[j]
        if in_string:
            if c == 92:
                j += 1
            elif c == 34:
                in_string = False
        elif c == 34:
            in_string = True
        elif c == 32 or c == 10 or c == 13 or c == 9:
            return True
        j += 1
    return False


@njit(**_JIT)
def _minify(buf, s, e, out, o):
    """Copy buf[s:e] to out[o:] without white space outside strings; returns the length written."""
    start = o
    in_string = False
    j = s
    while j < e:
        c = buf[j]
        if in_string:
            out[o] = c
            o += 1
            if c == 92:
                out[o] = buf[j + 1]
                o += 1
                j += 1
            elif c == 34:
                in_string = False
        elif not (c == 32 or c == 10 or c == 13 or c == 9):
            out[o] = c
            o += 1
            in_string = c == 34
        j += 1
    return o - start


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


@njit(**_JIT)
def dense_index(ids, sorted_ids):
    """Each id's position in ``sorted_ids`` (ascending, unique); -1 for an id not there."""
    out = np.empty(ids.size, np.int32)
    if sorted_ids.size == 0:
        out[:] = -1
        return out
    lo, hi = sorted_ids[0], sorted_ids[-1]
    if float(hi) - float(lo) < 4.0 * ids.size + 1e6:  # ids are dense enough for a table
        table = np.full(hi - lo + 1, -1, np.int32)
        for k in range(sorted_ids.size):
            table[sorted_ids[k] - lo] = k
        for r in range(ids.size):
            v = ids[r]
            out[r] = table[v - lo] if lo <= v <= hi else -1
    else:
        pos = np.searchsorted(sorted_ids, ids)
        for r in range(ids.size):
            p = pos[r]
            out[r] = p if p < sorted_ids.size and sorted_ids[p] == ids[r] else -1
    return out


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


@njit(**_JIT)
def class_ranks(category, score):
    """Each prediction's rank in its category by score descending, ties in stored order (image, then file
    order): pycocotools' accumulation order. Takes the stored-order columns, where a category is one run, so
    each run is sorted where it lies: an LSD radix sort over the score bits, 11 at a time, skipping a digit the
    whole run shares. Shape: (n,)."""
    n = score.size
    rank = np.empty(n, np.int64)
    longest = 0
    a = 0
    while a < n:
        b = a
        while b < n and category[b] == category[a]:
            b += 1
        longest = max(longest, b - a)
        a = b
    keys, keys2 = np.empty(longest, np.uint64), np.empty(longest, np.uint64)
    pos, pos2 = np.empty(longest, np.int64), np.empty(longest, np.int64)
    counts = np.empty((6, 2049), np.int64)
    a = 0
    while a < n:
        b = a
        while b < n and category[b] == category[a]:
            b += 1
        m = b - a
        for j in range(m):
            keys[j] = _descending_key(score[a + j])
            pos[j] = j
        counts[:] = 0
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
        a = b
    return rank
