"""Images: pixel metrics with known answers, boxes drawn where they belong, notes instead of crashes."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageFilter

from odfail import Workspace, ingest
from odfail.analysis import pixels
from tests.conftest import odfail_cli, write_json


def _save(array: np.ndarray, path, **kw):
    Image.fromarray(array.astype(np.uint8)).save(path, **kw)
    return path


def test_image_metrics_of_images_with_known_answers(tmp_path):
    """Half black, half white (PNG: decoded exactly): brightness 0.5, contrast 0.5 (values 0 and 255), no
    colour; a box on the white half is 1.0 bright with no contrast; a flat image has no sharpness."""
    half = np.zeros((20, 40, 3))
    half[:, 20:] = 255
    st = pixels.stats_of(_save(half, tmp_path / "half.png"), (40, 20),
                         {"gt": np.array([[25.0, 5, 10, 10], [0, 0, 40, 20]])})
    assert st.note is None
    assert st.values["brightness"] == pytest.approx(0.5) and st.values["contrast"] == pytest.approx(0.5)
    assert st.values["colorfulness"] == pytest.approx(0.0)
    assert (st.values["image_width"], st.values["image_height"]) == (40, 20)
    np.testing.assert_allclose(st.boxes["gt"], [[1.0, 0.0], [0.5, 0.5]])
    flat = pixels.stats_of(_save(np.full((30, 30, 3), 90), tmp_path / "flat.png"), (30, 30), {})
    assert flat.values["sharpness"] == 0 and flat.values["contrast"] == 0
    assert flat.values["brightness"] == pytest.approx(90 / 255)
    # pure red: rg = 255, yb = 127.5, no spread: colourfulness 0.3 * sqrt(255^2 + 127.5^2) / 255
    red = np.zeros((10, 10, 3))
    red[..., 0] = 255
    assert pixels.stats_of(_save(red, tmp_path / "red.png"), None, {}).values["colorfulness"] == pytest.approx(
        0.3 * np.hypot(255, 127.5) / 255)


def test_blur_lowers_sharpness(tmp_path):
    rng = np.random.default_rng(0)
    sharp = (rng.random((120, 160, 3)) > 0.5) * 255
    _save(sharp, tmp_path / "sharp.png")
    Image.open(tmp_path / "sharp.png").filter(ImageFilter.GaussianBlur(3)).save(tmp_path / "blur.png")
    a = pixels.stats_of(tmp_path / "sharp.png", None, {}).values["sharpness"]
    b = pixels.stats_of(tmp_path / "blur.png", None, {}).values["sharpness"]
    assert a > 10 * b > 0


def test_missing_corrupt_and_resized_images_are_notes(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    assert pixels.stats_of(tmp_path / "nope.jpg", None, {}).note.endswith("nope.jpg: missing")
    bad = pixels.stats_of(tmp_path / "bad.jpg", None, {})
    assert "bad.jpg: cannot be read" in bad.note and bad.values == {}
    # the GT says 80 x 40; the file is 40 x 20: boxes are scaled to it
    half = np.zeros((20, 40, 3))
    half[:, 20:] = 255
    st = pixels.stats_of(_save(half, tmp_path / "small.png"), (80, 40), {"gt": np.array([[50.0, 10, 20, 20]])})
    assert "40x20 pixels, the GT says 80x40" in st.note
    np.testing.assert_allclose(st.boxes["gt"], [[1.0, 0.0]])


def test_boxes_are_drawn_where_the_gt_and_predictions_say(tmp_path):
    from odfail.report.thumbs import GT_COLOUR, draw_boxes, thumbnail

    picture = Image.new("RGB", (100, 60), (128, 128, 128))
    draw_boxes(picture, [{"x": 10, "y": 20, "w": 30, "h": 20, "colour": GT_COLOUR},
                         {"x": 60, "y": 10, "w": 20, "h": 30, "colour": (230, 159, 0)}], width=2)
    px = np.asarray(picture)
    assert tuple(px[30, 10]) == GT_COLOUR and tuple(px[20, 25]) == GT_COLOUR  # left and top edges of the GT box
    assert tuple(px[9, 60]) == (0, 0, 0)  # the dark edge just outside the prediction
    assert tuple(px[25, 80]) == (230, 159, 0) and tuple(px[40, 70]) == (230, 159, 0)
    assert tuple(px[30, 25]) == (128, 128, 128)  # inside: untouched
    # a thumbnail around the prediction: the crop is scaled, the boxes with it
    _save(np.full((60, 100, 3), 128), tmp_path / "img.png")
    uri, note = thumbnail(tmp_path / "img.png", (100, 60), {"x": 60, "y": 10, "w": 20, "h": 30},
                          [{"x": 60, "y": 10, "w": 20, "h": 30, "colour": (230, 159, 0)}])
    assert note is None and uri.startswith("data:image/jpeg;base64,")
    thumb = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))), dtype=np.int64)
    orange = np.abs(thumb - [230, 159, 0]).sum(axis=2) < 90
    ys, xs = np.nonzero(orange)
    # crop: centre (70, 25), half sizes max(20 * 1.1, 48) = 48 and max(30 * 1.1, 48) = 48 -> x 22..100, y 0..60
    # (clipped), scaled by 220 / 78; the prediction's left edge x = 60 -> (60 - 22) * 220 / 78 = 107
    assert abs(xs.min() - (60 - 22) * 220 / 78) <= 3


@pytest.fixture
def rendered(tmp_path):
    from odfail.synth import generate
    from odfail.synth_render import render

    generate(tmp_path / "data", images=24, seed=2)
    folder = render(tmp_path / "data", seed=2)
    return tmp_path, folder


def test_images_join_the_metrics_and_the_report_shows_pictures(rendered):
    from odfail.analysis.by_metric import by_metric
    from odfail.analysis.metrics import metric_tables, registry
    from odfail.report import report

    tmp, folder = rendered
    (folder / sorted(p.name for p in folder.iterdir())[0]).write_bytes(b"corrupt")
    ws = tmp / "ws"
    res = odfail_cli("ingest", "-w", ws, "--gt", tmp / "data" / "gt.json", "--pred",
                     tmp / "data" / "predictions.json", "--run", "r", "--images", folder)
    assert res.returncode == 0, res.stderr
    names = {m.name for m in registry(Workspace(ws))}
    assert {"brightness", "contrast", "sharpness", "colorfulness", "object_brightness"} <= names
    t = metric_tables(ws, "r")
    assert np.isnan(t.images["brightness"]).sum() == 1  # the corrupt one: null, the rest computed
    assert (t.images["image_width"][~np.isnan(t.images["image_width"])] == 640).all()
    assert not np.isnan(t.gt["object_brightness"]).all()
    assert len(by_metric(ws, "r", "sharpness", buckets=3).buckets) == 3
    assert any("cannot be read" in n for n in Workspace(ws).info().notes)
    html = report(ws, "r", tmp / "report.html").path.read_text()
    assert html.count('<img class="thumb" src="data:image/jpeg;base64,') >= 20


def test_an_images_folder_that_does_not_exist_exits_2_with_one_line(tmp_path, tiny_gt):
    res = odfail_cli("ingest", "-w", tmp_path / "ws", "--gt", write_json(tmp_path / "gt.json", tiny_gt),
                     "--images", tmp_path / "nope")
    assert res.returncode == 2 and res.stderr.strip() == f"error: --images {tmp_path / 'nope'}: no such folder"
    assert not (tmp_path / "ws").exists()
    ingest(tmp_path / "ws", gt=tmp_path / "gt.json")
    res = odfail_cli("images", "-w", tmp_path / "ws", tmp_path / "nope")
    assert res.returncode == 2 and "no such folder" in res.stderr


def test_synth_render_ties_the_pictures_to_the_failures(rendered):
    """Images whose objects the predictions miss more are drawn darker and blurrier: brightness and sharpness
    fall with the share of missed objects."""
    tmp, folder = rendered
    gt = json.loads((tmp / "data" / "gt.json").read_text())
    from odfail.synth_render import _missed_share

    preds = json.loads((tmp / "data" / "predictions.json").read_text())
    missed = _missed_share(gt["annotations"], preds, [im["id"] for im in gt["images"]])
    sharp = np.array([pixels.stats_of(folder / im["file_name"], None, {}).values["sharpness"] for im in gt["images"]])
    assert np.corrcoef(missed, sharp)[0, 1] < -0.3
