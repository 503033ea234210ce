"""Ingest: COCO files -> validated Arrow tables -> the workspace's Parquet files.

Takes a COCO instances file (ground truth) and any number of results files (one run each); gives the stored
``images``, ``categories``, ``gt``, ``runs`` and ``predictions/<run>`` tables, rows in COCO evaluation order, and
deletes whatever was derived from a table it replaces. Two readers: a numba scanner over the memory-mapped file
(``scan`` and its ``_*_kernels``) for the common shapes, and DuckDB's JSON reader for the rest and for every error
message (``coco``, ``checks``). A file is checked whole before anything is written: a bad record exits 2 naming
file, record and field, and leaves the workspace as it was.
"""

from odfail._stage import callable_stage
from odfail.ingest.coco import IngestSummary, ingest

callable_stage(__name__, ingest)

__all__ = ["IngestSummary", "ingest"]
