"""The error vocabulary: tidecv's six error types, in its fixed order, each with what would have made it right.

The SQL that assigns them is ``sql/views/prediction_errors.sql`` (predictions) and ``sql/views/gt_errors.sql``
(missed GT); ``odfail.tide`` computes their dAP.
"""

from __future__ import annotations

from enum import Enum


class ErrorType(Enum):
    """One member per error type; ``value`` is the short name used in SQL, JSON and tables."""

    CLS = ("Cls", "right box, wrong class: a GT of another class overlaps it at IoU >= pos")
    LOC = ("Loc", "right class, poor box: its best same-class GT overlaps it at bg <= IoU <= pos")
    BOTH = ("Both", "wrong class and poor box: overlaps some GT above bg, but fits none of the above")
    DUPE = ("Dupe", "right class and box, but a higher-scoring prediction already took that GT")
    BKG = ("Bkg", "fired on background: overlaps no GT of any class above bg")
    MISS = ("Miss", "a GT that no prediction found, not even as a Loc or Cls error")

    def __init__(self, short_name: str, description: str):
        self.short_name = short_name
        self.description = description

    @property
    def code(self) -> int:
        """The small int the kernels use (``odfail._tide_kernels.E_*``): 1 + position; 0 is TP."""
        return list(ErrorType).index(self) + 1


# tidecv's special oracles: every FP scored 0 (perfect precision), every unmatched GT dropped (perfect recall).
SPECIAL = {"FP": "all false positives scored below all true positives: the AP of perfect precision",
           "FN": "all unmatched GT removed: the AP of perfect recall"}
SHORT_NAMES = [e.short_name for e in ErrorType]
