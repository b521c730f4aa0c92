"""A damaged video through `python -m stages.ingest` and `stages.decode`: ingest sees a healthy file,
decode stores it flagged (`decode.on_corrupt: keep`) or turns it into a `corrupt_stream` row (`fail`)."""

from __future__ import annotations

import pyarrow.parquet as pq

from pipeline.core import store
from tests.media_fixtures import make_clip
from tests.pipeline.decode.test_damage import AUDIO, VIDEO, damage
from tests.stages.project import Project


def test_decode_errors_reach_the_index_and_on_corrupt_fail_makes_failure_rows(tmp_path):
    videos = tmp_path / "in"
    clean = make_clip(videos / "clean.mp4", seconds=3.0, size=(160, 120), fps=25, audio_rate=44100)
    damage(clean, videos / "bad_video.mp4", VIDEO, 0.5, 64)
    damage(clean, videos / "bad_audio.mp4", AUDIO, 0.5, 64)
    proj = Project(tmp_path / "proj", {"data": {"input": str(videos)}, "decode": {"max_failure_rate": 1.0}})
    for stage in ("stages.ingest", "stages.decode"):
        done = proj.run_here(stage)
        assert done.returncode == 0, done.stderr
    # kept (on_corrupt: keep) but said: one warning line (issue 26: "3 rows, 0 failures" and nothing else)
    assert "decode: 2 of 3 videos kept with damaged data (decode.on_corrupt: keep), worst: " in done.stderr
    assert pq.read_table(proj.root / "data/ingest/failures.parquet").num_rows == 0  # the containers are intact
    index = {r["video_id"]: r for r in pq.read_table(proj.root / "data/decoded/index.parquet").to_pylist()}
    assert index["clean"]["decode_errors"] == 0 and index["clean"]["note"] == ""
    for vid, first in (("bad_video", "e.g.: [h264] "), ("bad_audio", "e.g.: [aac] ")):
        assert index[vid]["decode_errors"] >= 1, index[vid]
        assert index[vid]["note"].startswith("decode_errors: ffmpeg reported") and first in index[vid]["note"]
    # the flag reaches the feature stores (and from them items.parquet), so a user can filter there too
    done = proj.run_here("stages.audio")
    assert done.returncode == 0, done.stderr
    stored = {
        r["video_id"]: r["decode_errors"]
        for r in store.read_table(proj.root / "features/stores/audio.parquet").to_pylist()
    }
    assert stored == {v: r["decode_errors"] for v, r in index.items()} and stored["bad_video"] >= 1
    proj.set_params({"decode": {"on_corrupt": "fail"}})  # changes decode's params_hash: every video again
    done = proj.run_here("stages.decode")
    assert done.returncode == 0, done.stderr
    failed = {r["video_id"]: r for r in pq.read_table(proj.root / "data/decoded/failures.parquet").to_pylist()}
    assert {v: r["reason"] for v, r in failed.items()} == {"bad_video": "corrupt_stream", "bad_audio": "corrupt_stream"}
    assert failed["bad_audio"]["message"].startswith("ffmpeg reported ")
    index = pq.read_table(proj.root / "data/decoded/index.parquet").column("video_id").to_pylist()
    assert index == ["clean"]
