"""tidecv's matching of one run (numba): the 100 best predictions per image over all classes, each with its
best same-class, other-class, duplicate and any GT, stored as ``tide_matches/<run>.parquet``. The error
taxonomy over it is ``odfail.evaluate.tide`` and the views ``prediction_errors`` / ``gt_errors``.

tidecv's matching differs from COCO's: per image over all classes (COCO: per image and class); crowd GT are not
matched but make predictions inside them (crowd IoU > pos, strict) ignored; IoU ties go to the first GT in file
order; no area ranges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from odfail.store.workspace import Workspace

POS_THRESHOLD = 0.5
MAX_DETS = 100  # tidecv Data(max_dets=100) for COCO files: per image, all classes together


# tide_matches rows from the kernel's columns (`src`) and the run's constants (`const`): facts exist only for the
# predictions tidecv looks at, and only where the image has regular GT. Used for the Parquet file, and in
# process as a temporary view while that file is being written.
FACTS_SQL = """
    select c.run, c.iou_type, c.pos_threshold, pred_id, image_id, category_id, score,
           push_order >= 0 as kept, image_rank::INTEGER as image_rank, nullif(push_order, -1) as push_order,
           case when push_order >= 0 then class_order end as class_order,
           case when matched then gt_id end as gt_id,
           case when push_order >= 0 then ignored end as ignored,
           case when push_order >= 0 then image_has_gt end as image_has_gt,
           case when image_has_gt then iou_same end as iou_same,
           case when image_has_gt then gt_same end as gt_same,
           case when image_has_gt then iou_other end as iou_other,
           case when image_has_gt then gt_other end as gt_other,
           case when image_has_gt then category_other end as category_other,
           case when image_has_gt then iou_dupe end as iou_dupe,
           case when image_has_gt then gt_dupe end as gt_dupe,
           case when image_has_gt then iou_any end as iou_any
    from {src}, {const} as c"""


def tide_facts(ws: Workspace, run: str, pos: float = POS_THRESHOLD, iou_type: str = "bbox") -> dict[str, np.ndarray]:
    """tidecv's matching of one run at one positive threshold: the columns of ``tide_matches`` (see
    ``FACTS_SQL``), one entry per prediction in stored order. iou_type "segm" is tidecv's mask mode."""
    from odfail._ids import indexer
    from odfail.match.coco import load_inputs
    from odfail.match.params import Params

    inputs = load_inputs(ws, run, Params(), iou_type, cross_class=True)
    gt, dt = inputs.gt, inputs.dt
    # tidecv walks images in the GT file's order, which is the order of the stored images table
    in_file = inputs.img_file_order
    sorted_ids = inputs.img_ids
    file_pos = np.empty(len(in_file), dtype=np.int64)
    image_of = indexer(sorted_ids)
    file_pos[image_of(in_file)[0]] = np.arange(len(in_file))
    g_img = file_pos[image_of(gt["image_id"])[0]]
    d_img = file_pos[image_of(dt["image_id"])[0]]
    from odfail.match import _tide_kernels  # numba: imported late, so that a warm-up thread can load it meanwhile

    (image_rank, push_order, gt_row, ignored, has_gt, iou_same, gt_same, iou_other, gt_other, iou_dupe, gt_dupe,
     iou_any) = _tide_kernels.tide_match(gt["x"], gt["y"], gt["w"], gt["h"], g_img, gt["category_id"], gt["iscrowd"],
                                    gt["file_idx"], dt["x"], dt["y"], dt["w"], dt["h"], d_img, dt["category_id"],
                                    dt["score"], dt["pred_id"], len(in_file), float(pos), MAX_DETS,
                                    inputs.masks)

    def ids(rows: np.ndarray, table: np.ndarray) -> np.ndarray:
        return table[np.maximum(rows, 0)] if len(table) else np.zeros(len(rows), dtype=np.int64)

    # get_ap's order within a class: score descending, then processing order. With the images of the GT file
    # in id order that is the order of ingest's class_rank (score, image id, file order); otherwise sort.
    if np.all(in_file[1:] > in_file[:-1]):
        class_order = dt["class_rank"]
    else:
        kept = np.flatnonzero(push_order >= 0)
        by = kept[np.lexsort((push_order[kept], -dt["score"][kept], dt["category_id"][kept]))]
        cat = dt["category_id"][by]
        starts = np.r_[0, np.flatnonzero(cat[1:] != cat[:-1]) + 1]
        pos_in = np.arange(len(by)) - np.repeat(starts, np.diff(np.r_[starts, len(by)]))
        class_order = np.full(len(push_order), -1, dtype=np.int64)
        class_order[by] = pos_in
    return {"pred_id": dt["pred_id"], "image_id": dt["image_id"], "category_id": dt["category_id"],
            "score": dt["score"], "image_rank": image_rank, "push_order": push_order, "class_order": class_order,
            "matched": gt_row >= 0, "gt_id": ids(gt_row, gt["gt_id"]), "ignored": ignored, "image_has_gt": has_gt,
            "iou_same": iou_same, "gt_same": ids(gt_same, gt["gt_id"]), "iou_other": iou_other,
            "gt_other": ids(gt_other, gt["gt_id"]), "category_other": ids(gt_other, gt["category_id"]),
            "iou_dupe": iou_dupe, "gt_dupe": ids(gt_dupe, gt["gt_id"]), "iou_any": iou_any}


def run_constants(run: str, pos: float, iou_type: str) -> dict[str, np.ndarray]:
    return {"run": np.array([run], dtype=object), "iou_type": np.array([iou_type], dtype=object),
            "pos_threshold": np.array([float(pos)])}


def write_tide_matches(ws: Workspace, run: str, pos: float, facts: dict[str, np.ndarray],
                       iou_type: str = "bbox", con=None) -> None:
    """Store `tide_facts` in ``tide_matches/<run>.parquet`` (rows in no particular order), keeping the rows of
    other thresholds and types.
    ``con``: a connection to write through, closed when done (a cursor of the caller's database: both then share
    one thread pool and its memory); by default `Workspace.engine`."""
    import os

    from odfail.store.workspace import DERIVED_PARQUET, quote

    target = ws.table_path("tide_matches", run)
    tmp = target.with_suffix(f".parquet.{os.getpid()}.tmp")
    others = (f"select * from read_parquet({quote(str(target))}) "
              "where not (pos_threshold = $pos and iou_type = $iou_type) union all " if target.exists() else "")
    con = con or ws.engine()
    try:
        # Rows in no particular order: DuckDB then writes row groups as they come, instead of holding them back
        # to keep the input's order (~70 MB less at 325k predictions, and faster). Uncompressed: snappy halved
        # the file (37 -> 15 MB at 325k predictions) but doubled the CPU of reading it, which is most of what
        # the error views cost (the prediction_errors query: 50 instead of 60 ms).
        con.execute("set session preserve_insertion_order = false")
        con.register("src", facts)
        con.register("const", run_constants(run, pos, iou_type))
        con.execute(f"copy ({others} {FACTS_SQL.format(src='src', const='const')}) to {quote(str(tmp))} "
                    f"({DERIVED_PARQUET}, compression uncompressed)",
                    {"pos": float(pos), "iou_type": iou_type} if others else None)
    finally:
        con.close()
    os.replace(tmp, target)


def match_tide(ws: Workspace, run: str, pos: float = POS_THRESHOLD, iou_type: str = "bbox") -> None:
    """Run tidecv's matching on one run at one positive threshold and store it in ``tide_matches``."""
    write_tide_matches(ws, run, pos, tide_facts(ws, run, pos, iou_type), iou_type)


def has_tide_matches(ws: Workspace, con, run: str, pos: float, iou_type: str) -> bool:
    """Whether the workspace stores tidecv's matching of this run at (pos, iou_type). Reads the run's file
    alone, if there is one (``con``: any DuckDB connection), not the view over every run's (~20 ms)."""
    from odfail.store.workspace import quote

    path = ws.table_path("tide_matches", run)
    if not path.exists():
        return False
    return bool(con.execute(f"""select count(*) from read_parquet({quote(str(path))})
                                where pos_threshold = $pos and iou_type = $iou_type""",
                            {"pos": float(pos), "iou_type": iou_type}).fetchall()[0][0])


def warm() -> None:
    """Import numba and load the matching kernel from the cache, off the main thread."""
    from odfail._numba import load_cached
    from odfail.match import _tide_kernels

    load_cached(_tide_kernels.tide_match)
