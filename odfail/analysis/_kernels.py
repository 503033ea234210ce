"""numba kernels of the object metrics that need every pair of objects in an image: contiguous arrays in, arrays
out. Called through ``odfail.analysis.metrics``.

IoU here is the plain box IoU (intersection / union, crowd or not): these are descriptions of the data, not COCO's
matching rules.
"""

from __future__ import annotations

import numpy as np

from odfail._ids import counting_order
from odfail._numba import JIT as _JIT
from odfail._numba import announce, njit, prange


@njit(inline="always", **_JIT)
def _iou(ax, ay, aw, ah, bx, by, bw, bh):
    w = min(ax + aw, bx + bw) - max(ax, bx)
    if w <= 0:
        return 0.0
    h = min(ay + ah, by + bh) - max(ay, by)
    if h <= 0:
        return 0.0
    i = w * h
    u = aw * ah + bw * bh - i
    return i / u if u > 0 else 0.0


@njit(parallel=True, **_JIT)
def neighbours(gx, gy, gw, gh, g_img, g_cat, g_crowd, dx, dy, dw, dh, d_img, d_cat, n_img):
    """Per GT: duplicate_iou (best IoU with another GT of its class), crowding_iou (best IoU with another GT of any
    class), best_iou (best IoU with a prediction of its class); per prediction: duplicate_iou (best IoU with
    another prediction of its class), crowding_iou (second-best IoU with a non-crowd GT of any class: the best is
    the object it is on, the rest are the crowd around it), best_iou (best IoU with a non-crowd GT of its class).
    Crowd GT take part only as GT duplicates and neighbours of GT. Images (indices < n_img) run in parallel; rows in
    any order. Returns six arrays; 0 where there is no such other object."""
    g_order, g_off = counting_order(g_img, n_img)
    d_order, d_off = counting_order(d_img, n_img)
    g_dup = np.zeros(len(gx))
    g_crowding = np.zeros(len(gx))
    g_best = np.zeros(len(gx))
    d_dup = np.zeros(len(dx))
    d_crowding = np.zeros(len(dx))
    d_best = np.zeros(len(dx))
    for i in prange(n_img):
        for a in range(g_off[i], g_off[i + 1]):
            ga = g_order[a]
            dup, crowding, best = 0.0, 0.0, 0.0
            for b in range(g_off[i], g_off[i + 1]):
                if a == b:
                    continue
                gb = g_order[b]
                v = _iou(gx[ga], gy[ga], gw[ga], gh[ga], gx[gb], gy[gb], gw[gb], gh[gb])
                crowding = max(crowding, v)
                if g_cat[gb] == g_cat[ga]:
                    dup = max(dup, v)
            for b in range(d_off[i], d_off[i + 1]):
                db = d_order[b]
                if d_cat[db] == g_cat[ga]:
                    best = max(best, _iou(gx[ga], gy[ga], gw[ga], gh[ga], dx[db], dy[db], dw[db], dh[db]))
            g_dup[ga], g_crowding[ga], g_best[ga] = dup, crowding, best
        for a in range(d_off[i], d_off[i + 1]):
            da = d_order[a]
            dup, first, second, best = 0.0, 0.0, 0.0, 0.0
            for b in range(d_off[i], d_off[i + 1]):
                db = d_order[b]
                if a != b and d_cat[db] == d_cat[da]:
                    dup = max(dup, _iou(dx[da], dy[da], dw[da], dh[da], dx[db], dy[db], dw[db], dh[db]))
            for b in range(g_off[i], g_off[i + 1]):
                gb = g_order[b]
                if g_crowd[gb]:
                    continue
                v = _iou(dx[da], dy[da], dw[da], dh[da], gx[gb], gy[gb], gw[gb], gh[gb])
                if v > first:
                    first, second = v, first
                elif v > second:
                    second = v
                if g_cat[gb] == d_cat[da]:
                    best = max(best, v)
            d_dup[da], d_crowding[da], d_best[da] = dup, second, best
    return g_dup, g_crowding, g_best, d_dup, d_crowding, d_best


@njit(parallel=True, **_JIT)
def covered_area(x, y, w, h, img, width, height, n_img):
    """Per image: the exact area of the union of its boxes, clipped to the image (width/height < 0: unknown, not
    clipped). A sweep over the x-slabs between box edges, merging the y-intervals that cover each slab."""
    order, off = counting_order(img, n_img)
    out = np.zeros(n_img)
    for i in prange(n_img):
        n = off[i + 1] - off[i]
        if n == 0:
            continue
        x0 = np.empty(n)
        x1 = np.empty(n)
        y0 = np.empty(n)
        y1 = np.empty(n)
        for j in range(n):
            r = order[off[i] + j]
            x0[j], x1[j], y0[j], y1[j] = x[r], x[r] + w[r], y[r], y[r] + h[r]
            if width[i] >= 0:
                x0[j], x1[j] = min(max(x0[j], 0.0), width[i]), min(max(x1[j], 0.0), width[i])
            if height[i] >= 0:
                y0[j], y1[j] = min(max(y0[j], 0.0), height[i]), min(max(y1[j], 0.0), height[i])
        xs = np.unique(np.concatenate((x0, x1)))
        by_y0 = np.argsort(y0)
        total = 0.0
        for s in range(len(xs) - 1):
            lo, hi = xs[s], xs[s + 1]
            covered, end = 0.0, -np.inf
            for j in by_y0:  # intervals in order of their start: merge as they come
                if x0[j] <= lo and x1[j] >= hi and y1[j] > y0[j]:
                    if y0[j] > end:
                        covered += y1[j] - y0[j]
                        end = y1[j]
                    elif y1[j] > end:
                        covered += y1[j] - end
                        end = y1[j]
            total += covered * (hi - lo)
        out[i] = total
    return out


@njit(**_JIT)
def knn_counts(xs, label, k, n_labels):
    """The counts of Ross (2014)'s k-NN mutual information estimator in one dimension, over values sorted
    ascending (``xs``) with their class (``label``, in [0, n_labels)). For each point of a class with at least
    two points: k (min(k, class size - 1)), the class size, and m, the points of any class whose distance is at
    most a hair (``nextafter`` towards 0) less than the distance to its k-th nearest neighbour of its class,
    itself included. Returns (used, k, class size, m); used is False for points alone in their class."""
    n = len(xs)
    order, off = counting_order(label, n_labels)  # stable: a class's positions in ascending order
    used = np.zeros(n, dtype=np.bool_)
    k_all = np.zeros(n, dtype=np.int64)
    size = np.zeros(n, dtype=np.int64)
    m = np.zeros(n, dtype=np.int64)
    for c in range(n_labels):
        start, end = off[c], off[c + 1]
        if end - start < 2:
            continue
        kk = min(k, end - start - 1)
        for a in range(start, end):
            i = order[a]
            lo, hi, d = a - 1, a + 1, 0.0
            for _ in range(kk):  # the kk nearest of the class lie next to it in sorted order
                dl = xs[i] - xs[order[lo]] if lo >= start else np.inf
                dr = xs[order[hi]] - xs[i] if hi < end else np.inf
                if dl <= dr:
                    d, lo = dl, lo - 1
                else:
                    d, hi = dr, hi + 1
            r = np.nextafter(d, 0.0)
            count = 1
            j = i - 1
            while j >= 0 and xs[i] - xs[j] <= r:
                count += 1
                j -= 1
            j = i + 1
            while j < n and xs[j] - xs[i] <= r:
                count += 1
                j += 1
            used[i], k_all[i], size[i], m[i] = True, kk, end - start, count
    return used, k_all, size, m


announce(__file__)
