"""What a COCO evaluation evaluates: pycocotools' ``Params`` (iouType bbox/segm) and its thresholds. Matching reads
it, evaluation and analysis set it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# pycocotools Params.setDetParams, computed the same way so that the floats are the same floats.
IOU_THRS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
DEFAULT_AREAS = {"all": (0.0, 1e5**2), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2),
                 "large": (96.0**2, 1e5**2)}


@dataclass(frozen=True)
class Params:
    """What to evaluate; mirrors pycocotools ``Params`` (iouType bbox).

    area_ranges: name -> (lo, hi), both inclusive; must contain "all". max_dets: sorted ascending.
    use_cats: False = class-agnostic (pycocotools useCats=0). img_ids / cat_ids: subsets, None = all of the GT.
    iou: the threshold of the headline block; score: its score threshold (predictions below it are dropped).
    """

    area_ranges: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_AREAS))
    max_dets: tuple[int, ...] = (1, 10, 100)
    use_cats: bool = True
    img_ids: tuple[int, ...] | None = None
    cat_ids: tuple[int, ...] | None = None
    iou: float = 0.5
    score: float | None = None
    rec_thrs: np.ndarray = field(default_factory=lambda: REC_THRS.copy())

    def __post_init__(self):
        from odfail.exceptions import WorkspaceError

        if "all" not in self.area_ranges:
            raise WorkspaceError('area ranges must include "all"')
        for name, (lo, hi) in self.area_ranges.items():
            if not lo <= hi:
                raise WorkspaceError(f"area range {name}: {lo} > {hi}")
        if not self.max_dets or any(m < 1 for m in self.max_dets):
            raise WorkspaceError("max dets must be positive integers")
        object.__setattr__(self, "max_dets", tuple(sorted(int(m) for m in self.max_dets)))
        if not 0.0 < self.iou <= 1.0:
            raise WorkspaceError(f"--iou {self.iou} must be in (0, 1]")

    @property
    def all_index(self) -> int:
        return list(self.area_ranges).index("all")
