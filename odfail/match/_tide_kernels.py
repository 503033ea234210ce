"""numba kernel of tidecv's own per-image matching (`tide_match`). Arrays in, tuples of arrays out; called through
``odfail.match.tide``. The IoU of a pair comes from ``odfail.match._kernels``; its AP with each error type fixed is
``odfail.evaluate._tide_kernels``.
"""

from __future__ import annotations

import numpy as np

from odfail._ids import counting_order
from odfail._numba import announce, njit, prange
from odfail.match._kernels import _JIT, _iou


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
    g_order, g_off = counting_order(g_img, n_img)
    d_order, d_off = counting_order(d_img, n_img)
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


announce(__file__)
