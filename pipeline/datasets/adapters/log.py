"""``log``: the project's interaction log. ``ctr_data.path`` / ``rec_data.path`` names either

- a folder written by stage ``log_data`` (the default, ``paths.log_data``): ``interactions.parquet``
  (user_id, video_id, timestamp[, label]) and ``items.parquet`` (the ingest manifest's columns, the side
  features, and every modality of ``reduce``'s item table as a vector column with its ``<m>_present``
  mask): the video pipeline's interactions with its own item features, already reduced;
- or an interaction log file (.csv or .parquet: user_id, video_id, timestamp[, label][, watch_time,
  duration]) alone: no item table, no features.

No user table. ``watch_time`` / ``duration`` (optional, together: FRAME's clip-level feedback) are how
long the user watched and how long the video is, in seconds (any one unit for both: only their ratio is
used). An empty watch time is unknown (the row keeps its click, gets no clip labels); a negative one, or a
watch time without a positive duration, is an error naming the row; one longer than the video (a replay)
is clipped to it, counted by ``ctr_data`` (summary ``watch_time_clipped``). A KuaiRec-style log maps as
``watch_time = play_duration / 1000``, ``duration = video_duration / 1000`` (milliseconds there).
If the folder holds ``clips.parquet`` (per-clip visual vectors, ``pipeline.ctr.clips``), ``ctr_data``
aligns it to its item codes for ``frame``.
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
WATCH = ("watch_time", "duration")  # optional, together: seconds watched, the video's length


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
    out = interactions(table["user_id"], table["video_id"], ts, label=label)
    return RawData(_with_watch(out, table, path))


def _with_watch(out: pa.Table, table: pa.Table, path: Path) -> pa.Table:
    """``out`` plus ``watch_time`` and ``duration`` (float64 seconds, NaN unknown) when the log has them."""
    have = [c for c in WATCH if c in table.column_names]
    if not have:
        return out
    if len(have) == 1:
        raise SourceError(f"{path}: column {have[0]!r} without {({*WATCH} - {*have}).pop()!r}; give both or neither")
    watch, duration = (tables.optional_seconds(table, path, SourceError, c) for c in WATCH)
    bad = ~np.isnan(watch) & ~(duration > 0)  # NaN duration compares false: caught too
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        more = f" ({int(bad.sum())} rows like this)" if bad.sum() > 1 else ""
        raise SourceError(
            f"{path}: {tables.where(path, index)} column 'duration': {table['duration'][index].as_py()!r} is not a "
            f"positive length, but the row has a watch time{more}"
        )
    return out.append_column("watch_time", pa.array(watch)).append_column("duration", pa.array(duration))


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
