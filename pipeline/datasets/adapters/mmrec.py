"""``mmrec``: MMRec's layout (the format of its TikTok, Baby, Sports, Clothing datasets), a folder holding

- ``<name>.inter``: tab-separated with a header ``userID itemID rating timestamp x_label``; ids are
  whole numbers (items 0..n-1), ``x_label`` 0/1/2 = train/valid/test. ``rating`` and ``timestamp``
  may be absent; as in MMRec every row is a positive interaction (the rating is not a label);
- ``<modality>_feat.npy`` (``image_feat.npy``, ``text_feat.npy``, ``audio_feat.npy``, ...): float
  arrays (n_items, D), row i = item i. Without feature files n_items is the largest itemID + 1.

Checks (errors name the data row, from 1 after the header): one ``.inter`` file; its required columns; ids whole and in range (an itemID beyond the
feature rows is an error naming the row); every feature file with n_items rows and finite values.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from pipeline.core import tables
from pipeline.datasets import RawData, SourceError, feature_files, interactions, register

if TYPE_CHECKING:
    from pipeline.datasets import LabelRule

COLUMNS = "userID itemID [rating] [timestamp] x_label (tab-separated, with a header)"


@register("mmrec")
def read_mmrec(path: Path, rule: LabelRule) -> RawData:
    if not path.is_dir():
        raise SourceError(f"{path}: not a folder; the mmrec adapter expects a folder with <name>.inter and *_feat.npy")
    inters = sorted(path.glob("*.inter"))
    if len(inters) != 1:
        found = [p.name for p in inters] or sorted(p.name for p in path.iterdir())[:20]
        raise SourceError(f"{path}: the mmrec adapter expects exactly one <name>.inter file, found {found}")
    inter = inters[0]
    try:
        table = pcsv.read_csv(
            inter,
            parse_options=pcsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pcsv.ConvertOptions(strings_can_be_null=True, null_values=[""], auto_dict_encode=False),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as err:
        raise SourceError(f"{inter}: not a tab-separated table with columns {COLUMNS}: {err}") from err
    missing = {"userID", "itemID", "x_label"} - set(table.column_names)
    if missing:
        raise SourceError(f"{inter}: missing columns {sorted(missing)}; expected {COLUMNS}, got {table.column_names}")
    if table.num_rows == 0:
        raise SourceError(f"{inter}: no interactions, only the header")
    user = tables.whole_numbers(table, inter, SourceError, "userID")
    item = tables.whole_numbers(table, inter, SourceError, "itemID").to_numpy()
    split = tables.whole_numbers(table, inter, SourceError, "x_label").to_numpy()
    ts = tables.whole_numbers(table, inter, SourceError, "timestamp") if "timestamp" in table.column_names else None
    _in_range(inter, "x_label", split, 0, 2, "0/1/2 = train/valid/test")
    _in_range(inter, "userID", user.to_numpy(), 0, None, "a user id >= 0")
    n_items = _n_items(path, item)
    first = sorted(path.glob("*_feat.npy"))
    features = feature_files(path, n_items, first[0].name if first else "")
    _in_range(inter, "itemID", item, 0, n_items - 1, f"an item id in 0..{n_items - 1} (rows of the *_feat.npy files)")
    items = pa.table({"video_id": pa.array([str(k) for k in range(n_items)])})
    return RawData(interactions(user, pa.array(item), ts, split=pa.array(split)), None, items, features)


def _n_items(path: Path, item: np.ndarray) -> int:
    """Rows every feature file must have: the first file's (so a mismatch names the later file), else ids."""
    first = sorted(path.glob("*_feat.npy"))
    if first:
        try:
            return int(np.load(first[0], mmap_mode="r", allow_pickle=False).shape[0])
        except ValueError as err:
            raise SourceError(f"{first[0]}: not a plain .npy array ({err})") from err
    return int(item.max()) + 1


def _in_range(path: Path, column: str, values: np.ndarray, low: int, high: int | None, wanted: str) -> None:
    bad = (values < low) | ((values > high) if high is not None else False)
    if np.any(bad):
        rows = np.flatnonzero(bad)
        raise SourceError(
            f"{path}: {tables.where(path, int(rows[0]))} column {column!r}: {values[rows[0]]} is not {wanted}"
            + (f" ({len(rows)} rows like this)" if len(rows) > 1 else "")
        )
