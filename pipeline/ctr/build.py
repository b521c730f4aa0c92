"""Turn a source's ``RawData`` into the CTR sample tables (train / valid / test) and vocabularies.

Each sample row: ``user``, ``item`` (int32 codes, 0 = unknown), ``label`` (int8), ``timestamp``,
``hist`` (fixed_size_list<int32>[H]: the user's last H positives strictly before the sample,
oldest first, 0-padded), ``hist_len``, ``hist_ts`` (fixed_size_list<int64>[H]: their timestamps, 0
on padding; ``sdin`` cuts sessions from them), ``hist_total`` (all positives strictly before the
sample, not capped at H: the history-length groups of the evaluation), ``cold`` (the item is never a training target),
``watch_ratio`` (float32, only when the log has watch times: watch time / duration in [0, 1], NaN unknown and on
sampled negatives; ``pipeline.ctr.clips``), then per
side feature ``c_<name>`` (int32 code), ``m_<name>`` (fixed_size_list<int32>[max_multi]) or
``n_<name>`` (float32, standardised over its table), by name within each kind. ``spec`` (stored in
the tables' metadata) holds the vocabulary sizes the models need; ``FeatureSpec.field_names`` is
the one field order of spec, columns and tensors.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core import store
from pipeline.ctr.adapters import RawData
from pipeline.ctr.clips import watch_ratio
from pipeline.ctr.config import CtrDataConfig
from pipeline.ctr.data import (
    SPLITS,
    DataError,
    assign_splits,
    carve_valid,
    check_labels,
    dedupe_sort,
    encode,
    histories,
    padded_codes,
    sample_negatives,
    vocabulary,
)
from pipeline.reduce.fit import fit_precomputed

log = logging.getLogger("ctr.build")


@dataclass(frozen=True)
class Built:
    splits: dict[str, pa.Table]
    users: pa.Table  # user (code), user_id
    items: pa.Table  # item (code), video_id
    spec: dict[str, Any]
    summary: dict[str, Any]


def _drop_unknown(raw: RawData, unknown: str, summary: dict[str, Any]) -> pa.Table:
    inter = raw.interactions
    keep = np.ones(inter.num_rows, bool)
    for key, table, what in (("video_id", raw.items, "videos"), ("user_id", raw.users, "users")):
        if table is None:
            continue
        known = pc.is_in(inter.column(key), value_set=pc.cast(table.column(key), pa.string()))
        bad = ~known.to_numpy(zero_copy_only=False)
        summary[f"unknown_{what}"] = int(bad.sum())
        if bad.any() and unknown == "error":
            examples = sorted(set(pc.filter(inter.column(key), pa.array(bad)).to_pylist()))[:5]
            raise DataError(
                f"{int(bad.sum())} interactions name {what} absent from their table, e.g. {examples} "
                "(ctr_data.unknown: drop skips them)"
            )
        keep &= ~bad
    return inter.filter(pa.array(keep))


def _side_features(
    raw: RawData,
    cfg: CtrDataConfig,
    user_vocab: pa.Array,
    item_vocab: pa.Array,
    user: np.ndarray,
    item: np.ndarray,
    spec: dict[str, Any],
) -> dict[str, pa.Array]:
    """Per-sample side feature columns, looked up by user or item code (vectorised gathers)."""
    tables = {"user": (raw.users, "user_id", user_vocab, user), "item": (raw.items, "video_id", item_vocab, item)}
    cols: dict[str, pa.Array] = {}
    # By name, as FeatureSpec.field_names orders them: the spec (JSON with sorted keys), the columns
    # and the tensors then agree whatever order the params list the fields in.
    kinds = (
        [("categorical", n) for n in sorted(cfg.features.categorical)]
        + [("multi", n) for n in sorted(cfg.features.multi)]
        + [("numeric", n) for n in sorted(cfg.features.numeric)]
    )
    for kind, name in kinds:
        owner = [k for k, (t, _, _, _) in tables.items() if t is not None and name in t.column_names]
        if not owner:
            have = {k: [c for c in t.column_names] for k, (t, _, _, _) in tables.items() if t is not None}
            raise DataError(f"side feature {name!r} (ctr_data.features.{kind}) is in no table; available: {have}")
        table, key, vocab, codes = tables[owner[0]]
        rows = encode(table.column(key), vocab)  # entity code of each table row (0: not in the log)
        n = len(vocab) + 1
        if kind == "categorical":
            values = vocabulary(table.column(name))
            per_entity = np.zeros(n, np.int32)
            per_entity[rows] = encode(table.column(name), values)
            per_entity[0] = 0
            cols[f"c_{name}"] = pa.array(per_entity[codes])
            spec["categorical"][name] = len(values) + 1
        elif kind == "multi":
            values = vocabulary(pc.list_flatten(table.column(name)))
            per_entity = padded_codes(table.column(name), rows, n, values, cfg.max_multi)  # (n, M)
            per_entity[0] = 0
            cols[f"m_{name}"] = pa.FixedSizeListArray.from_arrays(
                pa.array(per_entity[codes].reshape(-1)), cfg.max_multi
            )
            spec["multi"][name] = len(values) + 1
        else:
            x = pc.cast(table.column(name), pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
            ok = np.isfinite(x)
            mean, std = (x[ok].mean(), x[ok].std()) if ok.any() else (0.0, 1.0)
            per_entity = np.zeros(n, np.float32)
            per_entity[rows] = np.where(ok, (x - mean) / (std or 1.0), 0.0)  # missing -> the mean
            per_entity[0] = 0.0
            cols[f"n_{name}"] = pa.array(per_entity[codes])
            spec["numeric"].append(name)
    return cols


def given_times(inter: pa.Table) -> np.ndarray:
    """The timestamps, or 0 for every row of a format without them (lattice): histories then stay empty."""
    if "timestamp" not in inter.column_names:
        return np.zeros(inter.num_rows, np.int64)
    return inter.column("timestamp").to_numpy(zero_copy_only=False).astype(np.int64)


def given_split(inter: pa.Table) -> np.ndarray | None:
    """The dataset's own split (0/1/2 per interaction), or None when the stage splits (``ctr_data.split``)."""
    if "split" not in inter.column_names:
        return None
    return inter.column("split").to_numpy(zero_copy_only=False).astype(np.int8)


def _negatives(
    u: np.ndarray, i: np.ndarray, split: np.ndarray, n_items: int, cfg: CtrDataConfig, summary: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """``cfg.negatives`` sampled items per positive (of split ``split``), and the whole sample's split.

    A positive and its negatives share a split (they are one impression group). Training negatives
    come from ``cfg.negative_pool``: with ``train``, an item without a training positive gets no
    training negative either, so it stays truly unseen (scored through the unseen-item row and its
    content) instead of learning "never clicked". Valid and test negatives come from every item, so
    the cold slice holds cold negatives to rank the cold positives against.
    """
    rng = np.random.default_rng(cfg.seed)
    pool = np.unique(i[split == 0]) if cfg.negative_pool == "train" else None
    summary["negative_pool_items"] = n_items if pool is None else int(len(pool))
    neg = np.zeros((len(u), cfg.negatives), np.int64)  # (P, N)
    for part, part_pool in ((split == 0, pool), (split != 0, None)):
        neg[part] = sample_negatives(u[part], n_items, cfg.negatives, u, i, rng, pool=part_pool)
    return np.concatenate([split, np.repeat(split, cfg.negatives)]), neg


def build_samples(raw: RawData, cfg: CtrDataConfig) -> Built:
    summary: dict[str, Any] = {"interactions_in": raw.interactions.num_rows}
    inter = _drop_unknown(raw, cfg.unknown, summary)
    explicit = "label" in inter.column_names
    for name in [c for c in ("timestamp", "label") if c in inter.column_names]:
        # every adapter's cells end up here: an empty one would become -2**63 (or overflow) below
        if nulls := inter.column(name).null_count:
            raise DataError(f"{nulls} interactions have an empty {name!r}; every interaction needs one")
    users_vocab = vocabulary(inter.column("user_id"), *([raw.users.column("user_id")] if raw.users else []))
    items_vocab = vocabulary(inter.column("video_id"), *([raw.items.column("video_id")] if raw.items else []))
    u, i = encode(inter.column("user_id"), users_vocab), encode(inter.column("video_id"), items_vocab)
    t = given_times(inter)
    given = given_split(inter)  # a split the dataset fixes (mmrec x_label, lattice files) is used as is
    y = inter.column("label").to_numpy(zero_copy_only=False).astype(np.int64) if explicit else np.ones(len(u), np.int64)
    if explicit:
        check_labels(y)
    ratio = watch_ratio(inter, summary)
    order, summary["duplicates_dropped"] = dedupe_sort(u, i, t)
    u, i, t, y = u[order], i[order], t[order], y[order]
    ratio = ratio[order] if ratio is not None else None
    given = given[order] if given is not None else None
    if not len(u):
        raise DataError("no interactions left after dropping unknown ids")
    counts = np.bincount(u, minlength=len(users_vocab) + 1)
    summary["users_with_one_interaction"] = int((counts == 1).sum())
    pos = y == 1
    # a split the dataset fixes is used as is; otherwise each positive's split, which its negatives share
    split = given if given is not None else assign_splits(t, cfg.split)
    if given is not None and not (given == 1).any():  # train / test only (MovieLens' u1.base, u1.test)
        split = carve_valid(split, t, cfg.split)
        summary["valid_carved_from_train"] = int((split == 1).sum())
    if not explicit:
        split, neg = _negatives(u, i, split, len(items_vocab), cfg, summary)
        u, t = np.concatenate([u, np.repeat(u, cfg.negatives)]), np.concatenate([t, np.repeat(t, cfg.negatives)])
        i, y = np.concatenate([i, neg.reshape(-1)]), np.concatenate([y, np.zeros(neg.size, np.int64)])
        if ratio is not None:  # a sampled negative was never played
            ratio = np.concatenate([ratio, np.full(neg.size, np.nan, np.float32)])
    hist = histories(u, t, i, u[: len(pos)][pos], t[: len(pos)][pos], i[: len(pos)][pos], cfg.history)
    train_items = np.zeros(len(items_vocab) + 1, bool)
    train_items[i[split == 0]] = True
    spec: dict[str, Any] = {
        "n_users": len(users_vocab) + 1,
        "n_items": len(items_vocab) + 1,
        "history": cfg.history,
        "max_multi": cfg.max_multi,
        "categorical": {},
        "multi": {},
        "numeric": [],
        "explicit": explicit,
        "source": cfg.source,
    }
    side = _side_features(raw, cfg, users_vocab, items_vocab, u, i, spec)
    table = pa.table(
        {
            "user": pa.array(u.astype(np.int32)),
            "item": pa.array(i.astype(np.int32)),
            "label": pa.array(y.astype(np.int8)),
            "timestamp": pa.array(t),
            "hist": pa.FixedSizeListArray.from_arrays(pa.array(hist.items.reshape(-1)), cfg.history),
            "hist_len": pa.array(hist.length),
            "hist_ts": pa.FixedSizeListArray.from_arrays(pa.array(hist.ts.reshape(-1)), cfg.history),
            "hist_total": pa.array(hist.total),
            "cold": pa.array(~train_items[i]),
            **({"watch_ratio": pa.array(ratio)} if ratio is not None else {}),
            **side,
        }
    )
    splits = {name: table.filter(pa.array(split == k)) for k, name in enumerate(SPLITS)}
    summary |= {f"{name}_samples": splits[name].num_rows for name in SPLITS}
    summary |= {
        f"{name}_positive_rate": float(np.mean(y[split == k])) if (split == k).any() else None
        for k, name in enumerate(SPLITS)
    }
    summary |= {
        "explicit_labels": explicit,
        "given_split": given is not None,
        "users": len(users_vocab),
        "items": len(items_vocab),
        "test_cold_samples": int((~train_items[i[split == 2]]).sum()),
        "mean_history": float(hist.length.mean()),
        "mean_history_uncapped": float(hist.total.mean()),
    }
    users = pa.table({"user": pa.array(np.arange(1, len(users_vocab) + 1, dtype=np.int32)), "user_id": users_vocab})
    items = pa.table({"item": pa.array(np.arange(1, len(items_vocab) + 1, dtype=np.int32)), "video_id": items_vocab})
    return Built(splits, users, items, spec, summary)


FEATURES = "features.parquet"  # the item features ctr_train reads (ctr.content), by video_id


def item_features(raw: RawData, built: Built, cfg: CtrDataConfig) -> tuple[pa.Table | None, dict[str, Any]]:
    """The source's item features as a table (video_id, one vector column and ``<m>_present`` mask per
    modality), fitted on the items with a training positive unless already reduced; None without features.

    Fitted on positives, not on every training sample: sampled negatives are drawn from the whole catalogue
    (``negative_pool: all``) and would let valid/test-only items into the fit."""
    if not raw.features or raw.items is None:
        return None, {}
    train = built.splits["train"]
    positive = pc.filter(train.column("item"), pc.equal(train.column("label"), 1))
    code_to_id = dict(zip(built.items.column("item").to_pylist(), built.items.column("video_id").to_pylist()))
    seen = {code_to_id[c] for c in positive.to_pylist()}
    ids = pc.cast(raw.items.column("video_id"), pa.string())
    train_rows = np.array([v in seen for v in ids.to_pylist()], bool)
    present = {m: np.asarray(raw.present.get(m, np.ones(len(x), bool)), bool) for m, x in raw.features.items()}
    states: dict[str, Any] = {}
    features = {m: x.astype(np.float32) for m, x in raw.features.items()}
    if not raw.reduced:
        features, states = fit_precomputed(features, train_rows, cfg.content, cfg.seed, present)
    cols: dict[str, Any] = {"video_id": ids}
    for m, x in sorted(features.items()):
        cols[m] = store.vector_array(x)
        cols[f"{m}_present"] = pa.array(present[m])
    return pa.table(cols), states


def features_meta(table: pa.Table, cfg: CtrDataConfig, reduced: bool) -> dict[str, Any]:
    dims = store.modality_dims(table.schema)
    return store.make_meta(
        "ctr_data", params={"content": cfg.content}, dims=dims, reduced_by="reduce" if reduced else "ctr_data"
    )


def write_built(built: Built, folder: str | Path, params: Any) -> None:
    out = Path(folder)
    meta = store.make_meta("ctr_data", params=params, spec=built.spec)
    for name, table in built.splits.items():
        store.write_table(table, out / f"{name}.parquet", meta)
    store.write_table(built.users, out / "users.parquet", meta)
    store.write_table(built.items, out / "items.parquet", meta)
    store.write_text(out / "summary.json", json.dumps(built.summary | {"spec": built.spec}, indent=2, sort_keys=True))
