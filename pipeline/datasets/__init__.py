"""Dataset sources shared by the CTR and top-K stages, registered by name (``ctr_data.source``,
``rec_data.source``).

An adapter reads a dataset's files and returns ``RawData``: an interaction table (``user_id``,
``video_id`` strings; ``timestamp`` int64 unix seconds when the format has times; ``label`` int64
when labels are explicit; ``split`` int8 0/1/2 = train/valid/test when the format fixes the split),
an optional user table and item table (keyed by ``user_id`` / ``video_id``: side features), and
optional per-item feature matrices (``features``: modality -> ``(items.num_rows, D)`` float32, row k
= the item in row k of ``items``). Rating-based sources turn ratings into labels with
``apply_rule``. One module per adapter in ``pipeline.datasets.adapters`` (layouts in each module's
docstring); ``ADAPTERS.names()`` lists them without importing them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from registry import Registry

SPLITS = ("train", "valid", "test")  # the codes 0, 1, 2 of a given ``split`` column


class SourceError(ValueError):
    """An input that is missing, in the wrong layout, or holds unusable values."""


@dataclass(frozen=True)
class RawData:
    interactions: pa.Table  # user_id, video_id[, timestamp][, label][, split]
    users: pa.Table | None = None  # user_id + side feature columns
    items: pa.Table | None = None  # video_id + side feature columns (every item, also those never interacted with)
    features: Mapping[str, np.ndarray] = field(default_factory=dict)  # modality -> (items.num_rows, D) float32
    # modality -> (items.num_rows,) bool: false rows carry no signal (zero-filled); absent: every row present
    present: Mapping[str, np.ndarray] = field(default_factory=dict)
    reduced: bool = False  # the features are already reduce's output (the video pipeline's): no refit

    @property
    def has_split(self) -> bool:
        return "split" in self.interactions.column_names


Reader = Callable[[Path, "LabelRule"], RawData]
ADAPTERS: Registry[Reader] = Registry(
    "dataset adapter", key="ctr_data.source / rec_data.source", plugins="pipeline.datasets.adapters"
)
register = ADAPTERS.register


def read_source(name: str, path: str | Path, rule: LabelRule) -> RawData:
    return ADAPTERS.get(name)(Path(path), rule)


def apply_rule(table: pa.Table, rule: LabelRule) -> pa.Table:
    """``rating`` column -> ``label`` (explicit) or positives only (implicit, no label column)."""
    rating = table.column("rating").to_numpy(zero_copy_only=False).astype(np.float64)
    pos = rating >= rule.positive_min
    if rule.negative_max is None:
        return table.filter(pa.array(pos)).drop_columns(["rating"])
    keep = pos | (rating <= rule.negative_max)
    out = table.append_column("label", pa.array(pos.astype(np.int64)))
    return out.filter(pa.array(keep)).drop_columns(["rating"])


def strings(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    return pc.cast(col, pa.string())


def interactions(user, item, ts=None, rating=None, label=None, split=None) -> pa.Table:
    """The interaction table every adapter returns (optional columns only when given)."""
    cols = {"user_id": strings(user), "video_id": strings(item)}
    if ts is not None:
        cols["timestamp"] = pc.cast(ts, pa.int64())
    if rating is not None:
        cols["rating"] = pc.cast(rating, pa.float64())
    if label is not None:
        cols["label"] = label
    if split is not None:
        cols["split"] = pc.cast(split, pa.int8())
    return pa.table(cols)


def need(folder: Path, names: list[str], layout: str) -> None:
    """``folder`` holds every file in ``names``, else an error naming the missing ones and what is there."""
    if not folder.is_dir():
        raise SourceError(f"{folder}: not a folder; the {layout} adapter expects a folder holding {names}")
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        present = sorted(p.name for p in folder.iterdir())[:20]
        raise SourceError(f"{folder}: missing {missing}; the {layout} adapter expects {names} (found {present})")


def feature_files(folder: Path, n_items: int, where: str) -> dict[str, np.ndarray]:
    """``<modality>_feat.npy`` files of ``folder`` (image, text, audio, any other prefix), each checked:
    2-D, one row per item (row i = item i), every value finite. Modalities in file-name order."""
    out: dict[str, np.ndarray] = {}
    for path in sorted(folder.glob("*_feat.npy")):
        name = path.name.removesuffix("_feat.npy")
        try:
            x = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise SourceError(f"{path}: not a plain .npy array ({err})") from err
        if x.ndim != 2:
            raise SourceError(f"{path}: a feature file must be 2-D (items x dims), got shape {x.shape}")
        if x.shape[0] != n_items:
            raise SourceError(f"{path}: {x.shape[0]} rows but {where} has {n_items} items (row i must be item i)")
        x = x.astype(np.float32)
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise SourceError(
                f"{path}: {len(rows)} rows hold NaN or inf, e.g. row {rows[0]} (item {rows[0]}); fix or impute them"
            )
        out[name] = x
    return out


@dataclass(frozen=True)
class LabelRule:
    positive_min: float  # rating >= this is a positive (1)
    negative_max: float | None  # rating <= this is a negative (0); in between: dropped; null: implicit

    def __post_init__(self) -> None:
        if self.negative_max is not None and self.negative_max >= self.positive_min:
            raise ValueError("label.negative_max must be below label.positive_min")
