"""Ingest's fast path: COCO files scanned by numba (``odfail._scan_kernels``, records read by
``odfail._record_kernels``) into Arrow tables in stored order (text handed over by ``odfail._view_kernels``).

Every function here returns None when anything is off: a record outside the common shape, a value a check
refuses, an id the GT lacks. ``odfail.ingest`` then reads that file with DuckDB (``odfail.ingest_checks``),
which accepts the rest of valid JSON and names the first bad record and field. The two paths store the same
rows, ids and values (``tests/test_ingest_scan.py`` compares them); the one visible difference is the text of a
segmentation, which this path keeps as written in the file (white space dropped) where DuckDB re-prints its
numbers (``1.50`` -> ``1.5``).

The file is memory-mapped, not read: the scanner walks the page cache's own pages, and string columns are
Arrow string views into them, so a 300 MB file costs neither a copy nor freshly zeroed memory. Fresh memory is
what costs most here: on this kind of VM a page touched for the first time costs ~2 ms per MB, more than
parsing it.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from odfail._arrow import column, constant

if TYPE_CHECKING:
    import pyarrow as pa

# The fewest bytes a record can take: capacities (pages never written cost nothing) and nothing more.
_MIN_RESULT, _MIN_IMAGE, _MIN_ANNOTATION = 48, 8, 40
_VIEWS_LIMIT = 2 ** 31  # string views address a buffer with int32 offsets
_PART_MIN_BYTES = 8 << 20  # a results file this large is scanned in parts, on as many threads
_SCAN_CHUNK = 16 << 20  # bytes scanned before their pages are given back (`_scan_parts`)


@dataclass(frozen=True)
class GtIndex:
    """What a results file is checked against. Shape: (images,) and (categories,); ids ascending."""

    image_ids: np.ndarray
    heights: np.ndarray  # -1 where the GT does not say
    widths: np.ndarray
    category_ids: np.ndarray


class Mapped:
    """A file mapped read-only; ``buf`` is its bytes. Tables built from it point into it (string views), so
    close it only once they are written."""

    def __init__(self, mm: mmap.mmap):
        self._mm = mm
        self.buf = np.frombuffer(mm, np.uint8)

    @classmethod
    def open(cls, path: Path) -> Mapped | None:
        """None for an empty or unreadable file: DuckDB's path explains those."""
        try:
            with open(path, "rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    return None
                return cls(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
        except OSError:
            return None

    def release(self, start: int, end: int) -> None:
        """Give back the whole pages of bytes start..end-1: they leave the process's memory, not the page
        cache, and are read again (a minor fault) if touched."""
        _release(self._mm, start, end)

    def close(self) -> None:
        self.buf = None
        try:
            self._mm.close()
        except BufferError:  # an Arrow array still points into it: the mapping goes with the last one
            pass


@dataclass
class Scanned:
    """A results file's columns as scanned, in file order."""

    mapped: Mapped
    ids: np.ndarray  # (2, n): image_id, category_id
    fl: np.ndarray  # (5, n): x, y, w, h, score
    segs: np.ndarray  # (6, m): record, start, end, RLE height, RLE width, white space (1, 0; -1 not known)

    def close(self) -> None:
        self.mapped.close()


def _fill_slow(buf: np.ndarray, slow: np.ndarray, nslow: int, targets: dict[int, np.ndarray]) -> bool:
    """Parse the numbers the scanner left (more than 15 significant digits, say) exactly, with Arrow's cast
    (fast_float: correctly rounded, as Python's float() and DuckDB are), into their places."""
    if nslow == 0:
        return True
    import pyarrow as pa
    import pyarrow.compute as pc

    from odfail.ingest import _view_kernels as V
    from odfail.ingest._record_kernels import TABLE_SHIFT

    data, offsets = V.gather_numbers(buf, slow, nslow)
    text = pa.Array.from_buffers(pa.string(), nslow, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    try:
        values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return False
    dst = slow[2, :nslow]
    table, flat = dst // TABLE_SHIFT, dst % TABLE_SHIFT
    for code, target in targets.items():
        rows = table == code
        target.reshape(-1)[flat[rows]] = values[rows]
    return True


def _text(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, json: bool,
          spaced: np.ndarray | None = None) -> pa.Array:
    """The bytes buf[starts[r]:ends[r]] as a string column (null where starts[r] < 0), as views into ``buf``:
    no copy. A segmentation's text (``json``) is stored without white space (``spaced``: see
    ``_view_kernels.string_views``)."""
    import pyarrow as pa

    from odfail.ingest import _view_kernels as V

    n = starts.size
    kind = pa.json_(pa.string_view()) if json else pa.string_view()
    if not (starts >= 0).any():
        return pa.nulls(n, kind)
    views, side, valid = V.string_views(buf, starts, ends, json,
                                        spaced if spaced is not None else np.full(n, -1, np.int64))
    nulls = n - int(valid.sum())
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    storage = pa.Array.from_buffers(pa.string_view(), n, [bitmap, pa.py_buffer(views), pa.py_buffer(buf),
                                                          pa.py_buffer(side)], null_count=nulls)
    return pa.ExtensionArray.from_storage(kind, storage) if json else storage


def _segmentation_column(buf: np.ndarray, segs: np.ndarray, n: int, order: np.ndarray) -> pa.Array:
    if segs.shape[1] == 0:
        import pyarrow as pa

        return pa.nulls(n, pa.json_(pa.string_view()))
    starts = np.full(n, -1, np.int64)
    ends = np.full(n, -1, np.int64)
    spaced = np.full(n, -1, np.int64)
    starts[segs[0]], ends[segs[0]], spaced[segs[0]] = segs[1], segs[2], segs[5]
    return _text(buf, starts[order], ends[order], json=True, spaced=spaced[order])


def _rle_sizes_fit(segs: np.ndarray, img: np.ndarray, heights: np.ndarray, widths: np.ndarray) -> bool:
    """An RLE's [height, width] must be its image's where the GT gives them (``ingest._raise_mask_size``)."""
    rle = segs[3] >= 0
    if not rle.any():
        return True
    h, w = heights[img[segs[0, rle]]], widths[img[segs[0, rle]]]
    known = (h >= 0) & (w >= 0)
    return bool(((segs[3, rle] == h) & (segs[4, rle] == w) | ~known).all())


def _unique(ids: np.ndarray) -> bool:
    s = np.sort(ids)
    return not bool((s[1:] == s[:-1]).any())


def scan_results(mapped: Mapped, parts: int = 2) -> Scanned | None:
    """Scan a COCO results file, in ``parts`` pieces at once when it is large; None to leave it to DuckDB
    (also for an empty list: a rare case). A file without segmentations is unmapped at once: nothing points into
    it, and its pages would count in the process's memory."""
    from odfail.ingest import _scan_kernels as K

    buf = mapped.buf
    if buf.size >= _VIEWS_LIMIT:
        return None
    starts = [0]
    if buf.size >= _PART_MIN_BYTES:
        for j in range(1, parts):
            at = K.record_start_after(buf, buf.size * j // parts)
            if at > starts[-1]:
                starts.append(at)
    scanned = _scan_parts(mapped, starts)
    if scanned is None and len(starts) > 1:  # a guessed record start was inside a value: once, sequentially
        scanned = _scan_parts(mapped, [0])
    if scanned is None:
        return None
    ids, fl, segs = scanned
    if segs.shape[1] == 0:
        buf = None
        mapped.close()
    return Scanned(mapped, ids, fl, segs)


def _scan_parts(mapped: Mapped, starts: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Scan the parts beginning at ``starts`` on as many threads, each into its own rows (an upper bound of the
    records before it leaves room), then move the rows together.

    A part is scanned _SCAN_CHUNK bytes at a time, and the pages scanned are given back to the page cache: a
    string view that points into them faults them in again when it is written. At 3.25M results this keeps
    280 MB of file pages out of the peak."""
    from concurrent.futures import ThreadPoolExecutor

    from odfail.ingest import _scan_kernels as K
    from odfail.ingest._record_kernels import T_PRED

    buf = mapped.buf
    bounds = starts + [buf.size]
    rows = [b // _MIN_RESULT + j for j, b in enumerate(bounds)]
    cap = rows[-1] + 1
    ids, fl, segs = (_anonymous((k, cap), dtype) for k, dtype in ((2, np.int64), (5, np.float64), (6, np.int64)))

    def part(j: int):
        slow = np.empty((3, (rows[j + 1] - rows[j]) * 5), np.int64)
        at, n, nseg = bounds[j], 0, 0
        while True:  # chunk by chunk: each call stops at the first record that starts at or after ``stop``
            stop = min(at + _SCAN_CHUNK, bounds[j + 1])
            status, count, count_seg, nslow, end = K.scan_results(buf, at, stop, rows[j] + n, rows[j + 1], ids,
                                                                  fl, segs, slow)
            if status != 0 or not _fill_slow(buf, slow, nslow, {T_PRED: fl}):
                return False, n, nseg
            if nseg:  # this call's segmentations start at its first row: behind the part's others
                K.move_rows(segs, rows[j] + n, rows[j] + nseg, count_seg)
            n, nseg = n + count, nseg + count_seg
            mapped.release(at, end)
            if end >= bounds[j + 1] or end == buf.size:
                return end == bounds[j + 1] and (n > 0 or len(starts) == 1), n, nseg
            at = end

    if len(starts) == 1:
        results = [part(0)]
    else:
        with ThreadPoolExecutor(len(starts) - 1) as helpers:
            others = [helpers.submit(part, j) for j in range(1, len(starts))]
            results = [part(0)] + [f.result() for f in others]
    if not all(ok for ok, _, _ in results) or results[0][1] == 0:
        return None
    n = nseg = 0
    for j, (_, count, count_seg) in enumerate(results):
        if j:  # move part j's rows down behind the rows before it; its segmentations name their new rows
            segs[0, rows[j]:rows[j] + count_seg] += n - rows[j]
            K.move_rows(ids, rows[j], n, count)
            K.move_rows(fl, rows[j], n, count)
            K.move_rows(segs, rows[j], nseg, count_seg)
        n += count
        nseg += count_seg
    if len(starts) > 1:  # the moved rows' old pages: give them back
        for arr, used in ((ids, n), (fl, n), (segs, nseg)):
            for c in range(arr.shape[0]):
                _give_back(arr[c, used:])
    return ids[:, :n], fl[:, :n], segs[:, :nseg]


def _anonymous(shape: tuple[int, int], dtype) -> np.ndarray:
    """An uninitialised array in its own anonymous mapping, whose pages can be given back one range at a time
    (`_give_back`; numpy's allocations cannot)."""
    size = shape[0] * shape[1] * np.dtype(dtype).itemsize
    mm = mmap.mmap(-1, max(size, 1), flags=mmap.MAP_PRIVATE)  # private: a page given back is freed
    return np.frombuffer(mm, dtype, shape[0] * shape[1]).reshape(shape)


def _give_back(view: np.ndarray) -> None:
    """Free the whole pages of a contiguous view of an `_anonymous` array (they read as zeros afterwards)."""
    base = view
    while isinstance(base.base, np.ndarray):
        base = base.base
    start = view.ctypes.data - base.ctypes.data
    _release(base.base.obj if isinstance(base.base, memoryview) else base.base, start, start + view.nbytes)


def _release(mm: mmap.mmap, start: int, end: int) -> None:
    """madvise(DONTNEED) the whole pages of bytes start..end-1 of a mapping."""
    lo = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE
    hi = end // mmap.PAGESIZE * mmap.PAGESIZE
    if hi > lo:
        mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


def results_table(scanned: Scanned, run: str, gt: GtIndex | Callable[[], GtIndex | None]) -> Gathered | None:
    """The predictions table of a scanned results file, checked against the GT, in stored order (see
    ``odfail.ingest``) with pycocotools' ``loadRes`` rules: ids 1..n in file order, area = w * h.

    ``gt`` may be a function that waits for the GT's index (None if the GT failed): the stored order needs only
    the order of ids, which the file's own ids give (`_order_kernels.own_positions`), so the table is built
    while the GT is still being read and only the id checks wait for it.

    Only the columns the class ranks need are put in stored order here; the others are gathered one row group
    at a time as the table is written (`Gathered`): whole permuted copies were 160 MB of fresh memory at 3.25M
    results, which costs more than the copying. The scanned category and score rows are given back once taken
    (they read as zeros after), so ``scanned`` serves this one call."""
    from odfail._ids import index as positions
    from odfail.ingest._order_kernels import class_ranks, own_positions, stored_order, take

    ids, fl, segs = scanned.ids, scanned.fl, scanned.segs
    n = ids.shape[1]
    no_box = np.isnan(fl[0])  # the scanner let a result without a bbox through only with a segmentation
    box = fl[:4, ~no_box] if no_box.any() else fl[:4]
    if not (np.isfinite(box).all() and (box[2:] >= 0).all() and np.isfinite(fl[4]).all()
            and np.isnan(fl[:4, no_box]).all()):
        return None
    (img, n_img), (cat, n_cat) = own_positions(ids[0]), own_positions(ids[1])
    index = None
    if n_img < 0 or n_cat < 0:  # ids too far apart for a dense table: the GT's positions order them
        index = gt() if callable(gt) else gt
        if index is None:
            return None
        img, img_found = positions(index.image_ids, ids[0])
        cat, cat_found = positions(index.category_ids, ids[1])
        if not (img_found.all() and cat_found.all()):
            return None
        n_img, n_cat = index.image_ids.size, index.category_ids.size
    order = stored_order(cat, n_cat, img, n_img, fl[4])
    del img, cat
    segmentation = _segmentation_column(scanned.mapped.buf, segs, n, order) if segs.shape[1] else None
    category_id, score = np.empty(n, np.int64), np.empty(n)
    take(ids[1], order, category_id)
    take(fl[4], order, score)
    _give_back(ids[1])  # taken: the scanned rows of category and score are not read again
    _give_back(fl[4])
    class_rank = class_ranks(category_id, score)
    if index is None:  # the checks against the GT
        index = gt() if callable(gt) else gt
        if index is None or not (positions(index.image_ids, ids[0])[1].all()
                                 and positions(index.category_ids, category_id)[1].all()):
            return None
    seg_img, _ = positions(index.image_ids, ids[0, segs[0]])
    rows = np.arange(segs.shape[1])
    if not _rle_sizes_fit(np.vstack([rows, segs[1:]]), seg_img, index.heights, index.widths):
        return None
    return Gathered(run, order, ids, fl, no_box[order] if no_box.any() else None, category_id, score, class_rank,
                    segmentation)


@dataclass
class Gathered:
    """A results file's predictions table in stored order, its row groups gathered as they are written
    (`batches`): ``order`` (file rows in stored order), the scanned columns in file order, and the columns
    already in stored order."""

    run: str
    order: np.ndarray
    ids: np.ndarray  # (2, n) as scanned: image_id (category_id given back: see category_id)
    fl: np.ndarray  # (5, n) as scanned: x, y, w, h (score given back: see score)
    no_box: np.ndarray | None  # stored order: True for a result without a bbox (None: every result has one)
    category_id: np.ndarray
    score: np.ndarray
    class_rank: np.ndarray
    segmentation: pa.Array | None  # None: no result has one

    @property
    def num_rows(self) -> int:
        return self.order.size

    def batches(self, rows: int) -> Iterator[pa.RecordBatch]:
        """The table, ``rows`` at a time."""
        import pyarrow as pa

        from odfail.ingest._order_kernels import take_rows

        same: dict[int, tuple[pa.Array, pa.Array]] = {}  # run and an empty segmentation, by batch length
        for a in range(0, self.num_rows, rows):
            b = min(a + rows, self.num_rows)
            order = self.order[a:b]
            box, image_id = np.empty((4, b - a)), np.empty((1, b - a), np.int64)
            take_rows(self.fl, order, box)
            take_rows(self.ids, order, image_id)
            valid = None if self.no_box is None else ~self.no_box[a:b]
            if b - a not in same:
                same[b - a] = (constant(self.run, b - a), pa.nulls(b - a, pa.json_(pa.string_view())))
            run, no_segmentation = same[b - a]
            columns = {
                "run": run, "pred_id": column(order + 1), "image_id": column(image_id[0]),
                "category_id": column(self.category_id[a:b]),
                **{c: column(box[k], valid) for k, c in enumerate("xywh")},
                "score": column(self.score[a:b]), "area": column(box[2] * box[3], valid),
                "class_rank": column(self.class_rank[a:b]),
                "segmentation": no_segmentation if self.segmentation is None else self.segmentation.slice(a, b - a)}
            yield pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))


def _table(columns: dict[str, pa.Array]) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_arrays(list(columns.values()), names=list(columns))


def _sizes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Image width or height: absent (NaN) or a whole number of pixels in 0..2**31-1, as int32 and a mask."""
    present = ~np.isnan(values)
    v = values[present]
    if not (np.isfinite(v).all() and (v >= 0).all() and (v <= 2 ** 31 - 1).all() and (v == np.floor(v)).all()):
        return None
    out = np.zeros(values.size, np.int32)
    out[present] = v
    return out, present


@dataclass
class ScannedInstances:
    """A COCO instances file's columns as scanned (see ``odfail._scan_kernels.scan_instances``)."""

    mapped: Mapped
    images: tuple[np.ndarray, np.ndarray, np.ndarray]  # id (n,), [width, height] (2, n), file_name spans (2, n)
    categories: tuple[np.ndarray, np.ndarray, np.ndarray]  # id (n,), name spans, supercategory spans
    annotations: tuple[np.ndarray, np.ndarray, np.ndarray]  # ids (4, n), numbers (5, n), segs (5, m)

    def drop_columns(self) -> None:
        """Free the scanned columns once the tables are built (50 MB at 440k annotations); the mapping stays,
        since the tables' strings point into it."""
        self.images = self.categories = self.annotations = None

    def close(self) -> None:
        self.mapped.close()


def scan_instances(mapped: Mapped) -> ScannedInstances | None:
    """Scan a COCO instances file; None to leave it to DuckDB."""
    from odfail.ingest import _scan_kernels as K
    from odfail.ingest._record_kernels import T_ANN, T_IMAGES

    buf = mapped.buf
    if buf.size >= _VIEWS_LIMIT:
        return None
    ci, ca = buf.size // _MIN_IMAGE + 1, buf.size // _MIN_ANNOTATION + 1
    img_ids, img_fl, img_spans = np.empty((1, ci), np.int64), np.empty((2, ci)), np.empty((2, ci), np.int64)
    cat_ids, cat_spans, cat_spans2 = (np.empty((1, ci), np.int64), np.empty((2, ci), np.int64),
                                      np.empty((2, ci), np.int64))
    ann_ids, ann_fl, ann_segs = np.empty((4, ca), np.int64), np.empty((5, ca)), np.empty((6, ca), np.int64)
    slow = np.empty((3, buf.size // 2 + 1), np.int64)
    status, ni, nc, na, nseg, nslow = K.scan_instances(buf, img_ids, img_fl, img_spans, cat_ids, cat_spans,
                                                       cat_spans2, ann_ids, ann_fl, ann_segs, slow)
    if status or not _fill_slow(buf, slow, nslow, {T_IMAGES: img_fl, T_ANN: ann_fl}):
        return None
    return ScannedInstances(mapped, (img_ids[0, :ni], img_fl[:, :ni], img_spans[:, :ni]),
                            (cat_ids[0, :nc], cat_spans[:, :nc], cat_spans2[:, :nc]),
                            (ann_ids[:, :na], ann_fl[:, :na], ann_segs[:, :nseg]))


def instances_index(scanned: ScannedInstances) -> GtIndex:
    """The GtIndex of a scanned instances file, before its checks: results files can be checked against it
    while `instances_tables` checks the GT. Were the GT refused, its error comes first anyway (ingest raises in
    argument order), so what the results' checks said does not matter then."""
    image_id, img_fl, _ = scanned.images
    by_id = np.argsort(image_id, kind="stable")
    with np.errstate(invalid="ignore"):  # a NaN or fractional size: the GT's own checks refuse it
        height, width = (np.where(np.isfinite(v), v, -1).astype(np.int64)[by_id] for v in (img_fl[1], img_fl[0]))
    return GtIndex(image_id[by_id], height, width, np.sort(scanned.categories[0]))


def instances_tables(scanned: ScannedInstances, index: GtIndex) -> dict[str, pa.Table] | None:
    """The images, categories and gt tables of a scanned instances file (``index``: its `instances_index`),
    checked, in stored order."""
    from odfail._ids import index as positions
    from odfail.ingest._order_kernels import stored_order

    buf = scanned.mapped.buf
    (image_id, img_fl, img_spans), (category_id, cat_spans, cat_spans2) = scanned.images, scanned.categories
    ann_ids, ann_fl, ann_segs = scanned.annotations
    ni, nc, na = image_id.size, category_id.size, ann_ids.shape[1]
    width, height = _sizes(img_fl[0]), _sizes(img_fl[1])
    box, area = ann_fl[:4], ann_fl[4]
    if (width is None or height is None
            or not (_unique(image_id) and _unique(category_id) and _unique(ann_ids[0]))
            or not (np.isfinite(box).all() and (box[2:] >= 0).all() and not np.isinf(area).any())):
        return None
    img, img_found = positions(index.image_ids, ann_ids[1])
    cat, cat_found = positions(index.category_ids, ann_ids[2])
    if not (img_found.all() and cat_found.all()) or not _rle_sizes_fit(ann_segs, img, index.heights, index.widths):
        return None
    order = stored_order(cat, nc, img, ni, np.empty(0))
    crowd = ann_ids[3, order]
    area = area[order]
    tables = {
        "images": _table({
            "image_id": column(image_id), "file_name": _text(buf, img_spans[0], img_spans[1], json=False),
            "width": column(*width), "height": column(*height)}),
        "categories": _table({
            "category_id": column(category_id), "name": _text(buf, cat_spans[0], cat_spans[1], json=False),
            "supercategory": _text(buf, cat_spans2[0], cat_spans2[1], json=False)}),
        "gt": _table({
            "gt_id": column(ann_ids[0, order]), "file_idx": column(order), "image_id": column(ann_ids[1, order]),
            "category_id": column(ann_ids[2, order]), **{c: column(ann_fl[k, order]) for k, c in enumerate("xywh")},
            "area": column(area, ~np.isnan(area)), "iscrowd": column(crowd == 1, crowd >= 0),
            "segmentation": _segmentation_column(buf, ann_segs, na, order)}),
    }
    return tables


def start_scan(pool, path: Path, scan) -> Future:
    """Map ``path`` and run ``scan`` (`scan_instances` or `scan_results`) on it in ``pool``; the future's result
    is the scan's (None for a file to leave to DuckDB), which owns the mapping then."""

    def run():
        mapped = Mapped.open(path)
        if mapped is None:
            return None
        out = None
        try:
            out = scan(mapped)
            return out
        finally:
            if out is None:
                mapped.close()

    return pool.submit(run)
