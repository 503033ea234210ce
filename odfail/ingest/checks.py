"""The rules every COCO record must pass at ingest, as SQL over its raw JSON fields.

Each field has a check that yields an error message (null when the value is fine) and, for the hot path, a fast
twin that is only true or false (`OK`). `odfail.ingest` runs the fast twins over every record and the messages
only for the first record that fails, so that the error names its first bad field.
"""

from __future__ import annotations

from odfail.store.workspace import quote

_NUM = "('BIGINT', 'UBIGINT', 'DOUBLE')"


def _describe(col: str) -> str:
    """SQL for a short description of a JSON value, for error messages."""
    return (f"case json_type({col}) when 'VARCHAR' then 'the string ' || left({col}, 40) "
            f"when 'OBJECT' then 'an object' when 'ARRAY' then 'a list' "
            f"when 'BOOLEAN' then 'the boolean ' || {col} else left({col}, 40) end")


def _missing(col: str, required: bool, what: str = "is missing") -> str:
    return f"when {col} is null then {quote(what) if required else 'null'}"


def _check_id(col: str, required: bool = True) -> str:
    return f"""case {_missing(col, required)}
        when json_type({col}) = 'DOUBLE' and regexp_full_match({col}, '-?[0-9]+')
            then 'integer ' || {col} || ' does not fit in 64 bits'
        when json_type({col}) not in ('BIGINT', 'UBIGINT') then 'must be an integer, got ' || {_describe(col)}
        when try_cast({col} as BIGINT) is null then 'integer ' || {col} || ' does not fit in 64 bits' end"""


def _check_number(col: str, required: bool) -> str:
    return f"""case {_missing(col, required)}
        when json_type({col}) not in {_NUM} then 'must be a number, got ' || {_describe(col)}
        when isnan(try_cast({col} as DOUBLE)) then 'is NaN'
        when isinf(try_cast({col} as DOUBLE)) then 'is infinite (' || {col} || ')' end"""


def _check_size(col: str) -> str:
    """width/height: optional, a whole non-negative number."""
    return f"""case when {col} is null then null
        when json_type({col}) not in {_NUM} then 'must be a number, got ' || {_describe(col)}
        when not isfinite(try_cast({col} as DOUBLE)) or try_cast({col} as DOUBLE) < 0
             or try_cast({col} as DOUBLE) <> floor(try_cast({col} as DOUBLE))
             or try_cast({col} as DOUBLE) > 2147483647
            then 'must be a whole number of pixels, got ' || {col} end"""


def _check_string(col: str) -> str:
    return f"""case when {col} is null then null
        when json_type({col}) <> 'VARCHAR' then 'must be a string, got ' || {_describe(col)} end"""


def _check_flag(col: str) -> str:
    return f"""case when {col} is null then null
        when json_type({col}) not in ('BIGINT', 'UBIGINT', 'BOOLEAN') then 'must be 0, 1 or a boolean, got '
            || {_describe(col)} end"""


def derived(raw: str) -> str:
    """``raw`` (a table or subquery with a ``segmentation`` JSON column) plus the parsed pieces the segmentation
    checks read, each computed once per record: a CASE evaluates its expressions anew in every branch that
    names them (six polygon casts per record cost 0.15 s on 44k GT). Also ``bb``: the bbox as numbers."""
    return f"""(select *,
            case seg_type when 'ARRAY' then try_cast(segmentation as DOUBLE[][]) end as seg_polys,
            case seg_type when 'OBJECT' then try_cast(seg_size as UBIGINT[]) end as seg_size_list,
            case seg_counts_type when 'VARCHAR' then segmentation->>'counts' end as seg_counts,
            case seg_counts_type when 'ARRAY' then segmentation->'counts' end as seg_runs_json,
            case seg_counts_type when 'ARRAY' then try_cast(segmentation->'counts' as UBIGINT[]) end as seg_runs
        from (select *, case seg_type when 'OBJECT' then segmentation->'size' end as seg_size,
                     case seg_type when 'OBJECT' then json_type(segmentation->'counts') end as seg_counts_type
              from (select *, json_type(segmentation) as seg_type, try_cast(bbox as DOUBLE[]) as bb
                    from {raw})))"""


def _check_segmentation(col: str) -> str:
    """Polygons: a non-empty list of lists of >= 6 finite numbers, x and y alternating (pycocotools rasterises
    each as a polygon). RLE: {"size": [height, width], "counts": a compressed string of characters '0'..'o' that
    does not end inside a value, or run lengths summing to height x width}. Whether the size is the image's is
    checked against the images (`_raise_mask_size`). Reads the columns of `derived`."""
    polys, size, counts, runs = "seg_polys", "seg_size_list", "seg_counts", "seg_runs"
    strict = f"""contains({col}, '"') or contains({col}, 'true') or contains({col}, 'false')
                 or contains({col}, 'null')"""
    return f"""case when {col} is null then null
        when seg_type not in ('ARRAY', 'OBJECT')
            then 'must be a list of polygons or an RLE object, got ' || {_describe(col)}
        when seg_type = 'ARRAY' then case
            when {polys} is null or {strict} then 'polygons must be lists of numbers, got ' || left({col}, 60)
            when len({polys}) = 0 then 'holds no polygon'
            when list_bool_or(list_transform({polys}, lambda p: len(p) < 6))
                then 'a polygon needs at least 3 points (6 numbers), got '
                     || list_filter({polys}, lambda p: len(p) < 6)[1]::VARCHAR
            when list_bool_or(list_transform({polys}, lambda p: len(p) % 2 = 1))
                then 'a polygon has an odd number of coordinates ('
                     || len(list_filter({polys}, lambda p: len(p) % 2 = 1)[1]) || ')'
            when list_bool_or(list_transform(flatten({polys}), lambda v: not isfinite(v)))
                then 'a polygon has a NaN or infinite coordinate' end
        when json_type(seg_size) is distinct from 'ARRAY' or {size} is null or len({size}) <> 2
             or contains(seg_size, '"')
            then 'an RLE needs "size": [height, width], got ' || coalesce(left(seg_size, 40), 'none')
        when seg_counts_type = 'VARCHAR' then case
            when not regexp_full_match({counts}, '[0-o]*')
                then 'RLE counts string has a character outside ''0''..''o'': ' || left({counts}, 40)
            when length({counts}) > 0 and ascii(right({counts}, 1)) >= 80
                then 'RLE counts string is truncated (it ends inside a value)' end
        when seg_counts_type = 'ARRAY' then case
            when {runs} is null or contains(seg_runs_json, '"') or contains(seg_runs_json, '.')
                then 'RLE counts must be non-negative integers, got ' || left(seg_runs_json, 40)
            when coalesce(list_sum({runs}), 0) <> {size}[1] * {size}[2]
                then 'RLE counts sum to ' || coalesce(list_sum({runs}), 0) || ', not height x width = '
                     || {size}[1] * {size}[2] end
        else 'an RLE needs "counts": a string or a list of run lengths' end"""


def _check_bbox(col: str, bb: str, when_absent: str) -> str:
    """``bb`` is ``try_cast(col as DOUBLE[])``; strings, booleans and nulls are refused, not coerced.

    ``when_absent`` is the SQL message for a missing (or empty, as loadRes reads ``[]``) bbox, null if allowed.
    """
    return f"""case when {col} is null or {col} = '[]' then {when_absent}
        when json_type({col}) <> 'ARRAY' then 'must be a list [x, y, w, h], got ' || {_describe(col)}
        when json_array_length({col}) <> 4
            then 'must hold 4 numbers [x, y, w, h], got ' || json_array_length({col})
        when {bb} is null or contains({col}, '"') or contains({col}, 'true') or contains({col}, 'false')
             or contains({col}, 'null') then 'must hold 4 numbers [x, y, w, h], got ' || left({col}, 60)
        when not (isfinite({bb}[1]) and isfinite({bb}[2]) and isfinite({bb}[3]) and isfinite({bb}[4])) then
            case when contains(lower({col}), 'nan') then 'has a NaN coordinate: '
                 else 'has an infinite coordinate: ' end || {col}
        when {bb}[3] < 0 then 'width ' || {bb}[3] || ' is negative'
        when {bb}[4] < 0 then 'height ' || {bb}[4] || ' is negative' end"""


# Fast twins of the checks: true exactly when the check above finds nothing. The hot path computes only these
# (a third of the cost); the messages are built for the first failing record alone.
OK = {
    "id": lambda c, req: f"json_type({c}) in ('BIGINT', 'UBIGINT') and try_cast({c} as BIGINT) is not null"
    if req else f"({c} is null or (json_type({c}) in ('BIGINT', 'UBIGINT') and try_cast({c} as BIGINT) is not null))",
    "number": lambda c, req: (f"json_type({c}) in {_NUM} and isfinite(try_cast({c} as DOUBLE))" if req else
                              f"({c} is null or (json_type({c}) in {_NUM} and isfinite(try_cast({c} as DOUBLE))))"),
    "size": lambda c: (f"({c} is null or (json_type({c}) in {_NUM} and isfinite(try_cast({c} as DOUBLE)) "
                       f"and try_cast({c} as DOUBLE) >= 0 and try_cast({c} as DOUBLE) = floor(try_cast({c} as DOUBLE))"
                       f" and try_cast({c} as DOUBLE) <= 2147483647))"),
    "string": lambda c: f"({c} is null or json_type({c}) = 'VARCHAR')",
    "flag": lambda c: f"({c} is null or json_type({c}) in ('BIGINT', 'UBIGINT', 'BOOLEAN'))",
    "segmentation": lambda c: f"({c} is null or ({_check_segmentation(c)}) is null)",
    "bbox": lambda c, bb: (f"(json_type({c}) = 'ARRAY' and len({bb}) = 4 and list_count({bb}) = 4 "
                           f"and not (contains({c}, '\"') or contains({c}, 'true') or contains({c}, 'false') "
                           f"or contains({c}, 'null')) and isfinite({bb}[1]) and isfinite({bb}[2]) "
                           f"and isfinite({bb}[3]) and isfinite({bb}[4]) and {bb}[3] >= 0 and {bb}[4] >= 0)"),
}


def all_ok(parts: list[str]) -> str:
    return "coalesce(" + "\n        and ".join(parts) + ", false)"


def first_problem(checks: dict[str, str]) -> str:
    """First failing field of a record as 'field|message', else null."""
    return "coalesce(" + ", ".join(f"'{f}|' || ({sql})" for f, sql in checks.items()) + ")"


# Sections of a COCO instances file: JSON fields read, checks, and the typed columns kept.
GT_SECTIONS = {
    "images": {
        "fields": ["id", "file_name", "width", "height"],
        "checks": {"id": _check_id("id"), "file_name": _check_string("file_name"),
                   "width": _check_size("width"), "height": _check_size("height")},
        "ok": [OK["id"]("id", True), OK["string"]("file_name"), OK["size"]("width"), OK["size"]("height")],
        "select": ("try_cast(id as BIGINT) as image_id, file_name->>'$' as file_name, "
                   "try_cast(try_cast(width as DOUBLE) as INTEGER) as width, "
                   "try_cast(try_cast(height as DOUBLE) as INTEGER) as height"),
        "table": "images",
    },
    "categories": {
        "fields": ["id", "name", "supercategory"],
        "checks": {"id": _check_id("id"), "name": _check_string("name"),
                   "supercategory": _check_string("supercategory")},
        "ok": [OK["id"]("id", True), OK["string"]("name"), OK["string"]("supercategory")],
        "select": ("try_cast(id as BIGINT) as category_id, name->>'$' as name, "
                   "supercategory->>'$' as supercategory"),
        "table": "categories",
    },
    "annotations": {
        "fields": ["id", "image_id", "category_id", "bbox", "area", "iscrowd", "segmentation"],
        "checks": {"id": _check_id("id"), "image_id": _check_id("image_id"),
                   "category_id": _check_id("category_id"),
                   "bbox": _check_bbox("bbox", "bb", "'is missing'"), "area": _check_number("area", False),
                   "iscrowd": _check_flag("iscrowd"), "segmentation": _check_segmentation("segmentation")},
        "ok": [OK["id"]("id", True), OK["id"]("image_id", True), OK["id"]("category_id", True),
               OK["bbox"]("bbox", "bb"), OK["number"]("area", False), OK["flag"]("iscrowd"),
               OK["segmentation"]("segmentation")],
        "select": ("try_cast(id as BIGINT) as gt_id, idx as file_idx, try_cast(image_id as BIGINT) as image_id, "
                   "try_cast(category_id as BIGINT) as category_id, "
                   "bb[1] as x, bb[2] as y, bb[3] as w, bb[4] as h, try_cast(area as DOUBLE) as area, "
                   "case json_type(iscrowd) when 'BOOLEAN' then try_cast(iscrowd as BOOLEAN) "
                   "else try_cast(iscrowd as BIGINT) <> 0 end as iscrowd, segmentation"),
        "table": "gt",
    },
}


PRED_FIELDS = ["image_id", "category_id", "bbox", "score", "segmentation"]
PRED_OK = [
    OK["id"]("image_id", True), OK["id"]("category_id", True), OK["number"]("score", True),
    f"(((bbox is null or bbox = '[]') and segmentation is not null) or {OK['bbox']('bbox', 'bb')})",
    OK["segmentation"]("segmentation"),
]
PRED_CHECKS = {
    "image_id": _check_id("image_id"), "category_id": _check_id("category_id"),
    "score": _check_number("score", True),
    "bbox": _check_bbox("bbox", "bb", "case when segmentation is null "
                        "then 'is missing (a result needs a bbox or a segmentation)' end"),
    "segmentation": _check_segmentation("segmentation"),
}
