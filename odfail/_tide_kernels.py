"""numba kernels of tidecv's error analysis: its own per-image matching (`tide_match`) and its AP with each error
type fixed (`tide_ap`). Arrays in, tuples of arrays out; called through ``odfail.tide``.

Shared pieces (the jit flags, IoU of a pair, grouping by a small integer key) come from ``odfail._kernels``.
"""

from __future__ import annotations

import numpy as np

from odfail._kernels import _JIT, _counting_order, _iou
from odfail._numba import njit, prange

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
