"""What the data looks like: class frequency, object sizes per class, objects per image, image sizes and which
classes appear together. SQL over the workspace views (`odfail.store`), each table a polars frame.

Sizes are COCO's buckets of the stored area (small < 32², medium < 96², large); GT counts leave crowd regions out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from odfail.store.workspace import Workspace

_SIZE = "case when {a} < 32 * 32 then 'small' when {a} < 96 * 96 then 'medium' else 'large' end"

QUERIES = {
    # one row per class: GT, the run's predictions, and those at or above the score threshold
    "class_frequency": """
        with g as (select category_id, count(*) as gt from gt where not coalesce(iscrowd, false) group by all),
        p as (select category_id, count(*) as predictions,
                     count(*) filter (where score >= coalesce($score, '-inf'::DOUBLE)) as predictions_above_score
              from predictions where run = $run group by all)
        select c.category_id, c.name, c.supercategory, coalesce(g.gt, 0) as gt,
               coalesce(p.predictions, 0) as predictions,
               coalesce(p.predictions_above_score, 0) as predictions_above_score
        from categories as c left join g using (category_id) left join p using (category_id)
        order by gt desc, c.category_id""",
    # one row per class and side: COCO size buckets
    "sizes": f"""
        with objects as (
            select 'gt' as side, category_id, {_SIZE.format(a="coalesce(area, w * h)")} as size
            from gt where not coalesce(iscrowd, false)
            union all
            select 'predictions', category_id, {_SIZE.format(a="coalesce(area, 0)")}
            from predictions where run = $run and score >= coalesce($score, '-inf'::DOUBLE))
        select o.category_id, c.name, side, count(*) filter (where size = 'small') as small,
               count(*) filter (where size = 'medium') as medium, count(*) filter (where size = 'large') as large
        from objects as o join categories as c using (category_id)
        group by all order by side, category_id""",
    # histogram: how many images have n GT objects (images without any included)
    "objects_per_image": """
        with n as (select i.image_id, count(g.gt_id) as objects
                   from images as i left join gt as g on g.image_id = i.image_id and not coalesce(g.iscrowd, false)
                   group by all)
        select objects, count(*) as images from n group by all order by objects""",
    "image_sizes": """
        select width, height, count(*) as images from images group by all order by images desc, width, height""",
    # pairs of classes (a < b) with GT in the same image: in how many images
    "co_occurrence": """
        with present as (select distinct image_id, category_id from gt where not coalesce(iscrowd, false))
        select a.category_id as category_a, ca.name as name_a, b.category_id as category_b, cb.name as name_b,
               count(*) as images
        from present as a join present as b on a.image_id = b.image_id and a.category_id < b.category_id
        join categories as ca on ca.category_id = a.category_id
        join categories as cb on cb.category_id = b.category_id
        group by all order by images desc, category_a, category_b""",
}


@dataclass(frozen=True)
class DistributionResult:
    """tables: name -> polars frame (class_frequency, sizes, objects_per_image, image_sizes, co_occurrence)."""

    run: str
    score: float | None
    tables: dict[str, pl.DataFrame]

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "score": self.score, **{k: v.to_dicts() for k, v in self.tables.items()}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def __str__(self) -> str:
        import polars as pl

        out = [f"run {self.run!r}: data distribution" + (f" (predictions scoring >= {self.score:g})"
                                                           if self.score is not None else "")]
        with pl.Config(tbl_rows=15, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
            for name, table in self.tables.items():
                out.append(f"{name.replace('_', ' ')} ({table.height:,} rows):")
                out.append(str(table))
        return "\n".join(out)


def distribution(workspace: Workspace | str, run: str, score: float | None = None) -> DistributionResult:
    """Class balance, sizes, objects per image, image sizes and class co-occurrence, as tables.

    Example:
        >>> distribution("ws", "baseline").tables["co_occurrence"].head()   # doctest: +SKIP
    """
    from odfail.store.workspace import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ws.require_run(run)
    con = ws.connect()
    try:
        tables = {}
        for name, query in QUERIES.items():
            params = {k: v for k, v in (("run", run), ("score", score)) if f"${k}" in query}
            tables[name] = con.sql(query, params=params or None).pl()
    finally:
        con.close()
    return DistributionResult(run, score, tables)
