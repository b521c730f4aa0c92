from __future__ import annotations

import numpy as np
import pytest

from pipeline.core import store
from pipeline.decode.decoded import DecodedWriter, iter_decoded, read_index, shard_of, shard_path

T, S = 4, 8


def _row(i: int, audio: bool = True) -> dict:
    frames = np.full((T, S, S, 3), i, np.uint8)
    samples = np.arange(i + 1, dtype=np.float32) if audio else np.zeros(0, np.float32)
    return {
        "video_id": f"v{i}",
        "fingerprint": f"{i * 7919:08x}" + "0" * 24,
        "frames": frames.tobytes(),
        "frame_indices": list(range(T)),
        "n_unique_frames": T,
        "padded": False,
        "has_audio": audio,
        "audio": samples.tobytes(),
        "audio_seconds": samples.size / 16000,
        "note": "",
    }


def _meta() -> dict:
    return store.make_meta("decode", dims={"frames": [T, S, S, 3]}, audio_rate=16000)


def test_round_trip_through_shards(tmp_path):
    writer = DecodedWriter(tmp_path, 3, _meta())
    for i in range(10):
        writer.add(_row(i, audio=i % 3 != 0))
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.parquet"] + [f"shard-00{s}.parquet" for s in range(3)]
    index = read_index(tmp_path)
    assert index.column("video_id").to_pylist() == sorted(f"v{i}" for i in range(10))
    for _vid, shard, fp in zip(*(index.column(c).to_pylist() for c in ("video_id", "shard", "fingerprint"))):
        assert shard == shard_of(fp, 3)
    videos = {v.video_id: v for v in iter_decoded(tmp_path)}
    for i in range(10):
        v = videos[f"v{i}"]
        assert v.frames.shape == (T, S, S, 3) and int(v.frames[0, 0, 0, 0]) == i
        assert (v.audio is None) == (i % 3 == 0)
        if v.audio is not None:
            np.testing.assert_array_equal(v.audio, np.arange(i + 1, dtype=np.float32))
    only = list(iter_decoded(tmp_path, frames=False, audio=False, video_ids=["v2"]))
    assert [(v.video_id, v.frames, v.audio) for v in only] == [("v2", None, None)]


def test_aborted_writer_leaves_no_store(tmp_path):
    writer = DecodedWriter(tmp_path, 2, _meta())
    writer.add(_row(1))
    writer.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(store.StoreError, match="store not found"):
        read_index(tmp_path)


def test_shards_depend_on_content_only():
    assert shard_of("0000000a" + "f" * 24, 8) == 2
    assert shard_path("x", 7).name == "shard-007.parquet"


def test_a_malformed_frames_blob_is_flagged_not_fatal(tmp_path):
    writer = DecodedWriter(tmp_path, 1, _meta())
    bad = _row(1) | {"frames": b"short"}
    for row in (_row(0), bad, _row(2)):
        writer.add(row)
    writer.close()
    videos = {v.video_id: v for v in iter_decoded(tmp_path)}
    assert set(videos) == {"v0", "v1", "v2"}
    assert videos["v1"].frames is None and "holds 5 bytes" in videos["v1"].error
    assert videos["v2"].frames.shape == (T, S, S, 3) and videos["v2"].error is None
