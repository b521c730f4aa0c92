"""dmr's implicit user network and future sequences (``pipeline.ctr.future``, ``train.trend_tensors``)."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from models.ctr.base import FeatureSpec
from pipeline.ctr.future import future_sequences, pearson_neighbours
from pipeline.ctr.train import trend_tensors
from pipeline.params import CtrTrendConfig

# users 1-4 over items 1-4: u1 = u4 = {1, 2}, u2 = {1, 2, 3}, u3 = {3, 4}; user 5 has nothing
USERS = np.array([1, 1, 2, 2, 2, 3, 3, 4, 4, 1])
ITEMS = np.array([1, 2, 1, 2, 3, 3, 4, 1, 2, 1])  # the last one repeats u1's item 1: counts once


def test_pearson_neighbours_on_a_hand_made_matrix():
    got = pearson_neighbours(USERS, ITEMS, n_users=6, n_items=5, k=2)
    # corr(u1, u4) = 1, corr(u1, u2) = corr(u4, u2) = 0.577; u3 anti-correlates with u1, u4 and (-0.577) u2
    assert got.tolist() == [[0, 0], [4, 2], [1, 4], [0, 0], [1, 2], [0, 0]]  # ties: lower code first
    assert pearson_neighbours(USERS, ITEMS, 6, 5, k=4)[1].tolist() == [4, 2, 0, 0]  # dissimilar users: none


def test_pearson_neighbours_match_numpy_corrcoef():
    rng = np.random.default_rng(0)
    dense = rng.random((12, 9)) < 0.35  # users 0..11 x items 1..9
    dense[0] = False  # the padding user
    u, i = np.nonzero(dense)
    got = pearson_neighbours(u, i + 1, 12, 10, k=3)
    with np.errstate(invalid="ignore"):  # user 8 has no items: NaN, nobody's neighbour
        corr = np.round(np.corrcoef(dense[1:].astype(float)), 9)  # exact ties and zeros stay ties and zeros
    for row in range(1, 12):
        c = corr[row - 1].copy()
        c[row - 1] = -np.inf
        want = [int(j) + 1 for j in np.argsort(-c, kind="stable")[:3] if c[j] > 0]
        assert got[row].tolist() == want + [0] * (3 - len(want))


def sequences(sample_ts, length=3):
    # user 1 follows users 2 and 3; their training positives: u2 items 5, 6, 7 at 10, 20, 30; u3 8, 9 at 15, 30
    neighbours = np.array([[0, 0], [2, 3], [0, 0], [0, 0]])
    pu, pt, pi = np.array([2, 3, 2, 2, 3]), np.array([10, 15, 20, 30, 30]), np.array([5, 8, 6, 7, 9])
    ts = np.array(sample_ts)
    return future_sequences(np.ones(len(ts), np.int64), ts, neighbours, pu, pt, pi, length)


def test_future_is_the_neighbours_latest_positives_strictly_before_the_sample():
    items, when = sequences([30, 31, 5, 16])
    assert items.tolist() == [[5, 8, 6], [6, 7, 9], [0, 0, 0], [5, 8, 0]]  # at 30: nothing from 30 itself
    assert when.tolist() == [[10, 15, 20], [20, 30, 30], [0, 0, 0], [10, 15, 0]]
    assert sequences([31], length=1)[0].tolist() == [[9]]


def test_future_matches_a_brute_force_walk():
    rng = np.random.default_rng(1)
    n_users, k, length = 15, 3, 4
    pu, pt, pi = rng.integers(1, n_users, 200), rng.integers(0, 1000, 200), rng.integers(1, 30, 200)
    others = np.argsort(rng.random((n_users, n_users - 1)), axis=1)[:, :k] + 1  # distinct users per row
    neighbours = np.where(rng.random((n_users, k)) < 0.8, others, 0)
    user, ts = rng.integers(1, n_users, 60), rng.integers(0, 1100, 60)
    items, when = future_sequences(user, ts, neighbours, pu, pt, pi, length)
    for row in range(len(user)):
        cands = [(pt[j], pi[j]) for j in range(200) if pu[j] in neighbours[user[row]][neighbours[user[row]] > 0]]
        stamps = sorted(t for t, _ in cands if t < ts[row])[-length:]
        kept = when[row][items[row] > 0]
        assert sorted(kept.tolist()) == stamps and (kept < ts[row]).all() and (np.diff(kept) >= 0).all()
        pairs = set(zip(pt.tolist(), pi.tolist()))
        assert all((t, i) in pairs for t, i in zip(kept.tolist(), items[row][items[row] > 0].tolist()))


def table(user, item, label, ts, hist_ts=None):
    hist_ts = np.zeros((len(user), 2), np.int64) if hist_ts is None else np.asarray(hist_ts)
    return pa.table(
        {
            "user": pa.array(user, pa.int32()),
            "item": pa.array(item, pa.int32()),
            "label": pa.array(label, pa.int8()),
            "timestamp": pa.array(ts, pa.int64()),
            "hist_ts": pa.FixedSizeListArray.from_arrays(pa.array(np.ravel(hist_ts), pa.int64()), 2),
        }
    )


TRENDS = CtrTrendConfig(count=2, routing_iterations=3, neighbours=2, future=3, use_future=True, time_attention=True)
SPEC = FeatureSpec(n_users=4, n_items=8, categorical=(), multi=(), n_numeric=0, history=2)


def test_trend_tensors_use_training_positives_only():
    """Users 1 and 2 share items 1-2 in training; user 2's valid/test positives (items 6, 7, earlier than the
    training sample at 100) and its training negative (item 5) never reach user 1's future."""
    train = table([1, 1, 2, 2, 2, 3, 1], [1, 2, 1, 2, 5, 3, 4], [1, 1, 1, 1, 0, 1, 1], [1, 2, 3, 4, 5, 6, 100])
    valid = table([2], [6], [1], [7], [[0, 0]])
    test = table([2, 1], [7, 3], [1, 1], [8, 200], [[3, 4], [0, 0]])
    got = trend_tensors({"train": train, "valid": valid, "test": test}, TRENDS, SPEC)
    assert got["train"]["fut"][-1].tolist() == [1, 2, 0] and got["train"]["fut_ts"][-1].tolist() == [3, 4, 0]
    assert got["train"]["fut"][0].tolist() == [0, 0, 0]  # at time 1 user 2 has done nothing yet
    assert got["test"]["fut"][1].tolist() == [1, 2, 0]  # not 6 or 7: valid / test positives
    assert got["test"]["hist_ts"].tolist() == [[3, 4], [0, 0]] and got["test"]["ts"].tolist() == [8, 200]
    off = trend_tensors({"train": train}, CtrTrendConfig(**{**TRENDS.__dict__, "use_future": False}), SPEC)
    assert set(off["train"]) == {"ts", "hist_ts"}  # the no-future ablation builds no user network


def test_a_source_without_timestamps_gives_zeros_and_says_so(caplog):
    train = table([1, 2, 1, 2], [1, 1, 2, 2], [1, 1, 1, 1], [0, 0, 0, 0])  # lattice: every timestamp 0
    with caplog.at_level(logging.WARNING, logger="ctr.train"):
        got = trend_tensors({"train": train}, TRENDS, SPEC)
    assert not got["train"]["fut"].any() and "no sample has an earlier behaviour" in caplog.text
