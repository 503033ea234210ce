"""numba kernels: contiguous numpy arrays and scalars in, tuples of arrays out. No Python objects.

Every rule of pycocotools' ``COCOeval`` that decides a number is reproduced here with the same floating-point
operations in the same order, so results are bit-identical, not just close. Each rule is quoted where it is used.
Call these through ``odfail.match``, which validates input and builds the layouts described there.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Tuning flags live here only. fastmath stays off: it would reorder float operations and break exactness.
_JIT = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}

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
def _mask_iou(dcnt, da0, da1, gcnt, ga0, ga1, crowd, d_area):
    """pycocotools maskApi.c rleIou, the exact part for one pair whose mask boxes overlap: walk both run-length
    encodings at once; crowd GT -> union = the prediction's mask area; no intersection -> 0."""
    ca, cb = dcnt[da0], gcnt[ga0]
    va = vb = False
    a, b = da0 + 1, ga0 + 1
    inter = np.uint32(0)
    union = np.uint32(0)
    ct = 1
    while ct > 0:
        c = min(ca, cb)
        if va or vb:
            union += c
            if va and vb:
                inter += c
        ct = 0
        ca -= c
        if ca == 0 and a < da1:
            ca = dcnt[a]
            a += 1
            va = not va
        ct += ca
        cb -= c
        if cb == 0 and b < ga1:
            cb = gcnt[b]
            b += 1
            vb = not vb
        ct += cb
    if inter == 0:
        return 0.0
    if crowd:
        return np.float64(inter) / np.float64(d_area)
    return np.float64(inter) / np.float64(union)


@njit(inline="always", **_JIT)
def _iou(d, g, crowd, dx, dy, dw, dh, gx, gy, gw, gh, masks):
    """IoU of prediction row d and GT row g. Boxes: bbIou. Masks (``masks`` non-empty; the boxes are then the
    masks' boxes): rleIou, which runs bbIou on the mask boxes first and walks the runs only where they overlap.

    masks = (d_cnt, d_start, d_end, d_area, g_cnt, g_start, g_end): run lengths, each row's slice of them, and
    the predictions' mask areas (the crowd union)."""
    v = _box_iou(dx[d], dy[d], dw[d], dh[d], gx[g], gy[g], gw[g], gh[g], crowd)
    d_cnt, d_start, d_end, d_area, g_cnt, g_start, g_end = masks
    if v > 0 and len(d_start):
        if d_end[d] == d_start[d] or g_end[g] == g_start[g]:
            return 0.0
        return _mask_iou(d_cnt, d_start[d], d_end[d], g_cnt, g_start[g], g_end[g], crowd, d_area[d])
    return v


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


@njit(**_JIT)
def _counting_order(idx, n_bins):
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
    g_order, g_off = _counting_order(g_img, n_img)
    d_order, d_off = _counting_order(d_img, n_img)
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


# ---- TIDE (tidecv) ----------------------------------------------------------------------------------------------
# Error types in tidecv's fixed order (TIDE._error_types), as small ints; TP first.
E_TP, E_CLS, E_LOC, E_BOTH, E_DUPE, E_BKG = 0, 1, 2, 3, 4, 5


@njit(parallel=True, **_JIT)
def tide_match(gx, gy, gw, gh, g_img, g_cat, g_crowd, g_file_idx, dx, dy, dw, dh, d_img, d_cat, d_score,
               d_pred_id, n_img, pos, max_det, masks):
    """tidecv's per-image matching (TIDEExample._run) and the IoU facts its error waterfall reads.

    Rules, from tidecv/quantify.py:
    - per image, predictions sorted by score (stable, so ties keep file order) and cut to the ``max_det`` best
      over all classes together (COCO cuts per class instead);
    - crowd GT are not matched; they are "ignore regions" (below);
    - greedy in score order: each prediction takes the unused same-class GT of highest IoU, np.argmax style
      (the first in file order on ties), if that IoU >= ``pos`` (inclusive); the GT is then used up;
    - afterwards an unmatched prediction is ignored if its crowd IoU (intersection / prediction area) with a
      same-class crowd GT is > ``pos`` (strict);
    - the waterfall facts are argmax/max over rows of IoU matrices in which the entries that do not qualify
      are 0, so "no qualifying GT" reads as IoU 0 with the image's first GT, as in tidecv.

    Args:
        g_img / d_img: image index (position of the image in the GT file) of each GT / prediction row, in
            [0, n_img). g_file_idx: GT position in the file. d_pred_id: ids in file order.
        masks: as in `match_groups` (tidecv's mask mode: the same rules on mask IoU).

    Returns (indexed like the prediction rows; facts are 0 / -1 for predictions past ``max_det``):
        image_rank: position in its image by score (all classes); push_order: position in tidecv's processing
        order (images in GT file order, then image_rank), -1 when cut;
        gt_row: GT row matched (-1 = unmatched); ignored: unmatched but inside a same-class crowd region;
        image_has_gt: the image has a non-crowd GT (tidecv calls everything else background);
        iou_same / gt_same: best IoU with a same-class GT, used or not (Loc test) and its row;
        iou_other / gt_other: best IoU with a GT of another class (Cls test);
        iou_dupe / gt_dupe: best IoU with a same-class GT that was used (Dupe test);
        iou_any: best IoU with any GT (Bkg test).
    """
    g_order, g_off = _counting_order(g_img, n_img)
    d_order, d_off = _counting_order(d_img, n_img)
    n_dt = len(dx)
    image_rank = np.full(n_dt, -1, dtype=np.int64)
    push_order = np.full(n_dt, -1, dtype=np.int64)
    gt_row = np.full(n_dt, -1, dtype=np.int64)
    ignored = np.zeros(n_dt, dtype=np.bool_)
    image_has_gt = np.zeros(n_dt, dtype=np.bool_)
    iou_same = np.zeros(n_dt)
    gt_same = np.full(n_dt, -1, dtype=np.int64)
    iou_other = np.zeros(n_dt)
    gt_other = np.full(n_dt, -1, dtype=np.int64)
    iou_dupe = np.zeros(n_dt)
    gt_dupe = np.full(n_dt, -1, dtype=np.int64)
    iou_any = np.zeros(n_dt)
    # where each image's kept predictions start in the processing order
    kept_before = np.zeros(n_img + 1, dtype=np.int64)
    for im in range(n_img):
        kept_before[im + 1] = kept_before[im] + min(d_off[im + 1] - d_off[im], max_det)
    for im in prange(n_img):
        d0, n = d_off[im], d_off[im + 1] - d_off[im]
        if n == 0:
            continue
        # file order first (ids are assigned in file order), then a stable sort on -score
        rows = d_order[d0: d0 + n].copy()
        rows = rows[np.argsort(d_pred_id[rows])]
        neg = np.empty(n)
        for k in range(n):
            neg[k] = -d_score[rows[k]]
        rows = rows[np.argsort(neg, kind="mergesort")]
        P = min(n, max_det)
        for k in range(n):
            image_rank[rows[k]] = k
        for k in range(P):
            push_order[rows[k]] = kept_before[im] + k
        # the image's GT in file order, split into regular GT and crowd regions
        g0, m = g_off[im], g_off[im + 1] - g_off[im]
        grows = g_order[g0: g0 + m].copy()
        grows = grows[np.argsort(g_file_idx[grows])]
        G = 0
        for k in range(m):
            if g_crowd[grows[k]] == 0:
                G += 1
        reg = np.empty(G, dtype=np.int64)
        crowd = np.empty(m - G, dtype=np.int64)
        a = b = 0
        for k in range(m):
            if g_crowd[grows[k]] == 0:
                reg[a] = grows[k]
                a += 1
            else:
                crowd[b] = grows[k]
                b += 1
        iou = np.empty((P, G))
        for p in range(P):
            d = rows[p]
            for j in range(G):
                g = reg[j]
                iou[p, j] = _iou(d, g, False, dx, dy, dw, dh, gx, gy, gw, gh, masks)
        used = np.zeros(G, dtype=np.bool_)
        matched = np.zeros(P, dtype=np.bool_)
        if G > 0:
            for p in range(P):
                d = rows[p]
                # np.argmax over the same-class row with used GT zeroed: the first maximum wins
                best, bj = -1.0, 0
                for j in range(G):
                    v = iou[p, j] if (d_cat[d] == g_cat[reg[j]] and not used[j]) else 0.0
                    if v > best:
                        best, bj = v, j
                if best >= pos:
                    used[bj] = True
                    matched[p] = True
                    gt_row[d] = reg[bj]
        for p in range(P):
            d = rows[p]
            if matched[p]:
                continue
            for c in range(m - G):
                g = crowd[c]
                if g_cat[g] == d_cat[d] and _iou(d, g, True, dx, dy, dw, dh, gx, gy, gw, gh, masks) > pos:
                    ignored[d] = True
                    break
        if G == 0:
            continue
        for p in range(P):
            d = rows[p]
            image_has_gt[d] = True
            s_best, s_j, o_best, o_j, u_best, u_j, any_best = -1.0, 0, -1.0, 0, -1.0, 0, 0.0
            for j in range(G):
                v = iou[p, j]
                same = d_cat[d] == g_cat[reg[j]]
                vs = v if same else 0.0
                vo = 0.0 if same else v
                vu = vs if used[j] else 0.0
                if vs > s_best:
                    s_best, s_j = vs, j
                if vo > o_best:
                    o_best, o_j = vo, j
                if vu > u_best:
                    u_best, u_j = vu, j
                any_best = max(any_best, v)
            iou_same[d], gt_same[d] = s_best, reg[s_j]
            iou_other[d], gt_other[d] = o_best, reg[o_j]
            iou_dupe[d], gt_dupe[d] = u_best, reg[u_j]
            iou_any[d] = any_best
    return (image_rank, push_order, gt_row, ignored, image_has_gt, iou_same, gt_same, iou_other, gt_other,
            iou_dupe, gt_dupe, iou_any)


# What each dAP variant does, in the order `tide_ap` returns them: the baseline, fixing one error type
# (tidecv's fix_main_errors), then tidecv's two special oracles.
V_BASE, V_MISS, V_FP, V_FN = 0, 6, 7, 8
N_VARIANTS = 9


@njit(**_JIT)
def _stable_by_score(rows, score):
    """``rows`` reordered by score, descending, stably."""
    neg = np.empty(len(rows))
    for i in range(len(rows)):
        neg[i] = -score[rows[i]]
    return rows[np.argsort(neg, kind="mergesort")]


_GAP, _IGNORED, _FIX_TP = 255, 8, 16  # flag byte: etype in bits 0-2, then these bits; _GAP marks an empty slot


@njit(inline="always", **_JIT)
def _tide_outcome(v, flag):
    """What TIDERun.fix_errors pushes for one prediction of its own class under variant ``v``:
    0 nothing, 1 TP among the errors, 2 FP among the errors, 3 TP among the correct ones (pushed last)."""
    etype = flag & 7
    if etype == E_TP:
        return 3
    if etype == v:  # the error type being fixed (v = 1..5)
        # Loc keeps its class; a fixed Cls moves to the GT's class (handled by the caller); others vanish
        return 1 if (flag & _FIX_TP and v == E_LOC) else 0
    return 0 if flag & _IGNORED else 2  # an ignored prediction was never a data point


@njit(parallel=True, **_JIT)
def tide_ap(k, class_order, score, push, tp, ignored, etype, fix_tp, fix_k, n_gt, n_miss, n_fn, n_cls):
    """tidecv's AP (ap.py APDataObject.get_ap, in points) per class, for the baseline and every fix variant.

    Args (one row per prediction tidecv looks at, i.e. within the 100 best of its image; any row order):
        k: class index in [0, n_cls); class_order: position in the class by (score descending, push), gaps
        allowed; score; push: tidecv's processing order (its tie-breaker);
        tp: matched; ignored: in a crowd region (never a data point unless fixed); etype: E_* code;
        fix_tp: fixing its own type turns it into a TP (Loc/Cls whose GT is unused and that is the
        highest-scoring such error on that GT, tidecv's BestGTMatch); fix_k: the class it is then pushed to.
        n_gt, n_miss, n_fn: (n_cls,) GT, Miss errors and unmatched GT per class.

    Returns:
        ap: (N_VARIANTS, n_cls) AP in points, NaN where the class holds no data point and no GT (tidecv
        leaves those out of the mean); variants: baseline, fix Cls, Loc, Both, Dupe, Bkg, Miss, FP, FN.

    Order of data points: get_ap sorts by -score, stably, over the insertion order. The baseline inserts in
    processing order; fix_errors inserts every error first (fixed or not) and then the correct ones, so at
    equal scores errors come before TPs there.
    """
    N = len(k)
    # every class's rows laid out contiguously in (score desc, push) order: score, push and a flag byte
    width = np.zeros(n_cls, dtype=np.int64)
    for r in range(N):
        width[k[r]] = max(width[k[r]], class_order[r] + 1)
    off = np.zeros(n_cls + 1, dtype=np.int64)
    for c in range(n_cls):
        off[c + 1] = off[c] + width[c]
    o_score = np.zeros(off[n_cls])
    o_push = np.zeros(off[n_cls], dtype=np.int64)
    o_flag = np.full(off[n_cls], _GAP, dtype=np.uint8)
    for r in range(N):
        i = off[k[r]] + class_order[r]
        o_score[i] = score[r]
        o_push[i] = push[r]
        o_flag[i] = (E_TP if tp[r] else etype[r]) | (_IGNORED if ignored[r] else 0) | (_FIX_TP if fix_tp[r] else 0)
    # Cls errors that a fix turns into TPs of the GT's class, per target class in (score desc, push) order
    n_mv = 0
    for r in range(N):
        if etype[r] == E_CLS and fix_tp[r]:
            n_mv += 1
    mv = np.empty(n_mv, dtype=np.int64)
    mv_push = np.empty(n_mv, dtype=np.int64)
    c = 0
    for r in range(N):
        if etype[r] == E_CLS and fix_tp[r]:
            mv[c] = r
            mv_push[c] = push[r]
            c += 1
    mv = _stable_by_score(mv[np.argsort(mv_push)], score)
    mv_k = np.empty(n_mv, dtype=np.int64)
    for i in range(n_mv):
        mv_k[i] = fix_k[mv[i]]
    mv_order, mv_off = _counting_order(mv_k, n_cls)
    m_score = np.empty(n_mv)
    m_push = np.empty(n_mv, dtype=np.int64)
    for i in range(n_mv):
        m_score[i] = score[mv[mv_order[i]]]
        m_push[i] = push[mv[mv_order[i]]]
    ap = np.full((N_VARIANTS, n_cls), np.nan)
    # one task per (class, variant): the largest classes (person) split across threads
    for task in prange(n_cls * N_VARIANTS):
        kk, v = task // N_VARIANTS, task % N_VARIANTS
        if v == V_FN:
            continue  # computed with V_MISS below
        b0, nb = off[kk], off[kk + 1] - off[kk]
        m0 = mv_off[kk]
        nm = mv_off[kk + 1] - m0 if v == E_CLS else 0
        # The curve is kept at its TPs only: precision only rises at a TP and recall only moves there, so the
        # index searchsorted finds is a TP's, and the envelope there is the max precision of later TPs.
        hp = np.empty(nb + nm)  # precision at each TP, in order
        e = nh = 0  # data points, TPs so far
        if v == V_BASE:
            for i in range(b0, b0 + nb):
                f = o_flag[i]
                if f != _GAP and ((f & 7) == E_TP or not f & _IGNORED):
                    e += 1
                    if (f & 7) == E_TP:
                        nh += 1
                        hp[nh - 1] = nh / e
        elif v == V_FP:
            # FalsePositiveError.fix: TPs get score 1, FPs score 0, so every TP comes first at precision 1
            for i in range(b0, b0 + nb):
                f = o_flag[i]
                if f != _GAP and ((f & 7) == E_TP or not f & _IGNORED):
                    e += 1
                    if (f & 7) == E_TP:
                        hp[nh] = 1.0
                        nh += 1
        else:
            i, j = b0, m0
            i_end, j_end = b0 + nb, m0 + nm
            while True:
                while i < i_end and o_flag[i] == _GAP:
                    i += 1
                if i >= i_end and j >= j_end:
                    break
                if j >= j_end or (i < i_end and o_score[i] >= m_score[j]):
                    s = o_score[i]
                else:
                    s = m_score[j]
                i2 = i
                while i2 < i_end and (o_flag[i2] == _GAP or o_score[i2] == s):
                    i2 += 1
                j2 = j
                while j2 < j_end and m_score[j2] == s:
                    j2 += 1
                if i2 - i == 1 and j2 == j:
                    # a score of its own (the common case): no order to settle
                    o = _tide_outcome(v, o_flag[i])
                    if o != 0:
                        e += 1
                        if o != 2:
                            nh += 1
                            hp[nh - 1] = nh / e
                    i = i2
                    continue
                # errors first (base rows merged with moved-in Cls fixes by processing order) ...
                a, b = i, j
                while True:
                    o = 0
                    while a < i2:
                        if o_flag[a] != _GAP:
                            o = _tide_outcome(v, o_flag[a])
                            if o == 1 or o == 2:
                                break
                        a += 1
                    if a >= i2 and b >= j2:
                        break
                    e += 1
                    if b >= j2 or (a < i2 and o_push[a] < m_push[b]):
                        a += 1
                    else:
                        o = 1
                        b += 1
                    if o == 1:
                        nh += 1
                        hp[nh - 1] = nh / e
                # ... then the correct ones
                for a in range(i, i2):
                    if o_flag[a] != _GAP and (o_flag[a] & 7) == E_TP:
                        e += 1
                        nh += 1
                        hp[nh - 1] = nh / e
                i, j = i2, j2
        for vv in range(2 if v == V_MISS else 1):
            # fixing Miss and the FN oracle push the same points; they differ in the number of GT only
            out = V_FN if vv == 1 else v
            gt = n_gt[kk]
            if out == V_MISS:
                gt -= n_miss[kk]
            elif out == V_FN:
                gt -= n_fn[kk]
            if e == 0 and gt == 0:
                continue  # APDataObject.is_empty: left out of the mean
            if gt == 0:
                ap[out, kk] = 0.0
                continue
            env = hp[:nh].copy()
            for m in range(nh - 2, -1, -1):  # the precision envelope, right to left
                if env[m + 1] > env[m]:
                    env[m] = env[m + 1]
            total, m = 0.0, 0
            for q in range(101):  # searchsorted(recalls, q / 100, 'left'), recalls = TPs so far / GT
                x = q / 100
                while m < nh and (m + 1) / gt < x:
                    m += 1
                total += env[m] if m < nh else 0.0
            ap[out, kk] = total / 101 * 100
    return ap
