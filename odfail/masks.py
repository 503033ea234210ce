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
    from odfail.workspace import Workspace


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


def _strings(chunked) -> tuple[np.ndarray, np.ndarray]:
    """A pyarrow chunked string column as (bytes, int64 offsets (N + 1))."""
    data, offs, base = [], [np.zeros(1, dtype=np.int64)], 0
    for c in chunked.chunks:
        off = _offsets(c)
        data.append(np.frombuffer(c.buffers()[2], dtype=np.uint8)[off[0]: off[-1]])
        offs.append(off[1:] - off[0] + base)
        base += int(off[-1] - off[0])
    if len(data) == 1:
        return data[0], np.concatenate(offs)
    return (np.concatenate(data) if data else np.zeros(0, dtype=np.uint8)), np.concatenate(offs)


_MASK_TABLE = {"gt": "gt_masks", "predictions": "pred_masks"}


@dataclass
class Masks:
    """N masks as COCO compressed RLE strings, with their size, area and box; run lengths are decoded on demand
    by `rles`, and only for the masks a caller needs (rleIou never walks the runs of a mask whose box overlaps
    nothing it is compared with)."""

    h: np.ndarray
    w: np.ndarray
    area: np.ndarray
    box: np.ndarray
    strings: tuple  # (bytes, offsets (S + 1), rows (N,)): mask i is string rows[i] (an empty string: no mask)
    source: tuple | None = None  # (workspace, table, key, ids, run): where to decode from again if damaged

    def rles(self, need: np.ndarray | None = None) -> Rles:
        """The run lengths of every mask, or of those where ``need`` is True (the others get none)."""
        from odfail import _rle

        data, str_off, rows = self.strings
        cnt, off, bad = _rle.from_strings(data, str_off, rows if need is None else np.where(need, rows, -1))
        if bad.any():  # a damaged mask table: decode the segmentations again (and store them again)
            return load_masks(*self.source[:4], run=self.source[4], stored=False).rles(need)
        return Rles(cnt, off, self.h, self.w, self.area, self.box)


def load_masks(ws: Workspace, table: str, key: str, ids: np.ndarray, run: str | None = None,
               stored: bool = True) -> Masks:
    """The masks of ``table`` ("gt" or "predictions") for the rows with these ids (``key`` = gt_id or pred_id),
    in the order of ``ids``: read from the workspace's columnar mask table (``gt_masks`` / ``pred_masks``), or
    converted from the stored segmentations and written there on first use."""
    path = ws.table_path(_MASK_TABLE[table], run)
    con = ws.engine()
    try:
        masks = _read(con, path, key, ids) if stored and path.exists() else None
        if masks is None:
            masks = from_segmentations(ws, table, key, ids, run, con)
            try:
                _write(con, path, key, ids, masks, run)
            except OSError:
                pass  # a read-only workspace: convert again next time
    finally:
        con.close()
    masks.source = (ws, table, key, ids, run)
    return masks


def _read(con, path, key: str, ids: np.ndarray) -> Masks | None:
    """The stored masks, aligned to ``ids`` and not decoded yet; None if the table does not hold every one."""
    from odfail.match import _index
    from odfail.workspace import _quote

    t = con.sql(f"select {key} as id, height, width, area, x, y, w, h, counts "
                f"from read_parquet({_quote(str(path))})").to_arrow_table(batch_size=max(len(ids), 1))
    if t.num_rows != len(ids):
        return None
    stored_ids = _column(t.column("id"), np.int64)
    area = _column(t.column("area"), np.int64)
    box = np.stack([_column(t.column(c), np.float64) for c in ("x", "y", "w", "h")], axis=1)
    h = _column(t.column("height"), np.int32).astype(np.int64)
    w = _column(t.column("width"), np.int32).astype(np.int64)
    if np.array_equal(stored_ids, ids):
        rows = np.arange(len(ids), dtype=np.int64)
    else:
        pos, found = _index(np.sort(stored_ids), ids)
        if not found.all():
            return None
        rows = np.argsort(stored_ids)[pos]  # stored row of each id
        h, w, area, box = h[rows], w[rows], area[rows], box[rows]
    return Masks(h, w, area, box, strings=(*_strings(t.column("counts")), rows))


def _write(con, path, key: str, ids: np.ndarray, masks: Masks, run: str | None) -> None:
    """Store masks converted by `from_segmentations` as Parquet in the order of ``ids``, the runs as COCO's
    compressed RLE strings (a quarter of the bytes of uint32 runs, and what pycocotools reads). The Arrow
    columns are built from buffers (``odfail._arrow``): pyarrow's numpy conversion would import pandas."""
    import os

    import pyarrow as pa

    from odfail._arrow import column
    from odfail.workspace import DERIVED_PARQUET, _quote

    data, str_off, _ = masks.strings  # as `from_segmentations` builds them: string i is mask i
    big = len(data) >= 2**31
    strings = pa.Array.from_buffers(pa.large_string() if big else pa.string(), len(ids),
                                    [None, pa.py_buffer(str_off.astype(np.int64 if big else np.int32)),
                                     pa.py_buffer(data)])
    columns = {key: column(ids.astype(np.int64)), "height": column(masks.h.astype(np.int64)),
               "width": column(masks.w.astype(np.int64)), "area": column(masks.area.astype(np.int64, copy=False)),
               **{c: column(masks.box[:, j].astype(np.float64, copy=False))
                  for j, c in enumerate(("x", "y", "w", "h"))},
               "counts": strings}
    table = pa.Table.from_arrays(list(columns.values()), names=list(columns))
    tmp = path.with_suffix(f".parquet.{os.getpid()}.tmp")
    con.register("src", table)
    head = "$run as run, " if run is not None else ""
    con.execute(f"""copy (select {head}{key}, height::INTEGER as height, width::INTEGER as width, area,
                                 x, y, w, h, counts from src)
                    to {_quote(str(tmp))} ({DERIVED_PARQUET})""",
                {"run": run} if run is not None else None)
    con.unregister("src")
    os.replace(tmp, path)


def from_segmentations(ws: Workspace, table: str, key: str, ids: np.ndarray, run: str | None, con) -> Masks:
    """The stored segmentations of ``table`` for these ids, in their order, as `Masks` (see `load_masks`):
    compressed RLE strings are kept as they are (pycocotools' annToRLE keeps them too), polygons are rasterised
    at their image's size and uncompressed RLE encoded, both as annToRLE does. Raises WorkspaceError on a
    mask that does not cover its size exactly. ``con``: a DuckDB connection (`Workspace.engine`)."""
    import pyarrow.compute as pc

    from odfail import _rle
    from odfail.exceptions import WorkspaceError
    from odfail.match import _indexer
    from odfail.workspace import _quote

    src = f"read_parquet({_quote(str(ws.table_path(table, run)))})"
    images = f"read_parquet({_quote(str(ws.table_path('images')))})"
    batch = max(len(ids), 1)
    # one pass over the JSON: an RLE's size and counts; counts[0] is there only for uncompressed counts
    rle = con.sql(f"""
        select {key} as id, p[1]::BIGINT as h, p[2]::BIGINT as w, p[3] as s, p[4] is not null as is_list
        from (select {key}, json_extract_string(segmentation, ['$.size[0]', '$.size[1]', '$.counts',
                                                               '$.counts[0]']) as p
              from {src} where segmentation is not null)""").to_arrow_table(batch_size=batch)
    is_list = rle.column("is_list")
    polys = lists = None
    if rle.column("s").null_count:  # no counts: polygons
        polys = con.sql(f"""
            select t.{key} as id, i.height as h, i.width as w, i.image_id,
                   list_transform(p, lambda q: len(q)) as lens, flatten(p) as xy
            from (select {key}, image_id, try_cast(segmentation as DOUBLE[][]) as p from {src}
                  where json_type(segmentation) = 'ARRAY') t
            join {images} i on i.image_id = t.image_id""").to_arrow_table(batch_size=batch)
    if pc.any(is_list).as_py():
        lists = con.sql(f"""
            select {key} as id, (segmentation->'size'->>0)::BIGINT as h,
                   (segmentation->'size'->>1)::BIGINT as w,
                   try_cast(segmentation->'counts' as UINTEGER[]) as c
            from {src} where json_type(segmentation->'counts') = 'ARRAY'""").to_arrow_table(batch_size=batch)
    strings = rle.filter(pc.and_(pc.is_valid(rle.column("s")), pc.invert(is_list)))

    def one_chunk(t, name):  # list columns: their values and offsets in one piece
        c = t.column(name)
        return c.chunk(0) if c.num_chunks == 1 else c.combine_chunks()

    def ids_h_w(t, dtype):
        return tuple(_column(t.column(c), dt) for c, dt in (("id", np.int64), ("h", dtype), ("w", dtype)))

    parts = []  # (ids, h, w, bytes, offsets): every source as compressed strings
    if strings.num_rows:
        parts.append((*ids_h_w(strings, np.int64), *_strings(strings.column("s"))))
    if polys is not None and polys.num_rows:
        if polys.column("h").null_count or polys.column("w").null_count:
            bad = polys.filter(pc.or_(pc.is_null(polys.column("h")), pc.is_null(polys.column("w"))))
            raise WorkspaceError(f"image {bad.column('image_id')[0].as_py()} has no width/height: its polygons "
                                 "cannot be rasterised")
        pid, h, w = ids_h_w(polys, np.int32)
        h, w = h.astype(np.int64), w.astype(np.int64)
        lens, xy = one_chunk(polys, "lens"), one_chunk(polys, "xy")
        poly_off = np.concatenate(([0], np.cumsum(_buffer(lens.values, np.int64))))
        cnt, off = _rle.objects_from_polygons(_buffer(xy.values, np.float64), poly_off, _offsets(lens), h, w)
        parts.append((pid, h, w, *_rle.to_strings(cnt, off)))
    if lists is not None and lists.num_rows:
        c = one_chunk(lists, "c")
        parts.append((*ids_h_w(lists, np.int64), *_rle.to_strings(_buffer(c.values, np.uint32).copy(), _offsets(c))))

    # every id's string, in the order of ids, copied once from its part (no segmentation: an empty string)
    n = len(ids)
    order = np.argsort(ids, kind="stable")
    place = _indexer(ids[order])
    h_all, w_all = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    length = np.zeros(n, dtype=np.int64)
    dests = []
    for pid, ph, pw, _, off in parts:
        pos, found = place(pid)
        src = np.flatnonzero(found)
        dest = order[pos[src]]
        dests.append((dest, src))
        h_all[dest], w_all[dest] = np.asarray(ph)[src], np.asarray(pw)[src]
        length[dest] = np.diff(off)[src]
    str_off = np.concatenate(([0], np.cumsum(length))).astype(np.int64)
    data = np.empty(str_off[-1], dtype=np.uint8)
    for (_, _, _, part_data, off), (dest, src) in zip(parts, dests):
        _rle.place_strings(data, str_off, dest, part_data, off.astype(np.int64), src)
    area, box, total, bad = _rle.string_stats(data, str_off, h_all, w_all)
    if bad.any():
        raise WorkspaceError(f"{table} {key} {ids[np.argmax(bad != 0)]}: malformed compressed RLE string")
    wrong = np.flatnonzero((str_off[1:] > str_off[:-1]) & (total != h_all * w_all))
    if len(wrong):
        i = wrong[0]
        raise WorkspaceError(f"{table} {key} {ids[i]}: the RLE's run lengths sum to {total[i]}, not height x width "
                             f"= {h_all[i] * w_all[i]}")
    return Masks(h_all, w_all, area, box, strings=(data, str_off, np.arange(len(ids), dtype=np.int64)))


# ---- pycocotools.mask's functions, on single masks (used by the tests; the pipeline works on Rles) ----

def _compressed(cnt: np.ndarray) -> bytes:
    """One RLE's compressed string, as pycocotools returns it (bytes)."""
    from odfail import _rle

    data, _ = _rle.to_strings(cnt, np.array([0, len(cnt)], dtype=np.int64))
    return data.tobytes()


def encode(mask: np.ndarray) -> dict:
    """A binary h x w mask -> {"size": [h, w], "counts": compressed string}, as pycocotools.mask.encode."""
    from odfail import _rle

    m = np.asarray(mask, dtype=np.uint8)
    cnt = _rle.encode(np.ascontiguousarray(m.T).ravel())
    return {"size": [m.shape[0], m.shape[1]], "counts": _compressed(cnt)}


def counts(rle: dict) -> np.ndarray:
    """Run lengths of an RLE dict with a compressed (str/bytes) or uncompressed (list) ``counts``."""
    from odfail import _rle

    c = rle["counts"]
    if isinstance(c, list):
        return np.asarray(c, dtype=np.uint32)
    data = np.frombuffer(c.encode() if isinstance(c, str) else c, dtype=np.uint8)
    cnt, _, bad = _rle.from_strings(data, np.array([0, len(data)], dtype=np.int64), np.zeros(1, dtype=np.int64))
    if bad[0]:
        raise ValueError("malformed compressed RLE string")
    return cnt


def decode(rle: dict) -> np.ndarray:
    """RLE dict -> h x w uint8 mask, as pycocotools.mask.decode."""
    from odfail import _rle

    h, w = rle["size"]
    return _rle.decode(counts(rle), h * w).reshape(w, h).T


def area(rle: dict) -> int:
    return int(counts(rle)[1::2].sum())


def to_bbox(rle: dict) -> np.ndarray:
    """[x, y, w, h] of the mask, as pycocotools.mask.toBbox."""
    from odfail import _rle

    c = counts(rle)
    _, box = _rle.areas_and_boxes(c, np.array([0, len(c)], dtype=np.int64), np.array([rle["size"][0]]),
                                  np.array([rle["size"][1]]))
    return box[0]


def from_polygons(polygons: list[list[float]], h: int, w: int) -> dict:
    """Polygons of one object -> their union as an RLE dict, as pycocotools' frPyObjects + merge."""
    from odfail import _rle

    xy = np.asarray([v for p in polygons for v in p], dtype=np.float64)
    poly_off = np.concatenate(([0], np.cumsum([len(p) for p in polygons]))).astype(np.int64)
    cnt, _ = _rle.objects_from_polygons(xy, poly_off, np.array([0, len(polygons)], dtype=np.int64),
                                        np.array([h], dtype=np.int64), np.array([w], dtype=np.int64))
    return {"size": [h, w], "counts": _compressed(cnt)}
