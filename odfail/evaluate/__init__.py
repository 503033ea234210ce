"""Evaluate: match results -> the numbers people report.

``coco``: pycocotools' 12 numbers, per class AP/AR and a headline block at one IoU (`evaluate`); ``tide``:
tidecv's error types, counts and dAP over the error views (`errors`); ``confusion``: the confusion matrix with
background; ``taxonomy``: the error types themselves. Each runs the matching it needs (``odfail.match``) when
the workspace does not store it yet.
"""

from odfail._stage import callable_stage
from odfail.evaluate.coco import DEFAULT_AREAS, IOU_THRS, REC_THRS, AtIoU, EvalResult, Params, evaluate

callable_stage(__name__, evaluate)

__all__ = ["DEFAULT_AREAS", "IOU_THRS", "REC_THRS", "AtIoU", "EvalResult", "Params", "evaluate"]
