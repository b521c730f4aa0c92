"""``dvc repro`` after adding, changing and removing videos equals a from-scratch run, row by row.

decode, audio and one visual extractor (ResNet-152, 2 frames of 32 px) on a tiny generated corpus
outside the project; the stores are compared with a from-scratch project on the same corpus.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.core import store
from pipeline.core.shards import shard_of
from pipeline.decode import decoded
from pipeline.params import SampleConfig
from pipeline.sample import plan_videos, render_video
from tests.stages.project import Project

SHARDS = 8
PATCH = {
    "decode": {"shards": SHARDS},
    "audio": {"workers": 1},
    "visual": {"extractors": ["resnet152"], "batch_size": 1, "precision": "fp32", "resnet152": {"num_frames": 2}},
}
STORES = ("data/decoded", "features/stores/audio.parquet", "features/stores/visual_resnet152.parquet")
TARGETS = ("audio", "visual@resnet152")
FROM_SCRATCH = ("stages.ingest", "stages.decode", "stages.placement", "stages.visual resnet152", "stages.audio")


def render(folder: Path, n: int, seed: int) -> list[Path]:
    cfg = SampleConfig(
        seed=seed,
        n_videos=n,
        min_seconds=1.0,
        max_seconds=1.5,
        short_seconds=0.4,
        no_audio_fraction=0.25,
        sizes=((64, 48), (48, 64)),
        fps=(10.0, 15.0),
        audio_rates=(8000, 16000),
        n_users=5,
        impressions_per_user=1,
        clips=4,
        clip_tint=False,
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in plan_videos(cfg):
        render_video(spec, folder / f"s{seed}_{spec.video_id}.mp4")
        paths.append(folder / f"s{seed}_{spec.video_id}.mp4")
    return paths


def repro(project: Project) -> str:
    done = project.run("dvc", "repro", *TARGETS)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def keys(project: Project) -> set[tuple[str, str]]:
    index = decoded.read_index(project.root / "data/decoded")
    return set(zip(index.column("video_id").to_pylist(), index.column("fingerprint").to_pylist()))


def stamps(project: Project) -> dict[tuple[str, int], tuple[int, int]]:
    out = {}
    for name in STORES:
        for s in range(SHARDS):
            st = (project.root / name / f"shard-{s:03d}.parquet").stat()
            out[(name, s)] = (st.st_ino, st.st_mtime_ns)
    return out


@pytest.mark.slow
def test_incremental_repro_equals_from_scratch(tmp_path):
    pool = render(tmp_path / "pool", 10, seed=7)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in pool[:7]:
        shutil.copy2(path, corpus / path.name)
    inc = Project(tmp_path / "inc", {"data": {"input": str(corpus)}, **PATCH})
    repro(inc)
    before_keys, before = keys(inc), stamps(inc)

    shutil.copy2(pool[7], corpus / pool[7].name)  # added
    shutil.copy2(pool[8], corpus / pool[8].name)  # added
    (corpus / pool[1].name).write_bytes(pool[9].read_bytes())  # same id, new content
    (corpus / pool[2].name).unlink()  # removed
    out = repro(inc)
    assert "decode: 3 of 8 videos to compute" in out and "audio: 3 of 8 videos to compute" in out  # 2 new + 1 changed
    assert "visual@resnet152: 3 of 8 videos to compute" in out
    assert "3 computed now" in out.split("stage.visual")[-1]
    touched = {shard_of(fp, SHARDS) for _, fp in keys(inc) ^ before_keys}
    after = stamps(inc)
    for (name, shard), stamp in after.items():  # untouched shards keep their file (inode and mtime)
        assert (stamp == before[(name, shard)]) == (shard not in touched), (name, shard)

    again = inc.run_here("stages.decode")  # nothing changed: nothing computed, nothing written
    assert (
        again.returncode == 0
        and "decode: 0 of 8 videos to compute" in again.stderr
        and "rewritten: none" in again.stderr
    )
    assert stamps(inc) == after

    shown = inc.run("-m", "pipeline.show", "--outputs", "features/stores/audio.parquet")
    assert shown.returncode == 0 and "-- all shards\nrows: 8" in shown.stdout, shown.stderr
    assert "8 rows in 8 shards" in shown.stdout  # paths.audio_features in --outputs

    scratch = Project(tmp_path / "scratch", {"data": {"input": str(corpus)}, **PATCH})
    scratch.run_here_each(*FROM_SCRATCH)  # the stages `repro(scratch)` would run, without DVC's processes
    for name in STORES[1:] + ("data/decoded/index.parquet",):
        a, b = (store.read_table(p.root / name) for p in (inc, scratch))
        assert a.num_rows == 8 and a.equals(b), name  # ids, fingerprints and feature values exactly
    inc_clips = {v.video_id: v for v in decoded.iter_decoded(inc.root / "data/decoded")}
    for video in decoded.iter_decoded(scratch.root / "data/decoded"):
        np.testing.assert_array_equal(inc_clips[video.video_id].frames, video.frames)
        assert (inc_clips[video.video_id].audio is None) == (video.audio is None)
        if video.audio is not None:
            np.testing.assert_array_equal(inc_clips[video.video_id].audio, video.audio)
    for name in (
        "data/decoded/failures.parquet",
        "features/stores/audio_failures.parquet",
        "features/stores/visual_resnet152_failures.parquet",
    ):
        assert store.read_table(inc.root / name).equals(store.read_table(scratch.root / name))
