"""The mmrec and lattice adapters on tiny hand-written files, their bad inputs, and a given split in ctr_data."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from pipeline.core.modality import FeaturesConfig
from pipeline.ctr.build import build_samples
from pipeline.datasets import ADAPTERS, SourceError, read_source
from pipeline.params import CtrDataConfig, CtrFeatures, CtrSplitConfig, LabelRule

RULE = LabelRule(4, None)
INTER = (
    "userID\titemID\trating\ttimestamp\tx_label\n0\t1\t1\t100\t0\n0\t2\t1\t101\t2\n1\t0\t1\t102\t0\n1\t2\t1\t103\t1\n"
)


def write_mmrec(folder, inter=INTER, **feats):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.inter").write_text(inter)
    for name, x in (feats or {"image": np.arange(6, dtype=np.float32).reshape(3, 2)}).items():
        np.save(folder / f"{name}_feat.npy", x)
    return folder


def write_lattice(folder, n_users=2, n_items=3, text=None):
    folder.mkdir(parents=True, exist_ok=True)
    mats = {"trnMat.pkl": [(0, 1), (1, 0)], "valMat.pkl": [(1, 2)], "tstMat.pkl": [(0, 2)]}
    for name, pairs in mats.items():
        rows, cols = zip(*pairs)
        m = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))
        (folder / name).write_bytes(pickle.dumps(m.tocsr() if name == "valMat.pkl" else m))
    np.save(folder / "text_feat.npy", text if text is not None else np.eye(n_items, 4, dtype=np.float32))
    return folder


def test_both_formats_are_registered_with_the_ctr_ones():
    assert {"mmrec", "lattice", "log", "movielens", "amazon"} <= set(ADAPTERS.names())


def test_mmrec_reads_ids_split_times_and_features(tmp_path):
    raw = read_source("mmrec", write_mmrec(tmp_path / "d"), RULE)
    assert raw.interactions.to_pydict() == {
        "user_id": ["0", "0", "1", "1"],
        "video_id": ["1", "2", "0", "2"],
        "timestamp": [100, 101, 102, 103],
        "split": [0, 2, 0, 1],
    }
    assert raw.items.column("video_id").to_pylist() == ["0", "1", "2"]
    np.testing.assert_array_equal(raw.features["image"], np.arange(6).reshape(3, 2))


def test_mmrec_without_timestamp_or_rating(tmp_path):
    inter = "userID\titemID\tx_label\n0\t0\t0\n1\t1\t2\n"
    raw = read_source("mmrec", write_mmrec(tmp_path / "d", inter, text=np.zeros((2, 3), np.float32)), RULE)
    assert raw.interactions.column_names == ["user_id", "video_id", "split"] and raw.features["text"].shape == (2, 3)


@pytest.mark.parametrize(
    ("inter", "feats", "match"),
    [
        (INTER, {"image": np.zeros((2, 2), np.float32)}, r"'itemID': 2 is not an item id in 0\.\.1 \(rows of the"),
        (INTER, {"image": np.zeros((3, 2)), "text": np.zeros((2, 2))}, r"text_feat\.npy: 2 rows"),
        (INTER, {"image": np.array([[0, 1], [np.nan, 1], [0, 0]], np.float32)}, r"1 rows hold NaN or inf, e.g. row 1"),
        (INTER, {"image": np.array([[0, 1], [np.inf, 1], [0, 0]], np.float32)}, "NaN or inf"),
        (INTER, {"image": np.zeros(3, np.float32)}, "must be 2-D"),
        (INTER.replace("1\t2\t1\t103", "1\t7\t1\t103"), {}, r"row 4 column 'itemID': 7 is not an item id in 0\.\.2"),
        (INTER.replace("103\t1", "103\t3"), {}, r"row 4 column 'x_label': 3 is not 0/1/2"),
        (INTER.replace("1\t0\t1\t102", "-1\t0\t1\t102"), {}, r"column 'userID': -1"),
        (INTER.replace("103\t1", "103\tx"), {}, r"row 4 column 'x_label': 'x' is not a number"),
        ("userID\titemID\n0\t1\n", {}, r"missing columns \['x_label'\]"),
        ("userID\titemID\tx_label\n", {}, "no interactions"),
    ],
)
def test_mmrec_bad_input_is_one_clear_error(tmp_path, inter, feats, match):
    with pytest.raises(SourceError, match=match):
        read_source("mmrec", write_mmrec(tmp_path / "d", inter, **feats), RULE)


def test_mmrec_needs_exactly_one_inter_file(tmp_path):
    folder = write_mmrec(tmp_path / "d")
    (folder / "other.inter").write_text(INTER)
    with pytest.raises(SourceError, match=r"exactly one <name>\.inter file, found \['other.inter', 'tiny.inter'\]"):
        read_source("mmrec", folder, RULE)


def test_lattice_reads_the_three_matrices_in_any_sparse_format(tmp_path):
    raw = read_source("lattice", write_lattice(tmp_path / "d"), RULE)
    assert raw.interactions.to_pydict() == {
        "user_id": ["0", "1", "1", "0"],
        "video_id": ["1", "0", "2", "2"],
        "split": [0, 0, 1, 2],
    }
    assert raw.features["text"].shape == (3, 4) and raw.users.num_rows == 2


def test_lattice_bad_inputs(tmp_path):
    with pytest.raises(SourceError, match=r"text_feat\.npy: 5 rows but trnMat\.pkl \(3 item columns\) has 3 items"):
        read_source("lattice", write_lattice(tmp_path / "a", text=np.zeros((5, 2), np.float32)), RULE)
    folder = write_lattice(tmp_path / "b")
    (folder / "tstMat.pkl").write_bytes(pickle.dumps(sp.csr_matrix((2, 4))))
    with pytest.raises(SourceError, match="differ in shape"):
        read_source("lattice", folder, RULE)
    (folder / "tstMat.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(SourceError, match="holds a list, expected a SciPy sparse"):
        read_source("lattice", folder, RULE)
    (folder / "tstMat.pkl").write_bytes(b"not a pickle")
    with pytest.raises(SourceError, match="not a pickled SciPy sparse matrix"):
        read_source("lattice", folder, RULE)
    (folder / "tstMat.pkl").unlink()
    with pytest.raises(SourceError, match=r"missing \['tstMat.pkl'\]"):
        read_source("lattice", folder, RULE)


def test_ctr_data_keeps_a_given_split_and_needs_no_timestamps(tmp_path):
    raw = read_source("lattice", write_lattice(tmp_path / "d", n_users=2, n_items=6, text=np.eye(6, 4)), RULE)
    cfg = CtrDataConfig(
        "lattice",
        str(tmp_path),
        RULE,
        1,
        "all",
        5,
        4,
        CtrSplitConfig("time", 0.2, 0.2, 0),
        "drop",
        CtrFeatures((), (), ()),
        FeaturesConfig(None, False, "zscore"),
        0,
    )
    built = build_samples(raw, cfg)
    assert built.summary["given_split"] is True
    # each positive keeps its split and brings its 1 sampled negative along
    assert [built.splits[s].num_rows for s in ("train", "valid", "test")] == [4, 2, 2]
    valid = built.splits["valid"].to_pydict()
    assert sorted(valid["label"]) == [0, 1] and set(valid["user"]) == {2}  # user "1" is code 2 (0 = unknown)
    assert set(built.splits["train"]["timestamp"].to_pylist()) == {0}
