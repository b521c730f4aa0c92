"""The top-K dataset tables: a source's ``RawData`` -> codes, a train/valid/test split and an item table.

Rules (each counted in ``summary.json``, none silent):
- interactions are positives: a source with explicit labels (a label rule with ``negative_max``)
  keeps its label-1 rows (``negatives_dropped``);
- a split the dataset gives (MMRec ``x_label``, LATTICE's files) is used as is; otherwise
  ``rec_data.split`` (``by: time`` needs timestamps);
- a (user, item) pair listed more than once keeps one copy, in its earliest split: a pair seen in
  training is not a valid/test target (``duplicates_dropped``);
- a valid/test user without training interactions has nothing to rank from:
  ``rec_data.unseen_users: drop`` removes those interactions (``unseen_users``,
  ``unseen_user_interactions``), ``error`` stops;
- a valid/test item without training interactions stays: it is the cold slice (``cold_items``,
  ``test_cold_interactions``);
- an empty train, valid or test split, an interaction naming an item absent from the dataset's item
  list, feature rows that do not match the items, and NaN/inf features are errors.
Precomputed item features go through ``reduce``'s PCA + normaliser (``pipeline.reduce.fit``), fitted
on the items that have training interactions, into the item table format ``reduce`` writes
(``video_id``, one ``fixed_size_list<float32>`` column per modality and a ``<modality>_present`` mask).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core import store
from pipeline.ctr.data import assign_splits, encode, vocabulary
from pipeline.datasets import SPLITS, RawData
from pipeline.rec.config import RecDataConfig
from pipeline.reduce.fit import ModalityState, fit_precomputed

STAGE = "rec_data"


class DataError(ValueError):
    """Interactions or features the top-K stages cannot use; the message names the rule or the file."""


@dataclass(frozen=True)
class RecData:
    user: np.ndarray  # (N,) int64 codes 0..n_users-1
    item: np.ndarray  # (N,) int64 codes 0..n_items-1
    split: np.ndarray  # (N,) int8: 0 train, 1 valid, 2 test
    user_ids: pa.Array  # code -> the source's id
    item_ids: pa.Array
    features: dict[str, np.ndarray] = field(default_factory=dict)  # modality -> (n_items, K) float32
    present: dict[str, np.ndarray] = field(default_factory=dict)  # modality -> (n_items,) bool
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def pairs(self, split: int) -> tuple[np.ndarray, np.ndarray]:
        keep = self.split == split
        return self.user[keep], self.item[keep]

    def cold_items(self) -> np.ndarray:
        """(n_items,) bool: items without a training interaction."""
        return np.bincount(self.item[self.split == 0], minlength=self.n_items) == 0


def build(raw: RawData, cfg: RecDataConfig) -> tuple[RecData, dict[str, ModalityState]]:
    """Codes, split and item table from a source (``raw.reduced``: its features are already reduce's output)."""
    inter = raw.interactions
    summary: dict[str, Any] = {"source": cfg.source, "interactions_in": inter.num_rows}
    if "label" in inter.column_names:
        positive = inter.column("label").to_numpy(zero_copy_only=False) == 1
        summary["negatives_dropped"] = int((~positive).sum())
        inter = inter.filter(pa.array(positive))
    if raw.items is not None:  # the dataset lists its items (feature rows follow that order)
        item_ids = pc.cast(raw.items.column("video_id"), pa.string()).combine_chunks()
        if pc.count_distinct(item_ids).as_py() != len(item_ids):
            raise DataError(f"{cfg.source}: the item list names an item twice")
        item = _codes(inter.column("video_id"), item_ids, "item")
    else:
        item_ids = vocabulary(inter.column("video_id"))
        item = encode(inter.column("video_id"), item_ids) - 1
    user_ids = vocabulary(inter.column("user_id"))
    user = encode(inter.column("user_id"), user_ids) - 1
    split = _split(inter, cfg)
    summary["given_split"] = "split" in inter.column_names
    user, item, split, summary["duplicates_dropped"] = dedupe(user, item, split, len(item_ids))
    user, item, split = _unseen_users(user, item, split, cfg.unseen_users, summary, user_ids)
    for k, name in enumerate(SPLITS):
        n = int((split == k).sum())
        if n == 0:
            raise DataError(
                f"{cfg.source}: the {name} split is empty after the rules above "
                f"({json.dumps(summary)}); every split needs interactions"
            )
        summary[f"{name}_interactions"] = n
    train_items = np.bincount(item[split == 0], minlength=len(item_ids)) > 0
    features, present, states = _features(raw, train_items, cfg, len(item_ids))
    summary |= {
        "users": len(user_ids),
        "items": len(item_ids),
        "cold_items": int((~train_items & np.isin(np.arange(len(item_ids)), item[split > 0])).sum()),
        "test_cold_interactions": int((~train_items[item[split == 2]]).sum()),
        "modalities": {m: int(x.shape[1]) for m, x in features.items()},
    }
    data = RecData(user, item, split, user_ids, item_ids, features, present, summary)
    return data, states


def _codes(ids: pa.ChunkedArray, vocab: pa.Array, what: str) -> np.ndarray:
    idx = pc.index_in(pc.cast(ids, pa.string()), value_set=vocab)
    bad = idx.is_null().to_numpy(zero_copy_only=False)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(
            f"{len(rows)} interactions name {what}s absent from the dataset's {what} list "
            f"({len(vocab)} {what}s), e.g. {ids[int(rows[0])].as_py()!r} (interaction {rows[0] + 1})"
        )
    return idx.to_numpy(zero_copy_only=False).astype(np.int64)


def _split(inter: pa.Table, cfg: RecDataConfig) -> np.ndarray:
    if "split" in inter.column_names:
        return inter.column("split").to_numpy(zero_copy_only=False).astype(np.int8)
    if cfg.split.by == "time" and "timestamp" not in inter.column_names:
        raise DataError(f"rec_data.split.by is time but {cfg.source} has no timestamps; use by: random")
    ts = (
        inter.column("timestamp").to_numpy(zero_copy_only=False) if cfg.split.by == "time" else np.zeros(inter.num_rows)
    )
    return assign_splits(ts, cfg.split)


def dedupe(user: np.ndarray, item: np.ndarray, split: np.ndarray, n_items: int) -> tuple[np.ndarray, ...]:
    """One row per (user, item) pair, in its earliest split; rows ordered by (user, item). Returns the count dropped."""
    key = user * np.int64(n_items) + item
    order = np.lexsort((split, key))
    key, first = key[order], np.ones(len(order), bool)
    first[1:] = key[1:] != key[:-1]
    keep = order[first]
    return user[keep], item[keep], split[keep], int((~first).sum())


def _unseen_users(user, item, split, rule: str, summary: dict[str, Any], user_ids: pa.Array):
    trained = np.bincount(user[split == 0], minlength=len(user_ids)) > 0
    bad = ~trained[user]
    summary["unseen_users"] = int(len(np.unique(user[bad])))
    summary["unseen_user_interactions"] = int(bad.sum())
    if bad.any() and rule == "error":
        examples = [user_ids[int(u)].as_py() for u in np.unique(user[bad])[:5]]
        raise DataError(
            f"{summary['unseen_users']} users have valid/test interactions but none in training, e.g. "
            f"{examples} (rec_data.unseen_users: drop removes them, counted)"
        )
    return user[~bad], item[~bad], split[~bad]


def _features(raw: RawData, train_items: np.ndarray, cfg: RecDataConfig, n_items: int):
    features, present, states = {}, {}, {}
    for name, x in raw.features.items():
        if x.shape[0] != n_items:
            raise DataError(f"features {name!r}: {x.shape[0]} rows for {n_items} items (row i must be item i)")
        if not np.isfinite(x).all():
            row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
            raise DataError(f"features {name!r}: NaN or inf in row {row} ({raw.items.column('video_id')[row]})")
        present[name] = np.asarray(raw.present.get(name, np.ones(n_items, bool)), bool)
        features[name] = x.astype(np.float32)
    if not raw.reduced:
        features, states = fit_precomputed(features, train_items, cfg.features, cfg.seed, present)
    return features, present, states


# ---- the stage's files --------------------------------------------------------------------------


def write(data: RecData, folder: str | Path, params: Any) -> None:
    out = Path(folder)
    dims = {m: [int(x.shape[1])] for m, x in data.features.items()}
    meta = store.make_meta(STAGE, params=params, dims=dims, n_users=data.n_users, n_items=data.n_items)
    inter = pa.table(
        {
            "user": pa.array(data.user.astype(np.int32)),
            "item": pa.array(data.item.astype(np.int32)),
            "split": pa.array(data.split),
        }
    )
    store.write_table(inter, out / "interactions.parquet", meta)
    users = pa.table({"user": pa.array(np.arange(data.n_users, dtype=np.int32)), "user_id": data.user_ids})
    store.write_table(users, out / "users.parquet", meta)
    cols: dict[str, Any] = {"video_id": data.item_ids, "item": pa.array(np.arange(data.n_items, dtype=np.int32))}
    for m, x in data.features.items():
        cols[m] = store.vector_array(x)
        cols[f"{m}_present"] = pa.array(data.present[m])
    store.write_table(pa.table(cols), out / "items.parquet", meta)
    store.write_text(out / "summary.json", json.dumps(data.summary, indent=2, sort_keys=True))


def read(folder: str | Path) -> RecData:
    folder = Path(folder)
    expect = {"stage": STAGE}
    inter = store.read_table(folder / "interactions.parquet", expect=expect)
    users = store.read_table(folder / "users.parquet", expect=expect)
    items = store.read_table(folder / "items.parquet", expect=expect)
    meta = store.read_meta(folder / "items.parquet")
    features, present = {}, {}
    for m in meta["dims"]:
        features[m] = store.vectors(items.column(m))
        present[m] = items.column(f"{m}_present").to_numpy(zero_copy_only=False).astype(bool)
    summary = json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").is_file() else {}
    return RecData(
        inter.column("user").to_numpy().astype(np.int64),
        inter.column("item").to_numpy().astype(np.int64),
        inter.column("split").to_numpy().astype(np.int8),
        users.column("user_id").combine_chunks(),
        items.column("video_id").combine_chunks(),
        features,
        present,
        summary,
    )
