"""``log``: the project's interaction log. ``ctr_data.path`` / ``rec_data.path`` names either

- a folder written by stage ``log_data`` (the default, ``paths.log_data``): ``interactions.parquet``
  (user_id, video_id, timestamp[, label]) and ``items.parquet`` (the ingest manifest's columns, the side
  features, and every modality of ``reduce``'s item table as a vector column with its ``<m>_present``
  mask): the video pipeline's interactions with its own item features, already reduced;
- or an interaction log file (.csv or .parquet: user_id, video_id, timestamp[, label]) alone: no item
  table, no features.

No user table.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from pipeline.core import store, tables
from pipeline.datasets import RawData, SourceError, interactions, need, register

if TYPE_CHECKING:
    from pipeline.datasets import LabelRule

FILES = ["interactions.parquet", "items.parquet"]  # stage log_data's folder
STAGE = "log_data"


@register("log")
def read_log(path: Path, rule: LabelRule) -> RawData:
    """The interaction log (a file), or the video pipeline's log with its item table (a log_data folder)."""
    if path.is_dir():
        need(path, FILES, "log")
        raw = read_log_file(path / FILES[0])
        items = store.read_table(path / FILES[1], expect={"stage": STAGE})
        return with_items(raw, items)
    return read_log_file(path)


def read_log_file(path: Path) -> RawData:
    if not path.is_file():
        raise SourceError(f"{path}: interaction log not found (params data.interactions or ctr_data.path)")
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


def with_items(raw: RawData, items: pa.Table) -> RawData:
    """``raw`` with an item table: its vector columns become (reduced) features, their ``<m>_present``
    columns the masks, the other columns the side table."""
    vectors = list(store.modality_dims(items.schema))
    features, present = {}, {}
    for m in vectors:
        mask = f"{m}_present"
        ok = items.column(mask).to_numpy(zero_copy_only=False).astype(bool) if mask in items.column_names else None
        x = store.vectors(items.column(m)).astype(np.float32)
        present[m] = np.ones(len(x), bool) if ok is None else ok
        features[m] = np.where(present[m][:, None], x, 0.0).astype(np.float32)
    side = items.drop_columns([c for c in items.column_names if c in vectors or c.removesuffix("_present") in vectors])
    return RawData(raw.interactions, None, side, features, present, reduced=True)
