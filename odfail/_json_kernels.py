"""numba kernels: JSON read strictly, a value at a time, over a file's bytes (a uint8 array). No Python objects.

Each reader takes the buffer and a position and returns the position past what it read, with -1 for "not what
was expected": the callers (``odfail._record_kernels``, ``odfail._scan_kernels``) then give up on the fast
path, and DuckDB's reader decides about the file (``odfail._seg_kernels`` reads stored segmentations with them).
So these only have to be right when they say "fine": RFC 8259 JSON, valid UTF-8, nothing more.

Numbers: a decimal with at most 18 significant digits whose value ``m * 10**e`` has ``m <= 2**53`` and
``|e| <= 22`` is exact in one float operation (Clinger's fast path: both factors are exact doubles and IEEE
rounds the product or quotient once). `_number` says "not exact" for any other, for the caller to leave to an
exact parser.
"""

from __future__ import annotations

import numpy as np

from odfail._numba import JIT as _JIT
from odfail._numba import announce, njit

_POW10 = np.array([10.0 ** k for k in range(23)])
_MAX_EXACT = 2 ** 53
# The field names the scanners read, one id each: `_key` recognises a record's fields by comparing bytes.
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
def _size_pair(buf, i):
    """[a, b] of two non-negative plain integers at i (an RLE's size): (end, a, b), end -1 otherwise."""
    if not _at(buf, i, 91):
        return -1, 0, 0
    i, a = _integer(buf, _ws(buf, i + 1))
    if i < 0 or a < 0 or not _at(buf, _ws(buf, i), 44):
        return -1, 0, 0
    i, b = _integer(buf, _ws(buf, _ws(buf, i) + 1))
    if i < 0 or b < 0 or not _at(buf, _ws(buf, i), 93):
        return -1, 0, 0
    return _ws(buf, i) + 1, a, b


@njit(**_JIT)
def _int_list(buf, i, out, o, limit):
    """A list of plain integers in 0..limit at i (an RLE's run lengths): (end, count, sum), end -1 otherwise;
    the values also go to out[o:] when ``out`` is not empty."""
    write = out.size > 0
    i = _ws(buf, i + 1)
    if _at(buf, i, 93):
        return i + 1, 0, 0
    count = total = 0
    more = 0
    while more == 0:
        i, v = _integer(buf, i)
        if i < 0 or v < 0 or v > limit:
            return -1, 0, 0
        if write:
            out[o + count] = v
        count += 1
        total += v
        i, more = _next(buf, i, 93)
    return (i if more == 1 else -1), count, total


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
def _next(buf, i, closer):
    """After an item of a list or object at i: (position, state), state 0 when another item follows (position
    at it), 1 when ``closer`` ends the container (position past it), -1 for anything else."""
    i = _ws(buf, i)
    if _at(buf, i, 44):
        return _ws(buf, i + 1), 0
    if _at(buf, i, closer):
        return i + 1, 1
    return i, -1


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


announce(__file__)
