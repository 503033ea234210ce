"""numba kernels: contiguous numpy arrays and scalars in, tuples of arrays out. No Python objects.

Every rule of pycocotools' ``COCOeval`` that decides a number is reproduced here with the same floating-point
operations in the same order, so results are bit-identical, not just close. Each rule is quoted where it is used.
Call these through ``odfail.match``, which validates input and builds the layouts described there.
"""

from __future__ import annotations

import numpy as np

from odfail._ids import counting_order
from odfail._numba import JIT as _JIT
from odfail._numba import announce, njit, prange

# Status of a prediction at one (area range, IoU threshold): what pycocotools' accumulate() counts it as.
IGNORED, TP, FP = 0, 1, 2


@njit(inline="always", **_JIT)
def _box_iou(dx, dy, dw, dh, gx, gy, gw, gh, crowd):
    """pycocotools maskApi.c bbIou, operation for operation: crowd GT -> union = detection area."""
    w = min(dw + dx, gw + gx) - max(dx, gx)
    if w <= 0:
        return 0.0
    h = min(dh + dy, gh + gy) - max(dy, gy)
    if h <= 0:
        return 0.0
    i = w * h
    da = dw * dh
    if crowd:
        return i / da
    return i / (da + gw * gh - i)


@njit(inline="always", **_JIT)
def _mask_iou(dcnt, da0, da1, gcnt, ga0, ga1, crowd, d_area, g_area, lo, hi):
    """pycocotools maskApi.c rleIou, the exact part for one pair whose mask boxes overlap: the intersection of
    two run-length encodings (column-major) by walking both at once; crowd GT -> union = the prediction's mask
    area; no intersection -> 0.

    Both masks lie inside their boxes, so only pixels [lo, hi) (the columns the boxes share) can be in both:
    the runs before lo are skipped one side at a time and the walk stops at hi. rleIou walks everything to
    count the union too; the union is area_d + area_g - intersection, the same integer."""
    a, pa, va = da0, 0, False  # run a covers pixels [pa, pa + dcnt[a]); va: it is a run of ones
    while a < da1 and pa + dcnt[a] <= lo:
        pa += dcnt[a]
        a += 1
        va = not va
    b, pb, vb = ga0, 0, False
    while b < ga1 and pb + gcnt[b] <= lo:
        pb += gcnt[b]
        b += 1
        vb = not vb
    inter = 0
    if a < da1 and b < ga1:
        pos = lo
        ca, cb = pa + dcnt[a] - pos, pb + gcnt[b] - pos  # what is left of the current runs
        while pos < hi:
            c = min(ca, cb)
            if va and vb:
                inter += c
            pos += c
            ca -= c
            cb -= c
            if ca == 0:
                a += 1
                if a >= da1:
                    break
                ca = np.int64(dcnt[a])
                va = not va
            if cb == 0:
                b += 1
                if b >= ga1:
                    break
                cb = np.int64(gcnt[b])
                vb = not vb
    if inter == 0:
        return 0.0
    if crowd:
        return np.float64(inter) / np.float64(d_area)
    return np.float64(inter) / np.float64(d_area + g_area - inter)


@njit(inline="always", **_JIT)
def _iou(d, g, crowd, dx, dy, dw, dh, gx, gy, gw, gh, masks):
    """IoU of prediction row d and GT row g. Boxes: bbIou. Masks (``masks`` non-empty; the boxes are then the
    masks' boxes): rleIou, which runs bbIou on the mask boxes first and walks the runs only where they overlap.

    masks = (d_cnt, d_start, d_end, d_area, d_h, g_cnt, g_start, g_end, g_area): run lengths, each row's slice
    of them, the mask areas and the predictions' mask height (a column's length), -1 where a GT mask of its image
    has another size."""
    v = _box_iou(dx[d], dy[d], dw[d], dh[d], gx[g], gy[g], gw[g], gh[g], crowd)
    # masks unpacked only for a pair that needs them: unpacking takes a reference to each of its nine arrays,
    # and for every box pair that cost more than the IoU itself (tidecv's matching: 83 -> 44 ms on 325k)
    if v > 0 and len(masks[1]):
        d_cnt, d_start, d_end, d_area, d_h, g_cnt, g_start, g_end, g_area = masks
        if d_end[d] == d_start[d] or g_end[g] == g_start[g]:
            return 0.0
        # the columns both mask boxes span (mask boxes hold whole pixels); d_h < 0: sizes differ, walk all
        lo, hi = np.int64(0), np.int64(1) << 62
        if d_h[d] >= 0:
            lo = np.int64(max(dx[d], gx[g])) * d_h[d]
            hi = np.int64(min(dx[d] + dw[d], gx[g] + gw[g])) * d_h[d]
        return _mask_iou(d_cnt, d_start[d], d_end[d], g_cnt, g_start[g], g_end[g], crowd, d_area[d], g_area[g],
                         lo, hi)
    return v


@njit(parallel=True, **_JIT)
def box_overlaps(d_img, d_cat, dx, dy, dw, dh, g_img, g_cat, gx, gy, gw, gh, n_img, by_class):
    """Which predictions and which GT overlap some row of the other side in their image (bbIou > 0; of their
    class only if ``by_class``): rleIou walks the runs of those masks only, every other pair is decided by its
    box pre-check, so only they need decoding. Images (indices in [0, n_img)) run in parallel; rows may come
    in any order."""
    d_order, d_off = counting_order(d_img, n_img)
    g_order, g_off = counting_order(g_img, n_img)
    need_d = np.zeros(len(d_img), dtype=np.bool_)
    need_g = np.zeros(len(g_img), dtype=np.bool_)
    for i in prange(n_img):
        for a in range(d_off[i], d_off[i + 1]):
            d = d_order[a]
            for b in range(g_off[i], g_off[i + 1]):
                g = g_order[b]
                if by_class and d_cat[d] != g_cat[g]:
                    continue
                if _box_iou(dx[d], dy[d], dw[d], dh[d], gx[g], gy[g], gw[g], gh[g], False) > 0:
                    need_d[d] = True
                    need_g[g] = True
    return need_d, need_g


@njit(**_JIT)
def in_eval_order(key, score, tie):
    """Whether rows are sorted by key ascending, then score descending, then tie strictly ascending (one pass,
    no temporaries: at 3M predictions numpy's diffs took 0.15 s)."""
    for i in range(1, len(key)):
        if key[i] != key[i - 1]:
            if key[i] < key[i - 1]:
                return False
        elif score[i] != score[i - 1]:
            if score[i] > score[i - 1]:
                return False
        elif tie[i] <= tie[i - 1]:
            return False
    return True


@njit(**_JIT)
def group_offsets(g_key, d_key):
    """Merge two sorted int64 key arrays into the sorted union of keys and offsets into each (G + 1 each)."""
    ng, nd = len(g_key), len(d_key)
    groups = np.empty(ng + nd, dtype=np.int64)
    g_off = np.empty(ng + nd + 1, dtype=np.int64)
    d_off = np.empty(ng + nd + 1, dtype=np.int64)
    i = j = n = 0
    while i < ng or j < nd:
        if j >= nd or (i < ng and g_key[i] <= d_key[j]):
            key = g_key[i]
        else:
            key = d_key[j]
        groups[n] = key
        g_off[n] = i
        d_off[n] = j
        while i < ng and g_key[i] == key:
            i += 1
        while j < nd and d_key[j] == key:
            j += 1
        n += 1
    g_off[n] = ng
    d_off[n] = nd
    return groups[:n], g_off[: n + 1], d_off[: n + 1]


@njit(parallel=True, **_JIT)
def match_groups(gx, gy, gw, gh, gt_area, gt_crowd, gt_id, dx, dy, dw, dh, dt_area, gt_off, dt_off,
                 iou_thrs, area_lo, area_hi, max_det, all_area, n_chunks, masks):
    """Greedy COCO matching of every (category, image) group at every area range and IoU threshold.

    Args:
        gx, gy, gw, gh / dx, dy, dw, dh: float64 boxes of GT / predictions. Rows grouped by ``gt_off`` / ``dt_off``
            (G + 1 offsets); within a group GT are in file order and predictions by score, descending, ties in
            file order.
        gt_area, dt_area: float64 areas that area ranges test. gt_crowd: uint8. gt_id: int64.
        masks: empty arrays for box IoU, else the masks of both sides (see `_iou`); the boxes are then the
            masks' boxes (rleToBbox).
        iou_thrs: (T,) thresholds. area_lo, area_hi: (A,) inclusive bounds. max_det: the largest maxDets.
        all_area: index of the area range whose matches are returned per prediction and per GT.
        n_chunks: groups are split into this many contiguous chunks, run in parallel, each with its own scratch.

    Returns:
        status: (N_dt, A, T) int8 IGNORED / TP / FP (predictions past max_det in their group stay IGNORED, and
            so do background predictions, which ``packed`` describes instead);
        dt_match: (N_dt, T) int32 GT row matched at area ``all_area``, -1 if none;
        gt_match: (N_gt, T) int32 prediction row that matched the GT at area ``all_area``, -1 if none;
        packed: (N_dt,) int64 = rank << 8 | background << 7 | fp_mask, one read per prediction for `accumulate`:
            rank = 0-based position in its group; background = IoU with every GT of the group below every
            threshold (unmatched everywhere, so FP wherever its area is in range; most predictions are);
            fp_mask bit a = FP at area range a. Background is only flagged when A <= 7 (else the slow path).
    """
    n_groups = len(gt_off) - 1
    lowest_bar = 1 - 1e-10
    for t in range(len(iou_thrs)):
        lowest_bar = min(lowest_bar, iou_thrs[t])
    n_dt, n_gt = len(dx), len(gx)
    T, A = len(iou_thrs), len(area_lo)
    status = np.zeros((n_dt, A, T), dtype=np.int8)
    dt_match = np.full((n_dt, T), -1, dtype=np.int32)
    gt_match = np.full((n_gt, T), -1, dtype=np.int32)
    packed = np.zeros(n_dt, dtype=np.int64)
    for c in prange(n_chunks):
        c0 = c * n_groups // n_chunks
        c1 = (c + 1) * n_groups // n_chunks
        most_d, most_g = 1, 1
        for g in range(c0, c1):
            most_d = max(most_d, min(dt_off[g + 1] - dt_off[g], max_det))
            most_g = max(most_g, gt_off[g + 1] - gt_off[g])
        ious = np.empty((most_d, most_g))
        best_iou = np.empty(most_d)
        live = np.empty(most_d, dtype=np.int64)  # the group's non-background predictions, in score order
        order = np.empty(most_g, dtype=np.int64)
        ig = np.empty(most_g, dtype=np.bool_)
        matched = np.empty(most_g, dtype=np.bool_)
        for g in range(c0, c1):
            g0, g1 = gt_off[g], gt_off[g + 1]
            d0 = dt_off[g]
            # pycocotools computeIoU: predictions cut to maxDets[-1] per image and category
            D = min(dt_off[g + 1] - d0, max_det)
            G = g1 - g0
            for d in range(dt_off[g + 1] - d0):
                packed[d0 + d] = d << 8
            if D == 0:
                continue
            for d in range(D):
                top = 0.0
                for j in range(G):
                    v = _iou(d0 + d, g0 + j, gt_crowd[g0 + j] != 0, dx, dy, dw, dh, gx, gy, gw, gh, masks)
                    ious[d, j] = v
                    top = max(top, v)
                best_iou[d] = top
            n_live = 0
            for d in range(D):
                if best_iou[d] >= lowest_bar:
                    live[n_live] = d
                    n_live += 1
                else:
                    row = d0 + d
                    if A <= 7:
                        # status stays IGNORED: readers take background predictions from the packed word
                        mask = 0
                        for a in range(A):
                            if area_lo[a] <= dt_area[row] <= area_hi[a]:
                                mask |= 1 << a
                        packed[row] |= 128 | mask
                    else:
                        live[n_live] = d  # too many area ranges to pack: take the ordinary path
                        n_live += 1
            if n_live == 0:
                continue
            for a in range(A):
                # evaluateImg: a GT is ignored if crowd or its area is outside [lo, hi] (both ends inclusive)
                for j in range(G):
                    ar = gt_area[g0 + j]
                    ig[j] = gt_crowd[g0 + j] != 0 or ar < area_lo[a] or ar > area_hi[a]
                # ...and ignored GT are sorted last, stably (np.argsort(kind='mergesort') on the flag)
                k = 0
                for j in range(G):
                    if not ig[j]:
                        order[k] = j
                        k += 1
                for j in range(G):
                    if ig[j]:
                        order[k] = j
                        k += 1
                for t in range(T):
                    matched[:G] = False
                    # background predictions are settled above, and cannot take a GT from anyone
                    for li in range(n_live):
                        d = live[li]
                        # the bar starts at the threshold, capped below 1 so that IoU == 1 can match
                        best = min(iou_thrs[t], 1 - 1e-10)
                        m = -1
                        # shortcut, same outcome: no GT of the group reaches the bar, so the scan finds none
                        scan = G if best_iou[d] >= best else 0
                        for k in range(scan):
                            j = order[k]
                            # a GT already matched is skipped, unless it is crowd (crowd absorbs many predictions)
                            if matched[j] and gt_crowd[g0 + j] == 0:
                                continue
                            # once matched to a regular GT, stop at the first ignored one (they are sorted last)
                            if m > -1 and not ig[m] and ig[j]:
                                break
                            # `<`, not `<=`: on equal IoU the later GT in this order wins
                            if ious[d, j] < best:
                                continue
                            best = ious[d, j]
                            m = j
                        row = d0 + d
                        if m > -1:
                            matched[m] = True
                            if a == all_area:
                                dt_match[row, t] = g0 + m
                                gt_match[g0 + m, t] = row
                        # accumulate() tests the matched GT *id* for truth, so a match to a GT with id 0 counts
                        # as unmatched; a prediction matched to an ignored GT is ignored; an unmatched one is
                        # ignored when its own area is outside the range.
                        truthy = m > -1 and gt_id[g0 + m] != 0
                        if (m > -1 and ig[m]) or (
                                not truthy and (dt_area[row] < area_lo[a] or dt_area[row] > area_hi[a])):
                            status[row, a, t] = IGNORED
                        elif truthy:
                            status[row, a, t] = TP
                        else:
                            status[row, a, t] = FP
    return status, dt_match, gt_match, packed


_EPS = np.spacing(1.0)  # pycocotools: pr = tp / (fp + tp + np.spacing(1))


@njit(parallel=True, **_JIT)
def accumulate(status, packed, dt_score, class_rank, cat_off, npig, max_dets, rec_thrs):
    """pycocotools accumulate(): precision at 101 recall points and recall, per category, area and maxDets.

    Args:
        status: (N_dt, A, T) from `match_groups`, rows grouped by category (``cat_off``, K + 1 offsets) and within
            a category ordered by image, then by rank in the image.
        packed: (N_dt,) from `match_groups`: rank in the (category, image) group, and background predictions
            (FP at every threshold where not ignored), counted once per (area range, maxDets) instead of once
            per threshold.
        class_rank: (N_dt,) each prediction's position in its category's accumulation order (by score, then
            image, then file order; gaps allowed), or an empty array to sort by score here instead.
        npig: (K, A) number of non-ignored GT. max_dets: (M,) ascending. rec_thrs: (R,).

    Returns:
        precision: (K, A, M, T, R), recall: (K, A, M, T); -1 where a category has no non-ignored GT. Laid out
        category-major so that each category writes one contiguous block; `odfail.match` hands out the
        (T, R, K, A, M) / (T, K, A, M) views that pycocotools uses.

    pycocotools builds rc/pr over every prediction, takes the right-to-left running max of pr, and reads it at
    ``searchsorted(rc, recThrs, 'left')``. rc only rises at a TP and an FP only lowers pr, so the index found
    is always a TP (or the first point, whose envelope value is the overall max = the max over TPs), and the
    envelope there equals the max of pr over later TPs. Keeping (rc, pr) at TPs only gives the same floats.
    """
    N, A, T = status.shape
    K, M, R = len(cat_off) - 1, len(max_dets), len(rec_thrs)
    precision = -np.ones((K, A, M, T, R))
    recall = -np.ones((K, A, M, T))
    for k in prange(K):
        s0, s1 = cat_off[k], cat_off[k + 1]
        # Each prediction's packed word and row, laid out in accumulation order, so that the main loop reads
        # memory sequentially; -1 marks gaps that image or category subsets leave in class_rank.
        if len(class_rank):  # the order precomputed at ingest: a scatter, O(n)
            top = -1
            for row in range(s0, s1):
                top = max(top, class_rank[row])
            slot_word = np.full(top + 1, -1, dtype=np.int64)
            slot_row = np.empty(top + 1, dtype=np.int64)
            for row in range(s0, s1):
                slot_word[class_rank[row]] = packed[row]
                slot_row[class_rank[row]] = row
        else:
            # one stable sort of -score over (image, rank) order = pycocotools' mergesort over concatenated images
            order = np.argsort(-dt_score[s0:s1], kind="mergesort") + s0
            slot_word = np.empty(s1 - s0, dtype=np.int64)
            slot_row = order
            for i in range(s1 - s0):
                slot_word[i] = packed[order[i]]
        most = 1
        for a in range(A):
            most = max(most, int(npig[k, a]))
        ev_rc = np.empty((A, T, M, most))
        ev_pr = np.empty((A, T, M, most))
        n_ev = np.zeros((A, T, M), dtype=np.int64)
        tp = np.zeros((A, T, M))
        fp = np.zeros((A, T, M))
        fp_bg = np.zeros((A, M))  # background FPs, shared by all thresholds; fp + fp_bg is pycocotools' fp
        for i in range(len(slot_word)):
            p = slot_word[i]
            if p < 0:
                continue
            r = p >> 8
            if r >= max_dets[M - 1]:
                continue
            m0 = 0  # maxDets this prediction counts for: m0 .. M-1 (ascending)
            while r >= max_dets[m0]:
                m0 += 1
            if p & 128:
                for a in range(A):
                    if (p >> a) & 1:
                        for m in range(m0, M):
                            fp_bg[a, m] += 1.0
                continue
            row = slot_row[i]
            for a in range(A):
                if npig[k, a] == 0:
                    continue
                for t in range(T):
                    s = status[row, a, t]
                    if s == IGNORED:
                        continue
                    for m in range(m0, M):
                        if s == TP:
                            tp[a, t, m] += 1.0
                            e = n_ev[a, t, m]
                            ev_rc[a, t, m, e] = tp[a, t, m] / npig[k, a]
                            # both counts are whole numbers, so fp + fp_bg is exact: the same float as the cumsum
                            ev_pr[a, t, m, e] = tp[a, t, m] / ((fp[a, t, m] + fp_bg[a, m]) + tp[a, t, m] + _EPS)
                            n_ev[a, t, m] = e + 1
                        else:
                            fp[a, t, m] += 1.0
        for a in range(A):
            if npig[k, a] == 0:
                continue  # "if npig == 0: continue": precision and recall stay -1
            for t in range(T):
                for m in range(M):
                    n = n_ev[a, t, m]
                    recall[k, a, m, t] = tp[a, t, m] / npig[k, a]
                    pr = ev_pr[a, t, m]
                    for i in range(n - 1, 0, -1):  # precision envelope, right to left
                        if pr[i] > pr[i - 1]:
                            pr[i - 1] = pr[i]
                    i = 0
                    for q in range(R):  # searchsorted(rc, recThrs, 'left'); past the last point: 0
                        while i < n and ev_rc[a, t, m, i] < rec_thrs[q]:
                            i += 1
                        precision[k, a, m, t, q] = pr[i] if i < n else 0.0
    return precision, recall


@njit(parallel=True, **_JIT)
def image_facts(gx, gy, gw, gh, g_img, g_cat, gt_crowd, dx, dy, dw, dh, d_img, d_cat, dt_keep, n_img):
    """Per image, the IoU facts the error taxonomy needs, over all classes.

    ``g_img`` / ``d_img`` are image indices in [0, n_img); rows may come in any order. Predictions with
    ``dt_keep`` False (cut by maxDets) are left out of the per-GT facts.

    Returns (indexed like the input rows):
        iou_same, gt_same: best IoU with a same-class non-crowd GT and its row (-1 if none);
        iou_other, gt_other: best IoU with a non-crowd GT of another class and its row;
        iou_crowd: best crowd IoU (intersection / prediction area) with a same-class crowd GT;
        gt_iou, gt_best: per GT, best IoU with a kept same-class prediction and its row.
    """
    g_order, g_off = counting_order(g_img, n_img)
    d_order, d_off = counting_order(d_img, n_img)
    n_dt, n_gt = len(dx), len(gx)
    iou_same = np.zeros(n_dt)
    gt_same = np.full(n_dt, -1, dtype=np.int64)
    iou_other = np.zeros(n_dt)
    gt_other = np.full(n_dt, -1, dtype=np.int64)
    iou_crowd = np.zeros(n_dt)
    gt_iou = np.zeros(n_gt)
    gt_best = np.full(n_gt, -1, dtype=np.int64)
    for im in prange(n_img):
        for di in range(d_off[im], d_off[im + 1]):
            d = d_order[di]
            for gi in range(g_off[im], g_off[im + 1]):
                j = g_order[gi]
                crowd = gt_crowd[j] != 0
                v = _box_iou(dx[d], dy[d], dw[d], dh[d], gx[j], gy[j], gw[j], gh[j], crowd)
                same = g_cat[j] == d_cat[d]
                if crowd:
                    if same and v > iou_crowd[d]:
                        iou_crowd[d] = v
                    continue
                if same:
                    if v > iou_same[d]:
                        iou_same[d] = v
                        gt_same[d] = j
                    if dt_keep[d] and v > gt_iou[j]:
                        gt_iou[j] = v
                        gt_best[j] = d
                elif v > iou_other[d]:
                    iou_other[d] = v
                    gt_other[d] = j
    return iou_same, gt_same, iou_other, gt_other, iou_crowd, gt_iou, gt_best


@njit(**_JIT)
def match_pairs(dt_match, dt_rows, gt_rows, dt_ids, gt_ids, iou_thrs):
    """Every (prediction id, GT id, IoU threshold) that matched, from (R, T) grouped matches (-1 = none)."""
    R, T = dt_match.shape
    n = 0
    for i in range(R):
        for t in range(T):
            if dt_match[i, t] >= 0:
                n += 1
    pred = np.empty(n, dtype=np.int64)
    gt = np.empty(n, dtype=np.int64)
    thr = np.empty(n)
    k = 0
    for i in range(R):
        for t in range(T):
            g = dt_match[i, t]
            if g >= 0:
                pred[k] = dt_ids[dt_rows[i]]
                gt[k] = gt_ids[gt_rows[g]]
                thr[k] = iou_thrs[t]
                k += 1
    return pred, gt, thr


announce(__file__)
