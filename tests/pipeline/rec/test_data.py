"""rec_data's rules on hand-made interactions: given or drawn split, duplicates, unseen users, empty
splits, unknown items, features fitted on training items, and the files' round trip."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipeline.datasets import RawData
from pipeline.params import CtrSplitConfig, FeaturesConfig, LabelRule, RecDataConfig
from pipeline.rec import data as rec_data
from pipeline.rec.data import DataError

CFG = RecDataConfig(
    "mmrec",
    "unused",
    LabelRule(4, None),
    CtrSplitConfig("random", 0.2, 0.2, 0),
    FeaturesConfig(None, False, "zscore"),
    "drop",
    0,
)
ITEMS = pa.table({"video_id": ["a", "b", "c", "d"]})


def raw(rows, features=None, items=ITEMS):
    users, videos, splits = zip(*rows)
    table = pa.table({"user_id": list(users), "video_id": list(videos), "split": pa.array(splits, pa.int8())})
    return RawData(table, None, items, features or {})


BASE = [("u1", "a", 0), ("u1", "b", 1), ("u1", "c", 2), ("u2", "b", 0), ("u2", "d", 2), ("u2", "a", 1)]


def test_codes_follow_the_item_list_and_the_given_split_is_kept():
    data, _ = rec_data.build(raw(BASE), CFG)
    assert data.item_ids.to_pylist() == ["a", "b", "c", "d"] and data.n_users == 2
    assert list(zip(data.user, data.item, data.split)) == [
        (0, 0, 0),
        (0, 1, 1),
        (0, 2, 2),
        (1, 0, 1),
        (1, 1, 0),
        (1, 3, 2),
    ]
    assert data.cold_items().tolist() == [False, False, True, True]
    assert data.summary["cold_items"] == 2 and data.summary["test_cold_interactions"] == 2


def test_a_pair_listed_twice_keeps_its_earliest_split_and_is_counted():
    data, _ = rec_data.build(raw([*BASE, ("u1", "a", 2), ("u1", "b", 1)]), CFG)
    assert data.summary["duplicates_dropped"] == 2
    assert len(data.user) == 6 and ((data.user == 0) & (data.item == 0)).sum() == 1
    assert data.split[(data.user == 0) & (data.item == 0)].tolist() == [0]  # not a test target: it is a training one


def test_users_unseen_in_training_are_dropped_and_counted_or_an_error():
    rows = [*BASE, ("u3", "a", 2), ("u3", "b", 1)]
    data, _ = rec_data.build(raw(rows), CFG)
    assert data.summary["unseen_users"] == 1 and data.summary["unseen_user_interactions"] == 2
    assert 2 not in data.user.tolist()
    with pytest.raises(DataError, match=r"1 users have valid/test interactions but none in training, e.g. \['u3'\]"):
        rec_data.build(raw(rows), RecDataConfig(**{**CFG.__dict__, "unseen_users": "error"}))


def test_an_empty_split_is_an_error():
    with pytest.raises(DataError, match="the valid split is empty"):
        rec_data.build(raw([r for r in BASE if r[2] != 1]), CFG)


def test_an_item_outside_the_item_list_is_an_error_naming_it():
    with pytest.raises(DataError, match=r"1 interactions name items absent .* \(4 items\), e.g. 'z' \(interaction 7\)"):
        rec_data.build(raw([*BASE, ("u1", "z", 0)]), CFG)


def test_features_are_normalised_on_training_items_only():
    x = np.array([[1.0, 10.0], [3.0, 30.0], [100.0, -5.0], [7.0, 7.0]], np.float32)
    data, states = rec_data.build(raw(BASE, {"image": x}), CFG)
    train = ~data.cold_items()  # items a, b
    np.testing.assert_allclose(data.features["image"][train], [[-1, -1], [1, 1]], atol=1e-6)
    assert data.features["image"][2, 0] == pytest.approx((100 - 2) / 1)  # cold item: same transform, not refitted
    assert states["image"].info["n_train"] == 2


def test_nan_features_are_an_error():
    x = np.ones((4, 2), np.float32)
    x[3, 1] = np.nan
    with pytest.raises(DataError, match=r"features 'image': NaN or inf in row 3 \(d\)"):
        rec_data.build(raw(BASE, {"image": x}), CFG)


def test_explicit_negatives_are_not_interactions_and_are_counted():
    table = raw(BASE).interactions.append_column("label", pa.array([1, 1, 1, 1, 1, 0]))
    data, _ = rec_data.build(RawData(table, None, ITEMS), CFG)
    assert data.summary["negatives_dropped"] == 1 and len(data.user) == 5


def test_without_a_given_split_the_params_split_is_drawn_and_time_needs_timestamps():
    rng = np.random.default_rng(0)
    table = pa.table(
        {"user_id": [f"u{k % 20}" for k in range(400)], "video_id": [f"v{k}" for k in rng.integers(0, 50, 400)]}
    )
    data, _ = rec_data.build(RawData(table), CFG)
    assert data.summary["given_split"] is False and data.n_items == len(set(table["video_id"].to_pylist()))
    shares = np.bincount(data.split, minlength=3) / len(data.split)
    assert shares[0] > 0.5 and shares[1] > 0.1 and shares[2] > 0.1
    by_time = RecDataConfig(**{**CFG.__dict__, "split": CtrSplitConfig("time", 0.2, 0.2, 0)})
    with pytest.raises(DataError, match="split.by is time but mmrec has no timestamps"):
        rec_data.build(RawData(table), by_time)


def test_written_tables_read_back_identical(tmp_path):
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    data, _ = rec_data.build(raw(BASE, {"text": x}), CFG)
    rec_data.write(data, tmp_path, {"rec_data": CFG})
    back = rec_data.read(tmp_path)
    for name in ("user", "item", "split"):
        np.testing.assert_array_equal(getattr(back, name), getattr(data, name))
    np.testing.assert_array_equal(back.features["text"], data.features["text"])
    assert back.item_ids.to_pylist() == ["a", "b", "c", "d"] and back.summary == data.summary
