"""Seeded generator of COCO-like ground truth and predictions with realistic failure modes.

The data feeds the demo, the benchmarks and property tests, so it is shaped like val2017: ~9 GT per image,
COCO's size mix (about 41% small, 34% medium, 25% large), 80 long-tailed classes in 12 supercategories,
~1% crowd regions stored as uncompressed RLE, polygons for everything else, and ~65 predictions per image.

Failure modes, each with its own knob in ``FAILURES``:

- missed objects, far more often when they are small;
- localisation jitter (mostly mild, sometimes a bad box);
- class confusion, mostly with a sibling of the same supercategory (person, alone in its own, only at random);
- duplicate detections of one object at a lower score;
- background false positives at low scores, which fill each image up to its prediction budget.

Everything is vectorised with numpy and written with polars, so the 10x benchmark set (50k images,
3.25M predictions) is made in seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# COCO's 80 classes by supercategory, with the original (gapped) category ids 1..90.
_SUPERCATEGORIES: dict[str, list[str]] = {
    "person": ["person"],
    "vehicle": ["bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"],
    "outdoor": ["traffic light", "fire hydrant", "stop sign", "parking meter", "bench"],
    "animal": ["bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"],
    "accessory": ["backpack", "umbrella", "handbag", "tie", "suitcase"],
    "sports": ["frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
               "skateboard", "surfboard", "tennis racket"],
    "kitchen": ["bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl"],
    "food": ["banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake"],
    "furniture": ["chair", "couch", "potted plant", "bed", "dining table", "toilet"],
    "electronic": ["tv", "laptop", "mouse", "remote", "keyboard", "cell phone"],
    "appliance": ["microwave", "oven", "toaster", "sink", "refrigerator"],
    "indoor": ["book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush"],
}
_COCO_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31,
             32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57,
             58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87,
             88, 89, 90]

# Probabilities and scales of each failure mode; documented in the module docstring.
FAILURES = {
    "p_detect": {"small": 0.55, "medium": 0.85, "large": 0.95},
    "jitter_mild": 0.06,  # sigma of box jitter as a fraction of box size
    "jitter_bad": 0.30,
    "p_bad_box": 0.12,
    "p_confuse_sibling": 0.08,
    "p_confuse_random": 0.02,
    "p_duplicate": 0.10,
    "p_crowd": 0.012,
}


@dataclass(frozen=True)
class SynthSummary:
    """What `generate` wrote."""

    gt_path: Path
    pred_path: Path
    images: int
    gt: int
    crowd: int
    predictions: int

    def __str__(self) -> str:
        return (f"wrote {self.gt_path} ({self.images:,} images, {self.gt:,} GT of which {self.crowd:,} crowd) "
                f"and {self.pred_path} ({self.predictions:,} predictions)")


def _categories() -> list[dict]:
    cats, i = [], 0
    for sup, names in _SUPERCATEGORIES.items():
        for name in names:
            cats.append({"id": _COCO_IDS[i], "name": name, "supercategory": sup})
            i += 1
    return cats


def _ellipse_rles(boxes: np.ndarray, sizes: np.ndarray, rng) -> list[str]:
    """Compressed RLE strings of noisy ellipses inscribed in boxes [x, y, w, h] on images of sizes [h, w]."""
    from odfail.match.masks import polygon_strings

    n = len(boxes)
    nv = np.clip((np.sqrt(boxes[:, 2] * boxes[:, 3]) / 4).astype(int), 6, 40)
    offs = np.concatenate([[0], np.cumsum(nv)])
    theta = np.concatenate([np.linspace(0, 2 * np.pi, k, endpoint=False) for k in nv]) if n else np.zeros(0)
    rep = np.repeat(np.arange(n), nv)
    radial = 1 - 0.15 * rng.random(len(theta))
    xy = np.empty(2 * len(theta))
    xy[0::2] = boxes[rep, 0] + boxes[rep, 2] / 2 * (1 + radial * np.cos(theta))
    xy[1::2] = boxes[rep, 1] + boxes[rep, 3] / 2 * (1 + radial * np.sin(theta))
    return polygon_strings(xy, 2 * offs, np.arange(n + 1, dtype=np.int64), sizes[:, 0].copy(), sizes[:, 1].copy())


def generate(out_dir: str | Path, images: int = 500, seed: int = 0, preds_per_image: int = 65,
             masks: bool = False) -> SynthSummary:
    """Write ``gt.json`` and ``predictions.json`` (COCO instances + results) into ``out_dir``.

    With ``masks`` every prediction also carries a segmentation, as a Mask R-CNN's results do: a compressed RLE
    of a noisy ellipse in its box (GT objects are such ellipses too, as polygons).

    Example:
        >>> s = generate("/tmp/demo", images=50, seed=1)  # doctest: +SKIP
    """
    import polars as pl

    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cats = _categories()
    K = len(cats)
    cat_ids = np.array([c["id"] for c in cats], dtype=np.int64)
    sup_of = np.array([list(_SUPERCATEGORIES).index(c["supercategory"]) for c in cats])

    # Long tail: class frequency ~ Zipf, person most common as in COCO.
    freq = 1.0 / np.arange(1, K + 1) ** 1.1
    freq = freq[rng.permutation(K)]
    freq[0] = freq.max() * 4
    freq /= freq.sum()

    img_ids = np.sort(rng.choice(np.arange(1, images * 120), size=images, replace=False)).astype(np.int64)
    widths = np.full(images, 640, dtype=np.int64)
    heights = rng.choice([360, 427, 480, 512, 640], size=images).astype(np.int64)

    n_per = rng.poisson(8.8, size=images)
    n_gt = int(n_per.sum())
    g_img = np.repeat(np.arange(images), n_per)
    g_cls = rng.choice(K, size=n_gt, p=freq)
    W, H = widths[g_img].astype(float), heights[g_img].astype(float)
    # log-normal box areas; the stored areas, of the ellipses inscribed in them (~2/3 of the box), then have
    # COCO's mix: P(<32^2) ~ 0.42, P(<96^2) ~ 0.76
    area = np.exp(rng.normal(7.89, 2.43, size=n_gt)).clip(4, None)
    aspect = np.exp(rng.normal(0, 0.5, size=n_gt))
    bw = np.minimum(np.sqrt(area * aspect), W * 0.98)
    bh = np.minimum(np.sqrt(area / aspect), H * 0.98)
    bx = rng.random(n_gt) * (W - bw)
    by = rng.random(n_gt) * (H - bh)
    crowd = rng.random(n_gt) < FAILURES["p_crowd"]
    # Crowd regions are large and pixel-aligned, as COCO's are.
    bx[crowd], by[crowd] = np.floor(bx[crowd]), np.floor(by[crowd])
    bw[crowd] = np.maximum(np.floor(np.minimum(bw[crowd] * 2, W[crowd] - bx[crowd])), 1)
    bh[crowd] = np.maximum(np.floor(np.minimum(bh[crowd] * 2, H[crowd] - by[crowd])), 1)
    bx, by, bw, bh = (np.round(v, 2) for v in (bx, by, bw, bh))
    ann_ids = np.arange(1, n_gt + 1, dtype=np.int64) + 900000

    # Polygons: a noisy ellipse inscribed in the box; area is the polygon's (COCO stores the mask area).
    nv = np.clip((np.sqrt(bw * bh) / 4).astype(int), 6, 40)
    offs = np.concatenate([[0], np.cumsum(nv)])
    theta = np.concatenate([np.linspace(0, 2 * np.pi, k, endpoint=False) for k in nv]) if n_gt else np.zeros(0)
    rep = np.repeat(np.arange(n_gt), nv)
    radial = 1 - 0.15 * rng.random(len(theta))
    px = np.round(bx[rep] + bw[rep] / 2 * (1 + radial * np.cos(theta)), 2)
    py = np.round(by[rep] + bh[rep] / 2 * (1 + radial * np.sin(theta)), 2)
    nxt = np.arange(len(px)) + 1
    nxt[offs[1:] - 1] = offs[:-1]  # each polygon closes on its own first vertex
    shoelace = np.add.reduceat(px * py[nxt] - px[nxt] * py, offs[:-1]) if n_gt else np.zeros(0)
    poly_area = np.round(np.abs(shoelace) / 2, 2)
    gt_area = np.where(crowd, bw * bh, poly_area)
    xy = np.empty(2 * len(px))
    xy[0::2], xy[1::2] = px, py

    noncrowd = ~crowd
    seg_offsets = 2 * offs
    ann = pl.DataFrame({
        "id": ann_ids, "image_id": img_ids[g_img], "category_id": cat_ids[g_cls],
        "bbox": np.stack([bx, by, bw, bh], axis=1), "area": gt_area,
        "iscrowd": crowd.astype(np.int64),
    })
    import pyarrow as pa

    # one polygon per object: list<list<double>> built from offsets, no per-object Python lists
    inner = pa.ListArray.from_arrays(pa.array(seg_offsets.astype(np.int32)), pa.array(xy))
    outer = pa.ListArray.from_arrays(pa.array(np.arange(n_gt + 1, dtype=np.int32)), inner)
    segs = pl.Series("segmentation", outer)
    ann = ann.with_columns(segs)
    ann = ann.with_columns(pl.col("bbox").arr.to_list())
    crowd_records = []
    for i in np.flatnonzero(crowd):
        h, w = int(H[i]), int(W[i])
        x0, y0, cw, ch = int(bx[i]), int(by[i]), int(bw[i]), int(bh[i])
        counts = [x0 * h + y0] + [ch, h - ch] * cw
        counts[-1] = h - (y0 + ch) + (w - x0 - cw) * h
        crowd_records.append({"id": int(ann_ids[i]), "image_id": int(img_ids[g_img[i]]),
                              "category_id": int(cat_ids[g_cls[i]]), "bbox": [float(bx[i]), float(by[i]),
                              float(cw), float(ch)], "area": float(cw * ch), "iscrowd": 1,
                              "segmentation": {"counts": counts, "size": [h, w]}})

    imgs = pl.DataFrame({"id": img_ids, "file_name": [f"{i:012d}.jpg" for i in img_ids],
                         "width": widths, "height": heights})
    parts = [imgs.write_json(), ann.filter(pl.Series(noncrowd)).write_json() if n_gt else "[]"]
    if crowd_records:
        tail = json.dumps(crowd_records)
        parts[1] = parts[1][:-1] + ("," if parts[1] != "[]" else "") + tail[1:]
    gt_path = out / "gt.json"
    with open(gt_path, "w") as f:
        f.write(f'{{"info": {{"description": "odfail synthetic COCO-like set", "seed": {seed}}},\n')
        f.write(' "images": ' + parts[0] + ',\n "categories": ' + json.dumps(cats) + ',\n')
        f.write(' "annotations": ' + parts[1] + '}\n')

    # ---- predictions ----
    size = np.where(area < 32**2, 0, np.where(area < 96**2, 1, 2))
    p_det = np.array([FAILURES["p_detect"][k] for k in ("small", "medium", "large")])[size]
    det = noncrowd & (rng.random(n_gt) < p_det)
    d = np.flatnonzero(det)
    bad = rng.random(len(d)) < FAILURES["p_bad_box"]
    sigma = np.where(bad, FAILURES["jitter_bad"], FAILURES["jitter_mild"])
    dx = bx[d] + rng.normal(0, 1, len(d)) * sigma * bw[d]
    dy = by[d] + rng.normal(0, 1, len(d)) * sigma * bh[d]
    dw = bw[d] * np.exp(rng.normal(0, 1, len(d)) * sigma)
    dh = bh[d] * np.exp(rng.normal(0, 1, len(d)) * sigma)
    cls = g_cls[d].copy()
    u = rng.random(len(d))
    sib = u < FAILURES["p_confuse_sibling"]
    for i in np.flatnonzero(sib):
        # another class of its supercategory; a class alone in its own (person) keeps its label
        same = np.flatnonzero((sup_of == sup_of[cls[i]]) & (np.arange(K) != cls[i]))
        if len(same):
            cls[i] = rng.choice(same)
        else:
            sib[i] = False
    rnd = (u >= FAILURES["p_confuse_sibling"]) & (u < FAILURES["p_confuse_sibling"] + FAILURES["p_confuse_random"])
    cls[rnd] = rng.integers(K, size=int(rnd.sum()))
    score = rng.beta(5, 2, len(d)) * np.where(bad | sib | rnd, 0.7, 1.0)
    img = g_img[d]
    dup = rng.random(len(d)) < FAILURES["p_duplicate"]
    di = np.flatnonzero(dup)
    dup_x = dx[di] + rng.normal(0, 0.05, len(di)) * dw[di]
    dup_y = dy[di] + rng.normal(0, 0.05, len(di)) * dh[di]
    px_ = np.concatenate([dx, dup_x])
    py_ = np.concatenate([dy, dup_y])
    pw_ = np.concatenate([dw, dw[di] * np.exp(rng.normal(0, 0.05, len(di)))])
    ph_ = np.concatenate([dh, dh[di] * np.exp(rng.normal(0, 0.05, len(di)))])
    pc = np.concatenate([cls, cls[di]])
    ps = np.concatenate([score, score[di] * rng.uniform(0.3, 0.9, len(di))])
    pimg = np.concatenate([img, img[di]])

    # Background false positives fill each image up to its budget of predictions.
    have = np.bincount(pimg, minlength=images)
    budget = rng.poisson(preds_per_image, size=images)
    n_bg_per = np.maximum(budget - have, 0)
    bimg = np.repeat(np.arange(images), n_bg_per)
    nb = len(bimg)
    barea = np.exp(rng.normal(7.0, 1.8, nb)).clip(4, None)
    basp = np.exp(rng.normal(0, 0.6, nb))
    BW, BH = widths[bimg].astype(float), heights[bimg].astype(float)
    bbw = np.minimum(np.sqrt(barea * basp), BW * 0.9)
    bbh = np.minimum(np.sqrt(barea / basp), BH * 0.9)
    px_ = np.concatenate([px_, rng.random(nb) * (BW - bbw)])
    py_ = np.concatenate([py_, rng.random(nb) * (BH - bbh)])
    pw_ = np.concatenate([pw_, bbw])
    ph_ = np.concatenate([ph_, bbh])
    pc = np.concatenate([pc, rng.choice(K, size=nb, p=freq)])
    ps = np.concatenate([ps, rng.beta(1, 9, nb)])
    pimg = np.concatenate([pimg, bimg])

    Wp, Hp = widths[pimg].astype(float), heights[pimg].astype(float)
    x0 = np.clip(px_, 0, Wp - 1)
    y0 = np.clip(py_, 0, Hp - 1)
    pw_ = np.clip(np.minimum(pw_, Wp - x0), 1, None)
    ph_ = np.clip(np.minimum(ph_, Hp - y0), 1, None)
    order = np.lexsort((-ps, pimg))  # detectors emit per image, best first
    preds = pl.DataFrame({
        "image_id": img_ids[pimg][order], "category_id": cat_ids[pc][order],
        "bbox": np.round(np.stack([x0, y0, pw_, ph_], axis=1)[order], 2),
        "score": np.round(ps[order], 5),
    }).with_columns(pl.col("bbox").arr.to_list())
    if masks:
        sizes = np.stack([Hp, Wp], axis=1).astype(np.int64)[order]
        counts = _ellipse_rles(np.stack([x0, y0, pw_, ph_], axis=1)[order], sizes, rng)
        preds = preds.with_columns(pl.struct(pl.Series("size", sizes.tolist()), pl.Series("counts", counts)
                                             ).alias("segmentation"))
    pred_path = out / "predictions.json"
    preds.write_json(pred_path)
    return SynthSummary(gt_path, pred_path, images, n_gt, int(crowd.sum()), preds.height)
