"""``log``: the project's interaction log, ``data.interactions`` (.csv or .parquet: user_id, video_id,
timestamp[, label]). The stages attach its item table: the ingest manifest (``ctr_data``) or the
reduced item features ``paths.items`` (``rec_data``). No user table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core import tables
from pipeline.datasets import RawData, SourceError, interactions, register

if TYPE_CHECKING:
    from pipeline.datasets import LabelRule


@register("log")
def read_log(path: Path, rule: LabelRule) -> RawData:
    """The project's interaction log; its item table is attached by the stage (the manifest)."""
    if not path.is_file():
        raise SourceError(f"{path}: interaction log not found (params data.interactions)")
    # Checked cell by cell here: a bad cell used to surface as a pyarrow traceback, an OverflowError
    # in the history builder, or an empty label read as -2**63.
    table = tables.read(path, SourceError, "user_id,video_id,timestamp[,label]")
    missing = {"user_id", "video_id", "timestamp"} - set(table.column_names)
    if missing:
        raise SourceError(f"{path}: missing columns {sorted(missing)}; expected user_id, video_id, timestamp[, label]")
    tables.require_text(table, path, SourceError, ["user_id", "video_id"])
    ts = tables.whole_numbers(table, path, SourceError, "timestamp")
    label = (
        tables.whole_numbers(table, path, SourceError, "label", binary=True) if "label" in table.column_names else None
    )
    return RawData(interactions(table["user_id"], table["video_id"], ts, label=label))
