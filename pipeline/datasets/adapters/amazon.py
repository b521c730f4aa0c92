"""``amazon``: one JSON-lines file (or a folder of them), plain ``.json`` or ``.json.gz``, one review
per line with ``reviewerID``, ``asin``, ``overall`` (rating) and ``unixReviewTime``; other fields are
ignored. No side features; ratings become labels by the label rule.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.json as pjson

from pipeline.datasets import RawData, SourceError, apply_rule, interactions, register

if TYPE_CHECKING:
    from pipeline.datasets import LabelRule


_AMAZON_SCHEMA = pa.schema(
    [("reviewerID", pa.string()), ("asin", pa.string()), ("overall", pa.float64()), ("unixReviewTime", pa.int64())]
)


@register("amazon")
def read_amazon(path: Path, rule: LabelRule) -> RawData:
    files = sorted(p for p in path.iterdir() if p.name.endswith((".json", ".json.gz"))) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise SourceError(
            f"{path}: the amazon adapter expects a JSON-lines file (.json or .json.gz) or a folder "
            "of them, one review per line with reviewerID, asin, overall, unixReviewTime"
        )
    tables = []
    for f in files:
        opener = gzip.open if f.name.endswith(".gz") else open
        with opener(f, "rb") as fh:
            try:
                t = pjson.read_json(
                    fh,
                    parse_options=pjson.ParseOptions(
                        explicit_schema=_AMAZON_SCHEMA, unexpected_field_behavior="ignore"
                    ),
                )
            except pa.ArrowInvalid as err:
                raise SourceError(f"{f}: not JSON lines with reviewerID, asin, overall, unixReviewTime: {err}") from err
        nulls = {c: t.column(c).null_count for c in _AMAZON_SCHEMA.names if t.column(c).null_count}
        if nulls:
            raise SourceError(f"{f}: rows missing required fields {nulls}")
        tables.append(t)
    t = pa.concat_tables(tables)
    raw = interactions(t["reviewerID"], t["asin"], t["unixReviewTime"], rating=t["overall"])
    return RawData(apply_rule(raw, rule))
