"""Pictures of the worst cases: the image around a prediction or a missed object, with the GT boxes and the
prediction drawn and labelled, embedded in the page as small JPEGs (data URIs, ~10 KB each)."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

GT_COLOUR = (255, 255, 255)  # GT boxes: white with a dark edge, readable on any picture
EDGE = (0, 0, 0)
SIZE = 220  # the thumbnail's longer side, pixels
MARGIN = 0.6  # context around the box of interest, as a share of its size on each side
MIN_CROP = 96  # pixels of the image at least


def draw_boxes(picture, boxes: list[dict[str, Any]], width: int = 2):
    """Draw boxes on a PIL image, in place: dicts with x, y, w, h (pixels of ``picture``), colour (RGB) and label.
    Each box is a coloured frame inside a 1-pixel dark edge, its label above it on the same colour."""
    from PIL import ImageDraw, ImageFont

    pen = ImageDraw.Draw(picture)
    try:
        font = ImageFont.load_default(size=12)
    except TypeError:  # Pillow before 10.1: the bitmap font
        font = ImageFont.load_default()
    for b in boxes:
        x0, y0 = round(b["x"]), round(b["y"])
        x1, y1 = round(b["x"] + b["w"]), round(b["y"] + b["h"])
        pen.rectangle([x0 - 1, y0 - 1, x1 + 1, y1 + 1], outline=EDGE, width=1)
        pen.rectangle([x0, y0, x1, y1], outline=b["colour"], width=width)
        if b.get("label"):
            left, top, right, bottom = pen.textbbox((x0, y0), b["label"], font=font)
            ty = y0 - (bottom - top) - 4 if y0 - (bottom - top) - 4 >= 0 else y1 + 2
            pen.rectangle([x0, ty, x0 + (right - left) + 4, ty + (bottom - top) + 3], fill=b["colour"])
            dark = sum(b["colour"]) > 3 * 150
            pen.text((x0 + 2, ty - (top - y0)), b["label"], fill=(0, 0, 0) if dark else (255, 255, 255), font=font)
    return picture


def thumbnail(path: Path, gt_size: tuple[float, float], focus: dict[str, float], boxes: list[dict[str, Any]]
              ) -> tuple[str | None, str | None]:
    """(data URI of a JPEG, note): the picture around ``focus`` (x, y, w, h in GT pixels) with ``boxes`` drawn.
    None and a note where the image cannot be read; boxes are scaled when the image's size differs from the GT's."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            picture = im.convert("RGB")
    except FileNotFoundError:
        return None, f"{path}: missing"
    except Exception as e:  # Pillow's errors for corrupt or unknown files vary by format
        return None, f"{path}: cannot be read ({type(e).__name__})"
    gw, gh = gt_size if gt_size[0] and gt_size[1] else picture.size
    sx, sy = picture.size[0] / gw, picture.size[1] / gh
    note = None if (sx, sy) == (1, 1) else f"{path}: {picture.size[0]}x{picture.size[1]} pixels, the GT says " \
                                             f"{gw:g}x{gh:g} (boxes drawn scaled)"
    fx, fy, fw, fh = focus["x"] * sx, focus["y"] * sy, focus["w"] * sx, focus["h"] * sy
    half_w = max(fw * (0.5 + MARGIN), MIN_CROP / 2)
    half_h = max(fh * (0.5 + MARGIN), MIN_CROP / 2)
    cx, cy = fx + fw / 2, fy + fh / 2
    left, top = max(0, int(cx - half_w)), max(0, int(cy - half_h))
    right, bottom = min(picture.size[0], int(cx + half_w) + 1), min(picture.size[1], int(cy + half_h) + 1)
    crop = picture.crop((left, top, max(right, left + 1), max(bottom, top + 1)))
    scale = SIZE / max(crop.size)
    crop = crop.resize((max(1, round(crop.size[0] * scale)), max(1, round(crop.size[1] * scale))), Image.BILINEAR)
    drawn = [dict(b, x=(b["x"] * sx - left) * scale, y=(b["y"] * sy - top) * scale, w=b["w"] * sx * scale,
                  h=b["h"] * sy * scale) for b in boxes]
    draw_boxes(crop, drawn)
    buffer = io.BytesIO()
    crop.save(buffer, format="JPEG", quality=78)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode(), note


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i: i + 2], 16) for i in (1, 3, 5))
