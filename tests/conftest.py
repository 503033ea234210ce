from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests need ../shared/data beside the repository")
    return path


def write_json(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc))
    return path


def odfail_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the real command line in a subprocess: exit codes and stderr are part of the contract."""
    return subprocess.run([sys.executable, "-m", "odfail", *map(str, args)], capture_output=True, text=True)


@pytest.fixture
def tiny_gt() -> dict:
    """2 images, 2 categories, 3 GT (one crowd)."""
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
                   {"id": 2, "file_name": "b.jpg", "width": 100, "height": 80}],
        "categories": [{"id": 1, "name": "cat", "supercategory": "animal"},
                       {"id": 2, "name": "dog", "supercategory": "animal"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0,
             "segmentation": [[10, 10, 30, 10, 30, 30, 10, 30]]},
            {"id": 11, "image_id": 1, "category_id": 2, "bbox": [50, 50, 10, 10], "area": 100, "iscrowd": 0,
             "segmentation": [[50, 50, 60, 50, 60, 60, 50, 60]]},
            {"id": 12, "image_id": 2, "category_id": 1, "bbox": [0, 0, 40, 40], "area": 1600, "iscrowd": 1,
             # uncompressed RLE of the 40 x 40 box in the 80 x 100 image: 40 columns of 40 on, 40 off, then off
             "segmentation": {"counts": [0] + [40, 40] * 39 + [40, 40 + 60 * 80], "size": [80, 100]}},
        ],
    }


@pytest.fixture
def tiny_preds() -> list:
    return [
        {"image_id": 1, "category_id": 1, "bbox": [11, 11, 20, 20], "score": 0.9},
        {"image_id": 1, "category_id": 2, "bbox": [0, 0, 5, 5], "score": 0.4},
        {"image_id": 2, "category_id": 1, "bbox": [1, 1, 10, 10], "score": 0.7},
    ]
