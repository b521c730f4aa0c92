from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core import store


def test_vectors_round_trip_as_fixed_size_float32_lists(tmp_path):
    matrix = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float64)
    table = pa.table({"video_id": list("abcde"), "v": store.vector_array(matrix)})
    meta = store.make_meta("test", params={"k": 1}, extractor="x", weights="random", dims={"v": [7]})
    store.write_table(table, tmp_path / "s.parquet", meta)
    back = store.read_table(tmp_path / "s.parquet", expect={"stage": "test", "weights": "random"})
    assert back.schema.field("v").type == pa.list_(pa.float32(), 7)
    np.testing.assert_array_equal(store.vectors(back.column("v")), matrix.astype(np.float32))
    got = store.read_meta(tmp_path / "s.parquet")
    assert got["dims"] == {"v": [7]} and got["params_hash"] == store.params_hash({"k": 1})


def test_reader_rejects_mismatched_metadata(tmp_path):
    store.write_table(pa.table({"video_id": ["a"]}), tmp_path / "s.parquet", store.make_meta("ingest"))
    with pytest.raises(store.StoreError, match="metadata 'stage' is 'ingest', expected 'decode'"):
        store.read_table(tmp_path / "s.parquet", expect={"stage": "decode"})


def test_reader_rejects_foreign_and_missing_files(tmp_path):
    pq.write_table(pa.table({"x": [1]}), tmp_path / "foreign.parquet")
    with pytest.raises(store.StoreError, match="not written by this pipeline"):
        store.read_table(tmp_path / "foreign.parquet")
    with pytest.raises(store.StoreError, match="store not found"):
        store.read_table(tmp_path / "absent.parquet")


def test_params_hash_is_order_independent_and_sensitive():
    assert store.params_hash({"a": 1, "b": [1, 2]}) == store.params_hash({"b": (1, 2), "a": 1})
    assert store.params_hash({"a": 1}) != store.params_hash({"a": 2})


def test_failed_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.parquet"
    store.write_table(pa.table({"video_id": ["old"]}), target, store.make_meta("t"))
    with pytest.raises(RuntimeError), store.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert pq.read_table(target).column("video_id").to_pylist() == ["old"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_stream_writer_commits_on_close_only(tmp_path):
    schema = pa.schema([("video_id", pa.string())])
    target = tmp_path / "stream.parquet"
    writer = store.StreamWriter(target, schema, store.make_meta("t"))
    writer.write(pa.table({"video_id": ["a"]}))
    assert not target.exists()  # not visible until complete
    writer.write(pa.table({"video_id": ["b"]}))
    writer.close()
    assert pq.ParquetFile(target).metadata.num_row_groups == 2
    with pytest.raises(ValueError), store.StreamWriter(tmp_path / "aborted.parquet", schema, store.make_meta("t")) as w:
        w.write(pa.table({"video_id": ["a"]}))
        raise ValueError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stream.parquet"]
