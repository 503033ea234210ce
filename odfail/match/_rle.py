"""numba kernels for COCO masks as run-length encodings (RLE), bit-identical to pycocotools' maskApi.c.

An RLE is a sequence of run lengths over the mask in column-major order (down the first column, then the next),
starting with a run of 0s (which may be empty). Many RLEs live in one flat uint32 array ``cnt`` with int64
offsets ``off`` (n + 1); ``h`` and ``w`` give each mask's size. Call these through ``odfail.masks``.

Integer widths follow maskApi.c where they decide a result: run lengths are uint32, polygon coordinates int32,
compressed-string values int64.
"""

from __future__ import annotations

import numpy as np

from odfail._numba import JIT as _JIT
from odfail._numba import announce, njit, prange

_SCALE = 5.0  # rleFrPoly upsamples polygon vertices by 5 before tracing the boundary
_INT_MIN = -2147483648  # what C's (int) cast of NaN gives on x86 (cvttsd2si), as in a zero-length polygon edge


@njit(inline="always", **_JIT)
def _c_int(v):
    """C's (int) cast of a double: truncation toward zero; NaN gives INT_MIN (x86's "integer indefinite")."""
    if v != v:
        return _INT_MIN
    return np.int32(int(v))


@njit(inline="always", **_JIT)
def _crossing(u0, v0, u1, v1, h, w, a, col, n):
    """rleFrPoly's test of two consecutive traced points: where the trace crosses a pixel column centre, the
    boundary point it keeps (position x * h + y in the column-major mask) goes to a[n] and its column to
    col[n]; returns the new n."""
    if u1 == u0:
        return n
    xd = float(u1 if u1 < u0 else u1 - 1)
    xd = (xd + 0.5) / _SCALE - 0.5
    if np.floor(xd) != xd or xd < 0 or xd > w - 1:
        return n
    yd = float(v1 if v1 < v0 else v0)
    yd = (yd + 0.5) / _SCALE - 0.5
    if yd < 0:
        yd = 0.0
    elif yd > h:
        yd = float(h)
    yd = np.ceil(yd)
    a[n] = np.uint32(np.int32(xd) * np.int32(h) + np.int32(yd))
    col[n] = np.int32(xd)
    return n + 1


@njit(**_JIT)
def _sorted(a, col, n):
    """a[:n] sorted, in an array with room for one more: a counting sort by column (every crossing of a column
    is at most the next column's first: x * h + y with y in [0, h]), then an insertion sort, which only moves
    a crossing within its column (a few per column). numpy's sort took half of the rasterisation."""
    if n < 2:
        return a
    lo = hi = col[0]
    for i in range(1, n):
        lo = min(lo, col[i])
        hi = max(hi, col[i])
    start = np.zeros(hi - lo + 2, dtype=np.int64)
    for i in range(n):
        start[col[i] - lo + 1] += 1
    for c in range(hi - lo + 1):
        start[c + 1] += start[c]
    b = np.empty(len(a), dtype=np.uint32)
    for i in range(n):
        c = col[i] - lo
        b[start[c]] = a[i]
        start[c] += 1
    for i in range(1, n):
        v = b[i]
        j = i
        while j > 0 and b[j - 1] > v:
            b[j] = b[j - 1]
            j -= 1
        b[j] = v
    return b


@njit(**_JIT)
def poly_to_rle(xy, h, w):
    """rleFrPoly: one polygon (x0, y0, x1, y1, ...) rasterised to the counts of an h x w mask.

    The rule: scale the vertices by 5 and round; trace every edge densely (one point per step of the longer
    axis); keep the points where the traced x crosses a pixel column centre, at the y of the upper of the two
    points, mapped back to pixels (ceil, clamped to [0, h]); each such point starts or ends a vertical run.

    The trace is tested pair by pair as it goes (`_crossing`), never stored. Along an edge whose longer axis
    is x, x steps by 1 and a pair crosses a column centre only where its smaller x is 2 modulo 5 (scaled
    (x + 0.5) / 5 - 0.5 is whole exactly then), so only those pairs are traced there.
    """
    k = len(xy) // 2
    x = np.empty(k + 1, dtype=np.int32)
    y = np.empty(k + 1, dtype=np.int32)
    for j in range(k):
        x[j] = _c_int(_SCALE * xy[2 * j] + 0.5)
        y[j] = _c_int(_SCALE * xy[2 * j + 1] + 0.5)
    x[k], y[k] = x[0], y[0]
    m = 0
    for j in range(k):
        m += max(abs(np.int64(x[j]) - x[j + 1]), abs(np.int64(y[j]) - y[j + 1])) + 1
    a = np.empty(m + 1, dtype=np.uint32)  # at most a crossing per traced point, and the mask's end
    col = np.empty(m + 1, dtype=np.int32)
    n = 0
    traced = False
    pu = pv = np.int64(0)  # the previous traced point
    for j in range(k):
        xs, xe, ys, ye = np.int64(x[j]), np.int64(x[j + 1]), np.int64(y[j]), np.int64(y[j + 1])
        dx, dy = abs(xe - xs), abs(ys - ye)
        flip = (dx >= dy and xs > xe) or (dx < dy and ys > ye)
        if flip:
            xs, xe = xe, xs
            ys, ye = ye, ys
        if dx >= dy:  # points (t + xs, round(ys + s t)), t = 0..dx, traced from t = dx down when flipped
            s = (ye - ys) / dx if dx != 0 else np.nan  # C: 0.0 / 0 is NaN for a zero-length edge
            t0 = dx if flip else 0
            if traced:
                n = _crossing(pu, pv, t0 + xs, np.int64(_c_int(ys + s * t0 + 0.5)), h, w, a, col, n)
            t = (2 - xs) % 5
            while t < dx:  # the pairs (t, t + 1) that can cross, in either order (the test is symmetric)
                n = _crossing(t + xs, np.int64(_c_int(ys + s * t + 0.5)), t + 1 + xs,
                              np.int64(_c_int(ys + s * (t + 1) + 0.5)), h, w, a, col, n)
                t += 5
            t1 = dx - t0
            pu, pv = t1 + xs, np.int64(_c_int(ys + s * t1 + 0.5))
        else:
            s = (xe - xs) / dy
            for d in range(dy + 1):
                t = dy - d if flip else d
                u, v = np.int64(_c_int(xs + s * t + 0.5)), t + ys
                if traced or d > 0:
                    n = _crossing(pu, pv, u, v, h, w, a, col, n)
                pu, pv = u, v
        traced = True
    a = _sorted(a, col, n)
    a[n] = np.uint32(h * w)
    n += 1
    p = np.uint32(0)
    for j in range(n):
        t = a[j]
        a[j] = a[j] - p
        p = t
    # differences -> run lengths; a zero difference merges the runs on either side of it
    out = np.empty(n, dtype=np.uint32)
    j = 0
    c = 0
    out[c] = a[j]
    c += 1
    j += 1
    while j < n:
        if a[j] > 0:
            out[c] = a[j]
            c += 1
            j += 1
        else:
            j += 1
            if j < n:
                out[c - 1] += a[j]
                j += 1
    return out[:c].copy()


@njit(**_JIT)
def _merge_two(a, b, intersect, out):
    """rleMerge of two RLEs of the same size (union, or intersection); returns the number of counts in out."""
    ca, cb = np.uint32(a[0]), np.uint32(b[0])
    v = va = vb = False
    m = 0
    ia, ib = 1, 1
    cc = np.uint32(0)
    ct = 1
    while ct > 0:
        c = min(ca, cb)
        cc += c
        ct = 0
        ca -= c
        if ca == 0 and ia < len(a):
            ca = np.uint32(a[ia])
            ia += 1
            va = not va
        ct += ca
        cb -= c
        if cb == 0 and ib < len(b):
            cb = np.uint32(b[ib])
            ib += 1
            vb = not vb
        ct += cb
        vp = v
        v = (va and vb) if intersect else (va or vb)
        if v != vp or ct == 0:
            out[m] = cc
            m += 1
            cc = np.uint32(0)
    return m


@njit(inline="always", **_JIT)
def _poly_bound(xy, dense):
    """An upper bound on the counts rleFrPoly makes of one polygon. A count ends at a column-centre crossing
    (`_crossing`), and along an edge the trace's x only moves one way over the edge's scaled width dx (+1 for
    rounding), passing a centre every 5: at most (dx + 1) // 5 + 2 crossings in an edge and one where it meets
    the next. ``dense``: the loose bound of every traced point instead (the fallback, see
    `objects_from_polygons`)."""
    k = len(xy) // 2
    m = 0
    for j in range(k):
        j2 = (j + 1) % k
        x0, y0 = _c_int(_SCALE * xy[2 * j] + 0.5), _c_int(_SCALE * xy[2 * j + 1] + 0.5)
        x1, y1 = _c_int(_SCALE * xy[2 * j2] + 0.5), _c_int(_SCALE * xy[2 * j2 + 1] + 0.5)
        dx = abs(np.int64(x0) - x1)
        m += max(dx, abs(np.int64(y0) - y1)) + 1 if dense else (dx + 1) // 5 + 3
    return m + 2


@njit(**_JIT)
def _object_rle(xy, poly_off, first, last, h, w):
    """One object's polygons rasterised and united (rleMerge, pairwise)."""
    acc = poly_to_rle(xy[poly_off[first]: poly_off[first + 1]], h, w)
    for p in range(first + 1, last):
        b = poly_to_rle(xy[poly_off[p]: poly_off[p + 1]], h, w)
        buf = np.empty(len(acc) + len(b) + 1, dtype=np.uint32)  # a union has at most this many runs
        m = _merge_two(acc, b, False, buf)
        acc = buf[:m].copy()
    return acc


@njit(parallel=True, **_JIT)
def _rasterised(xy, poly_off, obj_off, h, w, dense):
    """`objects_from_polygons`' objects, each into a slot sized by `_poly_bound`: (slots, slot offsets,
    lengths, whether any object outgrew its slot)."""
    n = len(obj_off) - 1
    bound = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        b = 1
        for p in range(obj_off[i], obj_off[i + 1]):
            b += _poly_bound(xy[poly_off[p]: poly_off[p + 1]], dense)
        bound[i] = b
    slot = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        slot[i + 1] = slot[i] + bound[i]
    scratch = np.empty(slot[n], dtype=np.uint32)
    length = np.zeros(n, dtype=np.int64)
    over = np.zeros(n, dtype=np.bool_)
    for i in prange(n):
        if obj_off[i + 1] > obj_off[i]:
            rle = _object_rle(xy, poly_off, obj_off[i], obj_off[i + 1], h[i], w[i])
            if len(rle) > bound[i]:
                over[i] = True
            else:
                length[i] = len(rle)
                scratch[slot[i]: slot[i] + len(rle)] = rle
    return scratch, slot, length, over.any()


@njit(parallel=True, **_JIT)
def objects_from_polygons(xy, poly_off, obj_off, h, w):
    """Every object's polygons rasterised (rleFrPoly) and united (rleMerge): pycocotools' annToRLE.

    xy: all coordinates; poly_off: (P + 1) offsets of each polygon into xy; obj_off: (N + 1) offsets of each
    object into the polygons; h, w: (N,) mask size of each object. Returns flat counts and offsets (N + 1).
    Objects run in parallel, each into a slot sized by an upper bound (the tight one of `_poly_bound`; the
    dense one should an object ever outgrow it), then the slots are packed.
    """
    n = len(obj_off) - 1
    scratch, slot, length, over = _rasterised(xy, poly_off, obj_off, h, w, False)
    if over:
        scratch, slot, length, over = _rasterised(xy, poly_off, obj_off, h, w, True)
    out_off = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        out_off[i + 1] = out_off[i] + length[i]
    out = np.empty(out_off[n], dtype=np.uint32)
    for i in prange(n):
        out[out_off[i]: out_off[i + 1]] = scratch[slot[i]: slot[i] + length[i]]
    return out, out_off


@njit(inline="always", **_JIT)
def _count_values(data, p0, p1, escaped):
    """How many values compressed string data[p0:p1] holds (a value ends at every character without the
    continuation bit), and 0 if it is valid, else 1 (a character outside '0'..'o') or 2 (it ends inside a
    value). ``escaped``: the string is as JSON writes it, a backslash (a character of the alphabet) doubled."""
    m = 0
    bad = 0
    last_more = False
    p = p0
    while p < p1:
        c = np.int64(data[p]) - 48
        if escaped and c == 44:
            p += 1
            if p == p1 or data[p] != 92:
                bad = 1
        if c < 0 or c > 63:
            bad = 1
        last_more = (c & 0x20) != 0
        if not last_more:
            m += 1
        p += 1
    if last_more and bad == 0:
        bad = 2
    return m, bad


@njit(inline="always", **_JIT)
def _string_value(data, p, p1, escaped):
    """One value of a compressed string from data[p:p1]: 5 bits per character, a continuation bit, a sign bit
    on the last character (before the delta from the value two back). Returns (value, position after it,
    status): 0, or 1 for a character outside '0'..'o' (or a lone backslash when ``escaped``), 2 for a string
    that ends inside the value."""
    x = np.int64(0)
    k = 0
    more = True
    while more:
        if p >= p1:
            return x, p, 2
        c = np.int64(data[p]) - 48
        if escaped and c == 44:
            p += 1
            if p >= p1 or data[p] != 92:
                return x, p, 1
        if c < 0 or c > 63:
            return x, p, 1
        x |= (c & 0x1F) << (5 * k)
        more = (c & 0x20) != 0
        p += 1
        k += 1
        if not more and (c & 0x10):
            x |= np.int64(-1) << (5 * k)
    return x, p, 0


@njit(inline="always", **_JIT)
def _decode_string(data, p0, p1, cnt, m0, escaped):
    """rleFrString of the valid string data[p0:p1] into cnt[m0:]: each value after the second plus the one two
    back (`_string_value`)."""
    m = m0
    p = p0
    while p < p1:
        x, p, _status = _string_value(data, p, p1, escaped)
        if m - m0 > 2:
            x += np.int64(cnt[m - 2])
        cnt[m] = np.uint32(x & 0xFFFFFFFF)
        m += 1


@njit(parallel=True, **_JIT)
def from_strings(data, start, end, escaped):
    """rleFrString for many compressed strings: output i decodes ``data[start[i]:end[i]]``, or is left empty
    where ``start[i] < 0`` (a mask nobody needs). Returns flat counts, offsets (len(start) + 1), and per output
    0 if valid, else 1 (a character outside '0'..'o') or 2 (the string ends inside a value); a bad string is left
    empty. ``escaped``: see `_count_values`."""
    n = len(start)
    out_off = np.zeros(n + 1, dtype=np.int64)
    bad = np.zeros(n, dtype=np.int8)
    n_values = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        if start[i] >= 0:
            m, b = _count_values(data, start[i], end[i], escaped)
            bad[i] = b
            n_values[i] = m if b == 0 else 0
    for i in range(n):
        out_off[i + 1] = out_off[i] + n_values[i]
    cnt = np.empty(out_off[n], dtype=np.uint32)
    for i in prange(n):
        if start[i] >= 0 and bad[i] == 0:
            _decode_string(data, start[i], end[i], cnt, out_off[i], escaped)
    return cnt, out_off, bad


@njit(inline="always", **_JIT)
def _box_step(t, t_prev, x, y, hh):
    """Column and row of pixel t, stepped from those of t_prev <= t, as rleToBbox's t / h and t % h: a division
    only for a step of more than a column."""
    y += t - t_prev
    if y >= hh:
        if y < 2 * hh:
            x += 1
            y -= hh
        else:
            q = y // hh
            x += q
            y -= q * hh
    return x, y


@njit(inline="always", **_JIT)
def _stats_one(data, p0, p1, escaped, h, w, box):
    """`_count_values`, `_decode_string` and `_area_box` of one string in one pass, the run lengths never
    stored: (area, total run length, validity as `_count_values`'s, whether `_area_box` must box it instead).

    rleToBbox splits the first and last pixel t of each run into column t / h and row t % h and keeps the
    least and greatest of each (every row once a run of 1s crosses columns). Columns grow with t, so theirs
    are the extremes of t; rows come from stepping the previous split forward (t only grows), a division only
    for a step of more than a column. That holds while t stays in uint32, where maskApi.c's arithmetic is;
    beyond it (a mask of 2**32 pixels or more) `_area_box` works it out line for line."""
    hh = np.int64(h)
    v1 = v2 = np.int64(0)  # the values one and two back
    m = 0
    area = cc = np.int64(0)
    ys, ye = hh, np.int64(0)
    t_lo, t_hi = np.int64(2 ** 62), np.int64(-1)
    x = y = t_prev = xp = t_even = np.int64(0)
    p = p0
    while p < p1:
        v, p, status = _string_value(data, p, p1, escaped)
        if status:
            return 0, 0, status, False
        if m > 2:
            v += v2
        v &= 0xFFFFFFFF
        v2, v1 = v1, v
        cc += v
        if m & 1 == 0:
            t_even = cc
        else:
            area += v
            if v > 0 and hh > 0:  # a pair of runs (pycocotools passes over one whose run of 1s is empty):
                t = cc - 1  # rleToBbox's two steps, the first run's end and the second's
                x, y = _box_step(t_even, t_prev, x, y, hh)
                xp = x
                ys, ye = min(ys, y), max(ye, y)
                x, y = _box_step(t, t_even, x, y, hh)
                if xp < x:
                    ys, ye = np.int64(0), hh - 1
                ys, ye = min(ys, y), max(ye, y)
                t_lo = min(t_lo, min(t_even, t))
                t_hi = max(t_hi, max(t_even, t))
                t_prev = t
        m += 1
    again = hh > 0 and m >= 2 and cc >= 2 ** 32
    if hh > 0 and m >= 2 and not again:
        xs = min(np.int64(np.uint32(w)), t_lo // hh)
        xe = max(np.int64(0), t_hi // hh)
        box[0] = xs
        box[1] = ys
        box[2] = np.float64(np.uint32(xe - xs + 1))
        box[3] = np.float64(np.uint32(ye - ys + 1))
    return area & 0xFFFFFFFF, cc, 0, again


@njit(parallel=True, **_JIT)
def string_stats(data, start, end, h, w, escaped):
    """What a mask needs beside its compressed string ``data[start[i]:end[i]]``, without keeping the run
    lengths: area (rleArea), box (rleToBbox), total run length (must be h * w) and validity (see
    `_count_values`). One pass per string (`_stats_one`); the rare RLE it cannot box is decoded and boxed
    by `_area_box`."""
    n = len(start)
    area = np.zeros(n, dtype=np.int64)
    box = np.zeros((n, 4))
    total = np.zeros(n, dtype=np.int64)
    bad = np.zeros(n, dtype=np.int8)
    for i in prange(n):
        a, t, b, again = _stats_one(data, start[i], end[i], escaped, h[i], w[i], box[i])
        area[i], total[i], bad[i] = a, t, b
        if again:
            m, _b = _count_values(data, start[i], end[i], escaped)
            scratch = np.empty(m, dtype=np.uint32)
            _decode_string(data, start[i], end[i], scratch, 0, escaped)
            _area_box(scratch, 0, m, h[i], w[i], box[i])
    return area, box, total, bad


@njit(parallel=True, **_JIT)
def place_strings(out, out_off, dest, data, str_off, src):
    """Copy string src[k] of (data, str_off) to slot dest[k] of (out, out_off) (slots sized beforehand)."""
    for k in prange(len(dest)):
        out[out_off[dest[k]]: out_off[dest[k] + 1]] = data[str_off[src[k]]: str_off[src[k] + 1]]


@njit(**_JIT)
def encode(mask):
    """rleEncode of one h x w uint8 mask given in column-major order (flattened): its counts."""
    a = len(mask)
    out = np.empty(a + 1, dtype=np.uint32)
    k = 0
    prev = 0
    c = np.uint32(0)
    for j in range(a):
        if mask[j] != prev:
            out[k] = c
            k += 1
            c = np.uint32(0)
            prev = mask[j]
        c += 1
    out[k] = c
    return out[: k + 1].copy()


@njit(**_JIT)
def decode(cnt, size):
    """rleDecode: counts to a flat column-major uint8 mask of ``size`` pixels."""
    out = np.zeros(size, dtype=np.uint8)
    p = 0
    v = 0
    for j in range(len(cnt)):
        for _ in range(cnt[j]):
            if p < size:
                out[p] = v
            p += 1
        v = 1 - v
    return out


@njit(inline="always", **_JIT)
def _area_box(cnt, a0, a1, h, w, box):
    """rleArea of counts a0..a1-1 (returned) and rleToBbox into box (4,), in its uint32 arithmetic."""
    s = np.uint32(0)
    for j in range(a0 + 1, a1, 2):
        s += cnt[j]
    hh = np.uint32(h)
    m = ((a1 - a0) // 2) * 2
    if m == 0 or hh == 0:
        return np.int64(s)
    xs, ys = np.uint32(w), hh
    xe = ye = np.uint32(0)
    cc = np.uint32(0)
    xp = np.uint32(0)
    for j in range(m):
        cc += cnt[a0 + j]
        if j % 2 == 0 and cnt[a0 + j + 1] == 0:
            continue  # pycocotools (2.0.11) passes over a pair whose run of 1s is empty
        if j % 2 == 1 and cnt[a0 + j] == 0:
            continue
        t = cc - np.uint32(j % 2)
        y = t % hh
        x = (t - y) // hh
        if j % 2 == 0:
            xp = x
        elif xp < x:
            ys = np.uint32(0)
            ye = hh - np.uint32(1)
        xs = min(xs, x)
        xe = max(xe, x)
        ys = min(ys, y)
        ye = max(ye, y)
    box[0] = xs
    box[1] = ys
    box[2] = np.float64(np.uint32(xe - xs + np.uint32(1)))
    box[3] = np.float64(np.uint32(ye - ys + np.uint32(1)))
    return np.int64(s)


@njit(parallel=True, **_JIT)
def areas_and_boxes(cnt, off, h, w):
    """rleArea and rleToBbox of every RLE: area (int64) and box (N, 4) float64 [x, y, w, h]."""
    n = len(off) - 1
    area = np.zeros(n, dtype=np.int64)
    box = np.zeros((n, 4))
    for i in prange(n):
        area[i] = _area_box(cnt, off[i], off[i + 1], h[i], w[i], box[i])
    return area, box


@njit(**_JIT)
def _to_string(cnt, a0, a1, out, p):
    """rleToString of counts a0..a1-1 (LEB128-like, 6 bits per character, each value minus the one two back),
    written to ``out`` from position p when ``out`` is non-empty; returns the position after the last character."""
    write = len(out) > 0
    for i in range(a0, a1):
        x = np.int64(cnt[i])
        if i - a0 > 2:
            x -= np.int64(cnt[i - 2])
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if write:
                out[p] = (c | 0x20 if more else c) + 48
            p += 1
    return p


@njit(parallel=True, **_JIT)
def to_strings(cnt, off):
    """rleToString of many RLEs: all strings' bytes and their offsets (N + 1); lengths first, then in place."""
    n = len(off) - 1
    none = np.zeros(0, dtype=np.uint8)
    length = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        length[i] = _to_string(cnt, off[i], off[i + 1], none, 0)
    str_off = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        str_off[i + 1] = str_off[i] + length[i]
    data = np.empty(str_off[n], dtype=np.uint8)
    for i in prange(n):
        _to_string(cnt, off[i], off[i + 1], data, str_off[i])
    return data, str_off


announce(__file__)
