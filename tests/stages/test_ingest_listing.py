"""Unreadable entries in the input folder become ingest failure rows, under `dvc repro` too (before: DVC
hashed `${data.input}` as a dep of ingest and stopped with `[Errno 40] Too many levels of symbolic links`
before any project code ran)."""

from __future__ import annotations

import pyarrow.parquet as pq

from tests.media_fixtures import make_clip
from tests.stages.project import Project


def test_dvc_repro_turns_a_symlink_loop_into_a_failure_row_and_sees_new_files(tmp_path):
    videos = tmp_path / "in"
    make_clip(videos / "ok.mp4", audio_rate=None)
    (videos / "loop.mp4").symlink_to("loop.mp4")
    (videos / "notes.txt").write_text("not a video")
    proj = Project(tmp_path / "proj", {"data": {"input": str(videos)}})
    made = proj.run("-m", "pipeline.dag")  # the input is not the sample corpus: `sample` is no dep of ingest
    assert made.returncode == 0, made.stderr
    done = proj.run("dvc", "repro", "ingest")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Running stage 'sample'" not in done.stdout
    failures = pq.read_table(proj.root / "data/ingest/failures.parquet").to_pylist()
    assert [(f["video_id"], f["reason"]) for f in failures] == [("loop", "symlink_loop")]
    manifest = proj.root / "data/ingest/manifest.parquet"
    assert pq.read_table(manifest).column("video_id").to_pylist() == ["ok"]
    assert "not scanned: 1 .txt" in done.stderr
    make_clip(videos / "new.mp4", audio_rate=None)  # DVC no longer hashes the folder: ingest runs every repro
    again = proj.run("dvc", "repro", "ingest")
    assert again.returncode == 0 and "Running stage 'ingest'" in again.stdout, again.stdout + again.stderr
    assert pq.read_table(manifest).column("video_id").to_pylist() == ["new", "ok"]
