from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipeline.core.modality import FeaturesConfig
from pipeline.ctr.adapters import RawData
from pipeline.ctr.build import build_samples
from pipeline.ctr.data import (
    DataError,
    assign_splits,
    check_labels,
    dedupe_sort,
    encode,
    histories,
    padded_codes,
    sample_negatives,
    vocabulary,
)
from pipeline.params import CtrDataConfig, CtrFeatures, CtrSplitConfig, LabelRule


def cfg(**kw) -> CtrDataConfig:
    base = dict(
        source="log",
        path="log.csv",
        label=LabelRule(4, 2),
        negatives=3,
        negative_pool="all",
        history=4,
        max_multi=2,
        split=CtrSplitConfig("time", 0.2, 0.2, 0),
        unknown="drop",
        features=CtrFeatures((), (), ()),
        content=FeaturesConfig(None, False, "zscore"),
        seed=0,
    )
    return CtrDataConfig(**(base | kw))


def random_log(seed: int, n: int = 400, users: int = 12, items: int = 30):
    rng = np.random.default_rng(seed)
    u = rng.integers(1, users + 1, n)
    i = rng.integers(1, items + 1, n)
    t = rng.integers(0, 50, n)  # many ties on purpose
    y = rng.integers(0, 2, n)
    return u, i, t, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_history_is_the_last_positives_strictly_before_without_own_item(seed):
    u, i, t, y = random_log(seed)
    pos = y == 1
    hist, length, _, _ = histories(u, t, i, u[pos], t[pos], i[pos], 4)
    assert hist.shape == (len(u), 4) and hist.dtype == np.int32
    for k in range(len(u)):
        earlier = (u[pos] == u[k]) & (t[pos] < t[k])
        ts_e, it_e = t[pos][earlier], i[pos][earlier]
        order = np.argsort(ts_e, kind="stable")
        want = it_e[order][-4:]
        want = want[want != i[k]]  # own item excluded
        got = hist[k, : length[k]]
        assert np.all(hist[k, length[k] :] == 0)
        assert set(got.tolist()) <= set(it_e.tolist())
        assert i[k] not in got.tolist()
        assert sorted(got.tolist()) == sorted(want.tolist())


def test_history_is_ordered_oldest_first():
    u = np.array([1, 1, 1, 1])
    i = np.array([5, 6, 7, 8])
    t = np.array([10, 20, 30, 40])
    hist, length, _, _ = histories(u, t, i, u, t, i, 3)
    assert length.tolist() == [0, 1, 2, 3]
    assert hist.tolist() == [[0, 0, 0], [5, 0, 0], [5, 6, 0], [5, 6, 7]]


@pytest.mark.parametrize("seed", [0, 1])
def test_negative_sampling_never_returns_an_interacted_item(seed):
    u, i, _, _ = random_log(seed, n=300, users=5, items=70)
    neg = sample_negatives(u, 70, 4, u, i, np.random.default_rng(seed))
    assert neg.shape == (300, 4) and neg.min() >= 1 and neg.max() <= 70
    seen = set(zip(u.tolist(), i.tolist()))
    assert not any((uu, int(x)) in seen for uu, row in zip(u.tolist(), neg) for x in row)


def test_negative_sampling_fails_clearly_when_a_user_saw_everything():
    u, i = np.ones(3, np.int64), np.array([1, 2, 3])
    with pytest.raises(DataError, match="negative sampling"):
        sample_negatives(u, 3, 1, u, i, np.random.default_rng(0), max_rounds=5)


def test_dedupe_sort_orders_by_time_and_drops_exact_duplicates():
    u, i, t = np.array([2, 1, 1, 1]), np.array([3, 4, 4, 5]), np.array([9, 5, 5, 1])
    order, dropped = dedupe_sort(u, i, t)
    assert dropped == 1
    assert t[order].tolist() == [1, 5, 9] and i[order].tolist() == [5, 4, 3]


def test_labels_outside_0_1_are_an_error():
    check_labels(np.array([0, 1, 1]))
    with pytest.raises(DataError, match="0 or 1"):
        check_labels(np.array([0, 2, 1, -1]))


def test_time_split_puts_the_latest_samples_last():
    t = np.random.default_rng(0).permutation(100)
    s = assign_splits(t, CtrSplitConfig("time", 0.2, 0.3, 0))
    assert np.bincount(s).tolist() == [50, 20, 30]
    assert t[s == 0].max() < t[s == 1].min() and t[s == 1].max() < t[s == 2].min()
    r = assign_splits(t, CtrSplitConfig("random", 0.2, 0.3, 1))
    assert np.bincount(r).tolist() == [50, 20, 30] and not np.array_equal(r, s)


def test_encode_and_padded_codes():
    vocab = vocabulary(pa.array(["b", "a", None, "c"]))
    assert vocab.to_pylist() == ["a", "b", "c"]
    assert encode(pa.array(["c", "zz", None, "a"]), vocab).tolist() == [3, 0, 0, 1]
    lists = pa.array([["a", "b", "c"], [], None, ["c"]])
    out = padded_codes(lists, np.array([1, 2, 3, 4]), 5, vocab, 2)
    assert out.tolist() == [[0, 0], [1, 2], [0, 0], [0, 0], [3, 0]]


def raw_log(label=True, extra_user=True):
    inter = {
        "user_id": ["u1", "u1", "u1", "u2", "u2", "u3", "u9"],
        "video_id": ["a", "b", "c", "a", "zzz", "b", "c"],
        "timestamp": [3, 1, 2, 5, 6, 7, 8],
    }
    if label:
        inter["label"] = [1, 0, 1, 1, 1, 0, 1]
    items = pa.table(
        {
            "video_id": ["a", "b", "c", "d"],
            "genre": [["x", "y"], ["y"], [], ["z"]],
            "kind": ["k1", "k2", "k1", "k2"],
            "length": [1.0, 2.0, 3.0, None],
        }
    )
    users = pa.table(
        {
            "user_id": ["u1", "u2", "u3"] + (["u9"] if extra_user else []),
            "age": [20, 30, 40] + ([50] if extra_user else []),
        }
    )
    return RawData(pa.table(inter), users, items)


def test_build_samples_explicit_log_with_side_features():
    feats = CtrFeatures(("kind",), ("genre",), ("length", "age"))
    built = build_samples(raw_log(), cfg(features=feats, split=CtrSplitConfig("time", 0.2, 0.2, 0)))
    assert built.summary["unknown_videos"] == 1 and built.summary["users_with_one_interaction"] == 3
    rows = pa.concat_tables(built.splits.values()).sort_by("timestamp").to_pylist()
    assert [r["timestamp"] for r in rows] == [1, 2, 3, 5, 7, 8]
    by_ts = {r["timestamp"]: r for r in rows}
    item_code = dict(zip(built.items["video_id"].to_pylist(), built.items["item"].to_pylist()))
    assert by_ts[3]["hist"][: by_ts[3]["hist_len"]] == [item_code["c"]]  # b was a negative, c clicked at t=2
    assert by_ts[1]["hist_len"] == 0
    assert by_ts[3]["m_genre"] == [1, 2] and by_ts[2]["m_genre"] == [0, 0]
    assert built.spec["categorical"] == {"kind": 3} and built.spec["multi"] == {"genre": 4}
    assert built.spec["n_items"] == 5  # a, b, c, d + padding (d never interacted: still coded for content)


def test_build_samples_unknown_ids_error_when_asked():
    with pytest.raises(DataError, match="absent from their table"):
        build_samples(raw_log(extra_user=False), cfg(unknown="error"))
    built = build_samples(raw_log(extra_user=False), cfg())
    assert built.summary["unknown_users"] == 1 and built.summary["unknown_videos"] == 1


def test_build_samples_implicit_log_samples_negatives():
    built = build_samples(raw_log(label=False), cfg(negatives=2))
    table = pa.concat_tables(built.splits.values())
    labels = np.asarray(table["label"].to_pylist())
    assert (labels == 1).sum() == 6 and (labels == 0).sum() == 12
    assert not built.summary["explicit_labels"]


def test_cold_flags_mark_items_never_trained_on():
    built = build_samples(raw_log(), cfg())
    trained = set(built.splits["train"]["item"].to_pylist())
    for name in ("valid", "test"):
        t = built.splits[name]
        assert t["cold"].to_pylist() == [x not in trained for x in t["item"].to_pylist()]


def test_built_negatives_are_never_items_the_user_interacted_with():
    raw = raw_log(label=False)
    built = build_samples(raw, cfg(negatives=2))
    users = dict(zip(built.users["user_id"].to_pylist(), built.users["user"].to_pylist()))
    items = dict(zip(built.items["video_id"].to_pylist(), built.items["item"].to_pylist()))
    seen = {
        (users[u], items.get(v))
        for u, v in zip(raw.interactions["user_id"].to_pylist(), raw.interactions["video_id"].to_pylist())
    }
    table = pa.concat_tables(built.splits.values()).to_pylist()
    assert all((r["user"], r["item"]) not in seen for r in table if r["label"] == 0)


def implicit_log(seed: int = 0, n: int = 300):
    """Positives only; items v25-v29 appear only late (the test period of a time split)."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 1000, n)
    item = np.where(t > 900, rng.integers(25, 30, n), rng.integers(0, 25, n))
    inter = {
        "user_id": [f"u{k}" for k in rng.integers(0, 12, n)],
        "video_id": [f"v{k}" for k in item],
        "timestamp": t,
    }
    return RawData(pa.table(inter), None, None)


@pytest.mark.parametrize("pool", ["train", "all"])
def test_negative_pool_decides_where_training_negatives_come_from(pool):
    built = build_samples(
        implicit_log(), cfg(negatives=3, negative_pool=pool, split=CtrSplitConfig("time", 0.1, 0.1, 0))
    )
    train, test = built.splits["train"], built.splits["test"]
    label, item = np.asarray(train["label"].to_pylist()), np.asarray(train["item"].to_pylist())
    positives = set(item[label == 1].tolist())
    outside = set(item[label == 0].tolist()) - positives
    cold = np.asarray(test["cold"].to_pylist())
    test_label = np.asarray(test["label"].to_pylist())
    if pool == "train":
        assert not outside  # an item without a training positive never appears in training at all
        assert built.summary["negative_pool_items"] == len(positives)
        assert (cold & (test_label == 0)).any() and (cold & (test_label == 1)).any()  # cold negatives to rank against
    else:
        assert outside  # sampled as training negatives, the late items' ID rows would learn "never clicked"
        assert not cold.any()  # and the cold slice is empty
    # a positive and its negatives share their split (one impression group, same timestamp)
    for name, table in built.splits.items():
        pos_ts = set(np.asarray(table["timestamp"].to_pylist())[np.asarray(table["label"].to_pylist()) == 1].tolist())
        assert set(table["timestamp"].to_pylist()) <= pos_ts, name
