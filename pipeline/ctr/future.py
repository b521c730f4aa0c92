"""``dmr``'s extra inputs: the implicit user network and each sample's future sequence.

Pure numpy/scipy (arrays in, arrays out; row blocks, never a Python loop over samples). Index 0 is
padding, as everywhere in the CTR tables.

No leakage: both functions see the **training positives** only (the caller passes them), and a future
sequence holds only behaviours strictly before its sample's timestamp. The user network itself is one
static graph fitted on all training positives (the cost of a graph per sample time would be users x users
per timestamp): it may have seen a training sample's later training behaviour when choosing whom to
follow, but never lends that sample anything at or after its time.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

CELLS = 1 << 22  # working-set cap of one row block (matrix cells): blocks keep memory flat on large sets


def pearson_neighbours(user: np.ndarray, item: np.ndarray, n_users: int, n_items: int, k: int) -> np.ndarray:
    """``(n_users, k)`` each user's ``k`` most similar users, best first, 0-padded.

    Similarity: Pearson correlation of the users' binary interaction vectors over items ``1..n_items - 1``
    (``user``/``item``: the interactions, repeats count once). Only positively correlated users are
    neighbours (a negative correlation is not "similar"); a user without interactions (zero variance) has
    none and is nobody's. Ties (to 1e-12) keep the lower user code first. Cost: users x users in row blocks.
    """
    dims = max(n_items - 1, 1)
    pairs = np.unique(np.stack([user, item]).astype(np.int64), axis=1) if len(user) else np.zeros((2, 0), np.int64)
    pairs = pairs[:, (pairs[0] > 0) & (pairs[1] > 0)]
    x = sp.csr_matrix((np.ones(pairs.shape[1]), (pairs[0], pairs[1] - 1)), shape=(n_users, dims), dtype=np.float64)
    mean = np.asarray(x.sum(axis=1)).ravel() / dims  # (U,)
    std = np.sqrt(mean * (1 - mean))  # binary vectors: var = m (1 - m)
    out = np.zeros((n_users, k), np.int64)
    users = np.flatnonzero(std > 0)
    block = max(1, CELLS // max(n_users, 1))
    for start in range(0, len(users), block):
        rows = users[start : start + block]
        co = (x[rows] @ x.T).toarray() / dims  # (C, U): E[x_u x_v]
        with np.errstate(divide="ignore", invalid="ignore"):
            # rounded: exact ties and zeros stay ties and zeros whatever the float noise (they decide who follows whom)
            corr = np.round((co - mean[rows, None] * mean[None, :]) / (std[rows, None] * std[None, :]), 12)
        corr[~np.isfinite(corr) | (corr <= 0)] = -np.inf  # zero variance, uncorrelated, dissimilar
        corr[np.arange(len(rows)), rows] = -np.inf  # never one's own neighbour
        order = np.argsort(-corr, axis=1, kind="stable")[:, :k]  # stable: ties by user code
        best = np.take_along_axis(corr, order, axis=1)
        out[rows, : order.shape[1]] = np.where(np.isfinite(best), order, 0)
    return out


def future_sequences(
    user: np.ndarray,
    ts: np.ndarray,
    neighbours: np.ndarray,
    pos_user: np.ndarray,
    pos_ts: np.ndarray,
    pos_item: np.ndarray,
    length: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's future sequence: ``(N, length)`` item codes and their timestamps, oldest first,
    left-aligned, 0-padded.

    The ``length`` most recent positives (``pos_*``: the training split's, the caller's choice) of the
    sample user's ``neighbours`` (``(n_users, K)``, ``pearson_neighbours``) **strictly before** the
    sample's timestamp ``ts``. The paper's "what similar users did after the target user's latest
    behaviour": whenever they did anything after it, those are the most recent ones, so they are here;
    the most recent rule keeps the sequence filled when they did not (under a time split, no training
    positive is later than a test user's latest behaviour). Repeats across neighbours are kept: an item
    several neighbours took is a stronger trend.
    """
    n, k = len(user), neighbours.shape[1]
    order = np.lexsort((pos_ts, pos_user))
    pu, pt, pi = pos_user[order].astype(np.int64), pos_ts[order].astype(np.int64), pos_item[order].astype(np.int64)
    items, when = np.zeros((n, length), np.int64), np.zeros((n, length), np.int64)
    if not len(pu) or not n or not k:
        return items, when
    t0 = min(int(pt.min()), int(ts.min()))
    span = np.int64(max(int(pt.max()), int(ts.max())) - t0 + 1)
    keys = pu * span + (pt - t0)
    block = max(1, CELLS // (k * length))
    for s in range(0, n, block):
        who = neighbours[user[s : s + block]].astype(np.int64)  # (C, K)
        cut = ts[s : s + block].astype(np.int64)[:, None] - t0  # (C, 1)
        end = np.searchsorted(keys, who * span + cut, side="left")  # (C, K): first positive at or after ts
        first = np.searchsorted(pu, who, side="left")  # (C, K): the neighbour's first positive
        idx = end[..., None] - length + np.arange(length)  # (C, K, L): the latest `length` before ts
        valid = (idx >= first[..., None]) & (who[..., None] > 0)
        at = np.clip(idx, 0, len(pu) - 1).reshape(len(who), -1)  # (C, K * L)
        valid = valid.reshape(len(who), -1)
        stamp = np.where(valid, pt[at], np.iinfo(np.int64).min)
        latest = np.argsort(stamp, axis=1, kind="stable")[:, -length:]  # (C, L): the most recent, oldest first
        keep = np.take_along_axis(valid, latest, axis=1)
        packed = np.argsort(~keep, axis=1, kind="stable")  # valid first, order kept
        pick = np.take_along_axis(np.take_along_axis(at, latest, axis=1), packed, axis=1)
        keep = np.take_along_axis(keep, packed, axis=1)
        width = pick.shape[1]  # K * L may be shorter than L
        items[s : s + block, :width] = np.where(keep, pi[pick], 0)
        when[s : s + block, :width] = np.where(keep, pt[pick], 0)
    return items, when
