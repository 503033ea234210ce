"""The generator's documented shape and failure modes, measured with odfail's own analyses on a generated set."""

from __future__ import annotations

import json

import numpy as np

from odfail import ingest
from odfail.evaluate.confusion import confusion
from odfail.evaluate.tide import errors
from odfail.synth import FAILURES, generate


def test_generated_set_has_cocos_shape_and_its_failure_modes(tmp_path):
    """val2017's shape (~9 GT per image, ~41% small / 34% medium / 25% large, ~1% crowd, ~65 predictions per
    image), class confusion mostly between siblings of a supercategory (person, alone in its own, only at
    random), and every TIDE error type present."""
    s = generate(tmp_path / "data", images=400, seed=5)
    gt = json.loads(s.gt_path.read_text())
    anns = gt["annotations"]
    area = np.array([a["area"] for a in anns if not a["iscrowd"]])
    assert 8 <= len(anns) / s.images <= 10
    assert 0.35 <= (area < 32**2).mean() <= 0.47 and 0.20 <= (area >= 96**2).mean() <= 0.30
    assert 0.003 <= s.crowd / s.gt <= 0.025
    assert 55 <= s.predictions / s.images <= 75

    ingest(tmp_path / "ws", gt=s.gt_path, predictions=[(s.pred_path, "r")])
    by_class = confusion(tmp_path / "ws", "r", score=0.3)
    sup = {c["name"]: c["supercategory"] for c in gt["categories"]}
    k = len(by_class.labels) - 1  # the last label is background
    m = by_class.matrix[:k, :k].astype(float)
    np.fill_diagonal(m, 0)
    same = np.array([[sup[a] == sup[p] for p in by_class.labels[:k]] for a in by_class.labels[:k]])
    # sibling confusion is 4x as likely as random confusion (FAILURES), and a random class is a sibling 1 in ~7
    assert FAILURES["p_confuse_sibling"] == 4 * FAILURES["p_confuse_random"]
    assert m[same].sum() / m.sum() > 0.6
    person = by_class.labels.index("person")
    assert m[person].sum() / m.sum() < 0.3

    counts = errors(tmp_path / "ws", "r").counts
    assert all(counts[t] > 0 for t in ("Cls", "Loc", "Both", "Dupe", "Bkg", "Miss"))
    assert counts["Bkg"] > counts["Loc"] > counts["Cls"]
