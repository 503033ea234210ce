"""numba kernel of tidecv's AP with each error type fixed (`tide_ap`), over the error types the views assign to
the matching of ``odfail.match.tide``. Arrays in, tuples of arrays out; called through ``odfail.evaluate.tide``.
"""

from __future__ import annotations

import numpy as np

from odfail._ids import counting_order
from odfail._numba import JIT as _JIT
from odfail._numba import announce, njit, prange

# Error types in tidecv's fixed order (TIDE._error_types), as small ints; TP first.
E_TP, E_CLS, E_LOC, E_BOTH, E_DUPE, E_BKG = 0, 1, 2, 3, 4, 5


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
    mv_order, mv_off = counting_order(mv_k, n_cls)
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


announce(__file__)
