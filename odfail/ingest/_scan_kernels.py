"""numba kernels of ingest: whole COCO files scanned, the file's bytes in, columns out. A results file (a list
of records) may be scanned in parts at once; an instances file section by section. The records themselves are
read by ``odfail._record_kernels``, whose docstring gives the strictness rule and the column layouts.

Each scanner returns (status, counts..., slow count[, end]); status 0 = every record read, else 1 + the byte
offset where the scan gave up (a debugging aid: the caller only needs "not 0").
"""

from __future__ import annotations

import numpy as np

from odfail._json_kernels import (
    K_ANNOTATIONS,
    K_BBOX,
    K_CATEGORIES,
    K_CATEGORY_ID,
    K_IMAGE_ID,
    K_IMAGES,
    K_SCORE,
    _at,
    _key,
    _next,
    _skip,
    _ws,
)
from odfail._numba import JIT as _JIT
from odfail._numba import announce, borrowed, njit
from odfail.ingest._record_kernels import _plain_number, _record, _records

_TEMPLATE_MAX = 256  # bytes of a results record's template: its text without the values


@njit(**_JIT)
def _learn(buf, i, tpl, tpl_off, kinds, stack):
    """The template of the results record at i (one the generic `_record` has accepted): the bytes before each
    value (brace, white space, key, colon: tpl[tpl_off[f]:tpl_off[f + 1]]) with the field each value fills
    (kinds), and after the last value the bytes to the closing brace. Returns the number of fields, 0 when the
    record is not the plain shape (the four fields image_id, category_id, bbox, score, nothing else)."""
    prev = i
    j = _ws(buf, i + 1)
    f = 0
    size = 0
    seen = 0
    while True:
        j, k = _key(buf, j)
        if not (k == K_IMAGE_ID or k == K_CATEGORY_ID or k == K_BBOX or k == K_SCORE) or seen & (1 << k):
            return 0
        seen |= 1 << k
        if size + j - prev > _TEMPLATE_MAX:
            return 0
        tpl[size: size + j - prev] = buf[prev:j]
        size += j - prev
        kinds[f] = k
        f += 1
        tpl_off[f] = size
        j = _skip(buf, j, stack)
        prev = j
        j, state = _next(buf, j, 125)
        if state == 1:
            break
        if state < 0:
            return 0
    if f != 4 or size + j - prev > _TEMPLATE_MAX:
        return 0
    tpl[size: size + j - prev] = buf[prev:j]
    tpl_off[f + 1] = size + j - prev
    return f


@njit(**_JIT)
def _templated(buf, i, row, ids, fl, tpl, tpl_off, kinds, nf):
    """A results record at i whose text matches the template byte for byte between its values (see `_learn`)
    and whose numbers are all plain (`_plain_number`): its end, -1 otherwise (the caller then reads it with
    `_record`, which is the rule; this reads the common record without a call per value)."""
    n = buf.size
    for f in range(nf + 1):
        p0, p1 = tpl_off[f], tpl_off[f + 1]
        if i + p1 - p0 > n:
            return -1
        for j in range(p1 - p0):
            if buf[i + j] != tpl[p0 + j]:
                return -1
        i += p1 - p0
        if f == nf:
            return i
        k = kinds[f]
        if k == K_IMAGE_ID or k == K_CATEGORY_ID:
            i, _v, iv = _plain_number(buf, i, True)
            ids[k - K_IMAGE_ID, row] = iv
        elif k == K_SCORE:
            i, v, _iv = _plain_number(buf, i, False)
            fl[4, row] = v
        else:
            if not (i < n and buf[i] == 91):
                return -1
            i += 1
            for col in range(4):
                while i < n and buf[i] == 32:
                    i += 1
                i, v, _iv = _plain_number(buf, i, False)
                if i < 0:
                    return -1
                fl[col, row] = v
                while i < n and buf[i] == 32:
                    i += 1
                if not (i < n and buf[i] == (44 if col < 3 else 93)):
                    return -1
                i += 1
        if i < 0:
            return -1
    return i


@njit(**_JIT)
def scan_results(buf, start, stop, row0, row_end, ids, fl, segs, slow):
    """Records of a COCO results file (a list of {image_id, category_id, bbox, score[, segmentation]}) whose
    opening brace lies in [start, stop); ``start`` is 0 for the file's beginning, else a record's brace, so
    that parts of one file can be scanned at once.

    ids (2, cap): image_id, category_id; fl (5, cap): x, y, w, h, score; rows row0 .. row_end - 1.
    segs (6, cap): the records with a segmentation, from column row0. Returns (status, records, segmentations,
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
    tpl = np.empty(_TEMPLATE_MAX, np.uint8)
    tpl_off = np.zeros(6, np.int64)
    kinds = np.zeros(4, np.int64)
    nf = -1  # fields of the template; -1 before the first record, 0 for none
    while True:
        if row >= row_end:
            return 1 + i, row - row0, seg - row0, nslow, 0
        at = i
        j = -1
        if nf > 0:
            j = _templated(buf, i, row, ids, fl, tpl, tpl_off, kinds, nf)
        if j >= 0:
            i = j
        else:
            i, nslow, seg = _record(buf, i, 0, row, ids, fl, spans, spans, segs, seg, slow, nslow, stack)
            if i < 0:
                return 1, row - row0, seg - row0, nslow, 0
            if nf < 0:
                nf = _learn(buf, at, tpl, tpl_off, kinds, stack)
        row += 1
        i, state = _next(buf, i, 93)
        if state == 0 and i >= stop:
            return 0, row - row0, seg - row0, nslow, i
        if state == 1 and _ws(buf, i) == buf.size:
            return 0, row - row0, seg - row0, nslow, buf.size
        if state != 0:
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
    0, 1); ann_fl (5, cap): x, y, w, h, area; ann_segs (6, cap): segmentations.
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
        i, state = _next(buf, i, 125)
        if state == -1:
            return 1 + i, 0, 0, 0, 0, 0
        if state == 1:
            break
    need = (1 << K_IMAGES) | (1 << K_CATEGORIES) | (1 << K_ANNOTATIONS)
    if seen & need != need or _ws(buf, i) != buf.size:
        return 1 + i, 0, 0, 0, 0, 0
    return 0, counts[0], counts[1], counts[2], counts[3], nslow


announce(__file__)
