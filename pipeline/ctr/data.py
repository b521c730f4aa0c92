"""Vectorised building blocks of the CTR sample tables: codes, cleaning, negatives, histories, splits.

Pure numpy/pyarrow functions (arrays in, arrays out, no per-row Python). Index 0 is
reserved everywhere for padding and unknown values, so real users and items are 1..N.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.params import CtrSplitConfig

SPLITS = ("train", "valid", "test")


class DataError(ValueError):
    """Interactions the CTR stages cannot use (bad labels, unknown ids under unknown: error, ...)."""


def vocabulary(*columns: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Sorted distinct non-null strings of all columns: value k-1 has code k."""
    merged = pa.chunked_array([c for col in columns for c in _chunks(pc.cast(col, pa.string()))], pa.string())
    distinct = pc.drop_null(pc.unique(merged))
    return pc.take(distinct, pc.array_sort_indices(distinct))


def _chunks(col: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return list(col.chunks) if isinstance(col, pa.ChunkedArray) else [col]


def encode(values: pa.Array | pa.ChunkedArray, vocab: pa.Array) -> np.ndarray:
    """Strings -> int64 codes in 1..len(vocab); unknown or null -> 0."""
    idx = pc.index_in(pc.cast(values, pa.string()), value_set=vocab)
    return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1


def dedupe_sort(user: np.ndarray, item: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, int]:
    """Row order by (timestamp, user, item) with exact duplicates removed (the last copy kept)."""
    order = np.lexsort((np.arange(len(ts)), item, user, ts))  # stable: later rows win below
    u, i, t = user[order], item[order], ts[order]
    last = np.ones(len(order), bool)
    last[:-1] = (u[1:] != u[:-1]) | (i[1:] != i[:-1]) | (t[1:] != t[:-1])
    return order[last], int((~last).sum())


def check_labels(label: np.ndarray) -> None:
    bad = ~np.isin(label, (0, 1))
    if bad.any():
        raise DataError(
            f"explicit labels must be 0 or 1; {int(bad.sum())} rows hold others, e.g. "
            f"{sorted(set(np.unique(label[bad]).tolist()))[:5]}"
        )


def sample_negatives(
    user: np.ndarray,
    n_items: int,
    per_positive: int,
    seen_user: np.ndarray,
    seen_item: np.ndarray,
    rng: np.random.Generator,
    max_rounds: int = 100,
) -> np.ndarray:
    """(len(user), per_positive) item codes in 1..n_items that the user never interacted with.

    ``seen_user``/``seen_item`` list every (user, item) pair of the log; rejected draws are
    redrawn (vectorised) until none is left.
    """
    base = np.int64(n_items + 1)
    seen = np.unique(seen_user.astype(np.int64) * base + seen_item)
    users = np.repeat(user.astype(np.int64), per_positive)  # (P * N,)
    out = rng.integers(1, n_items + 1, size=len(users))
    todo = np.flatnonzero(np.isin(users * base + out, seen, assume_unique=False))
    for _ in range(max_rounds):
        if not len(todo):
            return out.reshape(len(user), per_positive)
        out[todo] = rng.integers(1, n_items + 1, size=len(todo))
        todo = todo[np.isin(users[todo] * base + out[todo], seen)]
    raise DataError(
        f"negative sampling: {len(todo)} draws still hit items the user interacted with after "
        f"{max_rounds} rounds (users who saw almost every item); drop them or lower ctr_data.negatives"
    )


def histories(
    user: np.ndarray,
    ts: np.ndarray,
    item: np.ndarray,
    pos_user: np.ndarray,
    pos_ts: np.ndarray,
    pos_item: np.ndarray,
    length: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's last ``length`` positives strictly before its timestamp, without its own item.

    Returns ``(N, length)`` int32 item codes, oldest first, left-aligned and 0-padded, and the
    ``(N,)`` lengths. Ties with the sample's timestamp are excluded (no look-ahead).
    """
    order = np.lexsort((pos_ts, pos_user))
    pu, pt, pi = pos_user[order].astype(np.int64), pos_ts[order].astype(np.int64), pos_item[order]
    t0 = min(int(pt.min(initial=0)), int(ts.min(initial=0)))
    span = np.int64(max(int(pt.max(initial=0)), int(ts.max(initial=0))) - t0 + 1)
    keys = pu * span + (pt - t0)
    end = np.searchsorted(keys, user.astype(np.int64) * span + (ts.astype(np.int64) - t0), side="left")
    start = np.searchsorted(pu, user, side="left")
    idx = end[:, None] - length + np.arange(length)  # (N, H) positions into the sorted positives
    valid = idx >= start[:, None]
    hist = np.where(valid, pi[np.clip(idx, 0, max(len(pi) - 1, 0))] if len(pi) else 0, 0)
    valid &= hist != item[:, None]  # a re-shown item is not its own history
    packed = np.argsort(~valid, axis=1, kind="stable")  # valid first, order kept
    hist = np.take_along_axis(np.where(valid, hist, 0), packed, axis=1)
    return hist.astype(np.int32), valid.sum(axis=1).astype(np.int32)


def assign_splits(ts: np.ndarray, cfg: CtrSplitConfig) -> np.ndarray:
    """0 train, 1 valid, 2 test: the latest samples by time, or a seeded random draw."""
    n = len(ts)
    if cfg.by == "time":
        rank = np.empty(n, np.int64)
        rank[np.argsort(ts, kind="stable")] = np.arange(n)
    else:
        rank = np.random.default_rng(cfg.seed).permutation(n)
    cut_valid, cut_test = int(round(n * (1 - cfg.valid - cfg.test))), int(round(n * (1 - cfg.test)))
    return np.where(rank < cut_valid, 0, np.where(rank < cut_test, 1, 2)).astype(np.int8)


def padded_codes(
    lists: pa.Array | pa.ChunkedArray, rows: np.ndarray, n_rows: int, vocab: pa.Array, width: int
) -> np.ndarray:
    """list<string> per table row -> (n_rows, width) codes at ``rows`` (first ``width`` values, 0-padded)."""
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    offsets = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
    parent = np.repeat(np.arange(len(lists)), offsets)
    within = np.arange(len(parent)) - np.repeat(np.cumsum(offsets) - offsets, offsets)
    codes = encode(pc.list_flatten(lists), vocab)
    out = np.zeros((n_rows, width), np.int32)
    keep = within < width
    out[rows[parent[keep]], within[keep]] = codes[keep]
    return out
