from __future__ import annotations

import gzip
import json

import pytest

from pipeline.ctr.adapters import ADAPTERS, SourceError, read_source
from pipeline.params import LabelRule
from registry import UnknownName

RULE = LabelRule(4, 2)


def write_ml100k(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text(
        "1\t10\t5\t881250949\n1\t20\t3\t881250950\n2\t10\t1\t881250951\n2\t30\t4\t881250952\n"
    )
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    flags = ["0"] * 19
    action, comedy = flags.copy(), flags.copy()
    action[1], comedy[5] = "1", "1"
    both = flags.copy()
    both[1] = both[5] = "1"
    (folder / "u.item").write_bytes(
        (
            f"10|Toy Story (1995)|01-Jan-1995||http://x|{'|'.join(action)}\n"
            f"20|Caf\xe9 (1996)|01-Jan-1996||http://y|{'|'.join(comedy)}\n"
            f"30|GoldenEye (1995)|||http://z|{'|'.join(both)}\n"
        ).encode("latin-1")
    )
    (folder / "u.genre").write_text("\n".join(f"g{k}|{k}" for k in range(19)) + "\n")


def test_movielens_100k(tmp_path):
    write_ml100k(tmp_path / "ml")
    raw = read_source("movielens", tmp_path / "ml", RULE)
    inter = raw.interactions.to_pydict()
    assert inter == {
        "user_id": ["1", "2", "2"],
        "video_id": ["10", "10", "30"],
        "timestamp": [881250949, 881250951, 881250952],
        "label": [1, 0, 1],
    }  # rating 3 dropped
    assert raw.users.column("occupation").to_pylist() == ["technician", "other"]
    assert raw.items.column("genres").to_pylist() == [["g1"], ["g5"], ["g1", "g5"]]
    years = raw.items.column("year").to_pylist()
    assert years[:2] == [1995.0, 1996.0] and years[2] != years[2]  # no release date -> NaN


def test_movielens_100k_fixed_split_u1_is_kept_and_validation_is_carved_from_training(tmp_path):
    """Issue 24: ``ctr_data.path=<ml-100k>/u1.base`` reads the dataset's own split (u1.base train, u1.test test)."""
    from pipeline.core.modality import FeaturesConfig
    from pipeline.ctr.build import build_samples
    from pipeline.params import CtrDataConfig, CtrFeatures, CtrSplitConfig

    write_ml100k(tmp_path / "ml")
    (tmp_path / "ml" / "u1.base").write_text("1\t10\t5\t881250949\n1\t20\t4\t881250950\n2\t10\t1\t881250951\n")
    (tmp_path / "ml" / "u1.test").write_text("2\t30\t4\t881250952\n")
    raw = read_source("movielens", tmp_path / "ml" / "u1.base", RULE)
    inter = raw.interactions.to_pydict()
    assert inter["video_id"] == ["10", "20", "10", "30"] and inter["split"] == [0, 0, 0, 2]
    assert raw.items.num_rows == 3 and raw.users.num_rows == 2  # the folder's side tables
    cfg = CtrDataConfig(
        "movielens", str(tmp_path / "ml" / "u1.base"), RULE, 1, "all", 2, 2,
        CtrSplitConfig("time", 0.34, 0.2, 0), "drop", CtrFeatures((), (), ()), FeaturesConfig(None, False, "zscore"), 0,
    )  # fmt: skip
    built = build_samples(raw, cfg)
    assert built.summary["valid_carved_from_train"] == 1  # the latest training rating; u1.test untouched
    test = built.splits["test"].to_pydict()
    assert test["label"] == [1] and built.splits["valid"].num_rows == 1
    with pytest.raises(SourceError, match=r"not a MovieLens 100K split; name one of \['u1.base'"):
        read_source("movielens", tmp_path / "ml" / "x.base", RULE)
    (tmp_path / "ml" / "u1.test").unlink()
    with pytest.raises(SourceError, match=r"missing \['u1.test'\]"):
        read_source("movielens", tmp_path / "ml" / "u1.base", RULE)


def test_movielens_1m_implicit(tmp_path):
    d = tmp_path / "ml-1m"
    d.mkdir()
    (d / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    (d / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    (d / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James (1996)::Animation|Children's\n".encode(
            "latin-1"
        )
    )
    raw = read_source("movielens", d, LabelRule(4, None))
    assert raw.interactions.column_names == ["user_id", "video_id", "timestamp"]  # implicit: positives only
    assert raw.interactions["video_id"].to_pylist() == ["1193", "1193"]
    assert raw.items["genres"].to_pylist() == [["Drama"], ["Animation", "Children's"]]
    assert raw.items["year"].to_pylist() == [1975.0, 1996.0]
    assert raw.users["gender"].to_pylist() == ["F", "M"]


@pytest.mark.parametrize("compressed", [False, True])
def test_amazon_json_lines(tmp_path, compressed):
    rows = [
        {"reviewerID": "A1", "asin": "B01", "overall": 5.0, "unixReviewTime": 1400000000, "reviewText": "ok"},
        {"reviewerID": "A2", "asin": "B01", "overall": 3.0, "unixReviewTime": 1400000001},
        {"reviewerID": "A2", "asin": "B02", "overall": 1.0, "unixReviewTime": 1400000002, "style": {"a": "b"}},
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path = tmp_path / ("r.json.gz" if compressed else "r.json")
    path.write_bytes(gzip.compress(text) if compressed else text)
    raw = read_source("amazon", path, RULE)
    assert raw.interactions.to_pydict() == {
        "user_id": ["A1", "A2"],
        "video_id": ["B01", "B02"],
        "timestamp": [1400000000, 1400000002],
        "label": [1, 0],
    }
    assert raw.users is None and raw.items is None


def test_adapters_name_the_expected_files(tmp_path):
    (tmp_path / "ratings.csv").write_text("x")
    with pytest.raises(SourceError, match=r"u\.data.*ratings\.dat"):
        read_source("movielens", tmp_path, RULE)
    (tmp_path / "u.data").write_text("1\t2\t3\t4\n")
    with pytest.raises(SourceError, match=r"missing \['u.user', 'u.item'\]"):
        read_source("movielens", tmp_path, RULE)
    with pytest.raises(SourceError, match="reviewerID, asin, overall, unixReviewTime"):
        read_source("amazon", tmp_path / "nothing_here", RULE)
    with pytest.raises(
        UnknownName,
        match="unknown dataset adapter 'netflix' in ctr_data.source / rec_data.source; registered: amazon, lattice, log",
    ):
        read_source("netflix", tmp_path, RULE)
    assert ADAPTERS.names() == ["amazon", "lattice", "log", "mmrec", "movielens"]


def test_amazon_rows_missing_fields_are_an_error(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"reviewerID": "A1", "asin": "B01", "overall": 5.0}\n')
    with pytest.raises(SourceError, match="unixReviewTime"):
        read_source("amazon", path, RULE)


def test_log_cells_are_parsed_as_written(tmp_path):
    """Text cells as spreadsheets write them; a Parquet timestamp column becomes unix seconds, not its unit."""
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    csv = tmp_path / "log.csv"
    csv.write_text("user_id,video_id,timestamp,label\nNA,v1, 1600000000.0 ,1.0\nu2,NaN,+7,0\n")
    raw = read_source("log", csv, RULE)
    assert raw.interactions.to_pydict() == {
        "user_id": ["NA", "u2"],  # "NA" and "NaN" are ids here, not missing values
        "video_id": ["v1", "NaN"],
        "timestamp": [1_600_000_000, 7],
        "label": [1, 0],
    }
    when = datetime.datetime(2020, 9, 13, 12, 26, 40, 500000)
    table = pa.table(
        {"user_id": ["u1"], "video_id": ["v1"], "timestamp": pa.array([when], pa.timestamp("us")), "label": [True]}
    )
    pq.write_table(table, tmp_path / "log.parquet")
    raw = read_source("log", tmp_path / "log.parquet", RULE)
    assert raw.interactions["timestamp"].to_pylist() == [1_600_000_000]  # before: 1600000000500000 (microseconds)
    assert raw.interactions["label"].to_pylist() == [1]
