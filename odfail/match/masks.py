"""COCO masks: the segmentations of a workspace as run-length encodings, and pycocotools.mask's functions.

A segmentation is stored as the file gave it (JSON: polygons, uncompressed RLE or a compressed RLE string) and
decoded here into one columnar form, `Rles`: every mask's run lengths in one flat uint32 array with offsets, as
pycocotools' ``annToRLE`` would produce them (polygons rasterised with its rule and united per object). The
kernels are in ``odfail._rle``; their rules are written there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from odfail.store.workspace import Workspace


@dataclass
class Rles:
    """N masks. cnt: (total,) uint32 run lengths; off: (N + 1,) int64 offsets into cnt; h, w: (N,) mask size;
    area: (N,) pixels (rleArea); box: (N, 4) float64 [x, y, w, h] of the mask (rleToBbox). An object without a
    segmentation has no runs, area 0 and box 0; a mask left undecoded (see `Masks.rles`) has no runs but its
    area and box."""

    cnt: np.ndarray
    off: np.ndarray
    h: np.ndarray
    w: np.ndarray
    area: np.ndarray
    box: np.ndarray


def _buffer(arr, dtype) -> np.ndarray:
    """The values of a pyarrow primitive array as numpy, zero-copy (pyarrow's own to_numpy imports pandas)."""
    return np.frombuffer(arr.buffers()[1], dtype=dtype)[arr.offset: arr.offset + len(arr)]


def _offsets(arr) -> np.ndarray:
    """A pyarrow (large) list or string array's offsets as int64."""
    dtype = np.int64 if str(arr.type).startswith("large") else np.int32
    return np.frombuffer(arr.buffers()[1], dtype=dtype)[arr.offset: arr.offset + len(arr) + 1].astype(np.int64)


def _column(chunked, dtype) -> np.ndarray:
    """A pyarrow chunked primitive column as one numpy array (zero-copy when it is one chunk). DuckDB hands
    over one chunk per Parquet row group; pyarrow's combine_chunks would take ~0.1 s on 325k masks."""
    parts = [_buffer(c, dtype) for c in chunked.chunks]
    return parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def _string_column(t, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A pyarrow string column of table ``t`` as (bytes, int64 offsets (N + 1)), zero-copy when it is one chunk."""
    chunked = t.column(name)
    if chunked.num_chunks != 1:
        chunked = chunked.combine_chunks()
    c = chunked.chunks[0] if hasattr(chunked, "chunks") else chunked
    return np.frombuffer(c.buffers()[2], dtype=np.uint8) if c.buffers()[2] else np.zeros(0, np.uint8), _offsets(c)


def _one_chunk(con, query: str):
    """A query's result as a pyarrow table of one chunk per column, so that its strings are used where DuckDB
    put them: a parallel scan hands over one chunk per Parquet row group, and joining them copies every byte
    (0.1 s for 50 MB of fresh memory). One thread reads 325k segmentations in 0.11 s."""
    con.execute("set threads = 1")
    try:
        return con.sql(query).to_arrow_table(batch_size=2**40)
    finally:
        con.execute("reset threads")  # the setting is the database instance's, shared by its cursors


_MASK_TABLE = {"gt": "gt_masks", "predictions": "pred_masks"}


@dataclass
class Masks:
    """N masks as COCO compressed RLE strings (mask i is ``data[start[i]:end[i]]``, empty for no mask), with
    their size, area and box; run lengths are decoded on demand by `rles`, and only for the masks a caller
    needs (rleIou never walks the runs of a mask whose box overlaps nothing it is compared with). ``escaped``:
    the strings are the segmentation's JSON text, where a backslash (one of the 64 characters) is doubled."""

    h: np.ndarray
    w: np.ndarray
    area: np.ndarray
    box: np.ndarray
    data: np.ndarray | None
    start: np.ndarray
    end: np.ndarray
    escaped: bool
    source: tuple | None = None  # (workspace, table, key, ids, run): where to decode from again if damaged

    def rles(self, need: np.ndarray | None = None) -> Rles:
        """The run lengths of every mask, or of those where ``need`` is True (the others get none)."""
        from odfail.match import _rle

        start = self.start if need is None else np.where(need, self.start, -1)
        cnt, off, bad = _rle.from_strings(self.data, start, self.end, self.escaped)
        if bad.any():  # a damaged mask table: decode the segmentations again (and store them again)
            return load_masks(*self.source[:4], run=self.source[4], stored=False).rles(need)
        return Rles(cnt, off, self.h, self.w, self.area, self.box)


def load_masks(ws: Workspace, table: str, key: str, ids: np.ndarray, run: str | None = None,
               stored: bool = True, private: bool = False) -> Masks:
    """The masks of ``table`` ("gt" or "predictions") for the rows with these ids (``key`` = gt_id or pred_id),
    in the order of ``ids``.

    The first call converts the stored segmentations (`_segmentations`, `_convert`) and keeps the result in
    the workspace's mask table (``gt_masks`` / ``pred_masks``): size, area and box of every mask, and its
    compressed string where one had to be made (from polygons or run lengths). A mask that already is a
    compressed string (a results file's, usually) is not copied: the table holds a null ``counts`` and the
    string is read from the segmentation's text where it is (50 MB for 325k results, half of ingest's file).

    ``private``: read through a DuckDB instance of its own, for a load that runs beside another (`_one_chunk`
    sets the thread count of the whole instance)."""
    import duckdb

    path = ws.table_path(_MASK_TABLE[table], run)
    con = duckdb.connect() if private else ws.engine()
    try:
        masks = _read(con, path, key, ids) if stored and path.exists() else None
        if masks is None or masks.data is None:
            seg = _segmentations(ws, table, key, ids, run, con)
            if masks is not None and not seg.converts:  # the stored numbers, the file's own strings
                masks.data, masks.start, masks.end, masks.escaped = seg.text, seg.start, seg.end, True
            else:
                masks = _convert(seg, table, key, ids, ws, con)
                try:
                    _write(path, key, ids, masks, run)
                except OSError:
                    pass  # a read-only workspace: convert again next time
    finally:
        con.close()
    masks.source = (ws, table, key, ids, run)
    return masks


def _read(con, path, key: str, ids: np.ndarray) -> Masks | None:
    """The stored masks, aligned to ``ids`` and not decoded yet (``data`` None when the table keeps no strings);
    None if the table does not hold every one."""
    from odfail._ids import index
    from odfail.store.workspace import quote

    t = con.sql(f"select {key} as id, height, width, area, x, y, w, h, counts "
                f"from read_parquet({quote(str(path))})").to_arrow_table()
    if t.num_rows != len(ids):
        return None
    stored_ids = _column(t.column("id"), np.int64)
    area = _column(t.column("area"), np.int64)
    box = np.stack([_column(t.column(c), np.float64) for c in ("x", "y", "w", "h")], axis=1)
    h = _column(t.column("height"), np.int32).astype(np.int64)
    w = _column(t.column("width"), np.int32).astype(np.int64)
    strings = t.column("counts").null_count < t.num_rows or t.num_rows == 0
    data, off = _string_column(t, "counts") if strings else (None, np.zeros(len(ids) + 1, dtype=np.int64))
    if np.array_equal(stored_ids, ids):
        start, end = off[:-1], off[1:]
    else:
        pos, found = index(np.sort(stored_ids), ids)
        if not found.all():
            return None
        rows = np.argsort(stored_ids)[pos]  # stored row of each id
        h, w, area, box, start, end = h[rows], w[rows], area[rows], box[rows], off[rows], off[rows + 1]
    return Masks(h, w, area, box, data, start, end, escaped=False)


def _write(path, key: str, ids: np.ndarray, masks: Masks, run: str | None) -> None:
    """Store masks made by `_convert` as Parquet in the order of ``ids``: the strings it made (COCO's
    compressed RLE, a quarter of the bytes of uint32 runs, and what pycocotools reads), or none at all when
    every mask is its segmentation's own string (``escaped``). Written by pyarrow, uncompressed, in the derived
    tables' row groups (``workspace.DERIVED_PARQUET``): DuckDB's COPY of the same Arrow table took 2-3 times
    as long. The Arrow columns are built from buffers (``odfail._arrow``): pyarrow's numpy conversion would
    import pandas."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from odfail._arrow import column, constant

    if masks.escaped:
        strings = pa.nulls(len(ids), pa.string())
    else:  # as `_convert` makes them: mask i's string follows mask i - 1's
        str_off = np.concatenate(([0], masks.end)).astype(np.int64)
        big = len(masks.data) >= 2**31
        strings = pa.Array.from_buffers(pa.large_string() if big else pa.string(), len(ids),
                                        [None, pa.py_buffer(str_off.astype(np.int64 if big else np.int32)),
                                         pa.py_buffer(masks.data)])
    columns = {**({"run": constant(run, len(ids))} if run is not None else {}),
               key: column(ids.astype(np.int64)), "height": column(masks.h.astype(np.int32)),
               "width": column(masks.w.astype(np.int32)), "area": column(masks.area.astype(np.int64, copy=False)),
               **{c: column(masks.box[:, j].astype(np.float64, copy=False))
                  for j, c in enumerate(("x", "y", "w", "h"))},
               "counts": strings}
    tmp = path.with_suffix(f".parquet.{os.getpid()}.tmp")
    pq.write_table(pa.Table.from_arrays(list(columns.values()), names=list(columns)), tmp,
                   row_group_size=65536, compression="none", use_dictionary=["run"] if run is not None else False)
    os.replace(tmp, path)


@dataclass
class _Segmentations:
    """A table's segmentation texts read by ``odfail._seg_kernels.read_segmentations``, every per-row array
    aligned to the caller's ids (a row the table lacks: kind NONE). ``converts``: some need converting."""

    text: np.ndarray
    kind: np.ndarray
    h: np.ndarray
    w: np.ndarray
    start: np.ndarray
    end: np.ndarray
    image_id: np.ndarray
    xy: np.ndarray
    poly_off: np.ndarray
    runs: np.ndarray

    @property
    def converts(self) -> bool:
        from odfail.match import _seg_kernels as S

        return bool(((self.kind == S.POLYGONS) | (self.kind == S.RUNS)).any())


def _segmentations(ws: Workspace, table: str, key: str, ids: np.ndarray, run: str | None, con) -> _Segmentations:
    """The ``segmentation`` texts of ``table`` read in place (see `_Segmentations`). Raises WorkspaceError on a
    text ingest would not have written."""
    from odfail._ids import indexer
    from odfail.exceptions import WorkspaceError
    from odfail.match import _seg_kernels as S
    from odfail.store.workspace import quote

    t = _one_chunk(con, f"""select {key} as id, image_id, segmentation::VARCHAR as s
                            from read_parquet({quote(str(ws.table_path(table, run)))})""")
    text, text_off = _string_column(t, "s")
    kind, h, w, start, end, xy, poly_off, runs, slow = S.read_segmentations(text, text_off)
    row_ids = _column(t.column("id"), np.int64)
    unread = np.flatnonzero(kind == S.UNREAD)
    if len(unread):
        raise WorkspaceError(f"{table} {key} {row_ids[unread[0]]}: its stored segmentation is not one odfail "
                             "wrote (polygons or an RLE); ingest the file again")
    for j in range(slow.shape[1]):  # numbers beyond the kernel's exact range: as json.load reads them
        xy[slow[0, j]] = float(text[slow[1, j]: slow[2, j]].tobytes())
    order = np.argsort(ids, kind="stable")
    pos, found = indexer(ids[order])(row_ids)
    rows = np.full(len(ids), -1, dtype=np.int64)  # the table's row of each id
    rows[order[pos[found]]] = np.flatnonzero(found)
    has = rows >= 0
    kind = np.where(has, kind[rows], S.NONE)
    plain = kind == S.STRING
    h, w = np.where(plain | (kind == S.RUNS), h[rows], 0), np.where(plain | (kind == S.RUNS), w[rows], 0)
    start, end = np.where(has, start[rows], 0), np.where(has, end[rows], 0)
    image_id = np.where(has, _column(t.column("image_id"), np.int64)[rows], -1)
    return _Segmentations(text, kind, h, w, start, end, image_id, xy, poly_off, runs)


def _convert(seg: _Segmentations, table: str, key: str, ids: np.ndarray, ws: Workspace, con) -> Masks:
    """`Masks` from the segmentations, with their size, area and box. Compressed strings only: used where
    they are, in the text (pycocotools' annToRLE keeps them too). Otherwise every mask becomes a new plain
    string: polygons rasterised at their image's size and united, run lengths encoded (annToRLE's rules), and
    the strings decoded and encoded again. Raises WorkspaceError on a mask that does not cover its size."""
    from odfail._ids import indexer
    from odfail.exceptions import WorkspaceError
    from odfail.match import _rle
    from odfail.match import _seg_kernels as S
    from odfail.store.workspace import quote

    kind, h, w = seg.kind, seg.h.copy(), seg.w.copy()
    if not seg.converts:
        masks = Masks(h, w, None, None, seg.text, seg.start, seg.end, escaped=True)
    else:
        polys = np.flatnonzero(kind == S.POLYGONS)
        if len(polys):
            img = con.sql(f"select image_id, coalesce(height, -1) as h, coalesce(width, -1) as w "
                          f"from read_parquet({quote(str(ws.table_path('images')))})").fetchnumpy()
            order = np.argsort(img["image_id"])
            at, _ = indexer(np.asarray(img["image_id"])[order])(seg.image_id[polys])
            h[polys], w[polys] = (np.asarray(img[c], dtype=np.int64)[order][at] for c in ("h", "w"))
            unsized = np.flatnonzero((h[polys] < 0) | (w[polys] < 0))
            if len(unsized):
                raise WorkspaceError(f"image {seg.image_id[polys[unsized[0]]]} has no width/height: its polygons "
                                     "cannot be rasterised")
        # polygons and run lengths are read in the table's order: take those rows in it (contiguous spans)
        polys = polys[np.argsort(seg.start[polys], kind="stable")]
        lists = np.flatnonzero(kind == S.RUNS)
        lists = lists[np.argsort(seg.start[lists], kind="stable")]
        strs = np.flatnonzero(kind == S.STRING)

        def offsets(rows):  # the contiguous spans of these rows (written in row order) as offsets
            return np.append(seg.start[rows], seg.end[rows[-1]] if len(rows) else 0).astype(np.int64)

        s_cnt, s_off, bad = _rle.from_strings(seg.text, seg.start[strs], seg.end[strs], True)
        if bad.any():  # (a bad string would be re-encoded empty, and pass the checks below as no mask)
            raise WorkspaceError(f"{table} {key} {ids[strs[np.argmax(bad != 0)]]}: malformed compressed RLE string")
        parts = [(polys, *_rle.objects_from_polygons(seg.xy, seg.poly_off, offsets(polys), h[polys], w[polys])),
                 (lists, seg.runs, offsets(lists)), (strs, s_cnt, s_off)]
        length = np.zeros(len(ids), dtype=np.int64)
        coded = []
        for dest, cnt, off in parts:
            data, str_off = _rle.to_strings(cnt, off)
            coded.append((dest, data, str_off))
            length[dest] = np.diff(str_off)
        str_off = np.concatenate(([0], np.cumsum(length))).astype(np.int64)
        data = np.empty(str_off[-1], dtype=np.uint8)
        for dest, part_data, part_off in coded:
            _rle.place_strings(data, str_off, dest, part_data, part_off, np.arange(len(dest)))
        masks = Masks(h, w, None, None, data, str_off[:-1], str_off[1:], escaped=False)
    masks.area, masks.box, total, bad = _rle.string_stats(masks.data, masks.start, masks.end, masks.h, masks.w,
                                                          masks.escaped)
    if bad.any():
        raise WorkspaceError(f"{table} {key} {ids[np.argmax(bad != 0)]}: malformed compressed RLE string")
    wrong = np.flatnonzero((masks.end > masks.start) & (total != masks.h * masks.w))
    if len(wrong):
        i = wrong[0]
        raise WorkspaceError(f"{table} {key} {ids[i]}: the RLE's run lengths sum to {total[i]}, not height x width "
                             f"= {masks.h[i] * masks.w[i]}")
    return masks


# ---- pycocotools.mask's functions, on single masks (used by the tests; the pipeline works on Rles) ----

def _compressed(cnt: np.ndarray) -> bytes:
    """One RLE's compressed string, as pycocotools returns it (bytes)."""
    from odfail.match import _rle

    data, _ = _rle.to_strings(cnt, np.array([0, len(cnt)], dtype=np.int64))
    return data.tobytes()


def encode(mask: np.ndarray) -> dict:
    """A binary h x w mask -> {"size": [h, w], "counts": compressed string}, as pycocotools.mask.encode."""
    from odfail.match import _rle

    m = np.asarray(mask, dtype=np.uint8)
    cnt = _rle.encode(np.ascontiguousarray(m.T).ravel())
    return {"size": [m.shape[0], m.shape[1]], "counts": _compressed(cnt)}


def counts(rle: dict) -> np.ndarray:
    """Run lengths of an RLE dict with a compressed (str/bytes) or uncompressed (list) ``counts``."""
    from odfail.match import _rle

    c = rle["counts"]
    if isinstance(c, list):
        return np.asarray(c, dtype=np.uint32)
    data = np.frombuffer(c.encode() if isinstance(c, str) else c, dtype=np.uint8)
    cnt, _, bad = _rle.from_strings(data, np.zeros(1, dtype=np.int64), np.array([len(data)], dtype=np.int64),
                                    False)
    if bad[0]:
        raise ValueError("malformed compressed RLE string")
    return cnt


def decode(rle: dict) -> np.ndarray:
    """RLE dict -> h x w uint8 mask, as pycocotools.mask.decode."""
    from odfail.match import _rle

    h, w = rle["size"]
    return _rle.decode(counts(rle), h * w).reshape(w, h).T


def area(rle: dict) -> int:
    return int(counts(rle)[1::2].sum())


def to_bbox(rle: dict) -> np.ndarray:
    """[x, y, w, h] of the mask, as pycocotools.mask.toBbox."""
    from odfail.match import _rle

    c = counts(rle)
    _, box = _rle.areas_and_boxes(c, np.array([0, len(c)], dtype=np.int64), np.array([rle["size"][0]]),
                                  np.array([rle["size"][1]]))
    return box[0]


def from_polygons(polygons: list[list[float]], h: int, w: int) -> dict:
    """Polygons of one object -> their union as an RLE dict, as pycocotools' frPyObjects + merge."""
    from odfail.match import _rle

    xy = np.asarray([v for p in polygons for v in p], dtype=np.float64)
    poly_off = np.concatenate(([0], np.cumsum([len(p) for p in polygons]))).astype(np.int64)
    cnt, _ = _rle.objects_from_polygons(xy, poly_off, np.array([0, len(polygons)], dtype=np.int64),
                                        np.array([h], dtype=np.int64), np.array([w], dtype=np.int64))
    return {"size": [h, w], "counts": _compressed(cnt)}


def polygon_strings(xy: np.ndarray, poly_off: np.ndarray, obj_off: np.ndarray, h: np.ndarray, w: np.ndarray
                    ) -> list[str]:
    """Many objects' polygons -> one compressed RLE string each. ``xy``: every polygon's x, y values in a row;
    polygon p is ``xy[poly_off[p]:poly_off[p + 1]]``; object i is polygons ``obj_off[i]:obj_off[i + 1]`` on an
    image of ``h[i]`` x ``w[i]``."""
    from odfail.match import _rle

    cnt, off = _rle.objects_from_polygons(xy, poly_off, obj_off, h, w)
    data, str_off = _rle.to_strings(cnt, off)
    raw = data.tobytes()
    return [raw[str_off[i]: str_off[i + 1]].decode() for i in range(len(obj_off) - 1)]
