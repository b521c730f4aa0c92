"""Vectorised building blocks of the CTR sample tables: codes, cleaning, negatives, histories, splits.

Pure numpy/pyarrow functions (arrays in, arrays out, no per-row Python). Index 0 is
reserved everywhere for padding and unknown values, so real users and items are 1..N.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ctr.config import CtrSplitConfig

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
    pool: np.ndarray | None = None,
) -> np.ndarray:
    """(len(user), per_positive) item codes in 1..n_items that the user never interacted with.

    ``seen_user``/``seen_item`` list every (user, item) pair of the log; rejected draws are
    redrawn (vectorised) until none is left. ``pool``: the item codes to draw from (default: all).
    """
    base = np.int64(n_items + 1)
    pool = np.arange(1, n_items + 1) if pool is None else np.asarray(pool, np.int64)
    if not len(pool):
        raise DataError("negative sampling: the pool of items to draw negatives from is empty")
    seen = np.unique(seen_user.astype(np.int64) * base + seen_item)
    users = np.repeat(user.astype(np.int64), per_positive)  # (P * N,)
    out = pool[rng.integers(0, len(pool), size=len(users))]
    todo = np.flatnonzero(np.isin(users * base + out, seen, assume_unique=False))
    for _ in range(max_rounds):
        if not len(todo):
            return out.reshape(len(user), per_positive)
        out[todo] = pool[rng.integers(0, len(pool), size=len(todo))]
        todo = todo[np.isin(users[todo] * base + out[todo], seen)]
    raise DataError(
        f"negative sampling: {len(todo)} draws still hit items the user interacted with after "
        f"{max_rounds} rounds (users who saw almost every item of the pool); drop them, lower "
        "ctr_data.negatives or widen ctr_data.negative_pool"
    )


class History(NamedTuple):
    items: np.ndarray  # (N, H) int32 item codes, oldest first, left-aligned, 0-padded
    length: np.ndarray  # (N,) int32 valid entries of ``items``
    ts: np.ndarray  # (N, H) int64 their timestamps (0 on padding)
    total: np.ndarray  # (N,) int32 all positives strictly before the sample (not capped at H)


def histories(
    user: np.ndarray,
    ts: np.ndarray,
    item: np.ndarray,
    pos_user: np.ndarray,
    pos_ts: np.ndarray,
    pos_item: np.ndarray,
    length: int,
) -> History:
    """Each sample's last ``length`` positives strictly before its timestamp, without its own item.

    Ties with the sample's timestamp are excluded (no look-ahead). ``total`` counts every earlier
    positive (the history length the MMIE paper groups its results by), ``length`` the kept ones.
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
    at = np.clip(idx, 0, max(len(pi) - 1, 0))
    hist = np.where(valid, pi[at] if len(pi) else 0, 0)
    when = np.where(valid, pt[at] if len(pt) else 0, 0)
    valid &= hist != item[:, None]  # a re-shown item is not its own history
    packed = np.argsort(~valid, axis=1, kind="stable")  # valid first, order kept
    hist = np.take_along_axis(np.where(valid, hist, 0), packed, axis=1)
    when = np.take_along_axis(np.where(valid, when, 0), packed, axis=1)
    total = (end - start).astype(np.int32)
    return History(hist.astype(np.int32), valid.sum(axis=1).astype(np.int32), when.astype(np.int64), total)


def sessions(
    hist: np.ndarray, hist_ts: np.ndarray, hist_len: np.ndarray, ts: np.ndarray, gap: int, length: int, count: int
) -> np.ndarray:
    """A history cut into sessions: ``(N, count, length)`` item codes, 0-padded.

    ``hist``/``hist_ts``: ``(N, H)`` behaviours oldest first, left-aligned (``histories``), ``hist_len``
    ``(N,)``, ``ts`` ``(N,)`` the samples' timestamps. A gap longer than ``gap`` seconds between two
    consecutive behaviours starts a new session; each session keeps its ``length`` most recent
    behaviours (oldest first) and the ``count`` most recent sessions are kept, oldest first, so
    the rows are left-aligned like the history. Behaviours at or after the sample's timestamp
    are dropped (no look-ahead, even if the history was built otherwise).
    """
    n, h = hist.shape
    pos = np.arange(h)
    valid = (pos < hist_len[:, None]) & (hist > 0) & (hist_ts < ts[:, None])
    # Session id per behaviour: a valid step starts a session when it is the first valid one or
    # follows the previous valid step by more than `gap`; left-aligned rows make "previous" pos - 1.
    prev_ts = np.concatenate([np.zeros((n, 1), hist_ts.dtype), hist_ts[:, :-1]], axis=1)
    prev_ok = np.concatenate([np.zeros((n, 1), bool), valid[:, :-1]], axis=1)
    starts = valid & (~prev_ok | (hist_ts - prev_ts > gap))
    # Sessions are contiguous runs of the left-aligned row: a behaviour ends its session when the
    # next position is not a valid continuation of it.
    next_same = np.concatenate([valid[:, 1:] & ~starts[:, 1:], np.zeros((n, 1), bool)], axis=1)
    ends = valid & ~next_same
    end = np.minimum.accumulate(np.where(ends, pos, h)[:, ::-1], axis=1)[:, ::-1]  # own session's last position
    start = np.maximum.accumulate(np.where(starts, pos, -1), axis=1)  # own session's first position
    from_end = end - pos  # 0 = the session's most recent behaviour
    kept_size = np.minimum(end - start + 1, length)
    sid = np.cumsum(starts, axis=1) - 1  # (N, H) 0-based session index within the row
    slot = sid - (starts.sum(axis=1, keepdims=True) - count).clip(min=0)  # place among the kept sessions
    within = kept_size - 1 - from_end  # place within the session's kept behaviours, oldest first
    keep = valid & (from_end < length) & (slot >= 0)
    rows = np.broadcast_to(np.arange(n)[:, None], (n, h))
    out = np.zeros((n, count, length), hist.dtype)
    out[rows[keep], slot[keep], within[keep]] = hist[keep]
    return out


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


def carve_valid(split: np.ndarray, ts: np.ndarray, cfg: CtrSplitConfig) -> np.ndarray:
    """A given train / test split with validation rows taken from training: ``cfg.valid`` of them, the
    latest by time or a seeded random draw (``cfg.by``); the test rows are never touched."""
    train = np.flatnonzero(split == 0)
    n_valid = int(round(len(train) * cfg.valid))
    if cfg.by == "time":
        order = train[np.argsort(ts[train], kind="stable")]
    else:
        order = np.random.default_rng(cfg.seed).permutation(train)
    out = split.copy()
    out[order[len(order) - n_valid :] if n_valid else []] = 1
    return out


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
