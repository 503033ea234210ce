"""Pictures for a generated set (`odfail synth --render`): each GT object drawn as its filled polygon on a
textured background, and each image made darker, flatter or blurrier the more of its objects the generated
predictions miss, so that the pixel metrics have something to find.

The annotations are not changed: the pictures are drawn from the written gt.json and predictions.json. An image's
condition is its share of missed objects (no prediction of the class at IoU >= 0.5 scoring >= 0.3), ranked among
the images, plus noise; the worst third are dark and low in contrast, and blur grows with the condition.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def _missed_share(gt: list[dict], preds: list[dict], image_ids: list[int]) -> np.ndarray:
    by_image_gt: dict[int, list[dict]] = {}
    for a in gt:
        if not a.get("iscrowd"):
            by_image_gt.setdefault(a["image_id"], []).append(a)
    by_image_dt: dict[int, list[dict]] = {}
    for p in preds:
        if p["score"] >= 0.3:
            by_image_dt.setdefault(p["image_id"], []).append(p)
    out = np.zeros(len(image_ids))
    for i, img in enumerate(image_ids):
        objects, found = by_image_gt.get(img, []), 0
        for a in objects:
            ax, ay, aw, ah = a["bbox"]
            for p in by_image_dt.get(img, []):
                if p["category_id"] != a["category_id"]:
                    continue
                px, py, pw, ph = p["bbox"]
                iw = min(ax + aw, px + pw) - max(ax, px)
                ih = min(ay + ah, py + ph) - max(ay, py)
                if iw > 0 and ih > 0 and iw * ih / (aw * ah + pw * ph - iw * ih) >= 0.5:
                    found += 1
                    break
        out[i] = 1 - found / len(objects) if objects else 0.0
    return out


def render(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Draw ``out_dir/images/<file_name>`` for ``out_dir/gt.json``; returns the images folder."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image, ImageDraw, ImageFilter

    out = Path(out_dir)
    gt = json.loads((out / "gt.json").read_text())
    preds = json.loads((out / "predictions.json").read_text())
    folder = out / "images"
    folder.mkdir(parents=True, exist_ok=True)
    images = gt["images"]
    rng = np.random.default_rng(seed + 7)
    missed = _missed_share(gt["annotations"], preds, [im["id"] for im in images])
    rank = np.argsort(np.argsort(missed + rng.normal(0, 0.1, len(missed)))) / max(len(missed) - 1, 1)
    by_image: dict[int, list[dict]] = {}
    for a in gt["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    palette = {c["id"]: tuple(int(v) for v in rng.integers(40, 230, 3)) for c in gt["categories"]}
    seeds = rng.integers(0, 2**31, len(images))

    def draw(i: int) -> None:
        im_info = images[i]
        w, h = int(im_info["width"]), int(im_info["height"])
        r = np.random.default_rng(int(seeds[i]))
        base = r.integers(60, 200, 3).astype(np.float64)
        yy, xx = np.mgrid[0:h, 0:w]
        gradient = (xx / w * r.normal(0, 40) + yy / h * r.normal(0, 40))[..., None]
        texture = r.normal(0, 14, (h // 4 + 1, w // 4 + 1, 1)).repeat(4, 0).repeat(4, 1)[:h, :w]
        pixels = np.clip(base + gradient + texture, 0, 255).astype(np.uint8)
        picture = Image.fromarray(pixels)
        pen = ImageDraw.Draw(picture)
        for a in sorted(by_image.get(im_info["id"], []), key=lambda a: -a.get("area", 0)):
            colour = palette[a["category_id"]]
            seg = a.get("segmentation")
            if isinstance(seg, list) and seg:
                for poly in seg:
                    pen.polygon(list(zip(poly[0::2], poly[1::2])), fill=colour, outline=(20, 20, 20))
            else:
                x, y, bw, bh = a["bbox"]
                pen.rectangle([x, y, x + bw, y + bh], outline=colour, width=2)
        c = float(rank[i])
        bright = 1.0 - 0.55 * max(0.0, c - 0.66) / 0.34
        flat = 1.0 - 0.6 * max(0.0, c - 0.66) / 0.34
        px = np.asarray(picture, dtype=np.float64)
        px = (px - px.mean()) * flat + px.mean() * bright
        picture = Image.fromarray(np.clip(px, 0, 255).astype(np.uint8))
        if c > 0.33:
            picture = picture.filter(ImageFilter.GaussianBlur(radius=3.0 * (c - 0.33) / 0.67))
        picture.save(folder / im_info["file_name"], quality=85)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(draw, range(len(images))))
    return folder
